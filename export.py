#!/usr/bin/env python3
"""Export a trained checkpoint as a self-contained model: uint8 pixels in, probabilities out.

python export.py --checkpoint outputs/my-run --format litert_int8
python export.py --checkpoint outputs/my-run --format all
python export.py --checkpoint model.keras --normalization cifar10 --format onnx --output m.onnx

Formats: saved_model (TensorFlow), litert (float32 .tflite), litert_fp16 (float16 weights),
litert_int8 (full-integer, calibrated on training images), onnx. Each file is loaded with its
own runtime and compared with the checkpoint on test images before it is put in place: a float
export that disagrees is an error, not a file. A run folder's files go to <run>/export/.
"""

from __future__ import annotations

import argparse
import sys


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    # The one list of each choice; importing it loads TensorFlow (resnet_tf/__init__.py).
    from resnet_tf.config.choices import NORMALIZATIONS
    from resnet_tf.deploy.formats import EXPORT_FORMATS

    parser = argparse.ArgumentParser(
        description="Export a checkpoint as SavedModel, LiteRT (float32, float16, INT8) or ONNX."
    )
    parser.add_argument(
        "--checkpoint", required=True, help="a run folder (its best.keras) or a .keras file"
    )
    parser.add_argument(
        "--format", required=True, choices=[*EXPORT_FORMATS, "all"], help="all: every format"
    )
    parser.add_argument(
        "--output",
        help="file (SavedModel: folder) to write; default <run>/export/<checkpoint name>_<format>",
    )
    parser.add_argument(
        "--data-dir",
        help="CIFAR-10 for the check (test images) and INT8 calibration (training images); "
        "default: the run config's data.path, then $CIFAR10_DIR",
    )
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        help="only for a checkpoint outside a run folder; a run's config.yaml says it otherwise",
    )
    parser.add_argument(
        "--calibration-images",
        type=positive_int,
        default=300,
        help="INT8: training images the quantization ranges are measured on (default 300)",
    )
    parser.add_argument(
        "--check-images",
        type=positive_int,
        default=500,
        help="test images the export is compared with the checkpoint on (default 500)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output (default: refuse)"
    )
    args = parser.parse_args(argv)
    if args.format == "all" and args.output:
        parser.error("--output names one file; with --format all each format gets its default")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)

    from resnet_tf import deploy
    from resnet_tf.errors import ResnetTfError, RunInterrupted
    from resnet_tf.training import sigterm_raises

    formats = list(deploy.EXPORT_FORMATS) if args.format == "all" else [args.format]
    for name in formats:
        try:
            with sigterm_raises(f"while exporting {name}; nothing of it was written"):
                result = deploy.export_checkpoint(
                    args.checkpoint,
                    name,
                    args.output,
                    data_dir=args.data_dir,
                    normalization=args.normalization,
                    calibration_images=args.calibration_images,
                    check_images=args.check_images,
                    overwrite=args.overwrite,
                )
        except RunInterrupted as stop:  # SIGTERM: 143
            print(stop, file=sys.stderr)
            return stop.exit_code
        except KeyboardInterrupt:  # Ctrl-C: 130
            print(
                f"interrupted by Ctrl-C while exporting {name}; nothing of it was written",
                file=sys.stderr,
            )
            return 130
        except ResnetTfError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(result.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
