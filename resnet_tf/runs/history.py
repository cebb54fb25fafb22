"""history.csv: one row per completed epoch, rewritten whole (atomically) after each one."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from resnet_tf.errors import RunDirError
from resnet_tf.runs.files import atomic_write_text

HISTORY_COLUMNS = [
    "epoch",
    "lr",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "epoch_seconds",
    "images_per_s",
]


def read_history(path: Path) -> list[dict[str, float]]:
    """The rows of history.csv (none if there is no file yet); a RunDirError names the line
    and column of anything that is not a history: a missing column, a row longer than the
    header, a cell that is not a number (empty cells are NaN: no validation split)."""
    if not path.exists():
        return []
    try:
        with open(path, newline="") as f:
            lines = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RunDirError(f"{path}: cannot read the run's history ({error})") from None
    header = lines[0] if lines else []
    missing = [column for column in HISTORY_COLUMNS if column not in header]
    if missing:
        raise RunDirError(
            f"{path}: no {', '.join(repr(c) for c in missing[:3])} column in the header; "
            f"expected {','.join(HISTORY_COLUMNS)}"
        )
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise RunDirError(
                f"{path}: line {number} has {len(cells)} cells, the header {len(header)}"
            )
        rows.append({key: _number(path, number, key, text) for key, text in zip(header, cells)})
        epoch = rows[-1]["epoch"]
        if not (epoch >= 1 and float(epoch).is_integer()):
            raise RunDirError(f"{path}: line {number}, epoch: expected 1, 2, ..., found {epoch}")
        rows[-1]["epoch"] = int(epoch)
    return rows


def _number(path: Path, line: int, column: str, text: str) -> float:
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
        raise RunDirError(
            f"{path}: line {line}, column {column}: expected a number, found {shown}"
        ) from None


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    """Rewrite the whole file atomically: it is small, and a torn append is impossible."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format(row.get(k)) for k in HISTORY_COLUMNS})
    atomic_write_text(path, buffer.getvalue())


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.9g}"  # enough digits to round-trip a float32
