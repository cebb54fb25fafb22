"""Where an export goes: the output path, what `--overwrite` may replace, and the temporary
folder an export is written in before it takes its name.

`--overwrite` replaces only what export.py itself would have written: a SavedModel folder
(saved_model.pb and its own sub-folders, nothing else), a .tflite or .onnx file that is one;
never another folder, a run folder, the current folder or one holding the checkpoint.

Each export works in `.<output name>.tmp<pid>/` beside the output: the file being written and
every temporary file of the converters (Keras' intermediate SavedModel, tf2onnx's), which
tempfile puts there while the export runs. The folder is removed when the export ends, however
it ends; one left by a killed process is removed by the next export to that name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from resnet_tf.deploy.formats import ExportFormat
from resnet_tf.errors import DeployError
from resnet_tf.runs.files import output_folder_problem
from resnet_tf.runs.run_dir import RunPaths

SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "assets.extra", "fingerprint.pb"}
TFLITE_IDENTIFIER = b"TFL3"  # bytes 4..8 of a LiteRT flatbuffer
ONNX_FIRST_BYTE = 0x08  # ModelProto's first field, ir_version (field 1, a varint)


def suffix_of(fmt: ExportFormat) -> str:
    return "" if fmt.is_folder else "." + fmt.file_suffix.rsplit(".", 1)[1]


def output_path(
    fmt: ExportFormat,
    default: Path,
    output: str | os.PathLike | None,
    overwrite: bool,
    checkpoint: Path,
) -> Path:
    """The file (or SavedModel folder) to write, checked before any long work."""
    target = Path(os.path.abspath(default if output is None else Path(output).expanduser()))
    suffix = suffix_of(fmt)
    if target.suffix.lower() != suffix and (
        suffix or target.suffix.lower() in (".tflite", ".onnx", ".keras")
    ):
        expected = f"a path ending in {suffix}" if suffix else "a folder name (no file suffix)"
        raise DeployError(f"--output {target}: format {fmt.name} needs {expected}")
    if os.path.lexists(target):
        if not overwrite:
            raise DeployError(f"{target}: exists; choose another --output or pass --overwrite")
        what = _not_replaceable(fmt, target, checkpoint)
        if what is not None:
            raise DeployError(
                f"{target}: {what}; --overwrite replaces only a {fmt.name} export; choose "
                "another --output"
            )
    problem = output_folder_problem(target.parent)
    if problem is not None:
        raise DeployError(f"{target.parent}: {problem}")
    return target


def _not_replaceable(fmt: ExportFormat, target: Path, checkpoint: Path) -> str | None:
    """What `target` is, if it is not an export of `fmt` that --overwrite may replace."""
    if target.is_symlink():
        return "is a symbolic link"
    if target.is_dir():
        real, cwd = Path(os.path.realpath(target)), Path.cwd()
        if real == cwd or real in cwd.parents:
            return "is the current folder or holds it"
        if RunPaths(target).config.is_file():
            return "is a run folder"
        if real in Path(os.path.realpath(checkpoint)).parents:
            return f"holds the checkpoint {checkpoint}"
        if not fmt.is_folder:
            return "is a folder"
        names = sorted(p.name for p in target.iterdir())
        if "saved_model.pb" not in names or not set(names) <= SAVED_MODEL_ENTRIES:
            shown = ", ".join(names[:4]) + (" ..." if len(names) > 4 else "") or "nothing"
            return f"is not a SavedModel folder (it holds {shown})"
        return None
    if fmt.is_folder or not target.is_file():
        return "is a file" if target.is_file() else "is not a regular file"
    with open(target, "rb") as file:
        head = file.read(8)
    if suffix_of(fmt) == ".tflite" and head[4:8] != TFLITE_IDENTIFIER:
        return "is not a LiteRT model file (no TFL3 identifier)"
    if suffix_of(fmt) == ".onnx" and head[:1] != bytes([ONNX_FIRST_BYTE]):
        return "is not an ONNX model file"
    return None


def _work_folder_pid(target: Path, name: str) -> int | None:
    match = re.fullmatch(rf"\.{re.escape(target.name)}\.tmp(\d+)(\..*)?", name)
    return int(match.group(1)) if match else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(target: Path) -> list[Path]:
    """Remove what a killed export to `target` left beside it (its process is gone)."""
    stale = []
    if target.parent.is_dir():
        for entry in target.parent.iterdir():
            pid = _work_folder_pid(target, entry.name)
            if pid is not None and pid != os.getpid() and not _alive(pid):
                remove(entry)
                stale.append(entry)
    return stale


@contextlib.contextmanager
def work_folder(target: Path) -> Iterator[Path]:
    """`.<name>.tmp<pid>/` beside `target`, the temporary folder of tempfile while it is open,
    removed at the end whatever happens."""
    remove_stale(target)
    folder = target.parent / f".{target.name}.tmp{os.getpid()}"
    remove(folder)
    folder.mkdir()
    previous = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = previous
        remove(folder)


def move_into_place(temporary: Path, target: Path, overwrite: bool) -> None:
    """Rename the checked file to its name; without `overwrite`, never over one that appeared
    meanwhile (a second export to the same name): a file is hard-linked, which fails if the
    name exists, and a folder is renamed, which fails onto a non-empty one."""
    if overwrite and os.path.lexists(target):
        remove(target)
    try:
        if temporary.is_dir():
            os.rename(temporary, target)
        else:
            _link_or_rename(temporary, target)
    except FileExistsError:
        raise DeployError(f"{target}: appeared while exporting; nothing replaced") from None
    except OSError as error:
        if target.exists():
            raise DeployError(f"{target}: appeared while exporting; nothing replaced") from None
        raise DeployError(f"{target}: cannot write ({error.strerror})") from None


def _link_or_rename(temporary: Path, target: Path) -> None:
    try:
        os.link(temporary, target)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if target.exists():  # a file system without hard links: check, then rename
            raise FileExistsError(target) from None
        os.replace(temporary, target)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (a SavedModel)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
