"""The limits on every file a user hands us, and the checks made before one is read.

A config file, a checkpoint, an exported model or an image may come from a stranger, and each
command (and the server) reads it through the same loader, so one table of limits here serves
them all: a file over its limit, or one that is not a regular file (a folder, a FIFO that would
block, a device such as /dev/zero that never ends), is refused before a byte of it is read.
docs/reliability.md lists these values and what each command says when one is passed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from resnet_tf.errors import ResnetTfError

# A config is a few KB of plain values: ample room, and a short parse of a file that is one list.
MAX_CONFIG_BYTES = 256 * 1024

# Images are shrunk to 32x32, so a larger one is a mistake or a decompression bomb: a few KB of
# PNG, GIF or WebP can claim gigapixels, and decoding them would take gigabytes.
MAX_IMAGE_BYTES = 64 << 20  # an encoded image file (or request body)
MAX_IMAGE_PIXELS = 50_000_000  # decoded pixels: every frame an animated GIF holds, summed

# A .keras file is a zip of a small config and the weights. ResNet-50 with Adam's two moments
# holds about 0.3 GB of numbers, so these leave room for every model we build and refuse a zip
# bomb before anything in it is extracted.
MAX_MODEL_FILE_BYTES = 1 << 30  # a .keras, .tflite or .onnx file, or a SavedModel folder
MAX_MODEL_ARCHIVE_BYTES = 1 << 30  # the uncompressed size of all of a .keras zip's members
MAX_MODEL_ARCHIVE_MEMBERS = 1000
MAX_MODEL_CONFIG_BYTES = 64 << 20  # config.json inside a .keras zip (Keras parses it whole)
MAX_SAVED_MODEL_GRAPH_BYTES = 256 << 20  # saved_model.pb, parsed before anything in it runs

# What a model returns as probabilities must be: finite, in [0, 1], each image's summing to 1
# within this (an INT8 model's are each rounded to a 256th).
PROBABILITY_SUM_TOLERANCE = 0.05


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def size_problem(size: int, limit: int, what: str) -> str | None:
    """The words for `size` bytes over `limit`, or None."""
    if size <= limit:
        return None
    return f"{size:,} bytes, over the limit of {limit:,} bytes for {what}"


def check_file(
    path: Path, limit: int, what: str, error: type[ResnetTfError] = ResnetTfError
) -> int:
    """The size of `path`, a regular file (or a link to one) of at most `limit` bytes; else
    `error` naming the path, what it is and what was expected (`what`: "an image" ...)."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        raise error(f"{path}: {_kind(status.st_mode)}, expected {what} file")
    problem = size_problem(status.st_size, limit, what)
    if problem is not None:
        raise error(f"{path}: {problem}")
    return status.st_size


def read_file(
    path: Path, limit: int, what: str, error: type[ResnetTfError] = ResnetTfError
) -> bytes:
    """The bytes of `path`, checked as `check_file` says on the open file itself (so a FIFO
    never blocks, and a file that grows meanwhile is still read no further than `limit`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: cannot read {what} file: No such file or directory") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} file: {exc.strerror}") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise error(f"{path}: {_kind(status.st_mode)}, expected {what} file")
        problem = size_problem(status.st_size, limit, what)
        if problem is not None:
            raise error(f"{path}: {problem}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise error(f"{path}: cannot read {what} file: {exc.strerror}") from None
    finally:
        os.close(fd)
    if total > limit:
        raise error(f"{path}: {size_problem(total, limit, what)}")
    return b"".join(chunks)


def folder_size(path: Path, limit: int, what: str, error: type[ResnetTfError]) -> int:
    """Bytes of every regular file under `path` (a SavedModel folder), refusing one over `limit`
    in all and anything in it that is not a regular file or a folder."""
    total = 0
    for root, folders, files in os.walk(path):
        for name in files:
            status = os.lstat(os.path.join(root, name))
            if not stat.S_ISREG(status.st_mode):
                raise error(f"{Path(root) / name}: {_kind(status.st_mode)} inside {what}")
            total += status.st_size
            if total > limit:
                raise error(f"{path}: over {limit:,} bytes in all, the limit for {what}")
        for name in folders:
            if os.path.islink(os.path.join(root, name)):
                raise error(f"{Path(root) / name}: a symbolic link inside {what}")
    return total
