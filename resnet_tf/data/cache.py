"""The on-disk cache of decoded CIFAR-10 arrays.

Decoding means gunzipping and unpickling the whole archive; the cached uncompressed .npz
loads far faster. The cache file is named after a fingerprint of the source
(path, sizes, mtimes), so a changed source misses it, and it is never trusted blindly: a
damaged or oddly shaped file counts as a miss and is rebuilt. A cache that cannot be written
costs speed, not correctness, so it warns once per process and loading carries on.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ArrayPair = tuple[np.ndarray, np.ndarray]
TrainAndTest = tuple[ArrayPair, ArrayPair]

CACHE_DIR_ENV = "RESNET_TF_CACHE_DIR"
# Bump when the decoding or the cache layout changes, so old cache files are ignored.
CACHE_FORMAT_VERSION = 1

_ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")

_warned_about_cache = False


def default_cache_dir() -> Path:
    """Where decoded arrays are cached: $RESNET_TF_CACHE_DIR, else the XDG cache folder."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "resnet_tf"


def cache_file_for(prefix: str, source: Path, files: Sequence[Path]) -> Path:
    """The cache file for `source`, named after a hash of its path and its files' sizes and
    mtimes (a missing file counts too), so any change to the source gives a new name."""
    parts = [f"v{CACHE_FORMAT_VERSION}", str(source)]
    for file in files:
        try:
            stat = file.stat()
            parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            parts.append(f"{file.name}:missing")
    fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
    return default_cache_dir() / f"{prefix}-{fingerprint}.npz"


def _warn_cache_once(message: str) -> None:
    global _warned_about_cache
    if not _warned_about_cache:
        _warned_about_cache = True
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def read_cache(
    cache_file: Path, image_shape: tuple[int, ...], label_dtype: type[np.generic]
) -> TrainAndTest | None:
    """Return cached ((x_train, y_train), (x_test, y_test)), or None when there is no usable
    cache file: missing, unreadable, or not uint8 images of `image_shape` with one label each."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in _ARRAY_NAMES}
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None
    for prefix in ("train", "test"):
        images, labels = arrays[f"x_{prefix}"], arrays[f"y_{prefix}"]
        if (
            images.dtype != np.uint8
            or images.shape[1:] != image_shape
            or labels.shape != (images.shape[0],)
            or labels.dtype != label_dtype
        ):
            return None
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def write_cache(cache_file: Path, data: TrainAndTest) -> None:
    """Write the arrays atomically (temp file, then rename), or warn once and carry on."""
    (x_train, y_train), (x_test, y_test) = data
    temp_name = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=cache_file.parent, prefix=cache_file.name + ".", suffix=".tmp", delete=False
        ) as temp:
            temp_name = temp.name
            np.savez(temp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        os.replace(temp_name, cache_file)
    except OSError as error:
        if temp_name is not None:
            try:
                os.unlink(temp_name)
            except OSError:
                pass
        _warn_cache_once(
            f"Could not write the CIFAR-10 cache in {cache_file.parent} ({error}); "
            f"loading will decode the archive every time. Set {CACHE_DIR_ENV} to a writable folder."
        )
