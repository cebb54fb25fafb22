"""Config files and `--set key=value` overrides -> plain data, and load_config, which checks it.

Reading is kept apart from checking so that a file's problems (missing, not YAML, not a
mapping) are reported as such before any key is looked at.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from resnet_tf.config.schema import Config
from resnet_tf.config.validation import config_from_dict
from resnet_tf.config.wording import describe_found
from resnet_tf.errors import ConfigError


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
    """Set each 'a.b.c=value' in the nested mapping (a copy); keys are checked later, with the
    file's, so a mistyped override gets the same did-you-mean hint."""
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
    """A config file's top-level mapping ({} for an empty file), or a ConfigError naming the
    file (and the line of a YAML syntax error)."""
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
            f"found {describe_found(data)}"
        )
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or the defaults when path is None), apply overrides, validate."""
    data = read_yaml(path) if path is not None else {}
    data.pop("command", None)  # the resolved config.yaml of a run records its command line
    data = apply_overrides(data, overrides or [])
    return config_from_dict(data, str(path) if path is not None else "config")
