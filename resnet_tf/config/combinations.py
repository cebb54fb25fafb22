"""The checks that involve more than one key of a config, run once it is built.

A value can be valid on its own and still do nothing, or contradict another key, in a whole
config: a ResNet option on a fast net, Muon's keys with SGD, a TTA share without a TTA. Each is
refused here with one line that names both keys.
"""

from __future__ import annotations

import re
from typing import Any

from resnet_tf.config.choices import (
    FAST_NET_NAMES,
    FAST_NET_OPTIONS,
    MODEL_NAMES,
    RESNET_NAMES,
    RESNET_OPTIONS,
)
from resnet_tf.config.schema import Config, DistillConfig, ModelConfig, OptimizerConfig
from resnet_tf.config.wording import describe_found, did_you_mean, short_repr
from resnet_tf.errors import ConfigError


def check_model_name(name: Any, key: str = "model.name") -> None:
    """Refuse a name that is not in choices.MODEL_NAMES, suggesting the closest one."""
    if name in MODEL_NAMES and isinstance(name, str):
        return
    raise ConfigError(
        f"{key}: unknown model {name!r}{did_you_mean(name, MODEL_NAMES)}; "
        f"choose one of {', '.join(MODEL_NAMES)}"
    )


def check_model(model: ModelConfig) -> None:
    """The model section's checks that involve its name: a known model, and options of the
    other model family left at their defaults (they would be silently ignored otherwise)."""
    check_model_name(model.name)
    families = (
        (RESNET_NAMES, FAST_NET_OPTIONS, "only the fastnet models have it"),
        (
            FAST_NET_NAMES,
            RESNET_OPTIONS,
            "only the ResNets have it (the fastnet models have a fixed patch-whitening stem "
            "and no residual blocks)",
        ),
    )
    for names, options, reason in families:
        changed = set_keys(model, options)
        if model.name in names and changed:
            key, value = changed[0]
            raise ConfigError(
                f"model.{key}: {reason}, found {describe_found(value)} with "
                f"model.name {model.name!r}"
            )


def set_keys(section: Any, keys: tuple[str, ...]) -> list[tuple[str, Any]]:
    """(key, value) of those `keys` of a config section that differ from their defaults."""
    defaults = type(section)()
    return [
        (key, getattr(section, key))
        for key in keys
        if getattr(section, key) != getattr(defaults, key)
    ]


def check_distill(distill: DistillConfig) -> None:
    """Distillation keys other than the teacher do nothing without one: refuse them there."""
    changed = set_keys(distill, ("temperature", "alpha", "teacher_sha256"))
    if distill.teacher is None and changed:
        key, value = changed[0]
        raise ConfigError(
            f"train.distill.{key}: only used with train.distill.teacher, which is null, "
            f"found {describe_found(value)}; set a teacher or drop the key"
        )
    sha = distill.teacher_sha256
    if sha is not None and not re.fullmatch("[0-9a-f]{64}", sha):
        raise ConfigError(
            f"train.distill.teacher_sha256: expected 64 lowercase hex digits (a SHA-256, as "
            f"sha256sum prints it), found {describe_found(sha)}"
        )


def check_muon_keys(optimizer: OptimizerConfig) -> None:
    """The muon_ keys are refused with another optimizer, where they would do nothing."""
    changed = set_keys(optimizer, ("muon_lr", "muon_momentum", "muon_ns_steps"))
    if optimizer.name != "muon" and changed:
        key, value = changed[0]
        raise ConfigError(
            f"train.optimizer.{key}: only the muon optimizer has it, found "
            f"{describe_found(value)} with {optimizer.name!r}; set train.optimizer.name to "
            "muon or drop the key"
        )


def check_whitening_bias(config: Config) -> None:
    epochs = config.train.whitening_bias_epochs
    if epochs == 0:
        return
    if config.model.name not in FAST_NET_NAMES:
        raise ConfigError(
            f"train.whitening_bias_epochs: only the fast nets {FAST_NET_NAMES} have a whitening "
            f"layer, found {epochs} with model.name {config.model.name!r}"
        )
    if config.train.optimizer.name not in ("sgd", "muon"):
        raise ConfigError(
            f"train.whitening_bias_epochs: only sgd and muon can ramp the whitening bias down, "
            f"found {epochs} with train.optimizer.name {config.train.optimizer.name!r}"
        )


def check_whole(config: Config) -> None:
    """Checks that involve more than one key."""
    check_model(config.model)
    if config.model.reinitialize and config.model.init_from is None:
        raise ConfigError(
            "model.reinitialize: redraws the weights of model.init_from's architecture, but "
            "model.init_from is null; set it to a .keras checkpoint or run folder"
        )
    if config.runtime.deterministic and config.runtime.jit_compile:
        raise ConfigError(
            "runtime.jit_compile: XLA cannot run with runtime.deterministic: true "
            "(TensorFlow refuses it); set one of them to false"
        )
    optimizer = config.train.optimizer
    if optimizer.bn_bias_lr_multiplier != 1.0 and optimizer.name not in ("sgd", "muon"):
        raise ConfigError(
            f"train.optimizer.bn_bias_lr_multiplier: only sgd and muon have it (Adam's steps "
            f"ignore a gradient's scale), found {optimizer.bn_bias_lr_multiplier} with "
            f"{optimizer.name!r}"
        )
    check_muon_keys(optimizer)
    if config.train.test_tta_fraction != 1.0 and config.train.test_tta == "none":
        raise ConfigError(
            f"train.test_tta_fraction: the share of test images given test_tta's views, but "
            f"train.test_tta is 'none', found {config.train.test_tta_fraction}; set test_tta "
            "or drop the key"
        )
    check_whitening_bias(config)
    if config.train.lookahead_every and config.train.steps_per_execution > 1:
        raise ConfigError(
            "train.lookahead_every: Lookahead runs between steps, so it needs "
            f"train.steps_per_execution 1, found {config.train.steps_per_execution}"
        )
    check_distill(config.train.distill)
    augment = config.data.augment
    if augment.randaugment.num_ops > 0 and augment.autoaugment != "none":
        raise ConfigError(
            f"data.augment.autoaugment: one image policy at a time, found {augment.autoaugment!r} "
            f"with data.augment.randaugment.num_ops {augment.randaugment.num_ops}; set "
            "autoaugment to 'none' or num_ops to 0"
        )
    schedule = config.train.schedule
    if schedule.warmup_epochs >= config.train.epochs and schedule.warmup_epochs > 0:
        raise ConfigError(
            f"train.schedule.warmup_epochs: expected fewer than train.epochs "
            f"({config.train.epochs}), found {schedule.warmup_epochs}"
        )
    if schedule.name == "multistep":
        if not schedule.milestones:
            raise ConfigError(
                "train.schedule.milestones: the multistep schedule needs a "
                "non-empty list of epochs, found []"
            )
        if sorted(schedule.milestones) != schedule.milestones or schedule.milestones[0] < 1:
            raise ConfigError(
                f"train.schedule.milestones: expected increasing epochs >= 1, "
                f"found {short_repr(schedule.milestones)}"
            )
    n_train = config.data.subset if config.data.subset is not None else 50000
    if config.data.val_size >= n_train:
        raise ConfigError(
            f"data.val_size: expected fewer than the {n_train} training images, "
            f"found {config.data.val_size}"
        )
    if n_train - config.data.val_size < config.train.batch_size:
        raise ConfigError(
            f"train.batch_size: expected at most the {n_train - config.data.val_size} training "
            f"images left after the validation split, found {config.train.batch_size}"
        )
    effective = config.train.batch_size * config.train.accumulation_steps
    if n_train - config.data.val_size < effective:
        raise ConfigError(
            f"train.accumulation_steps: one weight update needs {effective} training images "
            f"(batch_size x accumulation_steps), but {n_train - config.data.val_size} are left "
            f"after the validation split, found {config.train.accumulation_steps}"
        )
