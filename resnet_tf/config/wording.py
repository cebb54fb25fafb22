"""How config messages name what was expected and what was found."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal


def type_name(expected: Any) -> str:
    """How a message names an annotation: 'an integer', "one of 'sgd', 'adam'", ..."""
    origin = typing.get_origin(expected)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(expected))
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(expected) if a is not type(None)]
        return type_name(inner[0]) + " or null"
    if origin is list:
        return "a list of " + type_name(typing.get_args(expected)[0]) + "s"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        expected, getattr(expected, "__name__", str(expected))
    )


def describe_found(value: Any) -> str:
    """A value as a message shows it: its repr and its YAML kind, e.g. "'three' (string)"."""
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


def did_you_mean(value: Any, choices: Sequence[str], prefix: str = "") -> str:
    """' (did you mean ...?)' naming the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" (did you mean {prefix}{close[0]!r}?)" if close else ""
