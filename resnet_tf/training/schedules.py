"""Learning-rate schedules, as one serializable object saved inside every checkpoint."""

from __future__ import annotations

import math

import keras
from keras import ops

from resnet_tf.config import TrainConfig


@keras.saving.register_keras_serializable(package="resnet_tf")
class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Every schedule the config offers, as one serializable function of the step.

    kind: constant | cosine | linear | step | multistep | onecycle; `boundaries` are steps at which
    step/multistep multiply the lr by `gamma`. A linear warm-up over `warmup_steps` multiplies
    any kind but onecycle (which has its own rise over `pct_start` of training).

    Steps are weight updates. Keras calls a schedule with its count of batches, which differs
    with gradient accumulation (an update every `accumulation_steps` batches), so the batch
    count is divided back into updates here: each update then gets the lr it would get with
    one large batch.
    """

    def __init__(
        self,
        kind: str,
        peak_lr: float,
        total_steps: int,
        warmup_steps: int = 0,
        final_lr_fraction: float = 0.0,
        boundaries: tuple[int, ...] = (),
        gamma: float = 0.1,
        pct_start: float = 0.25,
        div_factor: float = 25.0,
        accumulation_steps: int = 1,
    ):
        self.kind = kind
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.final_lr_fraction = float(final_lr_fraction)
        self.boundaries = tuple(int(b) for b in boundaries)
        self.gamma = float(gamma)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.accumulation_steps = int(accumulation_steps)

    def __call__(self, step):
        if self.accumulation_steps > 1:
            step = ops.floor_divide(step, self.accumulation_steps)
        step = ops.cast(step, "float32")
        peak = self.peak_lr
        if self.kind == "onecycle":
            rise = max(1.0, self.pct_start * self.total_steps)
            start, end = peak / self.div_factor, peak / self.div_factor / 1e4
            up = start + (peak - start) * step / rise
            progress = ops.clip((step - rise) / max(1.0, self.total_steps - rise), 0.0, 1.0)
            down = end + (peak - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
            return ops.where(step < rise, up, down)
        if self.kind in ("cosine", "linear"):
            span = max(1.0, self.total_steps - self.warmup_steps)
            progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            final = peak * self.final_lr_fraction
            if self.kind == "cosine":
                lr = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
            else:
                lr = peak + (final - peak) * progress
        elif self.kind in ("step", "multistep") and self.boundaries:
            passed = ops.sum(
                ops.cast(
                    step >= ops.convert_to_tensor([float(b) for b in self.boundaries]), "float32"
                )
            )
            lr = peak * ops.power(self.gamma, passed)
        else:
            lr = peak * ops.ones_like(step)
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return lr

    def get_config(self) -> dict:
        return {
            "kind": self.kind,
            "peak_lr": self.peak_lr,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_lr_fraction": self.final_lr_fraction,
            "boundaries": list(self.boundaries),
            "gamma": self.gamma,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "accumulation_steps": self.accumulation_steps,
        }


def peak_lr(train: TrainConfig) -> float:
    """The configured lr, scaled with the (global, effective) batch size when train.lr_scaling is
    linear."""
    if train.lr_scaling == "linear":
        return train.optimizer.lr * train.batch_size * train.accumulation_steps / 256
    return train.optimizer.lr


def make_schedule(train: TrainConfig, updates_per_epoch: int) -> LearningRate:
    s = train.schedule
    total = train.epochs * updates_per_epoch
    if s.name == "step":
        boundaries = range(
            s.step_epochs * updates_per_epoch, total, s.step_epochs * updates_per_epoch
        )
    elif s.name == "multistep":
        boundaries = [m * updates_per_epoch for m in s.milestones]
    else:
        boundaries = []
    return LearningRate(
        kind=s.name,
        peak_lr=peak_lr(train),
        total_steps=total,
        warmup_steps=round(s.warmup_epochs * updates_per_epoch),
        final_lr_fraction=s.final_lr_fraction,
        boundaries=tuple(boundaries),
        gamma=s.gamma,
        pct_start=s.pct_start,
        div_factor=s.div_factor,
        accumulation_steps=train.accumulation_steps,
    )
