#!/usr/bin/env python3
"""Train a ResNet on CIFAR-10 from a YAML config.

python train.py --config configs/resnet18.yaml --data-dir ../shared/datasets
python train.py --config configs/quick.yaml --set train.epochs=5 --name my-run
python train.py --resume outputs/my-run
python train.py --config configs/fast.yaml --seeds 0,1,2 --name fast   # fast-s0..2, fast-seeds/
TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]}}' \
    python train.py --config configs/resnet18.yaml --set runtime.distribution=multi_worker \
    --name big-run --worker-index 0      # and --worker-index 1 on host2
"""

from __future__ import annotations

import argparse
import sys
import time


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(
            f"expected distinct seeds >= 0 separated by commas, e.g. 0,1,2, found {text!r}"
        )
    return seeds


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train a ResNet on CIFAR-10 from a YAML config (see configs/)."
    )
    parser.add_argument("--config", help="YAML config file, e.g. configs/resnet18.yaml")
    parser.add_argument("--data-dir", help="CIFAR-10 archive or folder (overrides data.path)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. train.epochs=3",
    )
    parser.add_argument("--name", help="run folder name (default: <config>-<model>-<time>)")
    parser.add_argument("--output-dir", help="where run folders go (overrides output.root)")
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint"
    )
    parser.add_argument(
        "--seeds",
        type=seed_list,
        metavar="S1,S2,...",
        help="run the config once per seed into NAME-s<seed> folders, then NAME-seeds/summary.md",
    )
    parser.add_argument(
        "--worker-index",
        type=int,
        metavar="N",
        help="multi-worker: this machine is worker N of TF_CONFIG's cluster (sets its task)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config and model summary, then exit",
    )
    args = parser.parse_args(argv)
    if args.resume:
        clashing = [
            flag
            for flag, value in (
                ("--config", args.config),
                ("--set", args.overrides),
                ("--name", args.name),
                ("--output-dir", args.output_dir),
                ("--seeds", args.seeds),
            )
            if value
        ]
        if clashing:
            parser.error(
                f"--resume continues a run with its own config; drop {', '.join(clashing)}"
            )
    elif not args.config:
        parser.error("give --config FILE for a new run, or --resume RUN_DIR")
    if args.seeds and (args.dry_run or args.worker_index is not None):
        parser.error(
            "--seeds runs on one machine, one run after another; drop --dry-run or --worker-index"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # before TensorFlow loads: metrics.json reports the whole session
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)

    from resnet_tf.errors import ResnetTfError, RunInterrupted
    from resnet_tf.training import stop_signals_exit

    try:
        # Training catches SIGTERM itself (to save and stop); before and after it, while
        # loading or scoring the test set, SIGTERM ends the command with one line too.
        with stop_signals_exit("outside training: nothing to save"):
            return run_command(args, argv, started)
    except RunInterrupted as stop:  # saved and resumable: 143 (SIGTERM), 130 (Ctrl-C)
        print(stop, file=sys.stderr)
        return stop.exit_code
    except ResnetTfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside training (loading, testing): nothing to save
        print("interrupted by Ctrl-C", file=sys.stderr)
        return 130


def run_command(args: argparse.Namespace, argv: list[str], started: float) -> int:
    """What the arguments ask for; errors and interruptions are main's to report."""
    from resnet_tf import experiment

    if args.worker_index is not None:
        from resnet_tf.training.distribute import set_worker_index

        set_worker_index(args.worker_index)
    if args.resume:
        experiment.resume(args.resume, data_dir=args.data_dir, started=started)
        return 0
    if args.seeds:
        experiment.run_seeds(
            args.config,
            args.overrides,
            args.seeds,
            args.data_dir,
            args.output_dir,
            args.name,
            argv=["train.py", *argv],
        )
        return 0
    config = experiment.resolve_config(
        args.config, args.overrides, args.data_dir, args.output_dir, args.name
    )
    if args.dry_run:
        print(experiment.dry_run(config))
        return 0
    experiment.start(config, args.config, argv=["train.py", *argv], started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
