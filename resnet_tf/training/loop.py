"""The fit loop: `model.fit()` from the run folder's last completed epoch, and exact resume.

A run is resumable from any completed epoch because everything that changes during training
lives in `checkpoints/last.keras` (weights, BN statistics, optimizer slots and its step counter,
from which the epoch and the lr schedule position follow) or in `history.csv` (the best
validation accuracy so far), and the input pipeline's randomness is a pure function of
(seed, epoch).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import ops

from resnet_tf.config import TrainConfig
from resnet_tf.data import Splits
from resnet_tf.errors import DiskFullError, TrainingError
from resnet_tf.runs.files import disk_full_error, is_disk_full
from resnet_tf.runs.history import read_history, write_history
from resnet_tf.runs.run_dir import RunPaths
from resnet_tf.training.callbacks import (
    AveragedWeights,
    CheckpointSaver,
    HistoryWriter,
    LivePlot,
    Lookahead,
    RunForecast,
    StopOnNonFiniteLoss,
)
from resnet_tf.training.callbacks.ema import swap_average
from resnet_tf.training.distribute import Distribution, shard_by_data
from resnet_tf.training.task import ImageClassificationTask


@dataclass
class TrainResult:
    rows: list[dict]
    status: str  # completed | interrupted | diverged
    wall_seconds: float
    start_epoch: int
    diverged_at: int | None = None


def resume_state(model: keras.Model, paths: RunPaths, updates_per_epoch: int) -> tuple[int, list]:
    """Load last.keras into the compiled `model`; return (completed epochs, history rows).

    The epoch comes from the optimizer's own step counter inside the checkpoint, not from any
    side file, so a crash between two writes cannot make them disagree; history rows past that
    epoch (written just before a crash) are dropped.
    """
    if not paths.last.is_file():
        return 0, []
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(paths.last)
    except Exception as exc:  # noqa: BLE001 - any failure here means an unusable checkpoint
        raise TrainingError(
            f"{paths.last}: cannot load checkpoint to resume: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    updates = int(ops.convert_to_numpy(model.optimizer.iterations))  # weight updates
    if updates % updates_per_epoch:
        raise TrainingError(
            f"{paths.last}: optimizer step {updates} is not a whole number of "
            f"epochs of {updates_per_epoch} steps; was the config changed?"
        )
    epoch = updates // updates_per_epoch
    rows = [r for r in read_history(paths.history) if r["epoch"] <= epoch]
    if [r["epoch"] for r in rows] != list(range(1, epoch + 1)):
        raise TrainingError(
            f"{paths.history}: expected one row for each of epochs 1-{epoch}, "
            f"found {[r['epoch'] for r in rows]}"
        )
    write_history(paths.history, rows)
    return epoch, rows


def out_of_memory_advice(train: TrainConfig, paths: RunPaths) -> str:
    """One line for an out-of-memory error: the same effective batch in half the memory, and
    that the run folder keeps its last completed epoch."""
    batch, steps = train.batch_size, train.accumulation_steps
    if batch > 1:
        fix = (
            f"try --set train.batch_size={batch // 2} --set train.accumulation_steps={steps * 2} "
            f"in a new run (the same effective batch of {batch * steps:,}, "
            f"with about half the activation memory)"
        )
    else:
        fix = "one image per batch does not fit: try a narrower model (model.width_multiplier)"
    return (
        f"out of memory training with train.batch_size {batch}: {fix}; {paths.root} keeps its "
        f"last completed epoch and resumes with python train.py --resume {paths.root} where "
        "memory allows"
    )


def disk_full_advice(error: DiskFullError, paths: RunPaths, saved_epoch: int) -> str:
    """One line for a file the run could not write: which, what is safe, how to go on."""
    if saved_epoch:
        safe = f"{paths.last} (epoch {saved_epoch}) is intact"
    else:
        safe = "no epoch was saved yet"
    return (
        f"{error}; {safe}: free some space, then continue with "
        f"python train.py --resume {paths.root}"
    )


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

    With a distribution, `model` must have been made in its scope; `paths` is where this
    process writes (a non-chief worker's private folder, see resnet_tf/training/distribute.py).
    """
    config = task.config
    dist = dist or Distribution(strategy=None)
    steps_per_epoch = task.steps_per_epoch(splits)  # batches
    updates_per_epoch = task.updates_per_epoch(splits)
    with dist.scope():
        start_epoch, rows = resume_state(model, paths, updates_per_epoch)
        if start_epoch > 0 and config.train.ema_decay > 0:
            swap_average(model)  # the checkpoint's model is the average: train on the raw
    has_validation = len(splits.x_val) > 0
    nan_stop = StopOnNonFiniteLoss(completed_epochs=start_epoch)
    saver = CheckpointSaver(paths, rows, has_validation)
    all_callbacks = [
        nan_stop,
        HistoryWriter(
            paths.history,
            rows,
            train_images=steps_per_epoch * config.train.batch_size,
            skip_epoch=lambda: nan_stop.diverged_at is not None,
        ),
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
            )
        )
    all_callbacks += callbacks or []
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
    status = "completed"
    if start_epoch < config.train.epochs:
        train_data = task.train_dataset(splits, start_epoch)
        val_data = task.eval_dataset(splits.x_val, splits.y_val) if has_validation else None
        if dist.strategy is not None:
            train_data = shard_by_data(train_data)
            val_data = shard_by_data(val_data) if val_data is not None else None
        if dist.workers > 1:
            _work_around_multi_worker_fit(model, train_data)
        try:
            model.fit(
                train_data,
                epochs=config.train.epochs,
                initial_epoch=start_epoch,
                shuffle=False,  # the dataset shuffles itself, reproducibly
                steps_per_epoch=steps_per_epoch,
                validation_data=val_data,
                callbacks=all_callbacks,
                verbose=verbose,
            )
        except KeyboardInterrupt:
            status = "interrupted"
        except DiskFullError as error:
            raise TrainingError(disk_full_advice(error, paths, saver.saved_epoch)) from None
        except tf.errors.ResourceExhaustedError as error:
            if is_disk_full(error):  # TensorFlow's own writers (TensorBoard) say so this way
                full = disk_full_error(paths.tensorboard, error)
                raise TrainingError(disk_full_advice(full, paths, saver.saved_epoch)) from None
            raise TrainingError(out_of_memory_advice(config.train, paths)) from None
    if nan_stop.diverged_at is not None:
        status = "diverged"
    return TrainResult(
        rows=rows,
        status=status,
        wall_seconds=time.perf_counter() - started,
        start_epoch=start_epoch,
        diverged_at=nan_stop.diverged_at,
    )


def _work_around_multi_worker_fit(model: keras.Model, train_data) -> None:
    """Keras 3.15's fit() builds the metrics from its first distributed batch through
    strategy.reduce((x, y)), which MultiWorkerMirroredStrategy refuses (keras-team/keras#20585);
    build them from the dataset's shapes instead. And it averages each step's logs over the
    workers along axis 0, which scalars lack: make each log a 1-vector."""
    build, spec = model._maybe_symbolic_build, train_data.element_spec
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: build(data_batch=spec)
    model.train_step = _logs_as_vectors(model.train_step)
    model.test_step = _logs_as_vectors(model.test_step)
