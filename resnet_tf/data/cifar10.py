"""The CIFAR-10 format: its constants, safe decoding of the python archive or its extracted
folder, finding the source a path names, and `load_cifar10`.

The archive's batches are pickles, so they are read with a restricted unpickler that only
admits what numpy array reconstruction needs, and every member of the tar is vetted (no links,
no names escaping a folder). Decoded arrays are cached on disk (see cache.py), so only the
first load of a source decodes it.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from resnet_tf.data.cache import ArrayPair, TrainAndTest, cache_file_for, read_cache, write_cache
from resnet_tf.errors import DataError

CLASS_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)

# Per-channel statistics of pixels / 255, RGB order.
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCHES_DIR_NAME = "cifar-10-batches-py"
TRAIN_BATCH_NAMES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH_NAME = "test_batch"
REQUIRED_BATCH_NAMES = TRAIN_BATCH_NAMES + (TEST_BATCH_NAME,)

DATA_DIR_ENV = "CIFAR10_DIR"

LABEL_DTYPE = np.uint8  # labels are (N,) uint8, the same dtype Keras uses

_PIXELS_PER_IMAGE = 32 * 32 * 3

# Everything numpy needs to rebuild a pickled ndarray, and nothing else.
_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global except numpy array reconstruction.

    A plain pickle.load would run whatever code the file carries.
    """

    def __init__(self, file: io.BufferedIOBase, source_name: str):
        super().__init__(file, encoding="bytes")
        self._source_name = source_name

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise DataError(
            f"{self._source_name}: refusing to unpickle '{module}.{name}'; "
            "a CIFAR-10 batch only needs numpy arrays"
        )


def _unpickle_batch(raw: bytes, source_name: str) -> dict:
    """Unpickle one batch file's bytes with the restricted unpickler."""
    try:
        batch = _RestrictedUnpickler(io.BytesIO(raw), source_name).load()
    except DataError:
        raise
    except Exception as error:  # corrupt pickles raise many different types
        raise DataError(
            f"{source_name}: expected a pickled CIFAR-10 batch, could not unpickle it ({error})"
        ) from error
    if not isinstance(batch, dict):
        raise DataError(f"{source_name}: expected a pickled dict, found {type(batch).__name__}")
    return batch


def _batch_to_arrays(batch: dict, source_name: str) -> ArrayPair:
    """Turn one batch dict into NHWC uint8 images and (N,) labels, checking everything."""
    data = batch.get(b"data")
    labels = batch.get(b"labels")
    if data is None or labels is None:
        found = sorted(repr(key) for key in batch)
        raise DataError(
            f"{source_name}: expected keys b'data' and b'labels', found {', '.join(found)}"
        )
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        found = f"{type(data).__name__} {getattr(data, 'dtype', '')} {getattr(data, 'shape', '')}"
        raise DataError(
            f"{source_name}: expected b'data' as a uint8 (N, 3072) array, found {found}"
        )
    if data.shape[1] != _PIXELS_PER_IMAGE:
        raise DataError(f"{source_name}: expected b'data' of shape (N, 3072), found {data.shape}")
    try:
        label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise DataError(f"{source_name}: expected b'labels' as a list of ints ({error})") from error
    if label_array.shape[0] != data.shape[0]:
        raise DataError(
            f"{source_name}: expected {data.shape[0]} labels (one per image), "
            f"found {label_array.shape[0]}"
        )
    if label_array.size and (label_array.min() < 0 or label_array.max() >= NUM_CLASSES):
        raise DataError(
            f"{source_name}: expected labels in 0..9, found values from "
            f"{label_array.min()} to {label_array.max()}"
        )
    # Each row holds the red plane, then green, then blue, each 32x32 row-major.
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), label_array.astype(LABEL_DTYPE)


def _assemble(batches: dict[str, ArrayPair]) -> TrainAndTest:
    """Concatenate the five training batches in order and pair them with the test batch."""
    x_train = np.concatenate([batches[name][0] for name in TRAIN_BATCH_NAMES])
    y_train = np.concatenate([batches[name][1] for name in TRAIN_BATCH_NAMES])
    x_test, y_test = batches[TEST_BATCH_NAME]
    return (x_train, y_train), (x_test, y_test)


def _check_member_is_safe(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse links and names that would escape an extraction folder."""
    if member.issym() or member.islnk():
        raise DataError(
            f"{archive}: expected only plain files and folders, found link '{member.name}'"
        )
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise DataError(
            f"{archive}: expected relative member names, found unsafe name '{member.name}'"
        )
    if not (member.isfile() or member.isdir()):
        raise DataError(
            f"{archive}: expected only plain files and folders, "
            f"found special member '{member.name}'"
        )


def _decode_archive(archive: Path) -> TrainAndTest:
    """Read the batches straight from the gzipped tar (nothing is extracted to disk)."""
    raw_batches: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # Iterating in order reads the gzip stream once; every member is vetted,
            # even ones after the batches, so a hostile archive is refused as a whole.
            for member in tar:
                _check_member_is_safe(member, archive)
                base_name = PurePosixPath(member.name).name
                if member.isfile() and base_name in REQUIRED_BATCH_NAMES:
                    if base_name in raw_batches:
                        raise DataError(
                            f"{archive}: expected one '{base_name}', "
                            f"found a second at '{member.name}'"
                        )
                    file = tar.extractfile(member)
                    assert file is not None  # regular files always have content
                    raw_batches[base_name] = file.read()
    except DataError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataError(
            f"{archive}: expected a complete gzipped tar, "
            f"found a truncated or corrupt file ({error})"
        ) from error
    missing = [name for name in REQUIRED_BATCH_NAMES if name not in raw_batches]
    if missing:
        raise DataError(
            f"{archive}: expected batch files {', '.join(missing)}, found none by those names"
        )
    batches = {
        name: _batch_to_arrays(_unpickle_batch(raw, f"{archive}:{name}"), f"{archive}:{name}")
        for name, raw in raw_batches.items()
    }
    return _assemble(batches)


def _decode_folder(folder: Path) -> TrainAndTest:
    """Read the batch files of an extracted cifar-10-batches-py folder."""
    batches = {}
    for name in REQUIRED_BATCH_NAMES:
        batch_path = folder / name
        if not batch_path.is_file():
            raise DataError(f"{folder}: expected batch file '{name}', found no such regular file")
        raw = batch_path.read_bytes()
        batches[name] = _batch_to_arrays(_unpickle_batch(raw, str(batch_path)), str(batch_path))
    return _assemble(batches)


def _resolve_source(path: str | os.PathLike) -> Path:
    """Find the archive or the batches folder that `path` names or holds."""
    given = Path(path).expanduser()
    if not given.exists():
        raise DataError(
            f"{given}: expected {ARCHIVE_NAME} or a {BATCHES_DIR_NAME} folder, found no such path"
        )
    given = given.resolve()
    if given.is_file():
        return given
    if (given / TEST_BATCH_NAME).exists() or (given / TRAIN_BATCH_NAMES[0]).exists():
        return given
    for candidate in (given / BATCHES_DIR_NAME, given / ARCHIVE_NAME):
        if candidate.exists():
            return candidate.resolve()
    raise DataError(
        f"{given}: expected CIFAR-10 batch files, {BATCHES_DIR_NAME}/ or {ARCHIVE_NAME} in this "
        "folder, found none of them"
    )


def is_cifar10_source(path: str | os.PathLike) -> bool:
    """True for what load_cifar10 reads: a file, the batches folder, or a folder holding either.

    A missing path counts too (load_cifar10 then says clearly what it expected); any other
    folder is something else, e.g. a folder of labelled images.
    """
    given = Path(path).expanduser()
    if not given.is_dir():
        return True
    markers = (*REQUIRED_BATCH_NAMES, BATCHES_DIR_NAME, ARCHIVE_NAME)
    return any((given / name).exists() for name in markers)


def _load_with_keras() -> TrainAndTest:
    """Fall back on Keras' downloader, with a clear error when it cannot fetch the data."""
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:
        raise DataError(
            f"keras.datasets.cifar10.load_data(): expected to download CIFAR-10, failed ({error}); "
            f"pass a path to {ARCHIVE_NAME} or set {DATA_DIR_ENV}"
        ) from error
    return (
        (np.asarray(x_train, dtype=np.uint8), np.asarray(y_train).reshape(-1).astype(LABEL_DTYPE)),
        (np.asarray(x_test, dtype=np.uint8), np.asarray(y_test).reshape(-1).astype(LABEL_DTYPE)),
    )


def load_cifar10(path: str | os.PathLike | None = None) -> TrainAndTest:
    """Return ((x_train, y_train), (x_test, y_test)) like keras.datasets.cifar10.load_data().

    Images are uint8 (N, 32, 32, 3) NHWC; labels are uint8 of shape (N,), not (N, 1).
    `path` is cifar-10-python.tar.gz, the extracted cifar-10-batches-py folder, or a folder
    holding either. Without it, $CIFAR10_DIR is used, then Keras' own downloader.
    Decoded arrays are cached (see default_cache_dir) keyed on the source's path, size and mtime.
    """
    if path is None:
        path = os.environ.get(DATA_DIR_ENV) or None
    if path is None:
        return _load_with_keras()

    source = _resolve_source(path)
    files = [source] if source.is_file() else [source / name for name in REQUIRED_BATCH_NAMES]
    cache_file = cache_file_for("cifar10", source, files)
    cached = read_cache(cache_file, IMAGE_SHAPE, LABEL_DTYPE)
    if cached is not None:
        return cached
    data = _decode_archive(source) if source.is_file() else _decode_folder(source)
    write_cache(cache_file, data)
    return data
