"""docs/configuration.md, written from the schema: every key with its default, range, choices
and meaning, so the reference cannot drift from what the loader accepts.

The meaning of a key is the comment written above its field in schema.py (data_schema.py for
the data section), and a section's is its class docstring: the schema stays the one place where
an option is described.

python -m resnet_tf.config.reference > docs/configuration.md   (a test compares the two)
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any, Literal

from resnet_tf.config import choices, schema
from resnet_tf.config.wording import type_name

# A key whose choices are checked with other keys (combinations.check_model) rather than by
# its annotation.
CHOICES_CHECKED_ELSEWHERE = {"model.name": choices.MODEL_NAMES}

INTRO = """\
# Configuration reference

<!-- Written by `python -m resnet_tf.config.reference > docs/configuration.md` from
resnet_tf/config/schema.py and data_schema.py; tests/config/test_reference.py fails when they
differ. -->

A run is one YAML file of five sections; every key is optional and takes the default below.
`python train.py --config FILE --set section.key=value` overrides any key with the same checks
as the file, and a bad key or value stops the run before any work with one line naming it
(see [training.md](training.md#the-config-file-and---set)). A run folder's `config.yaml` holds
every key, resolved, so it is enough to repeat the run.

Ranges read `lo <= value <= hi`; `(` or `)` marks a side that excludes its bound. Numbers may
be written as `5e-4`; `nan` and `inf` are refused everywhere.
"""


def field_comments(cls: type) -> dict[str, str]:
    """Each field's comment: the `#` lines written right above it in the class's source. Fields
    written on the lines right after a commented one, with no blank line, share its comment
    (`beta_1`, `beta_2`, `epsilon` under one)."""
    lines = inspect.getsource(cls).splitlines()
    names = {f.name for f in dataclasses.fields(cls)}
    comments: dict[str, str] = {}
    pending: list[str] = []
    shared = ""
    for line in lines:
        text = line.strip()
        if text.startswith("#"):
            pending.append(text.lstrip("#").strip())
            continue
        name = text.split(":", 1)[0]
        if name in names and line.startswith("    ") and not line.startswith("     "):
            shared = " ".join(pending) if pending else shared
            comments[name] = shared
        elif not text or not line.startswith("     "):
            shared = ""  # a blank line or another statement ends a group
        pending = []
    return comments


def _yaml_value(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _allowed(key: str, expected: Any, meta: typing.Mapping) -> str:
    """What a key accepts: its choices, or its type and range."""
    if key in CHOICES_CHECKED_ELSEWHERE:
        return "one of " + ", ".join(f"`{c}`" for c in CHOICES_CHECKED_ELSEWHERE[key])
    inner = expected
    nullable = False
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        nullable = type(None) in typing.get_args(expected)
        inner = next(a for a in typing.get_args(expected) if a is not type(None))
    if typing.get_origin(inner) is Literal:
        text = "one of " + ", ".join(f"`{c}`" for c in typing.get_args(inner))
    else:
        text = type_name(inner)
        if "lo" in meta:
            text += " " + _range(meta)
    return text + (", or `null`" if nullable else "")


def _range(meta: typing.Mapping) -> str:
    lo, hi = meta["lo"], meta["hi"]
    left = "(" if meta["lo_open"] or lo is None else "["
    right = ")" if meta["hi_open"] or hi is None else "]"
    low = "-inf" if lo is None else _number(lo)
    high = "inf" if hi is None else _number(hi)
    return f"in {left}{low}, {high}{right}"


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _rows(cls: type, prefix: str) -> tuple[list[str], list[tuple[str, type]]]:
    """The table rows of `cls`'s plain keys, and its nested sections to describe after it."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    defaults = cls()
    rows, nested = [], []
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        expected = hints[f.name]
        if dataclasses.is_dataclass(expected):
            nested.append((key, expected))
            continue
        meaning = comments.get(f.name, "").replace("|", "\\|").replace("<", "&lt;")
        default = _yaml_value(getattr(defaults, f.name))
        rows.append(f"| `{key}` | {default} | {_allowed(key, expected, f.metadata)} | {meaning} |")
    return rows, nested


def _section(key: str, cls: type) -> list[str]:
    lines = [f"## `{key}`", ""]
    doc = inspect.getdoc(cls)
    if doc:
        lines += [doc, ""]
    rows, nested = _rows(cls, key + ".")
    if rows:
        lines += ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |", *rows, ""]
    for sub_key, sub_cls in nested:
        lines += _section(sub_key, sub_cls)
    return lines


def reference_markdown() -> str:
    """The whole reference page, one section per dataclass of the schema."""
    lines = [INTRO]
    hints = typing.get_type_hints(schema.Config)
    for f in dataclasses.fields(schema.Config):
        lines += _section(f.name, hints[f.name])
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
