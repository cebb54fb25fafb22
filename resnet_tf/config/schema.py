"""The run configuration: YAML file + `--set key=value` overrides -> typed, validated dataclasses.

Every value a run depends on lives here, so a run folder's `config.yaml` is enough to repeat it.
Validation happens before any work starts, and each problem is reported as one line naming the
file and the dotted key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from resnet_tf.errors import ConfigError



# The choices of every option that has a fixed set of values: the one list each, which the
# data pipeline, the models, evaluation and the command lines read.
STEMS = ("cifar", "imagenet")
KERNEL_INITS = ("he_normal", "fan_in_uniform")
FLIP_MODES = ("random", "alternate")
CROP_MODES = ("zero", "reflect")
NORMALIZATIONS = ("cifar10", "imagenet", "none")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear", "step", "multistep", "onecycle")
LR_SCALINGS = ("none", "linear")
TTA_CHOICES = ("none", "flip", "flip_translate")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker")


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict:
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


@dataclass
class ModelConfig:
    name: str = "resnet18"
    stem: Literal[STEMS] = "cifar"
    zero_init_residual: bool = False
    # Keras meaning: moving = momentum * moving + (1 - momentum) * batch. PyTorch's 0.1 is 0.9 here.
    bn_momentum: float = field(default=0.9, metadata=_range(0.0, 1.0))
    bn_epsilon: float = field(default=1e-5, metadata=_range(0.0, 1.0, lo_open=True))
    # Scales every stage's (or group's) channel count: 0.5 is a quarter of the conv work.
    width_multiplier: float = field(default=1.0, metadata=_range(0.0, 16.0, lo_open=True))
    # Fast nets: each 3x3 conv starts as the identity on its first input channels (Dirac).
    identity_init: bool = False
    # Fast nets: he_normal (He fan_out convs, Keras' Glorot classifier) or fan_in_uniform
    # (uniform in +-1/sqrt(fan_in) everywhere: PyTorch's default, the init airbench is tuned for).
    kernel_init: Literal[KERNEL_INITS] = "he_normal"


@dataclass
class AugmentConfig:
    flip: bool = True
    # random: each image flipped with probability 1/2 in each epoch; alternate: a random half
    # in even epochs and the other half in odd ones, so each image is seen both ways.
    flip_mode: Literal[FLIP_MODES] = "random"
    crop_padding: int = field(default=4, metadata=_range(0, 16))
    crop_mode: Literal[CROP_MODES] = "zero"
    cutout: int = field(default=0, metadata=_range(0, 32))


@dataclass
class DataConfig:
    # Archive, extracted folder, or a folder holding either; null: $CIFAR10_DIR, then Keras' cache.
    path: str | None = None
    val_size: int = field(default=5000, metadata=_range(0, 49000))
    # Use only the first N training images (quick experiments and tests); null: all 50,000.
    subset: int | None = field(default=None, metadata=_range(10, 50000))
    normalization: Literal[NORMALIZATIONS] = "cifar10"
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class OptimizerConfig:
    name: Literal[OPTIMIZERS] = "sgd"
    lr: float = field(default=0.1, metadata=_range(0.0, 100.0, lo_open=True))
    momentum: float = field(default=0.9, metadata=_range(0.0, 1.0))
    nesterov: bool = True
    # sgd/adam: L2 penalty as in PyTorch (gradient += weight_decay * w, on every weight);
    # adamw: decoupled (w -= lr * weight_decay * w).
    weight_decay: float = field(default=5e-4, metadata=_range(0.0, 1.0))
    beta_1: float = field(default=0.9, metadata=_range(0.0, 1.0))
    beta_2: float = field(default=0.999, metadata=_range(0.0, 1.0))
    epsilon: float = field(default=1e-7, metadata=_range(0.0, 1.0, lo_open=True))
    # sgd: the batch-norm shifts (beta) train with this times the lr; their weight decay per
    # step stays that of the other weights (airbench uses 64).
    bn_bias_lr_multiplier: float = field(default=1.0, metadata=_range(0.0, 1000.0, lo_open=True))


@dataclass
class ScheduleConfig:
    name: Literal[SCHEDULES] = "cosine"
    # Linear warm-up from ~0 to the peak lr over these (possibly fractional) epochs.
    warmup_epochs: float = field(default=0.0, metadata=_range(0.0))
    # cosine, linear: the lr at the last step, as a fraction of the peak lr.
    final_lr_fraction: float = field(default=0.0, metadata=_range(0.0, 1.0))
    # step: multiply by gamma every step_epochs; multistep: at each of milestones (epochs).
    step_epochs: int = field(default=30, metadata=_range(1))
    milestones: list[int] = field(default_factory=list)
    gamma: float = field(default=0.1, metadata=_range(0.0, 1.0, lo_open=True))
    # onecycle: rise over this fraction of training from lr/div_factor, then cosine down to ~0.
    pct_start: float = field(default=0.25, metadata=_range(0.0, 1.0, lo_open=True))
    div_factor: float = field(default=25.0, metadata=_range(1.0))


@dataclass
class TrainConfig:
    epochs: int = field(default=200, metadata=_range(1, 100000))
    batch_size: int = field(default=128, metadata=_range(1, 65536))
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    label_smoothing: float = field(default=0.0, metadata=_range(0.0, 1.0))
    # Training steps per call into the compiled graph: fewer Python round trips per step.
    steps_per_execution: int = field(default=1, metadata=_range(1, 10000))
    # linear: peak lr = optimizer.lr * batch_size / 256 (Goyal et al.), so that a recipe keeps
    # working when the global batch grows with the number of devices.
    lr_scaling: Literal[LR_SCALINGS] = "none"
    # Test-time augmentation for the final test score: flip averages the logits of each test
    # image and its mirror image; flip_translate adds both moved by 1 px (6 views).
    test_tta: Literal[TTA_CHOICES] = "none"
    # Lookahead: every this many steps (and at each epoch end), the weights move to a slow
    # average of themselves whose decay grows as lookahead_max_decay * progress**3; 0: off.
    lookahead_every: int = field(default=0, metadata=_range(0, 100000))
    lookahead_max_decay: float = field(default=0.774, metadata=_range(0.0, 1.0))


@dataclass
class RuntimeConfig:
    seed: int = field(default=0, metadata=_range(0, 2**31 - 1))
    mixed_precision: Literal[PRECISIONS] = "float32"
    jit_compile: bool = False
    # Bit-exact repeatability (op determinism); slower, and a resumed run equals an unbroken one.
    deterministic: bool = False
    # Data-parallel training with tf.distribute (see resnet_tf/distribute.py); auto: mirrored
    # over all GPUs when more than one is visible, else one device.
    distribution: Literal[DISTRIBUTIONS] = "auto"
    # TensorFlow's thread pools; 0 leaves TensorFlow's choice (one thread per core for both).
    intra_op_threads: int = field(default=0, metadata=_range(0, 1024))
    inter_op_threads: int = field(default=0, metadata=_range(0, 1024))


@dataclass
class OutputConfig:
    root: str = "outputs"
    # Run folder name; null: <config name>-<model>-<date>-<time>.
    name: str | None = None


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------- building from plain data


def _type_name(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(expected))
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(expected) if a is not type(None)]
        return _type_name(inner[0]) + " or null"
    if origin is list:
        return "a list of " + _type_name(typing.get_args(expected)[0]) + "s"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        expected, getattr(expected, "__name__", str(expected))
    )


def _found(value: Any) -> str:
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})"


def _convert(value: Any, expected: Any, key: str) -> Any:
    """Check `value` against the annotation `expected`; return it converted (int -> float only)."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(expected)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key)
    if origin is Literal:
        choices = typing.get_args(expected)
        if value in choices and isinstance(value, str):
            return value
        hint = ""
        if isinstance(value, str):
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{key}: expected {_type_name(expected)}, found {_found(value)}{hint}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected {_type_name(expected)}, found {_found(value)}")
        item_type = typing.get_args(expected)[0]
        return [_convert(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 5e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif expected is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {_type_name(expected)}, found {_found(value)}")


def _check_range(value: Any, meta: dict, key: str) -> None:
    if value is None or "lo" not in meta or isinstance(value, list):
        return
    lo, hi, lo_open = meta["lo"], meta["hi"], meta["lo_open"]
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and value > hi
    if too_low or too_high:
        parts = []
        if lo is not None:
            parts.append(f"> {lo}" if lo_open else f">= {lo}")
        if hi is not None:
            parts.append(f"<= {hi}")
        raise ConfigError(f"{key}: expected a value {' and '.join(parts)}, found {value!r}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass `cls` from a mapping, refusing unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"{where}: expected a mapping of keys, found {_found(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {prefix}{close[0]!r}?)" if close else ""
            raise ConfigError(
                f"unknown key {prefix}{key}{hint}; valid keys here: {', '.join(fields)}"
            )
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in data:
            continue
        expected = hints[name]
        if dataclasses.is_dataclass(expected):
            kwargs[name] = _build(expected, data[name], key + ".")
        else:
            value = _convert(data[name], expected, key)
            _check_range(value, f.metadata, key)
            kwargs[name] = value
    return cls(**kwargs)


def _check_whole(config: Config) -> None:
    """Checks that involve more than one key, or names known only to other modules."""
    from resnet_tf.models import MODEL_NAMES  # late: importing Keras is slow
    from resnet_tf.models.registry import FAST_NETS, OPTION_DEFAULTS

    if config.model.name not in MODEL_NAMES:
        close = difflib.get_close_matches(config.model.name, MODEL_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"model.name: unknown model {config.model.name!r}{hint}; "
            f"choose one of {', '.join(MODEL_NAMES)}"
        )
    if config.runtime.deterministic and config.runtime.jit_compile:
        raise ConfigError(
            "runtime.jit_compile: XLA cannot run with runtime.deterministic: true "
            "(TensorFlow refuses it); set one of them to false"
        )
    for key in ("identity_init", "kernel_init"):
        value = getattr(config.model, key)
        if value != OPTION_DEFAULTS[key] and config.model.name not in FAST_NETS:
            raise ConfigError(
                f"model.{key}: only the fastnet models have it, found {_found(value)} with "
                f"model.name {config.model.name!r}"
            )
    optimizer = config.train.optimizer
    if optimizer.bn_bias_lr_multiplier != 1.0 and optimizer.name != "sgd":
        raise ConfigError(
            f"train.optimizer.bn_bias_lr_multiplier: only sgd has it (Adam's steps ignore a "
            f"gradient's scale), found {optimizer.bn_bias_lr_multiplier} with {optimizer.name!r}"
        )
    if config.train.lookahead_every and config.train.steps_per_execution > 1:
        raise ConfigError(
            "train.lookahead_every: Lookahead runs between steps, so it needs "
            f"train.steps_per_execution 1, found {config.train.steps_per_execution}"
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
                f"found {schedule.milestones}"
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


# ---------------------------------------------------------------- public entry points


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.epochs=3' -> (['train', 'epochs'], 3); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. train.epochs=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected a dotted key such as train.epochs")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Set each 'a.b.c=value' in the nested mapping (a copy); keys are checked later."""
    import copy

    data = copy.deepcopy(data) if data else {}
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of sections (model, data, train, ...), "
            f"found {_found(data)}"
        )
    return data


def config_from_dict(data: dict, source: str = "config") -> Config:
    try:
        config = _build(Config, data, "")
        _check_whole(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when path is None), apply overrides, validate."""
    data = read_yaml(path) if path is not None else {}
    data.pop("command", None)  # the resolved config.yaml of a run records its command line
    data = apply_overrides(data, overrides or [])
    return config_from_dict(data, str(path) if path is not None else "config")
