#!/usr/bin/env python3
"""Prune a trained model: remove whole filters (smallest L1 norm first) for a narrower model.

python prune.py --checkpoint outputs/my-run --amount 0.3
python prune.py --checkpoint outputs/my-run --amount 0,0.3,0.4 --output small.keras

--amount is the fraction of each prunable layer's channels to remove: one for every stage, or
one per stage. The result (<run>/pruned/l1-<amount>.keras, and a .json saying what was cut) is a
smaller architecture with the kept weights copied exactly; fine-tune it with
`python train.py --config configs/fast_prune_finetune.yaml --set model.init_from=<that file>`.
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    # The one list of criteria; importing it loads TensorFlow (resnet_tf/__init__.py).
    from resnet_tf.compress.prune import CRITERIA

    parser = argparse.ArgumentParser(
        description="Remove whole conv filters (L1 norm) from a checkpoint: a narrower model."
    )
    parser.add_argument(
        "--checkpoint", required=True, help="a run folder (its best.keras) or a .keras file"
    )
    parser.add_argument(
        "--amount",
        required=True,
        help="fraction of channels to remove from each prunable conv, e.g. 0.3, or one per "
        "stage, e.g. 0,0.3,0.3 (0 keeps a stage whole)",
    )
    parser.add_argument(
        "--criterion",
        default="l1",
        choices=CRITERIA,
        help="how filters are ranked: l1 = sum of |weights| (Li et al. 2017)",
    )
    parser.add_argument(
        "--output", help="the .keras to write; default <run>/pruned/<criterion>-<amount>.keras"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output (default: refuse)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)

    from resnet_tf import compress
    from resnet_tf.errors import ResnetTfError

    try:
        result = compress.prune_checkpoint(
            args.checkpoint,
            compress.parse_amounts(args.amount),
            criterion=args.criterion,
            output=args.output,
            overwrite=args.overwrite,
        )
    except ResnetTfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
