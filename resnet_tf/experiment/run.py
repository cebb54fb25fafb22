"""One training run from start to finish: config -> data -> model -> training -> run folder ->
test score.

`start` makes a new run, `resume` continues one. Each sets up the process once, loads the data,
and hands the run to `_run`, which trains, writes metrics.json and scores best.keras on the test
set through the evaluation stage.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from resnet_tf import data as data_lib
from resnet_tf import evaluation, training
from resnet_tf.config import Config, load_config
from resnet_tf.errors import RunInterrupted, TrainingError
from resnet_tf.experiment.outcome import metrics_of, print_outcome, say, write_run_metrics
from resnet_tf.models.summary import count_trainable_params, describe_model
from resnet_tf.runs.records import (
    finished_metrics,
    read_config,
    write_config,
)
from resnet_tf.runs.run_dir import (
    RunPaths,
    check_run_name,
    copy_resume_files,
    create_run_dir,
    default_run_name,
    open_run_dir,
    remove_temp_files,
)
from resnet_tf.startup import device_line
from resnet_tf.training import ImageClassificationTask, compute_line, precision_warning
from resnet_tf.training.distribute import Distribution

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def resolve_config(
    config_path: str | None,
    overrides: list[str],
    data_dir: str | None = None,
    output_dir: str | None = None,
    name: str | None = None,
) -> Config:
    """The config file with `--set` overrides and the command line's path options applied; a
    run name that could not be a folder's is refused here, before any work."""
    config = load_config(config_path, overrides)
    if data_dir is not None:
        config.data.path = data_dir
    if output_dir is not None:
        config.output.root = output_dir
    if name is not None:
        config.output.name = name
    if config.output.name is not None:
        check_run_name(config.output.name)
    return config


def pin_data_path(config: Config) -> Config:
    """The config a new run records: `data.path` as an absolute path, so that resume and
    evaluation find the data from any working directory."""
    if config.data.path is None:
        return config
    path = os.path.abspath(Path(config.data.path).expanduser())
    return dataclasses.replace(config, data=dataclasses.replace(config.data, path=path))


def dry_run(config: Config) -> str:
    """The resolved config and the model summary, without touching data or disk."""
    training.set_up(config, distributed=False)
    config, _ = training.pin_precision(config)
    model = ImageClassificationTask(config).build_model()
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
    if config.output.name is not None:
        check_run_name(config.output.name)  # before the data loads, which can take minutes
    config = training.pin_saved_models(config)  # absolute paths, the teacher's checksum
    config = pin_data_path(config)
    dist, arrays = _set_up_and_load(config)  # bad data fails before a folder exists
    config, precision_note = training.pin_precision(config)
    ImageClassificationTask(config).check_saved_models()  # and so do unfitting saved models
    if not dist.is_chief:
        return _run_as_worker(config, None, arrays, dist, callbacks, verbose, started)
    name = config.output.name or default_run_name(config_path, config.model.name)
    paths = create_run_dir(config.output.root, name, explicit_name=config.output.name is not None)
    config = dataclasses.replace(
        config, output=dataclasses.replace(config.output, name=paths.root.name)
    )
    command = shlex.join(["python", *(argv if argv is not None else sys.argv)])
    write_config(paths, config, command)
    say(f"run folder: {paths.root}")
    if precision_note:
        say(precision_note)
    return _run(config, paths, arrays, callbacks, verbose, dist, started)


def resume(
    run_dir: str,
    data_dir: str | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | None = None,
    started: float | None = None,
) -> dict:
    """Continue a run from its last checkpoint (an epoch's end or inside an epoch), with its
    own config.

    A finished run (every epoch trained and best.keras scored) is left as it is: scoring it
    again would only rewrite metrics.json and lose the original timings.
    """
    started = time.time() if started is None else started
    paths = open_run_dir(run_dir)
    finished = finished_metrics(paths)
    if finished is not None:
        say(
            f"{paths.root} is already finished ({finished.epochs_completed}/"
            f"{finished.epochs_planned} epochs, test accuracy {finished.test_accuracy:.2%}); "
            "nothing to resume"
        )
        return finished.to_dict()
    config = read_config(paths)
    if data_dir is not None:
        config.data.path = data_dir
    training.check_teacher_unchanged(config)
    dist, arrays = _set_up_and_load(config)
    if not dist.is_chief:
        return _run_as_worker(config, paths, arrays, dist, callbacks, verbose, started)
    remove_temp_files(paths)
    say(f"resuming run folder: {paths.root}")
    return _run(config, paths, arrays, callbacks, verbose, dist, started)


def _set_up_and_load(config: Config) -> tuple[Distribution, Arrays]:
    """The process's runtime (once), then the data set."""
    dist = training.set_up(config)
    return dist, data_lib.load_cifar10(config.data.path)


def _run_as_worker(
    config: Config,
    run: RunPaths | None,
    arrays: Arrays,
    dist: Distribution,
    callbacks,
    verbose,
    started: float,
) -> dict:
    """A non-chief worker: the same training, written to a private folder deleted at the end.

    To resume, it starts from a copy of the run folder's resume files, so the run folder must
    be visible to every worker (a shared file system).
    """
    say(f"worker {dist.worker_index} of {dist.workers}: the chief writes the run folder")
    tmp = Path(tempfile.mkdtemp(prefix=f"resnet_tf_worker{dist.worker_index}_"))
    try:
        paths = create_run_dir(tmp, "run", explicit_name=True)
        if run is not None:
            copy_resume_files(run, paths)
        return _run(config, paths, arrays, callbacks, verbose, dist, started)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(
    config: Config,
    paths: RunPaths,
    arrays: Arrays,
    callbacks,
    verbose,
    dist: Distribution,
    started: float,
) -> dict:
    (x, y), (x_test, y_test) = arrays
    task = ImageClassificationTask(config)
    splits = task.make_splits(x, y)
    steps_per_epoch = task.steps_per_epoch(splits)
    with dist.scope():
        model = task.build_model(splits)
        task.compile_model(model, task.updates_per_epoch(splits))
    say(device_line("training"))
    say(compute_line(config.runtime.mixed_precision))
    if warning := precision_warning(config.runtime.mixed_precision):
        say(warning)
    say(
        f"{config.model.name}: {count_trainable_params(model):,} parameters; "
        f"{len(splits.x_train):,} training / {len(splits.x_val):,} validation images; "
        f"{config.train.epochs} epochs of {steps_per_epoch} steps"
        + _accumulation_note(config.train)
    )
    if task.teacher is not None:
        distill = config.train.distill
        say(
            f"distilling from {distill.teacher}: {task.teacher.name}, "
            f"{count_trainable_params(task.teacher):,} parameters "
            f"(temperature {distill.temperature:g}, "
            f"alpha {distill.alpha:g})"
        )
    if dist.strategy is not None:
        say(f"distribution: {dist.describe(config.train.batch_size)}")
    result = training.fit(
        task, model, splits, paths, callbacks=callbacks, verbose=verbose, dist=dist
    )
    if result.start_step:
        say(
            f"resumed in epoch {result.start_epoch + 1} after step {result.start_step} of "
            f"{task.updates_per_epoch(splits)}"
        )
    elif result.start_epoch:
        say(f"resumed after epoch {result.start_epoch}")

    metrics = metrics_of(config, result)
    if not dist.is_chief:
        return metrics.to_dict()
    # Written before the test score too, so that a failure there cannot lose the training
    # record; "trained" until the test score is in it, for only then is the run completed.
    scoring = result.status == "completed" and paths.best.exists()
    if scoring:
        metrics.status = "trained"
    metrics.command_wall_seconds = round(time.time() - started, 1)
    write_run_metrics(paths, metrics)
    if scoring:
        test_started = time.perf_counter()
        test = _score(config, task, paths, x_test, y_test)
        metrics.status = "completed"
        metrics.test_accuracy = test["accuracy"]
        metrics.test_loss = test["loss"]
        metrics.test_tta = config.train.test_tta
        metrics.test_tta_images = test["tta_images"]
        metrics.test_images = test["images"]
        metrics.test_seconds = round(time.perf_counter() - test_started, 2)
    # The whole command: start-up, data loading, training and the test score.
    metrics.command_wall_seconds = round(time.time() - started, 1)
    write_run_metrics(paths, metrics)
    print_outcome(paths, metrics, result)
    if result.interruption is not None:
        stop = result.interruption
        raise RunInterrupted(stop.signal_name, stop.exit_code, stop.where, str(paths.root))
    if result.status == "diverged":
        raise TrainingError(
            f"the loss became NaN/inf in epoch {result.diverged_at}; stopped. The checkpoints of "
            f"the last good epoch are in {paths.checkpoints} (try a lower train.optimizer.lr or "
            f"a warm-up)"
        )
    return metrics.to_dict()


def _score(config: Config, task, paths: RunPaths, x_test, y_test) -> dict:
    """best.keras's test score; Ctrl-C or SIGTERM meanwhile ends the command in one line,
    leaving metrics.json "trained" for --resume to score."""
    where = "while scoring best.keras on the test set"
    signals = (signal.SIGTERM, signal.SIGINT)
    with training.stop_signals_exit(where, str(paths.root), signals):
        return evaluation.score_checkpoint(
            paths.best,
            x_test,
            y_test,
            normalization=config.data.normalization,
            tta=config.train.test_tta,
            batch_size=task.eval_batch_size,
            tta_fraction=config.train.test_tta_fraction,
        )


def _accumulation_note(train) -> str:
    if train.accumulation_steps == 1:
        return ""
    return (
        f", a weight update every {train.accumulation_steps} (effective batch "
        f"{train.accumulation_steps * train.batch_size:,})"
    )
