"""Metrics of a trained model on a labelled image set, and the evaluation report of a checkpoint.

The metric functions are plain float64 numpy on logits and labels, independent of Keras' metrics,
so they can be checked by hand. `run_evaluation` is what `evaluate.py` calls: checkpoint ->
images -> logits (a plain loop over `model(batch, training=False)`) -> report.json, report.md
and figures.
"""

from __future__ import annotations

import functools
import math
import os
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from resnet_tf import data as data_lib
from resnet_tf.config import load_config
from resnet_tf.data.cifar10 import (
    ARCHIVE_NAME,
    BATCHES_DIR_NAME,
    DATA_DIR_ENV,
    REQUIRED_BATCH_NAMES,
)
from resnet_tf.runs.files import atomic_write_text, write_json
from resnet_tf.runs.run_dir import open_run_dir
from resnet_tf.errors import EvaluationError

ECE_BINS = 15
TOP_K = 5
CONFUSED_PAIRS = 10
MISTAKES_SHOWN = 24
TTA_CHOICES = ("none", "flip", "flip_translate")
CIFAR_SPLITS = ("test", "train")



# ---------------------------------------------------------------- metrics on numpy arrays


def predict_logits(model: keras.Model, images: tf.data.Dataset) -> np.ndarray:
    return np.asarray(model.predict(images, verbose=0), dtype=np.float32)


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


def mirror_images(images: tf.Tensor) -> tf.Tensor:
    """Left-right mirror of a batch of NHWC images (flip test-time augmentation)."""
    return tf.reverse(images, axis=[2])


def shift_images(images: tf.Tensor, offset: int) -> tf.Tensor:
    """A batch of NHWC images moved by one pixel diagonally, the edge reflected in: offset 0
    moves the content down and right, offset 2 up and left (1 would leave it in place)."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return padded[:, offset : offset + height, offset : offset + width, :]


TTA_METHODS = {
    "flip": "flip (mean of the logits of the image and its mirror)",
    "flip_translate": "flip_translate (weighted mean of the logits of 6 views: the image and "
    "its mirror 1/4 each, both moved 1 px down-right and up-left 1/8 each)",
}


def tta_views(tta: str) -> list[tuple[float, Callable[[tf.Tensor], tf.Tensor] | None]]:
    """(weight, transform) of each test-time view; None is the image itself.

    flip_translate follows the training augmentation (flip + small reflected translations)
    and gives the unmoved views half the weight: they show the whole image.
    """
    if tta not in TTA_CHOICES:
        raise EvaluationError(f"tta must be one of {', '.join(TTA_CHOICES)}, found {tta!r}")
    if tta == "none":
        return [(1.0, None)]
    if tta == "flip":
        return [(0.5, None), (0.5, mirror_images)]
    views: list[tuple[float, Callable[[tf.Tensor], tf.Tensor] | None]] = [
        (0.25, None),
        (0.25, mirror_images),
    ]
    for offset in (0, 2):
        shift = functools.partial(shift_images, offset=offset)
        views += [(0.125, shift), (0.125, lambda x, shift=shift: mirror_images(shift(x)))]
    return views


def evaluate_saved_model(
    path: Path, images: tf.data.Dataset, labels: np.ndarray, tta: str = "none"
) -> dict[str, float]:
    """Load a checkpoint as a user would (plain load_model) and score it, averaging the logits
    of the test-time views that `tta` names (see tta_views)."""
    model = keras.models.load_model(path)
    logits = sum(
        weight * predict_logits(model, images if view is None else images.map(view))
        for weight, view in tta_views(tta)
    )
    return accuracy_and_loss(logits, labels)


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


def summary_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
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


# ---------------------------------------------------------------- checkpoint, data, logits


def resolve_checkpoint(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """(checkpoint file, its run's config.yaml or None); a run folder means its best.keras."""
    given = Path(path).expanduser()
    if given.is_dir():
        run = open_run_dir(given)
        if not run.best.is_file():
            raise EvaluationError(
                f"{run.best}: run folder has no best checkpoint (no epoch finished yet?)"
            )
        return run.best, run.config
    if not given.exists():
        raise EvaluationError(f"{given}: checkpoint not found")
    run_config = given.parent.parent / "config.yaml"
    in_run = given.parent.name == "checkpoints" and run_config.is_file()
    return given, run_config if in_run else None


def load_checkpoint(path: Path) -> keras.Model:
    """Load a whole saved model and check it maps 32x32 RGB images to 10 CIFAR-10 logits."""
    if path.name.endswith(".weights.h5"):
        raise EvaluationError(
            f"{path}: a weights-only file; evaluation needs a whole model saved as .keras "
            "(e.g. outputs/<run>/checkpoints/best.keras)"
        )
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise EvaluationError(
            f"{path}: not a .keras model archive (not a zip file: truncated, corrupt or "
            "another kind of file)"
        )
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for bad files
        raise EvaluationError(
            f"{path}: cannot load as a Keras model ({_first_line(error)})"
        ) from None
    try:
        outputs = model(np.zeros((1, 32, 32, 3), np.float32), training=False)
    except Exception as error:
        raise EvaluationError(
            f"{path}: the model does not take 32x32 RGB images ({_first_line(error)})"
        ) from None
    shape = tuple(getattr(outputs, "shape", ()))
    if shape != (1, data_lib.NUM_CLASSES):
        found = shape[-1] if len(shape) == 2 else f"output shape {shape}"
        raise EvaluationError(
            f"{path}: expected a model with {data_lib.NUM_CLASSES} outputs (the CIFAR-10 "
            f"classes), found {found}"
        )
    return model


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def resolve_normalization(run_config: Path | None, given: str | None, checkpoint: Path) -> str:
    """The normalization the model was trained with: from its run's config, never guessed."""
    if run_config is None:
        if given is None:
            raise EvaluationError(
                f"{checkpoint}: not inside a run folder (no ../../config.yaml), so the "
                "normalization it was trained with is unknown; pass --normalization "
                "cifar10, imagenet or none"
            )
        return given
    trained_with = load_config(run_config).data.normalization
    if given is not None and given != trained_with:
        raise EvaluationError(
            f"{run_config}: the model was trained with normalization '{trained_with}', "
            f"but --normalization {given} was given; drop the option"
        )
    return trained_with


def _is_cifar_source(path: Path) -> bool:
    """True for what load_cifar10 reads (archive, batches folder, folder holding either)."""
    if not path.is_dir():
        return True  # a file, or a missing path that load_cifar10 reports clearly
    markers = (*REQUIRED_BATCH_NAMES, BATCHES_DIR_NAME, ARCHIVE_NAME)
    return any((path / name).exists() for name in markers)


def load_images(
    data_dir: str | None, split: str, run_config: Path | None
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(images, labels, source, kind) from CIFAR-10 or a folder of class folders.

    The source is --data-dir, else $CIFAR10_DIR, else the run config's data.path.
    """
    source = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if source is None and run_config is not None:
        source = load_config(run_config).data.path
    if source is not None:
        source = os.path.abspath(Path(source).expanduser())
    if source is not None and not _is_cifar_source(Path(source)):
        images, labels = data_lib.load_image_folder(source, split)
        return images, labels, str(source), "image_folder"
    if split not in CIFAR_SPLITS:
        raise EvaluationError(
            f"--split {split}: CIFAR-10 has the splits {', '.join(CIFAR_SPLITS)} only"
        )
    (x_train, y_train), (x_test, y_test) = data_lib.load_cifar10(source)
    images, labels = (x_test, y_test) if split == "test" else (x_train, y_train)
    return images, labels, str(source or "keras.datasets.cifar10"), "cifar10"


def logits_in_batches(
    model: keras.Model,
    dataset: tf.data.Dataset,
    view: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> tuple[np.ndarray, float]:
    """(logits float32, seconds): a plain loop of model(batch, training=False), as a user would.

    With a view, each batch is transformed by it first (test-time augmentation).
    """
    outputs = []
    started = time.perf_counter()
    for images, _ in dataset:
        if view is not None:
            images = view(images)
        outputs.append(np.asarray(model(images, training=False), dtype=np.float32))
    return np.concatenate(outputs), time.perf_counter() - started


# ---------------------------------------------------------------- the whole evaluation


def run_evaluation(
    checkpoint: str | os.PathLike,
    *,
    data_dir: str | None = None,
    split: str = "test",
    normalization: str | None = None,
    output_dir: str | os.PathLike | None = None,
    batch_size: int = 500,
    tta: str = "none",
) -> dict:
    """Evaluate a checkpoint, write report.json, report.md and the figures; return the report."""
    from resnet_tf.runs import plots  # matplotlib only when a report is drawn

    if batch_size <= 0:
        raise EvaluationError(f"--batch-size must be positive, found {batch_size}")
    if tta not in TTA_CHOICES:
        raise EvaluationError(f"--tta must be one of {', '.join(TTA_CHOICES)}, found {tta!r}")
    checkpoint_path, run_config = resolve_checkpoint(checkpoint)
    normalization = resolve_normalization(run_config, normalization, checkpoint_path)
    model = load_checkpoint(checkpoint_path)
    images, labels, source, kind = load_images(data_dir, split, run_config)
    if output_dir is None:
        base = run_config.parent if run_config is not None else checkpoint_path.parent
        output_dir = base / "eval"
    output_dir = Path(output_dir)

    dataset = data_lib.make_eval_dataset(
        images, labels, batch_size=batch_size, normalization=normalization
    )
    logits, seconds = logits_in_batches(model, dataset)
    labels = labels.astype(np.int64)
    predictions = logits.argmax(axis=1)
    class_names = list(data_lib.CLASS_NAMES)
    matrix = confusion_matrix(labels, predictions, len(class_names))
    report = {
        "checkpoint": str(checkpoint_path),
        "run_config": str(run_config) if run_config else None,
        "data": {"source": source, "kind": kind, "split": split},
        "normalization": normalization,
        "normalization_from": "run config" if run_config else "--normalization",
        "images": int(len(labels)),
        "batch_size": batch_size,
        **summary_metrics(logits, labels),
        "ece_bins": ECE_BINS,
        "seconds": round(seconds, 3),
        "images_per_s": round(len(labels) / seconds, 1),
        "per_class": per_class_metrics(matrix, class_names),
        "most_confused": most_confused_pairs(matrix, class_names),
        "class_names": class_names,
        "confusion_matrix": matrix.tolist(),
        "tta": None,
    }
    if tta != "none":
        averaged, tta_seconds = np.zeros_like(logits), 0.0
        for weight, view in tta_views(tta):
            view_logits, view_seconds = (
                (logits, seconds) if view is None else logits_in_batches(model, dataset, view)
            )
            averaged += weight * view_logits
            tta_seconds += view_seconds
        report["tta"] = {
            "name": tta,
            "method": TTA_METHODS[tta],
            **summary_metrics(averaged, labels),
            "images_per_s": round(len(labels) / tta_seconds, 1),
        }

    confidence = softmax(logits).max(axis=1)
    mistakes = np.flatnonzero(predictions != labels)
    mistakes = mistakes[np.argsort(-confidence[mistakes], kind="stable")][:MISTAKES_SHOWN]
    report["confident_mistakes"] = [
        {
            "index": int(i),
            "true": class_names[labels[i]],
            "predicted": class_names[predictions[i]],
            "confidence": float(confidence[i]),
        }
        for i in mistakes
    ]
    figures = {
        "confusion_matrix": "confusion_matrix.png",
        "per_class_accuracy": "per_class_accuracy.png",
        "confident_mistakes": "confident_mistakes.png",
    }
    title = f"{checkpoint_path.name} on {kind} {split} ({len(labels):,} images)"
    plots.plot_confusion_matrix(
        matrix, class_names, output_dir / figures["confusion_matrix"], title
    )
    plots.plot_per_class_accuracy(
        report["per_class"],
        report["top1_accuracy"],
        output_dir / figures["per_class_accuracy"],
        title,
    )
    plots.plot_confident_mistakes(
        images[mistakes],
        [class_names[labels[i]] for i in mistakes],
        [class_names[predictions[i]] for i in mistakes],
        confidence[mistakes],
        output_dir / figures["confident_mistakes"],
        title,
    )
    report["figures"] = figures
    report["output_dir"] = str(output_dir)
    write_json(output_dir / "report.json", report)
    atomic_write_text(output_dir / "report.md", format_markdown(report))
    return report


# ---------------------------------------------------------------- text


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2%}"


def format_summary(report: dict) -> str:
    """The few lines printed to the terminal."""
    lines = [
        f"{report['checkpoint']} on {report['data']['kind']} {report['data']['split']}: "
        f"{report['images']:,} images, {report['images_per_s']:,.0f} images/s "
        f"(normalization {report['normalization']})",
        f"  top-1 {_pct(report['top1_accuracy'])}  top-5 {_pct(report['top5_accuracy'])}  "
        f"loss {report['mean_loss']:.4f}  ECE {report['ece']:.4f}",
    ]
    if report["tta"]:
        tta = report["tta"]
        lines.append(
            f"  with {tta['name']} TTA: top-1 {_pct(tta['top1_accuracy'])}  "
            f"top-5 {_pct(tta['top5_accuracy'])}  loss {tta['mean_loss']:.4f}  "
            f"ECE {tta['ece']:.4f}"
        )
    lines.append(f"  report: {Path(report['output_dir']) / 'report.md'} (+ report.json, figures)")
    return "\n".join(lines)


def format_markdown(report: dict) -> str:
    """report.md: the same numbers as report.json, for people."""
    data = report["data"]
    lines = [
        f"# Evaluation of `{report['checkpoint']}`",
        "",
        f"- data: {data['kind']} `{data['source']}`, split `{data['split']}`, "
        f"{report['images']:,} images",
        f"- normalization: {report['normalization']} (from {report['normalization_from']})",
        f"- speed: {report['images_per_s']:,.1f} images/s "
        f"({report['seconds']:.2f} s, batch size {report['batch_size']})",
        "",
        "| metric | without TTA |"
        + (f" with {report['tta']['name']} TTA |" if report["tta"] else ""),
        "|---|---|" + ("---|" if report["tta"] else ""),
    ]
    for key, label, as_pct in (
        ("top1_accuracy", "top-1 accuracy", True),
        ("top5_accuracy", "top-5 accuracy", True),
        ("mean_loss", "mean loss", False),
        ("ece", f"ECE ({report['ece_bins']} bins)", False),
    ):
        values = [report[key]] + ([report["tta"][key]] if report["tta"] else [])
        cells = [_pct(v) if as_pct else f"{v:.4f}" for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Per class",
        "",
        "Accuracy is the share of the class's images classified correctly (= recall); "
        "precision is n/a for a class the model never predicted.",
        "",
        "| class | images | accuracy | precision | recall |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["per_class"]:
        lines.append(
            f"| {row['class']} | {row['images']} | {_pct(row['accuracy'])} | "
            f"{_pct(row['precision'])} | {_pct(row['recall'])} |"
        )
    lines += ["", "## Most confused (true -> predicted)", ""]
    if report["most_confused"]:
        lines += ["| true | predicted | images | share of true class |", "|---|---|---:|---:|"]
        for pair in report["most_confused"]:
            lines.append(
                f"| {pair['true']} | {pair['predicted']} | {pair['count']} | "
                f"{_pct(pair['share_of_true_class'])} |"
            )
    else:
        lines.append("No misclassified images.")
    figures = report.get("figures", {})
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{name}]({file})" for name, file in figures.items()]
    return "\n".join(lines) + "\n"
