"""Class predictions for image files, from any model `load_classifier` can run.

Each file is decoded and resized as evaluate.py's image folders are (`data.load_image`: any
size or mode -> 32x32 RGB uint8); a file that cannot be read becomes an error naming it, and
the others are still predicted, in batches, in the order given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from resnet_tf.data import CLASS_NAMES, NUM_CLASSES, load_image
from resnet_tf.deploy.runtimes import Classifier
from resnet_tf.errors import DataError, DeployError

DEFAULT_TOP_K = 3
DEFAULT_PREDICT_BATCH = 256


@dataclass(frozen=True)
class ImagePrediction:
    """One image file's prediction: its top classes, best first, or why it has none."""

    image: str  # the path as given
    top: tuple[tuple[str, float], ...] = ()  # (class name, probability), most probable first
    probabilities: np.ndarray | None = None  # all NUM_CLASSES of them, in CLASS_NAMES order
    error: str | None = None  # one line naming the file, when it could not be read

    @property
    def ok(self) -> bool:
        return self.error is None


def check_top_k(top_k: int) -> int:
    """`top_k` if it is 1..NUM_CLASSES; a DeployError naming --top-k otherwise."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
        raise DeployError(f"--top-k: expected a whole number, found {top_k!r}")
    if not 1 <= top_k <= NUM_CLASSES:
        raise DeployError(f"--top-k: expected 1 to {NUM_CLASSES}, found {top_k}")
    return int(top_k)


def top_classes(probabilities: np.ndarray, top_k: int) -> tuple[tuple[str, float], ...]:
    """The `top_k` most probable (class name, probability), best first (ties: class order)."""
    order = np.argsort(-np.asarray(probabilities, np.float64), kind="stable")[:top_k]
    return tuple((CLASS_NAMES[i], float(probabilities[i])) for i in order)


def predict_images(
    classifier: Classifier,
    paths: Iterable[str | os.PathLike],
    top_k: int = DEFAULT_TOP_K,
    batch_size: int = DEFAULT_PREDICT_BATCH,
) -> list[ImagePrediction]:
    """One ImagePrediction per path, in order; unreadable files get `error`, never an exception."""
    top_k = check_top_k(top_k)
    paths = list(paths)
    if batch_size < 1:
        raise DeployError(f"--batch-size: expected a positive number, found {batch_size}")
    decoded: dict[int, np.ndarray] = {}
    errors: dict[int, str] = {}
    for index, path in enumerate(paths):
        try:
            decoded[index] = load_image(path)
        except DataError as error:
            errors[index] = str(error)
    readable = sorted(decoded)
    probabilities = np.zeros((0, NUM_CLASSES), np.float32)
    if readable:
        images = np.stack([decoded[i] for i in readable])
        probabilities = np.concatenate(
            [
                np.asarray(classifier.probabilities(images[start : start + batch_size]))
                for start in range(0, len(images), batch_size)
            ]
        ).astype(np.float32)
    row_of = {index: row for row, index in enumerate(readable)}
    results = []
    for index, path in enumerate(paths):
        if index in errors:
            results.append(ImagePrediction(str(path), error=errors[index]))
        else:
            row = probabilities[row_of[index]]
            results.append(ImagePrediction(str(path), top_classes(row, top_k), row))
    return results


def format_prediction(prediction: ImagePrediction) -> str:
    """One line: `cat.png: cat 91.2%, dog 6.1%, frog 1.0%` (or the error, for a bad file)."""
    if not prediction.ok:
        return prediction.error
    ranked = ", ".join(f"{name} {100 * p:.1f}%" for name, p in prediction.top)
    return f"{prediction.image}: {ranked}"


def predictions_to_json(predictions: list[ImagePrediction]) -> str:
    """One JSON document: [{"image", "predictions": [{"class", "probability"}]} or
    {"image", "error"}], in the order the images were given."""
    document = [
        {
            "image": p.image,
            "predictions": [
                {"class": name, "probability": round(probability, 6)} for name, probability in p.top
            ],
        }
        if p.ok
        else {"image": p.image, "error": p.error}
        for p in predictions
    ]
    return json.dumps(document, indent=2)
