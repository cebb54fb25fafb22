"""Compare finished runs (e.g. one recipe over several seeds): a markdown table and a plot.

python summarize.py outputs/fast-seed0 outputs/fast-seed1 outputs/fast-seed2 \
    --plot docs/fast_recipe.png

The table has one row per run (seed, epochs, training time, whole-command wall time, test
accuracy, the per-epoch validation curve) and the median and range of each figure; the plot
shows validation accuracy against training minutes, which is what time-to-accuracy means. A run
that held no validation images out (data.val_size 0) shows its training accuracy instead, marked
as such: the accuracy on the epoch's augmented batches, as the weights moved.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from resnet_tf.errors import ResnetTfError, RunDirError
from resnet_tf.runs.history import read_history
from resnet_tf.runs.records import RunMetrics, read_config, read_metrics
from resnet_tf.runs.run_dir import RunPaths


@dataclass
class FinishedRun:
    name: str
    seed: int
    rows: list[dict[str, float]]
    metrics: RunMetrics

    @property
    def minutes(self) -> list[float]:
        """Cumulative training minutes at the end of each epoch."""
        total, result = 0.0, []
        for row in self.rows:
            total += row["epoch_seconds"]
            result.append(total / 60)
        return result

    @property
    def has_validation(self) -> bool:
        return any(not math.isnan(row["val_accuracy"]) for row in self.rows)

    @property
    def curve(self) -> list[float]:
        """Validation accuracy per epoch, or training accuracy for a run without validation."""
        key = "val_accuracy" if self.has_validation else "accuracy"
        return [row[key] for row in self.rows]


def load_run(folder: str | Path) -> FinishedRun:
    paths = RunPaths(Path(folder))
    metrics = read_metrics(paths)
    rows = read_history(paths.history)
    return FinishedRun(paths.root.name, read_config(paths).runtime.seed, rows, metrics)


def _median_and_range(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    median = statistics.median(values)
    if len(values) == 1:
        return fmt.format(median)
    return f"{fmt.format(median)} ({fmt.format(min(values))} - {fmt.format(max(values))})"


def _mean_and_std(values: list[float], fmt: str) -> str:
    """Mean +- sample standard deviation (n - 1), what README result tables quote."""
    if len(values) < 2:
        return "n/a"
    return f"{fmt.format(statistics.mean(values))} +- {fmt.format(statistics.stdev(values))}"


def markdown_table(runs: list[FinishedRun]) -> str:
    lines = [
        "| run | seed | epochs | training | whole command | test accuracy "
        "| validation accuracy per epoch |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]

    def minutes(seconds):
        return f"{seconds / 60:.1f} min" if seconds is not None else "n/a"

    for run in runs:
        m = run.metrics
        tta = f" ({m.test_tta} TTA)" if m.test_tta not in (None, "none") else ""
        test = f"{m.test_accuracy:.2%}{tta}" if m.is_scored else "n/a"
        curve = ", ".join(f"{acc:.1%}" for acc in run.curve)
        if not run.has_validation:
            curve = f"(no validation split; training accuracy) {curve}"
        lines.append(
            f"| {run.name} | {run.seed} | {m.epochs_completed} | {minutes(m.train_seconds)} "
            f"| {minutes(m.command_wall_seconds)} | {test} | {curve} |"
        )
    if len(runs) > 1:
        tests = [r.metrics.test_accuracy for r in runs if r.metrics.is_scored]
        walls = [
            r.metrics.command_wall_seconds / 60
            for r in runs
            if r.metrics.command_wall_seconds is not None
        ]
        trains = [r.metrics.train_seconds / 60 for r in runs]
        percents = [t * 100 for t in tests]
        lines.append(
            f"| **mean +- std** | | | {_mean_and_std(trains, '{:.1f} min')} "
            f"| {_mean_and_std(walls, '{:.1f} min')} "
            f"| {_mean_and_std(percents, '{:.2f} %')} | |"
        )
        lines.append(
            f"| **median (range)** | | | {_median_and_range(trains, '{:.1f} min')} "
            f"| {_median_and_range(walls, '{:.1f} min')} "
            f"| {_median_and_range(percents, '{:.2f} %')} | |"
        )
    return "\n".join(lines)


def write_summary(runs: list[FinishedRun], table: Path, plot: Path, title: str) -> None:
    """The table as a markdown file, and the curves of all runs in one plot."""
    from resnet_tf.runs.files import atomic_write_text
    from resnet_tf.runs.plots import plot_time_to_accuracy

    table.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(table, f"# {title}\n\n{markdown_table(runs)}\n")
    plot_time_to_accuracy(runs, plot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compare finished runs: table and plot.")
    parser.add_argument("runs", nargs="+", help="run folders")
    parser.add_argument("--plot", help="write validation accuracy vs training minutes here (PNG)")
    parser.add_argument("--target", type=float, default=0.90, help="accuracy line on the plot")
    args = parser.parse_args(argv)
    from resnet_tf.runs.plots import check_plot_path, plot_time_to_accuracy

    try:
        if not 0 < args.target <= 1:
            raise RunDirError(f"--target: expected an accuracy in (0, 1], found {args.target}")
        plot = check_plot_path(Path(args.plot)) if args.plot else None
        runs = [load_run(folder) for folder in args.runs]
    except ResnetTfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(markdown_table(runs))
    if plot is not None:
        try:
            plot_time_to_accuracy(runs, plot, args.target)
        except (ResnetTfError, OSError) as exc:
            print(f"error: {plot}: cannot write the plot ({exc})", file=sys.stderr)
            return 1
        print(f"plot: {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
