"""Writes that a crash cannot leave half done: a temporary file beside the target, then a rename.

A reader sees the old file or the new one, never a torn one; `RunPaths.remove_temp_files`
deletes what a killed writer left behind (the temporary names start with a dot and hold ".tmp").
A failed write (a full disk) removes its temporary file and leaves the old file as it was.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

from resnet_tf.errors import DiskFullError

# What a full disk or an exhausted quota raise (OSError.errno).
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(error: BaseException) -> bool:
    """True for an error of a full disk or quota: an OSError's errno, or the system's words
    in the message of a library that kept only those (h5py, TensorFlow's file writers)."""
    if getattr(error, "errno", None) in NO_SPACE_ERRNOS:
        return True
    return any(os.strerror(code) in str(error) for code in NO_SPACE_ERRNOS)


def disk_full_error(path: Path, error: BaseException) -> DiskFullError:
    """The one-line error for `path`, which `error` (see is_disk_full) could not write."""
    code = getattr(error, "errno", None)
    if code not in NO_SPACE_ERRNOS:
        code = errno.EDQUOT if os.strerror(errno.EDQUOT) in str(error) else errno.ENOSPC
    return DiskFullError(path, os.strerror(code).lower())


def output_folder_problem(folder: Path) -> str | None:
    """Create `folder` (and its parents) if need be; why nothing can be written there, or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create the output folder ({error.strerror})"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "output folder is not writable"
    return None


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename over it.

    The file gets the mode `open()` would give it (0666 less the umask), as the checkpoints
    do; mkstemp's private 0600 would make a run folder's text files unreadable to a group.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if is_disk_full(error):
            raise disk_full_error(path, error) from None
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
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if is_disk_full(error):
            raise disk_full_error(path, error) from None
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
