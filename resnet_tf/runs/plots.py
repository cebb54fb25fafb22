"""Matplotlib figures, always written to files (the Agg backend needs no screen)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from resnet_tf.runs.files import atomic_save  # noqa: E402


def plot_accuracy_loss(rows: list[dict[str, float]], path: Path, title: str = "") -> None:
    """Two panels, accuracy and loss per epoch, train vs validation (as the tutorial's
    plot_acc_loss, but to a file, so it can be redrawn after every epoch and watched)."""
    epochs = [row["epoch"] for row in rows]
    # data.val_size 0: the history's validation columns are NaN, so there is nothing to draw.
    has_validation = any(not math.isnan(row["val_accuracy"]) for row in rows)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label in ((ax_acc, "accuracy", "Accuracy"), (ax_loss, "loss", "Loss")):
        ax.plot(epochs, [row[key] for row in rows], "o-", ms=3, label="train")
        if has_validation:
            ax.plot(epochs, [row[f"val_{key}"] for row in rows], "s-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label.lower())
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
        if epochs:
            ax.set_xlim(0.5, max(epochs) + 0.5)
            ax.xaxis.get_major_locator().set_params(integer=True)
    if has_validation:
        best = max(
            (row for row in rows if not math.isnan(row["val_accuracy"])),
            key=lambda row: row["val_accuracy"],
        )
        ax_acc.annotate(
            f"best {best['val_accuracy']:.2%} (epoch {best['epoch']})",
            xy=(best["epoch"], best["val_accuracy"]),
            xytext=(0.35, 0.08),
            textcoords="axes fraction",
            arrowprops={"arrowstyle": "->", "alpha": 0.5},
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


# ---------------------------------------------------------------- evaluation figures


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
    fig, ax = plt.subplots(figsize=(8.5, 7.5))
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
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


def plot_per_class_accuracy(
    per_class: list[dict], overall: float, path: Path, title: str = ""
) -> None:
    """One bar per class present (share of its images classified correctly) and the overall line."""
    names = [row["class"] for row in per_class]
    values = [row["accuracy"] for row in per_class]
    fig, ax = plt.subplots(figsize=(9, 4.5))
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
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


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
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.0 * columns, 2.3 * rows + 0.5), squeeze=False
    )
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
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


# ---------------------------------------------------------------- comparing runs


def plot_time_to_accuracy(runs: list, path: Path, target: float = 0.90) -> None:
    """Validation accuracy after each epoch against cumulative training minutes, one line per
    run (resnet_tf.runs.summarize.RunSummary), with each run's final test accuracy as a star. Runs
    without a validation split show their training accuracy, dashed."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        style, label = ("o-", run.name) if run.has_validation else ("o--", f"{run.name} (train)")
        (line,) = ax.plot(run.minutes, run.curve, style, ms=3, label=label)
        test = run.metrics.test_accuracy
        if test is not None and run.minutes:
            ax.plot(run.minutes[-1], test, "*", ms=11, color=line.get_color())
    ax.axhline(target, color="grey", ls="--", lw=1)
    ax.text(0.01, target, f" {target:.0%}", va="bottom", transform=ax.get_yaxis_transform())
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel("validation accuracy (dashed: training; stars: test)")
    ax.set_ylim(max(0.0, min(0.5, target - 0.4)), 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
