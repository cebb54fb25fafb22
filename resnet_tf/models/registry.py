"""Model names -> architectures, and ``build_model`` which returns a built model.

The names and every option's default, range and choices come from the config schema
(resnet_tf/config/schema.py): build_model checks its options exactly as a config file's model
section is checked, so whatever a config accepts builds, and nothing else does.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import keras

from resnet_tf.config.choices import FAST_NET_NAMES, MODEL_NAMES, RESNET_NAMES
from resnet_tf.config.combinations import check_model, check_model_name
from resnet_tf.config.schema import ModelConfig
from resnet_tf.config.validation import build_dataclass
from resnet_tf.config.wording import describe_found
from resnet_tf.errors import ConfigError
from resnet_tf.models.fastnet import FastNet
from resnet_tf.models.resnet import ResNet

__all__ = [
    "ARCHITECTURES",
    "FAST_NETS",
    "MODEL_NAMES",
    "build_from_config",
    "build_model",
    "model_options",
]

DEFAULT_INPUT_SHAPE = (32, 32, 3)


@dataclass(frozen=True)
class Architecture:
    """The fixed shape of a named network; build_model options adjust the rest."""

    block_type: str
    stage_blocks: tuple[int, ...]
    stage_widths: tuple[int, ...]
    cifar_stem: str = "cifar"  # ResNet stem used when build_model gets stem="cifar"
    shortcut: str = "projection"
    conv_bias: bool = False


_IMAGENET_WIDTHS = (64, 128, 256, 512)
_CIFAR_WIDTHS = (16, 32, 64)


def _cifar_resnet(blocks_per_stage: int) -> Architecture:
    """He et al. 2015 CIFAR ResNet-(6n+2): three stages, option-A shortcuts."""
    return Architecture("basic", (blocks_per_stage,) * 3, _CIFAR_WIDTHS, shortcut="zero_pad")


ARCHITECTURES: dict[str, Architecture] = {
    "resnet18": Architecture("basic", (2, 2, 2, 2), _IMAGENET_WIDTHS),
    "resnet34": Architecture("basic", (3, 4, 6, 3), _IMAGENET_WIDTHS),
    "resnet50": Architecture("bottleneck", (3, 4, 6, 3), _IMAGENET_WIDTHS),
    "resnet101": Architecture("bottleneck", (3, 4, 23, 3), _IMAGENET_WIDTHS),
    "resnet152": Architecture("bottleneck", (3, 8, 36, 3), _IMAGENET_WIDTHS),
    "resnet20": _cifar_resnet(3),
    "resnet32": _cifar_resnet(5),
    "resnet44": _cifar_resnet(7),
    "resnet56": _cifar_resnet(9),
    "resnet110": _cifar_resnet(18),
    # The popular TF2 tutorial net: biased convs, 1x1 biased downsample without BN.
    "seed_resnet18": Architecture(
        "basic", (2, 2, 2, 2), _IMAGENET_WIDTHS, cifar_stem="seed", shortcut="conv", conv_bias=True
    ),
}

# Compact nets for the fast recipe (configs/fast.yaml): name -> (group widths, activation).
FAST_NETS: dict[str, tuple[tuple[int, ...], str]] = {
    "fastnet": ((64, 256, 256), "gelu"),
    "fastnet_relu": ((64, 256, 256), "relu"),  # ReLU costs less than GELU on a CPU
}

if tuple(ARCHITECTURES) != RESNET_NAMES or tuple(FAST_NETS) != FAST_NET_NAMES:
    # A name added here but not to the schema could never be chosen in a config (or the
    # reverse would pass the config and fail here), so refuse to start instead.
    raise ImportError(
        "resnet_tf/models/registry.py and resnet_tf/config/schema.py list different models: "
        f"{(*ARCHITECTURES, *FAST_NETS)} != {MODEL_NAMES}"
    )


def model_options(name: str, **options) -> ModelConfig:
    """The model section that `build_model(name, **options)` stands for, checked as a config
    file's is (schema defaults for what is not given); a ConfigError names the bad option."""
    check_model_name(name)  # first, as a bad name makes every other message moot
    model = build_dataclass(ModelConfig, {**options, "name": name}, "model.")
    check_model(model)
    return model


def build_model(name: str, num_classes: int = 10, **options) -> keras.Model:
    """Build the named model, already built for 32x32x3 inputs so weights exist.

    `options` are the keys of the config's model section (ModelConfig: stem,
    zero_init_residual, bn_momentum, bn_epsilon, width_multiplier, identity_init, kernel_init),
    with the same defaults and ranges; a bad one raises a ConfigError naming it.
    """
    return build_from_config(model_options(name, **options), num_classes)


def build_from_config(model: ModelConfig, num_classes: int = 10) -> keras.Model:
    """Build the model a config's (already checked) model section describes."""
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 1
    ):
        raise ConfigError(
            f"num_classes: expected an integer >= 1, found {describe_found(num_classes)}"
        )
    if model.name in FAST_NETS:
        built = _fast_net(model.name, int(num_classes), model)
    else:
        built = _resnet(model.name, int(num_classes), model)
    built.build((None, *DEFAULT_INPUT_SHAPE))
    return built


def _scaled(widths: tuple[int, ...], multiplier: float) -> list[int]:
    return [max(1, round(width * multiplier)) for width in widths]


def _resnet(name: str, num_classes: int, opts: ModelConfig) -> keras.Model:
    arch = ARCHITECTURES[name]
    return ResNet(
        block_type=arch.block_type,
        stage_blocks=arch.stage_blocks,
        stage_widths=_scaled(arch.stage_widths, opts.width_multiplier),
        num_classes=num_classes,
        stem="imagenet" if opts.stem == "imagenet" else arch.cifar_stem,
        shortcut=arch.shortcut,
        conv_bias=arch.conv_bias,
        zero_init_residual=opts.zero_init_residual,
        bn_momentum=opts.bn_momentum,
        bn_epsilon=opts.bn_epsilon,
        name=name,
    )


def _fast_net(name: str, num_classes: int, opts: ModelConfig) -> keras.Model:
    """FastNet: its own stem and no residual blocks (check_model kept stem and
    zero_init_residual at their defaults)."""
    base_widths, activation = FAST_NETS[name]
    return FastNet(
        widths=_scaled(base_widths, opts.width_multiplier),
        activation=activation,
        num_classes=num_classes,
        bn_momentum=opts.bn_momentum,
        bn_epsilon=opts.bn_epsilon,
        identity_init=opts.identity_init,
        kernel_init=opts.kernel_init,
        name=name,
    )
