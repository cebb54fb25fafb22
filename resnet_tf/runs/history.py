"""history.csv: one row per completed epoch, rewritten whole (atomically) after each one."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

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
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = []
        for row in csv.DictReader(f):
            parsed = {k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
            parsed["epoch"] = int(parsed["epoch"])
            rows.append(parsed)
    return rows


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
