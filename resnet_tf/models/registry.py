"""Model names -> architectures, and ``build_model`` which returns a built model."""

from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass

import keras

from resnet_tf.models.fastnet import KERNEL_INITS, FastNet
from resnet_tf.models.resnet import ResNet

DEFAULT_INPUT_SHAPE = (32, 32, 3)
# "cifar" means the architecture's own small-image stem (the tutorial stem for
# seed_resnet18), so callers can always pass stem="cifar" safely.
STEM_OPTIONS = ("cifar", "imagenet")


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
    "fastnet_relu": ((64, 256, 256), "relu"),  # ~13 % more images/s on a CPU
}

MODEL_NAMES: tuple[str, ...] = (*ARCHITECTURES, *FAST_NETS)

OPTION_DEFAULTS = {
    "stem": "cifar",
    "zero_init_residual": False,
    "bn_momentum": 0.9,  # Keras meaning; equals PyTorch's momentum=0.1
    "bn_epsilon": 1e-5,
    "width_multiplier": 1.0,
    "identity_init": False,  # fast nets only
    "kernel_init": "he_normal",  # fast nets only
}


def check_model_name(name: str) -> None:
    """Raise a ValueError listing the valid names (and a close match) for an unknown name."""
    if name in ARCHITECTURES or name in FAST_NETS:
        return
    message = f"Unknown model name {name!r}."
    close = difflib.get_close_matches(str(name), MODEL_NAMES, n=1)
    if close:
        message += f" Did you mean {close[0]!r}?"
    raise ValueError(message + f" Valid names: {', '.join(MODEL_NAMES)}")


def _number_option(options: dict, key: str, low: float, high: float | None = None) -> float:
    """A float option in [low, high) (or > low when high is None), else a ValueError naming it."""
    value = options[key]
    valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if valid:
        valid = low <= value < high if high is not None else value > low
    if not valid:
        expected = f"a number in [{low}, {high})" if high is not None else f"a number > {low}"
        raise ValueError(f"Option {key!r} must be {expected}, got {value!r}")
    return float(value)


def _validated_options(options: dict) -> dict:
    """Fill in defaults and reject unknown or out-of-range options by name."""
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown build_model option(s) {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(OPTION_DEFAULTS)}"
        )
    merged = {**OPTION_DEFAULTS, **options}
    if merged["stem"] not in STEM_OPTIONS:
        raise ValueError(f"Option 'stem' must be one of {STEM_OPTIONS}, got {merged['stem']!r}")
    if not isinstance(merged["zero_init_residual"], bool):
        raise ValueError(
            "Option 'zero_init_residual' must be True or False, "
            f"got {merged['zero_init_residual']!r}"
        )
    if not isinstance(merged["identity_init"], bool):
        raise ValueError(
            f"Option 'identity_init' must be True or False, got {merged['identity_init']!r}"
        )
    if merged["kernel_init"] not in KERNEL_INITS:
        raise ValueError(
            f"Option 'kernel_init' must be one of {KERNEL_INITS}, got {merged['kernel_init']!r}"
        )
    merged["bn_momentum"] = _number_option(merged, "bn_momentum", 0.0, 1.0)
    merged["bn_epsilon"] = _number_option(merged, "bn_epsilon", 0.0)
    merged["width_multiplier"] = _number_option(merged, "width_multiplier", 0.0)
    return merged


def build_model(name: str, num_classes: int = 10, **options) -> keras.Model:
    """Build the named ResNet, already built for 32x32x3 inputs so weights exist.

    Options: stem ("cifar": 3x3/1 conv, no pooling, or seed_resnet18's own
    tutorial stem; "imagenet": 7x7/2 conv + 3x3/2 max-pool), zero_init_residual
    (bool, False), bn_momentum (Keras meaning, 0.9 = PyTorch's 0.1), bn_epsilon
    (1e-5), width_multiplier (scales every stage's channel count, 1.0), identity_init (fast
    nets: 3x3 convs start as Dirac kernels, False), kernel_init (fast nets: "he_normal" or
    "fan_in_uniform", see FastNet).
    """
    check_model_name(name)
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 1
    ):
        raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
    opts = _validated_options(options)
    if name in FAST_NETS:
        return _build_fast_net(name, int(num_classes), opts)
    for option in ("identity_init", "kernel_init"):
        if opts[option] != OPTION_DEFAULTS[option]:
            raise ValueError(f"Option {option!r} is for the fast nets ({', '.join(FAST_NETS)})")
    arch = ARCHITECTURES[name]
    widths = [max(1, round(width * opts["width_multiplier"])) for width in arch.stage_widths]
    model = ResNet(
        block_type=arch.block_type,
        stage_blocks=arch.stage_blocks,
        stage_widths=widths,
        num_classes=int(num_classes),
        stem="imagenet" if opts["stem"] == "imagenet" else arch.cifar_stem,
        shortcut=arch.shortcut,
        conv_bias=arch.conv_bias,
        zero_init_residual=opts["zero_init_residual"],
        bn_momentum=opts["bn_momentum"],
        bn_epsilon=opts["bn_epsilon"],
        name=name,
    )
    model.build((None, *DEFAULT_INPUT_SHAPE))
    return model


def _build_fast_net(name: str, num_classes: int, opts: dict) -> keras.Model:
    """FastNet has its own stem and no residual blocks, so those options cannot apply."""
    if opts["stem"] != "cifar" or opts["zero_init_residual"]:
        raise ValueError(
            f"{name} has a fixed patch-whitening stem and no residual blocks; "
            "stem and zero_init_residual must keep their defaults"
        )
    base_widths, activation = FAST_NETS[name]
    widths = [max(1, round(w * opts["width_multiplier"])) for w in base_widths]
    model = FastNet(
        widths=widths,
        activation=activation,
        num_classes=num_classes,
        bn_momentum=opts["bn_momentum"],
        bn_epsilon=opts["bn_epsilon"],
        identity_init=opts["identity_init"],
        kernel_init=opts["kernel_init"],
        name=name,
    )
    model.build((None, *DEFAULT_INPUT_SHAPE))
    return model
