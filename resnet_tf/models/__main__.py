"""Print model summaries.

    python -m resnet_tf.models resnet18 [--num-classes N] [--stem imagenet]

Give several names for several summaries, or ``all`` for a one-line-per-model table.
"""

from __future__ import annotations

import argparse
import sys

from resnet_tf.config.choices import MODEL_NAMES, STEMS  # noqa: E402
from resnet_tf.config.combinations import check_model_name  # noqa: E402
from resnet_tf.errors import ResnetTfError  # noqa: E402
from resnet_tf.models.registry import build_model  # noqa: E402
from resnet_tf.models.summary import (  # noqa: E402
    count_macs,
    count_trainable_params,
    describe_model,
)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m resnet_tf.models",
        description="Show parameter counts, MACs per image and stage shapes of ResNets.",
    )
    parser.add_argument(
        "names", nargs="+", metavar="NAME", help=f"'all' or any of: {', '.join(MODEL_NAMES)}"
    )
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--stem", choices=STEMS, default="cifar")
    return parser.parse_args(argv)


def _table(names: list[str], num_classes: int, options: dict) -> str:
    lines = [f"{'model':<14} {'params':>12} {'GMACs':>7}"]
    for name in names:
        model = build_model(name, num_classes, **options)
        params = count_trainable_params(model)
        lines.append(f"{name:<14} {params:>12,} {count_macs(model) / 1e9:>7.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    options = {"stem": args.stem}
    try:
        if args.names == ["all"]:
            print(_table(list(MODEL_NAMES), args.num_classes, options))
            return 0
        for name in args.names:
            check_model_name(name)  # fail before spending time on the valid ones
        for index, name in enumerate(args.names):
            if index:
                print()
            print(describe_model(build_model(name, args.num_classes, **options)))
    except ResnetTfError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
