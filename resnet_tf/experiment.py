"""One training run from start to finish: config -> data + model -> fit -> run folder -> test score.

This is what `train.py` calls; it prints what a user needs to follow the run and returns the
metrics it wrote, so tests and notebooks can call it the same way.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import yaml

from resnet_tf import data as data_lib
from resnet_tf.training import distribute
from resnet_tf.training import loop as training
from resnet_tf.config import Config, load_config
from resnet_tf.evaluation import score_checkpoint
from resnet_tf.models.summary import describe_model
from resnet_tf.runs.files import atomic_write_text, write_json
from resnet_tf.runs.run_dir import (
    RunPaths,
    create_run_dir,
    default_run_name,
    open_run_dir,
    remove_temp_files,
)
from resnet_tf.errors import TrainingError


def resolve_config(
    config_path: str | None,
    overrides: list[str],
    data_dir: str | None = None,
    output_dir: str | None = None,
    name: str | None = None,
) -> Config:
    config = load_config(config_path, overrides)
    if data_dir is not None:
        config.data.path = data_dir
    if output_dir is not None:
        config.output.root = output_dir
    if name is not None:
        config.output.name = name
    return config


def dry_run(config: Config) -> str:
    """The resolved config and the model summary, without touching data or disk."""
    training.set_up_runtime(config)
    model = training.new_model(config)
    return f"# resolved config\n{config.to_yaml()}\n{describe_model(model)}"


def start(
    config: Config,
    config_path: str | None,
    argv: list[str] | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | None = None,
    started: float | None = None,
) -> dict:
    """A new run in a new run folder; `started` (time.time()) is when the command began."""
    started = time.time() if started is None else started
    training.set_up_threads(config)
    dist = distribute.set_up(config.runtime.distribution, config.train.batch_size)
    training.set_up_runtime(config)
    arrays = data_lib.load_cifar10(config.data.path)  # bad data fails before a folder exists
    if not dist.is_chief:
        return _train_as_worker(config, None, arrays, dist, callbacks, verbose, started)
    name = config.output.name or default_run_name(config_path, config.model.name)
    paths = create_run_dir(config.output.root, name, explicit_name=config.output.name is not None)
    config = dataclasses.replace(
        config, output=dataclasses.replace(config.output, name=paths.root.name)
    )
    command = shlex.join(["python", *(argv if argv is not None else sys.argv)])
    atomic_write_text(
        paths.config, yaml.safe_dump({"command": command}, width=10**6) + config.to_yaml()
    )
    _say(f"run folder: {paths.root}")
    return _train(config, paths, arrays, callbacks, verbose, dist, started)


def resume(
    run_dir: str,
    data_dir: str | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | None = None,
    started: float | None = None,
) -> dict:
    """Continue a run from its last completed epoch, with its own config."""
    started = time.time() if started is None else started
    paths = open_run_dir(run_dir)
    config = load_config(paths.config)
    if data_dir is not None:
        config.data.path = data_dir
    training.set_up_threads(config)
    dist = distribute.set_up(config.runtime.distribution, config.train.batch_size)
    training.set_up_runtime(config)
    arrays = data_lib.load_cifar10(config.data.path)
    if not dist.is_chief:
        return _train_as_worker(config, paths, arrays, dist, callbacks, verbose, started)
    remove_temp_files(paths)
    _say(f"resuming run folder: {paths.root}")
    return _train(config, paths, arrays, callbacks, verbose, dist, started)


def _train_as_worker(
    config: Config,
    run: RunPaths | None,
    arrays,
    dist: distribute.Distribution,
    callbacks,
    verbose,
    started: float,
) -> dict:
    """A non-chief worker: the same training, written to a private folder deleted at the end.

    To resume, it starts from a copy of the run folder's last.keras and history.csv, so the run
    folder must be visible to every worker (a shared file system).
    """
    _say(f"worker {dist.worker_index} of {dist.workers}: the chief writes the run folder")
    tmp = Path(tempfile.mkdtemp(prefix=f"resnet_tf_worker{dist.worker_index}_"))
    try:
        paths = create_run_dir(tmp, "run", explicit_name=True)
        for name in ("checkpoints/last.keras", "history.csv"):
            if run is not None and (run.root / name).is_file():
                shutil.copyfile(run.root / name, paths.root / name)
        return _train(config, paths, arrays, callbacks, verbose, dist, started)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _train(
    config: Config,
    paths: RunPaths,
    arrays,
    callbacks,
    verbose,
    dist: distribute.Distribution,
    started: float,
) -> dict:
    (x, y), (x_test, y_test) = arrays
    splits = training.make_splits(config, x, y)
    spe = data_lib.steps_per_epoch(len(splits.x_train), config.train.batch_size)
    with dist.scope():
        model = training.new_model(config)
        training.adapt_to_data(model, config, splits)
        training.compile_model(model, config, spe)
    _say(
        f"{config.model.name}: {model.count_params():,} parameters; "
        f"{len(splits.x_train):,} training / {len(splits.x_val):,} validation images; "
        f"{config.train.epochs} epochs of {spe} steps"
    )
    if dist.strategy is not None:
        _say(f"distribution: {dist.describe(config.train.batch_size)}")
    result = training.fit(
        model, config, splits, paths, callbacks=callbacks, verbose=verbose, dist=dist
    )
    if result.start_epoch:
        _say(f"resumed after epoch {result.start_epoch}")

    metrics = _summarize(config, paths, result)
    if not dist.is_chief:
        return metrics
    # Written before the test score too, so that a failure there cannot lose the training record.
    metrics["command_wall_seconds"] = round(time.time() - started, 1)
    write_json(paths.metrics, metrics)
    if result.status == "completed" and paths.best.exists():
        test_started = time.perf_counter()
        test = score_checkpoint(
            paths.best,
            x_test,
            y_test,
            normalization=config.data.normalization,
            tta=config.train.test_tta,
            batch_size=max(config.train.batch_size, 256),
        )
        metrics.update(
            test_accuracy=test["accuracy"],
            test_loss=test["loss"],
            test_tta=config.train.test_tta,
            test_images=test["images"],
            test_seconds=round(time.perf_counter() - test_started, 2),
        )
    # The whole command: start-up, data loading, training and the test score.
    metrics["command_wall_seconds"] = round(time.time() - started, 1)
    write_json(paths.metrics, metrics)
    _report(paths, metrics, result)
    if result.status == "diverged":
        raise TrainingError(
            f"the loss became NaN/inf in epoch {result.diverged_at}; stopped. The checkpoints of "
            f"the last good epoch are in {paths.checkpoints} (try a lower train.optimizer.lr or "
            f"a warm-up)"
        )
    return metrics


def _summarize(config: Config, paths: RunPaths, result: training.TrainResult) -> dict:
    rows = result.rows
    scored = [r for r in rows if math.isfinite(r["val_accuracy"])]
    best = max(scored, key=lambda r: r["val_accuracy"]) if scored else None
    return {
        "status": result.status,
        "model": config.model.name,
        "epochs_completed": len(rows),
        "epochs_planned": config.train.epochs,
        "best_val_accuracy": best["val_accuracy"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "final_val_accuracy": scored[-1]["val_accuracy"] if scored else None,
        "final_train_accuracy": rows[-1]["accuracy"] if rows else None,
        # Summed over the epochs, so it stays right across resumed sessions.
        "train_seconds": round(sum(r["epoch_seconds"] for r in rows), 1),
        "session_wall_seconds": round(result.wall_seconds, 1),
        "train_images_per_s": (
            round(sum(r["images_per_s"] for r in rows) / len(rows), 1) if rows else None
        ),
    }


def _report(paths: RunPaths, metrics: dict, result: training.TrainResult) -> None:
    def pct(value):
        return f"{value:.2%}" if isinstance(value, float) else "n/a"

    lines = [
        f"{metrics['status']}: {metrics['epochs_completed']}/{metrics['epochs_planned']} "
        f"epochs, {metrics['train_seconds']:.0f} s of training "
        f"(this session {result.wall_seconds:.0f} s wall)",
        f"  validation accuracy: best {pct(metrics['best_val_accuracy'])} "
        f"(epoch {metrics['best_epoch']}), final {pct(metrics['final_val_accuracy'])}"
        if metrics["best_epoch"] is not None
        else "  no validation split (data.val_size 0): best.keras is the last epoch",
    ]
    if "test_accuracy" in metrics:
        lines.append(
            f"  test accuracy of best.keras: {pct(metrics['test_accuracy'])} "
            f"on {metrics['test_images']:,} images"
            + (f" (with {metrics['test_tta']} TTA)" if metrics["test_tta"] != "none" else "")
        )
    lines.append(f"  run folder: {paths.root}  (plot: {paths.plot})")
    if metrics["status"] == "interrupted":
        lines.append(f"  continue with: python train.py --resume {paths.root}")
    _say("\n".join(lines))


def _say(text: str) -> None:
    print(text, flush=True)
