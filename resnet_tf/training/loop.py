"""The fit loop: `model.fit()` from the run folder's last checkpoint, and exact resume.

A run is resumable from any completed epoch because everything that changes during training
lives in `checkpoints/last.keras` (weights, BN statistics, optimizer slots and its step counter,
from which the epoch and the lr schedule position follow) or in `history.csv` (the best
validation accuracy so far), and the input pipeline's randomness is a pure function of
(seed, epoch). Inside an epoch, `checkpoints/mid_epoch.keras` holds the same state at a weight
update boundary; the batches of that epoch already trained are skipped, exactly, by their index.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import ops

from resnet_tf.data import Splits
from resnet_tf.errors import DiskFullError, RunInterrupted, TrainingError
from resnet_tf.runs.files import disk_full_error, is_disk_full
from resnet_tf.runs.history import read_history, write_history
from resnet_tf.runs.run_dir import RunPaths
from resnet_tf.training.advice import disk_full_advice, out_of_memory_advice
from resnet_tf.training.callbacks import (
    AveragedWeights,
    CheckpointSaver,
    HistoryWriter,
    LivePlot,
    Lookahead,
    MidEpochCheckpoint,
    RunForecast,
    StopOnNonFiniteLoss,
)
from resnet_tf.training.callbacks.ema import swap_average
from resnet_tf.training.callbacks.mid_epoch import EpochProgress, catch_stop_signals, read_progress
from resnet_tf.training.distribute import Distribution, shard_by_data
from resnet_tf.training.task import ImageClassificationTask


@dataclass
class TrainResult:
    rows: list[dict]
    status: str  # completed | interrupted | diverged
    wall_seconds: float
    start_epoch: int
    diverged_at: int | None = None
    start_step: int = 0  # weight updates of epoch start_epoch + 1 done before this session
    interruption: RunInterrupted | None = None  # what stopped an interrupted run, and where


@dataclass
class ResumePoint:
    """Where a run continues: after `epoch` completed epochs, or inside the next one."""

    epoch: int
    rows: list[dict]
    inside: EpochProgress | None = None  # from checkpoints/mid_epoch.keras
    loaded: bool = False  # a checkpoint is in the model


def resume_state(
    model: keras.Model, paths: RunPaths, updates_per_epoch: int, accumulation_steps: int = 1
) -> ResumePoint:
    """Load the furthest checkpoint, last.keras or mid_epoch.keras, into the compiled `model`;
    return where the run continues and its history rows.

    The position comes from the optimizer's own step counter inside the checkpoint, not from
    any side file, so a crash between two writes cannot make them disagree; history rows past
    the last completed epoch (written just before a crash) are dropped. A mid-epoch checkpoint
    that last.keras has caught up with (a crash before it was deleted) is ignored.
    """
    point = ResumePoint(epoch=0, rows=[])
    updates = 0
    if paths.last.is_file() or paths.mid_epoch.is_file():
        model.optimizer.build(model.trainable_variables)
    if paths.last.is_file():
        updates = _load_checkpoint(model, paths.last)
        if updates % updates_per_epoch:
            raise TrainingError(
                f"{paths.last}: optimizer step {updates} is not a whole number of "
                f"epochs of {updates_per_epoch} steps; was the config changed?"
            )
        point = ResumePoint(epoch=updates // updates_per_epoch, rows=[], loaded=True)
    if paths.mid_epoch.is_file():
        inside = read_progress(paths.mid_epoch)
        if inside.updates > updates:
            found = _load_checkpoint(model, paths.mid_epoch)
            done = found - inside.epoch * updates_per_epoch
            if (
                found != inside.updates
                or not 0 < done < updates_per_epoch
                or inside.batches_done != done * accumulation_steps
            ):
                raise TrainingError(
                    f"{paths.mid_epoch}: optimizer step {found} does not fit {done} steps into "
                    f"epoch {inside.epoch + 1} of {updates_per_epoch} steps; was the config "
                    "changed?"
                )
            point = ResumePoint(epoch=inside.epoch, rows=[], inside=inside, loaded=True)
    epoch = point.epoch
    point.rows = [r for r in read_history(paths.history) if r["epoch"] <= epoch]
    if [r["epoch"] for r in point.rows] != list(range(1, epoch + 1)):
        raise TrainingError(
            f"{paths.history}: expected one row for each of epochs 1-{epoch}, "
            f"found {[r['epoch'] for r in point.rows]}"
        )
    if point.loaded:
        write_history(paths.history, point.rows)
    return point


def _load_checkpoint(model: keras.Model, path) -> int:
    """Load `path` into `model`; return its optimizer's weight updates."""
    try:
        model.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - any failure here means an unusable checkpoint
        raise TrainingError(
            f"{path}: cannot load checkpoint to resume: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    return int(ops.convert_to_numpy(model.optimizer.iterations))


def _logs_as_vectors(step):
    """Wrap a train/test step so each log is a 1-vector, which Keras can average over workers."""

    def step_with_vector_logs(data):
        return {k: ops.reshape(v, [1]) for k, v in step(data).items()}

    return step_with_vector_logs


def fit(
    task: ImageClassificationTask,
    model: keras.Model,
    splits: Splits,
    paths: RunPaths,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | None = None,
    dist: Distribution | None = None,
) -> TrainResult:
    """Train `model` (already compiled) from the run folder's last checkpoint, if any.

    A resume from inside an epoch trains the rest of that epoch in a fit() call of its own
    (Keras' epochs have a fixed number of steps), then the other epochs in a second one.
    With a distribution, `model` must have been made in its scope; `paths` is where this
    process writes (a non-chief worker's private folder, see resnet_tf/training/distribute.py).
    """
    config = task.config
    dist = dist or Distribution(strategy=None)
    steps_per_epoch = task.steps_per_epoch(splits)  # batches
    updates_per_epoch = task.updates_per_epoch(splits)
    accumulation = config.train.accumulation_steps
    with dist.scope():
        start = resume_state(model, paths, updates_per_epoch, accumulation)
        if start.loaded and config.train.ema_decay > 0:
            swap_average(model)  # the checkpoint's model is the average: train on the raw
    start_epoch, rows = start.epoch, start.rows
    skipped = start.inside.batches_done if start.inside else 0  # of epoch start_epoch
    has_validation = len(splits.x_val) > 0
    nan_stop = StopOnNonFiniteLoss(completed_epochs=start_epoch)
    history = HistoryWriter(
        paths.history,
        rows,
        train_images=steps_per_epoch * config.train.batch_size,
        skip_epoch=lambda: nan_stop.diverged_at is not None,
        seconds_before=start.inside.train_seconds if start.inside else 0.0,
    )
    saver = CheckpointSaver(paths, rows, has_validation)
    all_callbacks = [
        nan_stop,
        history,
        saver,
        LivePlot(paths.plot, rows, title=f"{config.model.name} - {paths.root.name}"),
    ]
    if dist.is_chief:
        all_callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=str(paths.tensorboard), write_graph=False, update_freq="epoch"
            )
        )
        all_callbacks.append(
            RunForecast(
                epochs_left=config.train.epochs - start_epoch,
                batches_per_epoch=steps_per_epoch,
                batch_size=config.train.batch_size,
                on_gpu=bool(tf.config.list_physical_devices("GPU")),
                batches_done=skipped,
            )
        )
    all_callbacks += callbacks or []
    mid_epoch = None
    if dist.workers == 1:  # workers would each stop at their own step, and wait for the others
        mid_epoch = MidEpochCheckpoint(
            paths.mid_epoch,
            config.train.checkpoint_every_minutes,
            batches_per_epoch=steps_per_epoch,
            accumulation_steps=accumulation,
            lookahead_every=config.train.lookahead_every,
            final_epoch=config.train.epochs,
            ema=config.train.ema_decay > 0,
            resumed=start.inside,
            epoch_seconds=history.seconds_so_far,
            sound=lambda: nan_stop.diverged_at is None,
            # A distribution's metric variables are per replica: not set from one value.
            restore_metrics=dist.strategy is None,
        )
        all_callbacks.append(mid_epoch)
    if config.train.ema_decay > 0:  # before the run folder's writers: they save the average
        all_callbacks.insert(0, AveragedWeights())
    if config.train.lookahead_every:  # first, so that every other callback sees its weights
        lookahead = Lookahead(
            config.train.lookahead_every,
            total_steps=updates_per_epoch * config.train.epochs,
            steps_per_epoch=updates_per_epoch,
            max_decay=config.train.lookahead_max_decay,
        )
        all_callbacks.insert(0, lookahead)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    started = time.perf_counter()
    result = TrainResult(
        rows=rows,
        status="completed",
        wall_seconds=0.0,
        start_epoch=start_epoch,
        start_step=skipped // accumulation,
    )
    if start_epoch < config.train.epochs:
        val_data = task.eval_dataset(splits.x_val, splits.y_val) if has_validation else None
        if dist.strategy is not None and val_data is not None:
            val_data = shard_by_data(val_data)

        def train_epochs(first: int, last: int, skip: int) -> None:
            """Epochs first+1..last, the first without its first `skip` batches."""
            train_data = task.train_dataset(splits, first, skip)
            if dist.strategy is not None:
                train_data = shard_by_data(train_data)
            if dist.workers > 1:
                _work_around_multi_worker_fit(model, train_data)
            model.fit(
                train_data,
                epochs=last,
                initial_epoch=first,
                shuffle=False,  # the dataset shuffles itself, reproducibly
                steps_per_epoch=steps_per_epoch - skip,
                validation_data=val_data,
                callbacks=all_callbacks,
                verbose=verbose,
            )

        try:
            with catch_stop_signals(mid_epoch):
                first = start_epoch
                if skipped:
                    train_epochs(first, first + 1, skipped)
                    first += 1
                if first < config.train.epochs and not getattr(model, "stop_training", False):
                    train_epochs(first, config.train.epochs, 0)
        except RunInterrupted as stop:
            result.status, result.interruption = "interrupted", stop
        except KeyboardInterrupt:  # straight into training: the last checkpoint is the place
            where = f"in epoch {len(rows) + 1} (unsaved: from its last checkpoint)"
            result.status, result.interruption = "interrupted", RunInterrupted("SIGINT", 130, where)
        except DiskFullError as error:
            raise TrainingError(disk_full_advice(error, paths, saver.saved_epoch)) from None
        except tf.errors.ResourceExhaustedError as error:
            if is_disk_full(error):  # TensorFlow's own writers (TensorBoard) say so this way
                full = disk_full_error(paths.tensorboard, error)
                raise TrainingError(disk_full_advice(full, paths, saver.saved_epoch)) from None
            raise TrainingError(out_of_memory_advice(config.train, paths)) from None
    if nan_stop.diverged_at is not None:  # a stop signal there changes nothing: not resumable
        result.status, result.interruption = "diverged", None
        result.diverged_at = nan_stop.diverged_at
    result.wall_seconds = time.perf_counter() - started
    return result


def _work_around_multi_worker_fit(model: keras.Model, train_data) -> None:
    """Keras 3.15's fit() builds the metrics from its first distributed batch through
    strategy.reduce((x, y)), which MultiWorkerMirroredStrategy refuses (keras-team/keras#20585);
    build them from the dataset's shapes instead. And it averages each step's logs over the
    workers along axis 0, which scalars lack: make each log a 1-vector."""
    build, spec = model._maybe_symbolic_build, train_data.element_spec
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: build(data_batch=spec)
    model.train_step = _logs_as_vectors(model.train_step)
    model.test_step = _logs_as_vectors(model.test_step)
