"""The allowed range of a number in the config schema, kept as dataclass field metadata: the
schema declares it, validation.check_range enforces it and reference.py prints it."""

from __future__ import annotations


def value_range(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
) -> dict:
    """Field metadata for a number's allowed range: lo <= value <= hi, with < on a side that is
    open; None leaves that side unbounded. validation.check_range reads it."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}
