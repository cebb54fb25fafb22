"""Loading a whole saved model (.keras): the one place that turns a bad file into one line.

Training's `model.init_from` and `train.distill.teacher`, pruning and evaluation all read
checkpoints through `load_model_file`, so a truncated, weights-only or foreign file gets the
same clear message everywhere.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np

from resnet_tf.config.limits import (
    MAX_MODEL_ARCHIVE_BYTES,
    MAX_MODEL_ARCHIVE_MEMBERS,
    MAX_MODEL_CONFIG_BYTES,
    MAX_MODEL_FILE_BYTES,
    check_file,
)
from resnet_tf.errors import ModelFileError

INPUT_SHAPE = (32, 32, 3)
CONFIG_FILE = "config.json"  # what a .keras zip holds (Keras' saving_lib)
WEIGHTS_FILES = {"model.weights.h5", "model.weights.npz"}


def load_model_file(path: Path) -> keras.Model:
    """The model saved in `path`, uncompiled; a ModelFileError names the file and the reason.

    Keras' safe mode stays on: a file holding Python code (a Lambda layer) is refused. A
    .keras archive is looked into first, so that a crafted or broken one is refused with its
    reason ("PATH: refused: ...") rather than whatever Keras' parser stumbles on.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: model file not found")
    check_file(path, MAX_MODEL_FILE_BYTES, "a model", ModelFileError)
    if path.name.endswith(".weights.h5"):
        raise ModelFileError(
            f"{path}: a weights-only file; a whole model saved as .keras is needed "
            "(e.g. outputs/<run>/checkpoints/best.keras)"
        )
    if path.suffix == ".keras":
        _inspect_archive(path)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for bad files
        reason = _refusal(error)
        if reason is not None:
            raise ModelFileError(f"{path}: refused: {reason}") from None
        raise ModelFileError(
            f"{path}: cannot load as a Keras model ({first_line(error)})"
        ) from None


def _inspect_archive(path: Path) -> None:
    """Refuse a .keras file that is not a zip of a model config and weights, that would inflate
    past the limits (its members' sizes are read from the zip's directory, which is also what
    bounds how much extracting a member can yield), or whose config asks for Python code,
    before Keras reads it."""

    def refuse(reason: str) -> ModelFileError:
        return ModelFileError(f"{path}: refused: {reason}")

    if not zipfile.is_zipfile(path):
        raise refuse(
            "not a .keras model archive (not a zip file: truncated, corrupt or another kind "
            "of file)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            _check_sizes(members, refuse)
            names = {member.filename for member in members}
            if CONFIG_FILE not in names:
                raise refuse(f"not a .keras model archive (no {CONFIG_FILE} inside)")
            if not names & WEIGHTS_FILES:
                raise refuse(f"no weights inside (expected {' or '.join(sorted(WEIGHTS_FILES))})")
            info = archive.getinfo(CONFIG_FILE)
            if info.file_size > MAX_MODEL_CONFIG_BYTES:
                raise refuse(f"{CONFIG_FILE} is {info.file_size:,} bytes; a model's is far smaller")
            config = json.loads(archive.read(CONFIG_FILE))
        code = _holds_python_code(config)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise refuse(f"damaged archive ({first_line(error)})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise refuse(f"{CONFIG_FILE} is not valid JSON") from None
    except RecursionError:
        raise refuse(f"{CONFIG_FILE} is nested too deeply for a model config") from None
    if code:
        raise refuse("contains a Lambda layer or Python function (arbitrary code)")


def _check_sizes(members: list[zipfile.ZipInfo], refuse) -> None:
    if len(members) > MAX_MODEL_ARCHIVE_MEMBERS:
        raise refuse(
            f"{len(members):,} files inside, over the limit of {MAX_MODEL_ARCHIVE_MEMBERS:,} "
            "(a .keras model holds a few)"
        )
    total = sum(member.file_size for member in members)
    if total > MAX_MODEL_ARCHIVE_BYTES:
        largest = max(members, key=lambda member: member.file_size)
        raise refuse(
            f"would inflate to {total:,} bytes ({largest.filename}: {largest.file_size:,} from "
            f"{largest.compress_size:,}), over the limit of {MAX_MODEL_ARCHIVE_BYTES:,}"
        )


def _holds_python_code(config) -> bool:
    """True if any part of a model config is a Lambda layer or a serialized Python function."""
    if isinstance(config, dict):
        if config.get("class_name") in ("Lambda", "__lambda__"):
            return True
        return any(_holds_python_code(value) for value in config.values())
    if isinstance(config, list):
        return any(_holds_python_code(value) for value in config)
    return False


def _refusal(error: BaseException) -> str | None:
    """The reason a file was refused, from Keras' own error, or None for another failure."""
    text = str(error)
    unknown = re.search(r"Could not (?:locate|deserialize) (?:class |function )?'([^']+)'", text)
    if unknown:
        return f"unknown layer class {unknown.group(1)!r} (not a Keras or resnet_tf class)"
    if "arbitrary code" in text:
        return "contains a Lambda layer or Python function (arbitrary code)"
    if isinstance(error, (zipfile.BadZipFile, zlib.error, EOFError)) or "CRC" in text:
        return f"damaged archive ({first_line(error)})"
    return None


def check_classifier(model: keras.Model, path: Path, num_classes: int) -> None:
    """Refuse a model that does not map 32x32 RGB images to `num_classes` logits."""
    try:
        outputs = model(np.zeros((1, *INPUT_SHAPE), np.float32), training=False)
    except Exception as error:
        raise ModelFileError(
            f"{path}: the model does not take 32x32 RGB images ({first_line(error)})"
        ) from None
    shape = tuple(getattr(outputs, "shape", ()))
    if shape != (1, num_classes):
        found = shape[-1] if len(shape) == 2 else f"output shape {shape}"
        raise ModelFileError(f"{path}: expected a model with {num_classes} outputs, found {found}")


def first_line(error: BaseException) -> str:
    """The first line of an error's message, at most 200 characters, for a one-line error."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."
