"""Training: optimizer, lr schedule, loss, callbacks, `model.fit()`, and exact resume.

A run is resumable from any completed epoch because everything that changes during training
lives in `checkpoints/last.keras` (weights, BN statistics, optimizer slots and its step counter,
from which the epoch and the lr schedule position follow) or in `history.csv` (the best
validation accuracy so far), and the input pipeline's randomness is a pure function of
(seed, epoch).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from resnet_tf import data as data_lib
from resnet_tf.config import Config, TrainConfig
from resnet_tf.training.distribute import Distribution, shard_by_data
from resnet_tf.training.losses import SparseCrossEntropy
from resnet_tf.models import build_model
from resnet_tf.training.optimizers import SGD, Lookahead, is_bn_bias
from resnet_tf.runs.plots import plot_accuracy_loss
from resnet_tf.runs.files import atomic_save
from resnet_tf.runs.history import read_history, write_history
from resnet_tf.runs.run_dir import RunPaths
from resnet_tf.training.schedules import LearningRate, make_schedule
from resnet_tf.errors import TrainingError



# ---------------------------------------------------------------- schedule, optimizer, loss


def make_optimizer(train: TrainConfig, schedule: LearningRate) -> keras.optimizers.Optimizer:
    o = train.optimizer
    if o.name == "sgd":
        return SGD(
            learning_rate=schedule,
            momentum=o.momentum,
            nesterov=o.nesterov,
            bn_bias_lr_multiplier=o.bn_bias_lr_multiplier,
        )
    if o.name == "adam":
        return keras.optimizers.Adam(
            learning_rate=schedule, beta_1=o.beta_1, beta_2=o.beta_2, epsilon=o.epsilon
        )
    return keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=o.weight_decay,
        beta_1=o.beta_1,
        beta_2=o.beta_2,
        epsilon=o.epsilon,
    )


def add_l2_penalty(
    model: keras.Model, weight_decay: float, bn_bias_lr_multiplier: float = 1.0
) -> None:
    """PyTorch's coupled weight decay (gradient += wd * w, on every weight) as an L2 loss term
    wd/2 * ||w||^2, so that the recipes' numbers (e.g. 5e-4 for SGD) mean what they say.

    BN shifts with a larger lr get a smaller penalty, so they decay as fast as the rest."""
    if weight_decay <= 0:
        return
    for variable in model.trainable_variables:
        scale = bn_bias_lr_multiplier if is_bn_bias(variable) else 1.0
        variable.regularizer = keras.regularizers.L2(weight_decay / 2 / scale)


def compile_model(
    model: keras.Model, config: Config, steps_per_epoch: int, num_classes: int = 10
) -> None:
    train = config.train
    schedule = make_schedule(train, steps_per_epoch)
    if train.optimizer.name in ("sgd", "adam"):
        add_l2_penalty(model, train.optimizer.weight_decay, train.optimizer.bn_bias_lr_multiplier)
    model.compile(
        optimizer=make_optimizer(train, schedule),
        loss=SparseCrossEntropy(num_classes=num_classes, label_smoothing=train.label_smoothing),
        # Plain cross-entropy, for history.csv: the objective ("loss" to Keras) also holds the L2
        # penalty and label smoothing, which would make runs with other settings incomparable.
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy", from_logits=True),
        ],
        jit_compile=config.runtime.jit_compile,
        steps_per_execution=train.steps_per_execution,
    )


# ---------------------------------------------------------------- runtime set-up


def set_up_threads(config: Config) -> None:
    """TensorFlow's thread pools; only possible before TensorFlow starts running (a strategy
    or the first op starts it), so this comes first."""
    threads = tf.config.threading
    try:
        if config.runtime.intra_op_threads != threads.get_intra_op_parallelism_threads():
            threads.set_intra_op_parallelism_threads(config.runtime.intra_op_threads)
        if config.runtime.inter_op_threads != threads.get_inter_op_parallelism_threads():
            threads.set_inter_op_parallelism_threads(config.runtime.inter_op_threads)
    except RuntimeError:
        raise TrainingError(
            "runtime.intra_op_threads/inter_op_threads: TensorFlow is already running in this "
            "process and cannot change its thread pools; set them in a new process"
        ) from None


def set_up_runtime(config: Config) -> None:
    """Seeds, determinism and precision: before any model or dataset is made."""
    set_up_threads(config)
    keras.utils.set_random_seed(config.runtime.seed)
    if config.runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:  # it is process-wide: undo an earlier run's setting (tests, notebooks)
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    policy = config.runtime.mixed_precision
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    if policy == "mixed_float16" and not on_gpu:
        raise TrainingError(
            "runtime.mixed_precision: mixed_float16 needs a GPU (CPUs have no fast float16 "
            "kernels); use float32, or mixed_bfloat16 on a CPU with bfloat16 support"
        )
    keras.mixed_precision.set_global_policy(policy)


# ---------------------------------------------------------------- data


@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def make_splits(config: Config, x: np.ndarray, y: np.ndarray) -> Splits:
    """Training images (first `subset` if set) minus a stratified validation split."""
    if config.data.subset is not None:
        x, y = x[: config.data.subset], y[: config.data.subset]
    (x_tr, y_tr), (x_val, y_val) = data_lib.split_train_val(
        x, y, config.data.val_size, config.runtime.seed
    )
    return Splits(x_tr, y_tr, x_val, y_val)


def train_dataset(config: Config, splits: Splits, start_epoch: int) -> tf.data.Dataset:
    aug = config.data.augment
    return data_lib.make_train_dataset(
        splits.x_train,
        splits.y_train,
        batch_size=config.train.batch_size,
        seed=config.runtime.seed,
        start_epoch=start_epoch,
        normalization=config.data.normalization,
        flip=aug.flip,
        flip_mode=aug.flip_mode,
        crop_padding=aug.crop_padding,
        crop_mode=aug.crop_mode,
        cutout=aug.cutout,
    )


def eval_dataset(
    config: Config, x: np.ndarray, y: np.ndarray, batch_size: int | None = None
) -> tf.data.Dataset:
    return data_lib.make_eval_dataset(
        x,
        y,
        batch_size=batch_size or max(config.train.batch_size, 256),
        normalization=config.data.normalization,
    )


def new_model(config: Config, num_classes: int = 10) -> keras.Model:
    m = config.model
    return build_model(
        m.name,
        num_classes=num_classes,
        stem=m.stem,
        zero_init_residual=m.zero_init_residual,
        bn_momentum=m.bn_momentum,
        bn_epsilon=m.bn_epsilon,
        width_multiplier=m.width_multiplier,
        identity_init=m.identity_init,
        kernel_init=m.kernel_init,
    )


def adapt_to_data(model: keras.Model, config: Config, splits: Splits) -> None:
    """Give a model with a data-dependent layer (FastNet's patch whitening) its training data,
    normalised as the pipeline feeds it; other models need nothing."""
    if hasattr(model, "adapt"):
        images = data_lib.normalize_images(splits.x_train[:5000], config.data.normalization)
        model.adapt(np.asarray(images))


# ---------------------------------------------------------------- callbacks


class RunRecorder(keras.callbacks.Callback):
    """After each epoch: history.csv, best.keras, last.keras, the plot; in that order, so that a
    crash at any point leaves files that --resume can reconcile (see `resume_state`)."""

    def __init__(
        self, paths: RunPaths, rows: list[dict], train_images: int, title: str, has_validation: bool
    ):
        super().__init__()
        self.paths = paths
        self.rows = rows
        self.train_images = train_images
        self.title = title
        self.has_validation = has_validation
        self.best = max(
            (r["val_accuracy"] for r in rows if math.isfinite(r["val_accuracy"])), default=-math.inf
        )
        self.diverged_at: int | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.train_end = None

    def on_test_begin(self, logs=None):
        if self.train_end is None:
            self.train_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = len(self.rows) + 1  # rows hold the completed epochs
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.diverged_at is not None or not math.isfinite(float(logs.get("loss", math.nan))):
            self.diverged_at = epoch + 1
            self.model.stop_training = True
            return
        now = time.perf_counter()
        train_seconds = (self.train_end or now) - self.epoch_start
        row = {
            "epoch": epoch + 1,
            "lr": float(ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "loss": float(logs["cross_entropy"]),
            "accuracy": float(logs["accuracy"]),
            "val_loss": float(logs.get("val_cross_entropy", math.nan)),
            "val_accuracy": float(logs.get("val_accuracy", math.nan)),
            "epoch_seconds": now - self.epoch_start,
            "images_per_s": self.train_images / max(train_seconds, 1e-9),
        }
        self.rows.append(row)
        write_history(self.paths.history, self.rows)
        # Without a validation split, "best" can only mean "latest".
        score = row["val_accuracy"] if self.has_validation else math.inf
        if score > self.best or not self.has_validation:
            self.best = row["val_accuracy"]
            atomic_save(self.paths.best, self.model.save)
        atomic_save(self.paths.last, self.model.save)
        plot_accuracy_loss(self.rows, self.paths.plot, self.title)


# ---------------------------------------------------------------- fit and resume


@dataclass
class TrainResult:
    rows: list[dict]
    status: str  # completed | interrupted | diverged
    wall_seconds: float
    start_epoch: int
    diverged_at: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def resume_state(model: keras.Model, paths: RunPaths, steps_per_epoch: int) -> tuple[int, list]:
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
    iterations = int(ops.convert_to_numpy(model.optimizer.iterations))
    if iterations % steps_per_epoch:
        raise TrainingError(
            f"{paths.last}: optimizer step {iterations} is not a whole number of "
            f"epochs of {steps_per_epoch} steps; was the config changed?"
        )
    epoch = iterations // steps_per_epoch
    rows = [r for r in read_history(paths.history) if r["epoch"] <= epoch]
    if [r["epoch"] for r in rows] != list(range(1, epoch + 1)):
        raise TrainingError(
            f"{paths.history}: expected one row for each of epochs 1-{epoch}, "
            f"found {[r['epoch'] for r in rows]}"
        )
    write_history(paths.history, rows)
    return epoch, rows


def _logs_as_vectors(step):
    """Wrap a train/test step so each log is a 1-vector, which Keras can average over workers."""

    def step_with_vector_logs(data):
        return {k: ops.reshape(v, [1]) for k, v in step(data).items()}

    return step_with_vector_logs


def fit(
    model: keras.Model,
    config: Config,
    splits: Splits,
    paths: RunPaths,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | None = None,
    dist: Distribution | None = None,
) -> TrainResult:
    """Train `model` (already compiled) from the run folder's last checkpoint, if any.

    With a distribution, `model` must have been made in its scope; `paths` is where this
    process writes (a non-chief worker's private folder, see resnet_tf/distribute.py).
    """
    dist = dist or Distribution(strategy=None)
    spe = data_lib.steps_per_epoch(len(splits.x_train), config.train.batch_size)
    with dist.scope():
        start_epoch, rows = resume_state(model, paths, spe)
    has_validation = len(splits.x_val) > 0
    recorder = RunRecorder(
        paths,
        rows,
        train_images=spe * config.train.batch_size,
        title=f"{config.model.name} - {paths.root.name}",
        has_validation=has_validation,
    )
    all_callbacks = [recorder, *(callbacks or [])]
    if dist.is_chief:
        all_callbacks.insert(
            1,
            keras.callbacks.TensorBoard(
                log_dir=str(paths.tensorboard), write_graph=False, update_freq="epoch"
            ),
        )
    if config.train.lookahead_every:  # first, so that every other callback sees its weights
        lookahead = Lookahead(
            config.train.lookahead_every,
            total_steps=spe * config.train.epochs,
            steps_per_epoch=spe,
            max_decay=config.train.lookahead_max_decay,
        )
        all_callbacks.insert(0, lookahead)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    started = time.perf_counter()
    status = "completed"
    if start_epoch < config.train.epochs:
        train_data = train_dataset(config, splits, start_epoch)
        val_data = eval_dataset(config, splits.x_val, splits.y_val) if has_validation else None
        if dist.strategy is not None:
            train_data = shard_by_data(train_data)
            val_data = shard_by_data(val_data) if val_data is not None else None
        if dist.workers > 1:
            # Keras 3.15's fit() builds the metrics from its first distributed batch through
            # strategy.reduce((x, y)), which MultiWorkerMirroredStrategy refuses
            # (keras-team/keras#20585); build them from the dataset's shapes instead.
            build, spec = model._maybe_symbolic_build, train_data.element_spec
            model._maybe_symbolic_build = lambda iterator=None, data_batch=None: build(
                data_batch=spec
            )
            # And it averages each step's logs over the workers along axis 0, which scalars lack.
            model.train_step = _logs_as_vectors(model.train_step)
            model.test_step = _logs_as_vectors(model.test_step)
        try:
            model.fit(
                train_data,
                epochs=config.train.epochs,
                initial_epoch=start_epoch,
                shuffle=False,  # the dataset shuffles itself, reproducibly
                steps_per_epoch=spe,
                validation_data=val_data,
                callbacks=all_callbacks,
                verbose=verbose,
            )
        except KeyboardInterrupt:
            status = "interrupted"
    if recorder.diverged_at is not None:
        status = "diverged"
    return TrainResult(
        rows=recorder.rows,
        status=status,
        wall_seconds=time.perf_counter() - started,
        start_epoch=start_epoch,
        diverged_at=recorder.diverged_at,
    )
