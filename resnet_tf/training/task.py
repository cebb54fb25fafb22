"""What a config asks to train: the model, its data, the optimizer and the loss, compiled.

One object turns a `Config` into the pieces `model.fit()` needs (Model Garden's task idea), so
the training run, a dry run and the benchmark all build them the same way.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from resnet_tf import data as data_lib
from resnet_tf.config import Config, TrainConfig
from resnet_tf.data import Splits
from resnet_tf.errors import ConfigError
from resnet_tf.models import build_from_config
from resnet_tf.models.saved import INPUT_SHAPE
from resnet_tf.runs.records import read_config
from resnet_tf.runs.run_dir import run_of_checkpoint
from resnet_tf.training import metrics
from resnet_tf.training.distillation import attach_teacher
from resnet_tf.training.losses import SparseCrossEntropy
from resnet_tf.training.muon import Muon, is_muon_weight
from resnet_tf.training.optimizers import SGD
from resnet_tf.training.saved_models import load_saved_classifier, resolve_saved_model
from resnet_tf.training.schedules import LearningRate, make_schedule

# Images FastNet's patch-whitening stem is fitted on (the first of the training split).
ADAPT_IMAGES = 5000


class ImageClassificationTask:
    """CIFAR-10 classification as the config describes it."""

    def __init__(self, config: Config, num_classes: int = data_lib.NUM_CLASSES):
        self.config = config
        self.num_classes = num_classes
        # train.distill.teacher's model, once compile_model has loaded it (None without one).
        self.teacher: keras.Model | None = None

    # ------------------------------------------------------------ data

    def make_splits(self, x: np.ndarray, y: np.ndarray) -> Splits:
        """Training images (the first `data.subset` if set) minus a stratified validation set."""
        data, runtime = self.config.data, self.config.runtime
        return data_lib.make_splits(
            x, y, subset=data.subset, val_size=data.val_size, seed=runtime.seed
        )

    def steps_per_epoch(self, splits: Splits) -> int:
        """Batches per epoch: a whole number of weight updates' worth."""
        return self.updates_per_epoch(splits) * self.config.train.accumulation_steps

    def updates_per_epoch(self, splits: Splits) -> int:
        """Weight updates per epoch (the optimizer's `iterations` count these)."""
        train = self.config.train
        return data_lib.steps_per_epoch(
            len(splits.x_train), train.batch_size * train.accumulation_steps
        )

    def train_dataset(
        self, splits: Splits, start_epoch: int, skip_batches: int = 0
    ) -> tf.data.Dataset:
        """Endless augmented batches from epoch `start_epoch`, less its first `skip_batches`;
        those of epoch e depend only on (seed, e)."""
        augment = self.config.data.augment
        return data_lib.make_train_dataset(
            splits.x_train,
            splits.y_train,
            batch_size=self.config.train.batch_size,
            seed=self.config.runtime.seed,
            start_epoch=start_epoch,
            skip_batches=skip_batches,
            accumulation_steps=self.config.train.accumulation_steps,
            normalization=self.config.data.normalization,
            flip=augment.flip,
            flip_mode=augment.flip_mode,
            crop_padding=augment.crop_padding,
            crop_mode=augment.crop_mode,
            cutout=augment.cutout,
            randaugment_ops=augment.randaugment.num_ops,
            randaugment_magnitude=augment.randaugment.magnitude,
            autoaugment=augment.autoaugment,
            color_jitter_ranges=(
                augment.color_jitter.brightness,
                augment.color_jitter.contrast,
                augment.color_jitter.saturation,
                augment.color_jitter.hue,
            ),
            normalized_jitter_ranges=(
                augment.normalized_jitter.shift,
                augment.normalized_jitter.scale,
            ),
            mixup=augment.mixup,
            cutmix=augment.cutmix,
            num_classes=self.num_classes,
        )

    def eval_dataset(self, x: np.ndarray, y: np.ndarray) -> tf.data.Dataset:
        return data_lib.make_eval_dataset(
            x,
            y,
            batch_size=self.eval_batch_size,
            normalization=self.config.data.normalization,
        )

    @property
    def eval_batch_size(self) -> int:
        return max(self.config.train.batch_size, 256)

    # ------------------------------------------------------------ model

    def build_model(self, splits: Splits | None = None) -> keras.Model:
        """The configured model (or `model.init_from`'s); with `splits`, a fresh model is fitted
        to the training images where it has a data-dependent layer (FastNet's patch
        whitening), normalised as the pipeline feeds them."""
        if self.config.model.init_from is not None and not self.config.model.reinitialize:
            return self._saved_model()
        if self.config.model.init_from is not None:  # its architecture, fresh weights
            saved = self._saved_model()
            model = type(saved).from_config(saved.get_config())
            model.build((None, *INPUT_SHAPE))
        else:
            model = build_from_config(self.config.model, self.num_classes)
        if splits is not None and hasattr(model, "adapt"):
            images = data_lib.normalize_images(
                splits.x_train[:ADAPT_IMAGES], self.config.data.normalization
            )
            model.adapt(np.asarray(images))
        return model

    def check_saved_models(self) -> None:
        """Load model.init_from and the teacher once to check them against the config, so that
        a mismatch stops a new run before its folder exists."""
        if self.config.model.init_from is not None:
            self._saved_model()
        self._load_teacher()

    def _saved_model(self) -> keras.Model:
        """model.init_from's model, checked against the config's name and class count."""
        key = "model.init_from"
        model = load_saved_classifier(self.config.model.init_from, key, self.num_classes)
        if model.name != self.config.model.name:
            raise ConfigError(
                f"{key}: {self.config.model.init_from} holds a {model.name!r} model, but "
                f"model.name is {self.config.model.name!r}; set model.name to {model.name!r}"
            )
        return model

    def _load_teacher(self) -> keras.Model | None:
        """train.distill.teacher's model, checked against the class count and, where it lies
        in a run folder, that run's data.normalization (a bare .keras file is assumed to share
        ours): fed images normalised otherwise than in its training, its targets are wrong."""
        key, path = "train.distill.teacher", self.config.train.distill.teacher
        if path is None:
            return None
        file = resolve_saved_model(path, key)
        run = run_of_checkpoint(file)
        if run is not None:
            theirs, ours = read_config(run).data.normalization, self.config.data.normalization
            if theirs != ours:
                raise ConfigError(
                    f"{key}: {file} was trained with data.normalization {theirs!r}, but this run "
                    f"uses {ours!r}; set data.normalization to {theirs!r} or use another teacher"
                )
        return load_saved_classifier(str(file), key, self.num_classes)

    def compile_model(self, model: keras.Model, updates_per_epoch: int) -> None:
        """Optimizer with its lr schedule (over weight updates), the loss (with weight decay as
        an L2 term where the optimizer couples it) and the metrics that history.csv records;
        with train.distill.teacher, the teacher is loaded (in the caller's strategy scope, where
        `model` was made) and attached to the loss (resnet_tf/training/distillation.py)."""
        train = self.config.train
        schedule = make_schedule(train, updates_per_epoch)
        optimizer = make_optimizer(train, schedule, updates_per_epoch)
        if train.optimizer.name in ("sgd", "adam", "muon"):
            add_l2_penalty(model, train.optimizer.weight_decay, optimizer)
        model.compile(
            optimizer=optimizer,
            loss=SparseCrossEntropy(
                num_classes=self.num_classes, label_smoothing=train.label_smoothing
            ),
            # Plain cross-entropy, for history.csv: the objective ("loss" to Keras) also holds
            # the L2 penalty and label smoothing, which would make runs with other settings
            # incomparable.
            metrics=[
                metrics.Accuracy(name="accuracy"),
                metrics.CrossEntropy(name="cross_entropy"),
            ],
            jit_compile=self.config.runtime.jit_compile,
            steps_per_execution=train.steps_per_execution,
        )
        self.teacher = self._load_teacher()
        if self.teacher is not None:
            attach_teacher(model, self.teacher, train.distill.temperature, train.distill.alpha)


def make_optimizer(
    train: TrainConfig, schedule: LearningRate, updates_per_epoch: int
) -> keras.optimizers.Optimizer:
    o = train.optimizer
    # Keras takes None (not 1) for no accumulation.
    accumulation = train.accumulation_steps if train.accumulation_steps > 1 else None
    # Keras moves the average at every batch, also those that only accumulate: per batch decay
    # d^(1/N) is d per weight update.
    ema = {}
    if train.ema_decay > 0:
        ema = {"use_ema": True, "ema_momentum": train.ema_decay ** (1 / train.accumulation_steps)}
    if o.name in ("sgd", "muon"):
        sgd = dict(
            learning_rate=schedule,
            gradient_accumulation_steps=accumulation,
            **ema,
            momentum=o.momentum,
            nesterov=o.nesterov,
            bn_bias_lr_multiplier=o.bn_bias_lr_multiplier,
            whitening_bias_steps=round(train.whitening_bias_epochs * updates_per_epoch),
        )
        if o.name == "sgd":
            return SGD(**sgd)
        return Muon(
            muon_lr=o.muon_lr,
            muon_momentum=o.muon_momentum,
            muon_ns_steps=o.muon_ns_steps,
            peak_lr=schedule.peak_lr,
            **sgd,
        )
    if o.name == "adam":
        return keras.optimizers.Adam(
            learning_rate=schedule,
            beta_1=o.beta_1,
            beta_2=o.beta_2,
            epsilon=o.epsilon,
            gradient_accumulation_steps=accumulation,
            **ema,
        )
    return keras.optimizers.AdamW(
        learning_rate=schedule,
        gradient_accumulation_steps=accumulation,
        **ema,
        weight_decay=o.weight_decay,
        beta_1=o.beta_1,
        beta_2=o.beta_2,
        epsilon=o.epsilon,
    )


def add_l2_penalty(
    model: keras.Model, weight_decay: float, optimizer: keras.optimizers.Optimizer | None = None
) -> None:
    """PyTorch's coupled weight decay (gradient += wd * w, on every weight) as an L2 loss term
    wd/2 * ||w||^2, so that the recipes' numbers (e.g. 5e-4 for SGD) mean what they say.

    Weights with a larger lr (SGD's BN shifts) get a smaller penalty, so they decay as fast as
    the rest; Muon's kernels get none (Muon holds their norm fixed)."""
    if weight_decay <= 0:
        return
    for variable in model.trainable_variables:
        if isinstance(optimizer, Muon) and is_muon_weight(variable):
            continue
        scale = 1.0
        if isinstance(optimizer, SGD) and optimizer.uses_bias_lr(variable):
            scale = optimizer.bn_bias_lr_multiplier
        variable.regularizer = keras.regularizers.L2(weight_decay / 2 / scale)
