#!/usr/bin/env python3
"""Evaluate a trained checkpoint on the CIFAR-10 test set (or a folder of labelled images).

python evaluate.py --checkpoint outputs/my-run/checkpoints/best.keras
python evaluate.py --checkpoint outputs/my-run --tta flip
python evaluate.py --checkpoint model.keras --normalization cifar10 --data-dir my_photos
python evaluate.py --checkpoint outputs/my-run/export/best_int8.tflite   # an exported model

Writes report.json, report.md and figures to outputs/<run>/eval/ (an exported model:
eval-<name>/ beside it), or to --output DIR.
"""

from __future__ import annotations

import argparse
import functools
import sys


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    # The one list of each choice; importing it loads TensorFlow (resnet_tf/__init__.py).
    from resnet_tf.config.choices import NORMALIZATIONS, TTA_CHOICES

    parser = argparse.ArgumentParser(
        description="Evaluate a checkpoint: accuracy, loss, calibration, per-class metrics, "
        "confusion matrix and figures."
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a .keras checkpoint, a run folder (its checkpoints/best.keras), or a model made "
        "by export.py (SavedModel folder, .tflite, .onnx)",
    )
    parser.add_argument(
        "--data-dir",
        help="CIFAR-10 archive or folder, or a folder of <split>/<class name>/*.png|jpg images "
        "(default: the run config's data.path, then $CIFAR10_DIR)",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="CIFAR-10 split (test or train), or the sub-folder of an image folder (default test)",
    )
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        help="only for a checkpoint outside a run folder; a run's config.yaml says it otherwise",
    )
    parser.add_argument(
        "--output", help="folder for the report (default: <run>/eval, or eval/ by the checkpoint)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=500, help="default 500")
    parser.add_argument(
        "--tta",
        choices=TTA_CHOICES,
        default="none",
        help="flip: also report the mean logits of each image and its mirror; flip_translate: "
        "of 6 views (the image, its mirror, and both moved by 1 px each way)",
    )
    parser.add_argument(
        "--tta-fraction",
        type=float,
        default=1.0,
        help="with --tta: give the views only to this share of the images, the least confident "
        "first (default 1: all)",
    )
    parser.add_argument(
        "--trust-saved-model",
        action="store_true",
        help="evaluate a SavedModel whose graph holds ops outside the image-classifier "
        "allow-list (file, network, Python ...): a SavedModel is a program; only for one whose "
        "author you trust",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)

    from resnet_tf import deploy, evaluation
    from resnet_tf.errors import ResnetTfError

    exported = deploy.is_exported_model(args.checkpoint)
    evaluate = evaluation.evaluate_checkpoint
    if exported:
        evaluate = functools.partial(
            deploy.evaluate_exported, trust_saved_model=args.trust_saved_model
        )
    try:
        report = evaluate(
            args.checkpoint,
            data_dir=args.data_dir,
            split=args.split,
            normalization=args.normalization,
            output_dir=args.output,
            batch_size=args.batch_size,
            tta=args.tta,
            tta_fraction=args.tta_fraction,
        )
    except ResnetTfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(evaluation.format_for_terminal(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
