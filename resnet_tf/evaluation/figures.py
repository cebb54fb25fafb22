"""The evaluation report's figures, drawn from the report's own numbers.

Matplotlib's object API (`Figure`, no pyplot), so importing or drawing never sets a global
backend or keeps figures alive in pyplot's registry; each file is written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from resnet_tf.runs.files import atomic_save

FIGURE_FILES = {
    "confusion_matrix": "confusion_matrix.png",
    "per_class_accuracy": "per_class_accuracy.png",
    "confident_mistakes": "confident_mistakes.png",
}


def draw_report_figures(report: dict, images: np.ndarray, output_dir: Path) -> None:
    """The three figures of FIGURE_FILES; `images` are the evaluated images (uint8 NHWC)."""
    data = report["data"]
    title = (
        f"{Path(report['checkpoint']).name} on {data['kind']} {data['split']} "
        f"({report['images']:,} images)"
    )
    plot_confusion_matrix(
        np.asarray(report["confusion_matrix"]),
        report["class_names"],
        output_dir / FIGURE_FILES["confusion_matrix"],
        title,
    )
    plot_per_class_accuracy(
        report["per_class"],
        report["top1_accuracy"],
        output_dir / FIGURE_FILES["per_class_accuracy"],
        title,
    )
    mistakes = report["confident_mistakes"]
    plot_confident_mistakes(
        images[np.asarray([m["index"] for m in mistakes], dtype=np.int64)],
        [m["true"] for m in mistakes],
        [m["predicted"] for m in mistakes],
        np.asarray([m["confidence"] for m in mistakes], dtype=np.float64),
        output_dir / FIGURE_FILES["confident_mistakes"],
        title,
    )


def _save(fig: Figure, path: Path) -> None:
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100))


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: list[str], path: Path, title: str = ""
) -> None:
    """Counts in the cells, colours by row share, so rare and common classes read alike."""
    matrix = np.asarray(matrix)
    row_totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(
        matrix, row_totals, out=np.zeros(matrix.shape, dtype=float), where=row_totals > 0
    )
    n = len(class_names)
    fig = Figure(figsize=(8.5, 7.5))
    ax = fig.subplots()
    shown = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    for row in range(n):
        for col in range(n):
            ax.text(
                col,
                row,
                str(matrix[row, col]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[row, col] > 0.5 else "black",
            )
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "Confusion matrix")
    fig.tight_layout()
    _save(fig, path)


def plot_per_class_accuracy(
    per_class: list[dict], overall: float, path: Path, title: str = ""
) -> None:
    """One bar per class present (share of its images classified correctly) and the overall line."""
    names = [row["class"] for row in per_class]
    values = [row["accuracy"] for row in per_class]
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    bars = ax.bar(range(len(names)), values, color="tab:blue")
    for bar, value in zip(bars, values):
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            value + 0.01,
            f"{value:.0%}",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.axhline(overall, color="tab:red", linestyle="--")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy (recall)")
    heading = f"top-1 overall {overall:.2%} (dashed line)"
    ax.set_title(f"{title}\n{heading}" if title else f"Per-class accuracy, {heading}")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def plot_confident_mistakes(
    images: np.ndarray,
    true_names: list[str],
    predicted_names: list[str],
    confidences: np.ndarray,
    path: Path,
    title: str = "",
    columns: int = 6,
) -> None:
    """A grid of misclassified images, most confident first, titled true / predicted (conf.)."""
    count = len(images)
    rows = max(1, math.ceil(count / columns))
    fig = Figure(figsize=(2.0 * columns, 2.3 * rows + 0.5))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, true, predicted, confidence in zip(
        axes.flat, images, true_names, predicted_names, confidences
    ):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(f"true: {true}\npred: {predicted} ({confidence:.0%})", fontsize=9)
    if count == 0:
        axes[0, 0].text(0, 0.5, "no misclassified images", fontsize=12)
    fig.suptitle(f"Most confident mistakes - {title}" if title else "Most confident mistakes")
    fig.tight_layout()
    _save(fig, path)
