"""What a run ends with: its metrics.json (from the history rows) and the lines it prints."""

from __future__ import annotations

import math

from resnet_tf import training
from resnet_tf.config import Config
from resnet_tf.errors import DiskFullError, TrainingError
from resnet_tf.runs.records import RunMetrics, write_metrics
from resnet_tf.runs.run_dir import RunPaths
from resnet_tf.training import TrainResult


def write_run_metrics(paths: RunPaths, metrics: RunMetrics) -> None:
    """metrics.json; a full disk is one line (the epochs are saved: resume writes the file)."""
    try:
        write_metrics(paths, metrics)
    except DiskFullError as error:
        advice = training.disk_full_advice(error, paths, metrics.epochs_completed)
        raise TrainingError(advice) from None


def metrics_of(config: Config, result: TrainResult) -> RunMetrics:
    rows = result.rows
    scored = [r for r in rows if math.isfinite(r["val_accuracy"])]
    best = max(scored, key=lambda r: r["val_accuracy"]) if scored else None
    return RunMetrics(
        status=result.status,
        model=config.model.name,
        epochs_completed=len(rows),
        epochs_planned=config.train.epochs,
        best_val_accuracy=best["val_accuracy"] if best else None,
        best_epoch=best["epoch"] if best else None,
        final_val_accuracy=scored[-1]["val_accuracy"] if scored else None,
        final_train_accuracy=rows[-1]["accuracy"] if rows else None,
        # Summed over the epochs, so it stays right across resumed sessions.
        train_seconds=round(sum(r["epoch_seconds"] for r in rows), 1),
        session_wall_seconds=round(result.wall_seconds, 1),
        train_images_per_s=(
            round(sum(r["images_per_s"] for r in rows) / len(rows), 1) if rows else None
        ),
    )


def print_outcome(paths: RunPaths, metrics: RunMetrics, result: TrainResult) -> None:
    def pct(value):
        return f"{value:.2%}" if isinstance(value, float) else "n/a"

    lines = [
        f"{metrics.status}: {metrics.epochs_completed}/{metrics.epochs_planned} "
        f"epochs, {metrics.train_seconds:.0f} s of training "
        f"(this session {result.wall_seconds:.0f} s wall)",
        f"  validation accuracy: best {pct(metrics.best_val_accuracy)} "
        f"(epoch {metrics.best_epoch}), final {pct(metrics.final_val_accuracy)}"
        if metrics.best_epoch is not None
        else "  no epoch completed yet"
        if metrics.epochs_completed == 0
        else "  no validation split (data.val_size 0): best.keras is the last epoch",
    ]
    if metrics.is_scored:
        lines.append(
            f"  test accuracy of best.keras: {pct(metrics.test_accuracy)} "
            f"on {metrics.test_images:,} images" + tta_note(metrics)
        )
    lines.append(f"  run folder: {paths.root}  (plot: {paths.plot})")
    say("\n".join(lines))


def tta_note(metrics: RunMetrics) -> str:
    if metrics.test_tta == "none":
        return ""
    images = metrics.test_tta_images
    if images is None or images == metrics.test_images:
        return f" (with {metrics.test_tta} TTA)"
    return f" (with {metrics.test_tta} TTA on the {images:,} least confident)"


def say(text: str) -> None:
    """A line for the user, at once (runs are long and often logged to files)."""
    print(text, flush=True)
