"""Metrics of logits against labels, in plain float64 numpy.

Independent of Keras' metrics and of TensorFlow, so each one can be checked by hand on small
arrays and gives the same figure whichever way the logits were computed.
"""

from __future__ import annotations

import math

import numpy as np

ECE_BINS = 15
TOP_K = 5
CONFUSED_PAIRS = 10


def accuracy_and_loss(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy, in float64 numpy (independent of Keras' metrics)."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return {
        "accuracy": float((logits.argmax(axis=1) == labels).mean()),
        "loss": float(-log_probs[np.arange(len(labels)), labels].mean()),
        "images": int(len(labels)),
    }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities in float64, stable for large logits."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of images whose label is among the k largest logits.

    A stable sort breaks ties towards the lower class index, as argmax does, so k=1 is top-1.
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    top = np.argsort(-np.asarray(logits), axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predictions, np.int64)), 1)
    return matrix


def per_class_metrics(matrix: np.ndarray, class_names: list[str] | tuple[str, ...]) -> list[dict]:
    """Accuracy (= recall), precision and recall of each class that has images.

    Precision is None for a class the model never predicts (0 / 0).
    """
    rows = []
    for index, name in enumerate(class_names):
        images = int(matrix[index].sum())
        if images == 0:
            continue  # class absent from this image set
        correct = int(matrix[index, index])
        predicted = int(matrix[:, index].sum())
        recall = correct / images
        rows.append(
            {
                "class": name,
                "images": images,
                "correct": correct,
                "accuracy": recall,
                "precision": correct / predicted if predicted else None,
                "recall": recall,
            }
        )
    return rows


def most_confused_pairs(
    matrix: np.ndarray, class_names: list[str] | tuple[str, ...], limit: int = CONFUSED_PAIRS
) -> list[dict]:
    """The largest off-diagonal counts: which true class is most often taken for which."""
    pairs = []
    for true_index, predicted_index in zip(*np.nonzero(matrix)):
        if true_index != predicted_index:
            count = int(matrix[true_index, predicted_index])
            pairs.append(
                {
                    "true": class_names[true_index],
                    "predicted": class_names[predicted_index],
                    "count": count,
                    "share_of_true_class": count / int(matrix[true_index].sum()),
                }
            )
    pairs.sort(key=lambda pair: -pair["count"])  # stable: ties keep class order
    return pairs[:limit]


def expected_calibration_error(
    confidences: np.ndarray, correct: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """ECE: sum over equal-width confidence bins (lo, hi] of bin share * |accuracy - confidence|.

    The usual binning of Guo et al. 2017; 0 for a model whose confidence matches its accuracy.
    """
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    if confidences.size == 0:
        return math.nan
    bins = np.clip(np.ceil(confidences * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            gap = abs(correct[in_bin].mean() - confidences[in_bin].mean())
            total += in_bin.sum() / confidences.size * gap
    return float(total)


def headline_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Top-1, top-5, mean loss and ECE of one set of logits."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    basic = accuracy_and_loss(logits, labels)
    probabilities = softmax(logits)
    correct = logits.argmax(axis=1) == labels
    return {
        "top1_accuracy": basic["accuracy"],
        "top5_accuracy": top_k_accuracy(logits, labels, min(TOP_K, logits.shape[1])),
        "mean_loss": basic["loss"],
        "ece": expected_calibration_error(probabilities.max(axis=1), correct),
    }
