#!/usr/bin/env python3
"""Predict the CIFAR-10 classes of image files with a trained or exported model.

python predict.py examples/*.png                  # the pretrained model (pretrained/)
python predict.py --model outputs/my-run cat.png truck.jpg
python predict.py --model model_int8.tflite --top-k 5 --json photos/*.png
python predict.py --model model.keras --normalization cifar10 cat.png

The model is a run folder (its best checkpoint), a .keras checkpoint, a SavedModel folder, a
.tflite or an .onnx file. Images of any size are decoded as RGB and resized to 32x32 (bilinear,
antialiased), as evaluate.py reads image folders. Prints one line per image (or, with --json, one
JSON document); an unreadable image gets one error line on stderr and the exit status 1, and the
other images are still predicted.
"""

from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    # The one list of each choice; importing it loads TensorFlow (resnet_tf/__init__.py).
    from resnet_tf.config.choices import NORMALIZATIONS
    from resnet_tf.data import NUM_CLASSES
    from resnet_tf.deploy import DEFAULT_MODEL, DEFAULT_PREDICT_BATCH, DEFAULT_TOP_K

    def whole_number(low: int, high: int | None):
        def parse(text: str) -> int:
            try:
                value = int(text)
            except ValueError:
                value = None
            if value is None or value < low or (high is not None and value > high):
                upper = f" to {high}" if high is not None else " or more"
                raise argparse.ArgumentTypeError(f"expected {low}{upper}, found {text}")
            return value

        return parse

    parser = argparse.ArgumentParser(
        description="Predict the CIFAR-10 classes of image files (any size: resized to 32x32)."
    )
    parser.add_argument(
        "--model",
        default=str(DEFAULT_MODEL),
        help="a run folder, a .keras checkpoint, a SavedModel folder, a .tflite or an .onnx file "
        "(default: the pretrained INT8 model, pretrained/fast/fast_int8.tflite)",
    )
    parser.add_argument(
        "images", nargs="+", metavar="IMAGE", help="PNG, JPEG, GIF, BMP, WebP or JPEG XL files"
    )
    parser.add_argument(
        "--top-k",
        type=whole_number(1, NUM_CLASSES),
        default=DEFAULT_TOP_K,
        help=f"how many classes to show per image, 1 to {NUM_CLASSES} (default {DEFAULT_TOP_K})",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document instead of text lines"
    )
    parser.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        help="only for a .keras checkpoint outside a run folder (exported models and runs "
        "know their own)",
    )
    parser.add_argument(
        "--trust-saved-model",
        action="store_true",
        help="run a SavedModel whose graph holds ops outside the image-classifier allow-list "
        "(file, network, Python ...): a SavedModel is a program; only for one whose author "
        "you trust",
    )
    parser.add_argument(
        "--batch-size",
        type=whole_number(1, None),
        default=DEFAULT_PREDICT_BATCH,
        help=f"images per model call (default {DEFAULT_PREDICT_BATCH})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)

    from resnet_tf import deploy
    from resnet_tf.errors import ResnetTfError

    try:
        classifier = deploy.load_classifier(
            args.model,
            normalization=args.normalization,
            trust_saved_model=args.trust_saved_model,
        )
        predictions = deploy.predict_images(
            classifier, args.images, top_k=args.top_k, batch_size=args.batch_size
        )
    except ResnetTfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for prediction in predictions:
        if not prediction.ok:
            print(f"error: {prediction.error}", file=sys.stderr)
        elif not args.json:
            print(deploy.format_prediction(prediction))
    if args.json:
        print(deploy.predictions_to_json(predictions))
    return 0 if all(p.ok for p in predictions) else 1


if __name__ == "__main__":
    sys.exit(main())
