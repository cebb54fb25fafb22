"""The run folder's figures: a run's accuracy/loss curves, and several runs against time.

Matplotlib's object API (`Figure`, no pyplot), so importing or drawing never sets a global
backend and needs no screen; each file is written atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from matplotlib.figure import Figure

from resnet_tf.errors import RunDirError
from resnet_tf.runs.files import atomic_save, output_folder_problem


def plot_accuracy_loss(rows: list[dict[str, float]], path: Path, title: str = "") -> None:
    """Two panels, accuracy and loss per epoch, train vs validation (as the tutorial's
    plot_acc_loss, but to a file, so it can be redrawn after every epoch and watched)."""
    epochs = [row["epoch"] for row in rows]
    # data.val_size 0: the history's validation columns are NaN, so there is nothing to draw.
    has_validation = any(not math.isnan(row["val_accuracy"]) for row in rows)
    fig = Figure(figsize=(11, 4.2))
    ax_acc, ax_loss = fig.subplots(1, 2)
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


# ---------------------------------------------------------------- comparing runs


def accuracy_axis_label(runs: list) -> str:
    """What the curves are: validation accuracy, training accuracy (runs without a validation
    split), or both kinds, the training ones dashed."""
    kinds = {run.has_validation for run in runs}
    if kinds == {False}:
        return "training accuracy (stars: test)"
    if kinds == {True}:
        return "validation accuracy (stars: test)"
    return "validation accuracy (dashed: training; stars: test)"


def plot_time_to_accuracy(runs: list, path: Path, target: float = 0.90) -> None:
    """Validation accuracy after each epoch against cumulative training minutes, one line per
    run (resnet_tf.runs.summarize.FinishedRun), with each run's final test accuracy as a star. Runs
    without a validation split show their training accuracy, dashed."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for run in runs:
        style, label = ("o-", run.name) if run.has_validation else ("o--", f"{run.name} (train)")
        (line,) = ax.plot(run.minutes, run.curve, style, ms=3, label=label)
        test = run.metrics.test_accuracy
        if test is not None and run.minutes:
            ax.plot(run.minutes[-1], test, "*", ms=11, color=line.get_color())
    ax.axhline(target, color="grey", ls="--", lw=1)
    ax.text(0.01, target, f" {target:.0%}", va="bottom", transform=ax.get_yaxis_transform())
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel(accuracy_axis_label(runs))
    ax.set_ylim(max(0.0, min(0.5, target - 0.4)), 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100))


def check_plot_path(path: Path) -> Path:
    """`path` if a figure can be written there (an image file name matplotlib knows, in a
    folder that exists or can be made, and is writable); else a RunDirError, before any work."""
    if path.is_dir():
        raise RunDirError(f"--plot {path}: is a folder; expected an image file such as runs.png")
    formats = Figure().canvas.get_supported_filetypes()
    if path.suffix.lower().lstrip(".") not in formats:
        raise RunDirError(
            f"--plot {path}: expected a file name ending in .png (or "
            f"{', '.join('.' + f for f in sorted(formats) if f != 'png')}), found "
            f"{path.suffix or 'no suffix'}"
        )
    folder = Path(os.path.abspath(path)).parent
    problem = output_folder_problem(folder)
    if problem is not None:
        raise RunDirError(f"--plot {path}: {folder}: {problem}")
    return path
