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
        item = typing.get_args(expected)[0]
        plural = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}
        return "a list of " + plural.get(item, type_name(item))
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
        expected, getattr(expected, "__name__", str(expected))
    )


def describe_found(value: Any) -> str:
    """A value as a message shows it: its repr, shortened, and its YAML kind, e.g.
    "'three' (string)"."""
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    return f"{short_repr(value)} ({kind})"


def shorten(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` characters, ending in '...' where it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(value: Any, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters, built only as far as shown: repr() of a long list,
    or of one that holds the same list many times over, could take longer than the run."""
    parts: list[str] = []
    left = limit + 1  # one more than fits: then it is known to have been cut

    def put(text: str) -> None:
        nonlocal left
        parts.append(text[:left])
        left -= min(len(text), left)

    def walk(item: Any) -> None:
        if isinstance(item, (list, tuple, dict)):
            pairs = item.items() if isinstance(item, dict) else ((None, v) for v in item)
            opening, closing = ("{", "}") if isinstance(item, dict) else ("[", "]")
            if isinstance(item, tuple):
                opening, closing = "(", ")"
            put(opening)
            for i, (key, child) in enumerate(pairs):
                if left <= 0:
                    return
                if i:
                    put(", ")
                if isinstance(item, dict):
                    walk(key)
                    put(": ")
                walk(child)
            put(closing)
        elif isinstance(item, str):
            put(repr(item[:left]) if len(item) > left else repr(item))
        else:
            put(repr(item) if not isinstance(item, int) or abs(item) < 10**left else "<long int>")

    walk(value)
    return shorten("".join(parts), limit)


def did_you_mean(value: Any, choices: Sequence[str], prefix: str = "") -> str:
    """' (did you mean ...?)' naming the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" (did you mean {prefix}{close[0]!r}?)" if close else ""
