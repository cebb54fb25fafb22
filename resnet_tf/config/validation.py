"""Plain data (parsed YAML, keyword arguments) -> the schema's dataclasses, or one clear line.

Every problem is a ConfigError that names the dotted key, what was expected and what was found,
with a did-you-mean hint for a near miss. The same checks serve config files (config_from_dict)
and `build_model`'s options (resnet_tf/models/registry.py), so both accept the same values. Once
built, a config's checks of several keys together run (combinations.py).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any, Literal

from resnet_tf.config.combinations import check_whole
from resnet_tf.config.schema import Config
from resnet_tf.config.wording import describe_found, did_you_mean, shorten, type_name
from resnet_tf.errors import ConfigError

T = typing.TypeVar("T")

# ---------------------------------------------------------------- one value, one dataclass


def convert(value: Any, expected: Any, key: str, *, numbers_in_strings: bool = False) -> Any:
    """Check `value` against the annotation `expected`; return it converted (to float for a
    number field). numbers_in_strings: accept '5e-4' for a number, as YAML 1.1 reads an
    exponent without a dot as a string. A number must be finite: nan and inf are refused."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(expected)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return convert(value, inner[0], key, numbers_in_strings=numbers_in_strings)
    if origin is Literal:
        choices = typing.get_args(expected)
        if value in choices and isinstance(value, str):
            return value
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ConfigError(
            f"{key}: expected {type_name(expected)}, found {describe_found(value)}{hint}"
        )
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(
                f"{key}: expected {type_name(expected)}, found {describe_found(value)}"
            )
        item_type = typing.get_args(expected)[0]
        return [
            convert(v, item_type, f"{key}[{i}]", numbers_in_strings=numbers_in_strings)
            for i, v in enumerate(value)
        ]
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif expected is float:
        number = None
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            number = _to_float(value)
        elif isinstance(value, str) and numbers_in_strings:
            try:
                number = _to_float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{key}: expected a finite number, found {describe_found(value)}")
            return number
    elif expected is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {type_name(expected)}, found {describe_found(value)}")


def _to_float(value: Any) -> float:
    """float(value), with an integer too large for a float as inf (then refused as such)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def check_range(value: Any, meta: typing.Mapping, key: str) -> None:
    """Refuse a number outside the field's ranges.value_range metadata (if it has one)."""
    if value is None or "lo" not in meta or isinstance(value, list):
        return
    lo, hi, lo_open, hi_open = meta["lo"], meta["hi"], meta["lo_open"], meta["hi_open"]
    # Written as "not inside" so that NaN, which compares false with everything, is refused.
    too_low = lo is not None and not (value > lo if lo_open else value >= lo)
    too_high = hi is not None and not (value < hi if hi_open else value <= hi)
    if too_low or too_high:
        parts = []
        if lo is not None:
            parts.append(f"> {lo}" if lo_open else f">= {lo}")
        if hi is not None:
            parts.append(f"< {hi}" if hi_open else f"<= {hi}")
        raise ConfigError(f"{key}: expected a value {' and '.join(parts)}, found {value!r}")


def build_dataclass(
    cls: type[T], data: Any, prefix: str = "", *, numbers_in_strings: bool = False
) -> T:
    """Build dataclass `cls` (and its nested sections) from a mapping, refusing unknown keys,
    wrong types and out-of-range numbers; a missing key takes the schema's default. `prefix`
    is the dotted path of `data` in the whole config ('model.'), which messages name."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"{where}: expected a mapping of keys, found {describe_found(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"unknown key {prefix}{shorten(str(key))}{did_you_mean(key, fields, prefix)}; "
                f"valid keys here: {', '.join(fields)}"
            )
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in data:
            continue
        expected = hints[name]
        if dataclasses.is_dataclass(expected):
            kwargs[name] = build_dataclass(
                expected, data[name], key + ".", numbers_in_strings=numbers_in_strings
            )
        else:
            value = convert(data[name], expected, key, numbers_in_strings=numbers_in_strings)
            check_range(value, f.metadata, key)
            kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(data: dict, source: str = "config") -> Config:
    """A whole Config from parsed YAML, fully checked; messages start with `source` (the
    file). Numbers may come as strings here, as YAML 1.1 reads 5e-4."""
    try:
        config = build_dataclass(Config, data, "", numbers_in_strings=True)
        check_whole(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config
