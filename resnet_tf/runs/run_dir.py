"""The run folder: its name, its files, and writes that a crash cannot leave half done.

outputs/<run>/
    config.yaml              resolved config + the command line that made it
    history.csv              one row per completed epoch
    metrics.json             summary (best/final validation accuracy, test accuracy, timing)
    checkpoints/best.keras   best validation accuracy so far
    checkpoints/last.keras   end of the last completed epoch (what --resume starts from)
    plots/accuracy_loss.png  redrawn after every epoch
    tb/                      TensorBoard logs
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from resnet_tf.errors import RunDirError

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



@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.keras"

    @property
    def plot(self) -> Path:
        return self.root / "plots" / "accuracy_loss.png"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"


def default_run_name(config_path: str | None, model_name: str) -> str:
    stem = Path(config_path).stem if config_path else "run"
    return f"{stem}-{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def create_run_dir(root: str | Path, name: str, *, explicit_name: bool) -> RunPaths:
    """Make a new, empty run folder; never reuse an existing one.

    An explicit name that exists is refused (the user may want --resume); an automatic name
    that exists (two runs in the same second) gets a numeric suffix.
    """
    if not re.fullmatch(r"[A-Za-z0-9._+=@-]+", name) or name in (".", ".."):
        raise RunDirError(f"run name {name!r}: expected letters, digits and . _ - + = @ only")
    root = Path(root)
    candidate = root / name
    suffix = 2
    while candidate.exists():
        if explicit_name:
            raise RunDirError(
                f"{candidate}: run folder exists; choose another --name, or continue it with "
                f"`python train.py --resume {candidate}`"
            )
        candidate = root / f"{name}-{suffix}"
        suffix += 1
    try:
        candidate.mkdir(parents=True)
    except OSError as exc:
        raise RunDirError(f"{candidate}: cannot create run folder: {exc.strerror}") from None
    paths = RunPaths(candidate)
    paths.checkpoints.mkdir()
    paths.plot.parent.mkdir()
    return paths


def open_run_dir(path: str | Path) -> RunPaths:
    """An existing run folder, for --resume or evaluation."""
    paths = RunPaths(Path(path))
    if not paths.root.is_dir():
        raise RunDirError(f"{paths.root}: run folder not found")
    if not paths.config.is_file():
        raise RunDirError(f"{paths.root}: not a run folder (no config.yaml)")
    return paths


def remove_temp_files(paths: RunPaths) -> list[Path]:
    """Delete what a killed writer left half-written (never a finished file)."""
    stale = [p for p in paths.root.rglob(".*.tmp*") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# ---------------------------------------------------------------- atomic writes


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(path: Path, save_to: Any) -> None:
    """Call `save_to(tmp_path)` then rename; tmp keeps the suffix (Keras checks '.keras')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        save_to(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2) + "\n")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


# ---------------------------------------------------------------- history.csv


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
