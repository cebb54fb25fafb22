"""Config files and `--set key=value` overrides -> plain data, and load_config, which checks it.

Reading is kept apart from checking so that a file's problems (missing, too large, not UTF-8,
not YAML, empty, not a mapping) are reported as such before any key is looked at.

A config is a few KB of plain values, so reading refuses what no config needs and what could
make reading itself eat the machine: files above MAX_CONFIG_BYTES, and YAML anchors/aliases
(an alias bomb expands a few lines into a value of billions of items wherever it is walked).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from resnet_tf.config.limits import MAX_CONFIG_BYTES
from resnet_tf.config.schema import Config
from resnet_tf.config.validation import config_from_dict
from resnet_tf.config.wording import describe_found, short_repr, shorten
from resnet_tf.errors import ConfigError

# libyaml's loader where PyYAML was built with it: several times faster than the Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# What reading a YAML text can raise besides YAMLError: ValueError for an integer of more than
# 4300 digits or a bad date, RecursionError for deep nesting in the Python loader.
_PARSE_ERRORS = (yaml.YAMLError, ValueError, OverflowError, RecursionError)


def parse_yaml(text: str, source: str) -> Any:
    """The value a YAML text holds (None for an empty one), refusing anchors and aliases with a
    ConfigError that names `source`. Syntax errors are left to the caller (see _PARSE_ERRORS).

    Aliases are refused rather than expanded with a budget: a config's sections have fixed
    keys, so an alias can only repeat a value, and a resolved config.yaml never holds one."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{source}: {len(text):,} characters of YAML, more than a config may hold "
            f"({MAX_CONFIG_BYTES:,})"
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_aliases(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _refuse_aliases(root: yaml.Node, source: str) -> None:
    """Raise if any node of the composed document is reached twice: that is what an alias is.
    Walked with a stack and a set, so a bomb costs its written size, not its expanded one."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            mark = node.start_mark
            raise ConfigError(
                f"{source}: line {mark.line + 1}, column {mark.column + 1}: YAML anchors and "
                "aliases (&name, *name) are not allowed in a config; write the value out"
            )
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.epochs=3' -> (['train', 'epochs'], 3); the value is read as YAML (text that is
    not valid YAML stays a string), with a config file's limits."""
    shown = short_repr(text)
    if "=" not in text:
        raise ConfigError(f"--set {shown}: expected key=value, e.g. train.epochs=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {shown}: expected a dotted key such as train.epochs")
    try:
        value = parse_yaml(raw, f"--set {shown}") if raw.strip() else None
    except _PARSE_ERRORS:
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


def read_text(path: Path) -> str:
    """A config file's text, or a ConfigError naming the file: not found, unreadable, larger
    than MAX_CONFIG_BYTES (checked before anything is parsed) or not UTF-8."""
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
            if len(raw) > MAX_CONFIG_BYTES:
                size = max(path.stat().st_size, len(raw))
                raise ConfigError(
                    f"{path}: config file is {size:,} bytes, more than the limit of "
                    f"{MAX_CONFIG_BYTES:,} (a config is a few KB)"
                )
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            f"(line {line}); save the file as UTF-8"
        ) from None


def read_yaml(path: str | Path) -> dict:
    """A config file's top-level mapping, or a ConfigError naming the file (and the line of a
    YAML syntax error). An empty file is refused: it would silently mean every default."""
    path = Path(path)
    text = read_text(path)
    try:
        data = parse_yaml(text, str(path))
    except _PARSE_ERRORS as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where} invalid YAML: {shorten(problem, 200)}") from None
    if data is None:
        raise ConfigError(
            f"{path}: is empty: expected a mapping of sections (model, data, train, ...); "
            "write {} for all the defaults"
        )
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
