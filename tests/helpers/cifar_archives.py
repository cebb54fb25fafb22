"""Build small CIFAR-10 archives in the real on-disk format, and other data for tests."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np

CLASS_NAMES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]
BATCH_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def fake_batch_arrays(
    n_images: int, seed: int, first_label: int = 0
) -> tuple[np.ndarray, list[int]]:
    """Random planar-RGB rows (n, 3072) uint8 and labels cycling 0..9 from `first_label`."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n_images, 3072), dtype=np.uint8)
    labels = [(first_label + i) % 10 for i in range(n_images)]
    return data, labels


def batch_contents(
    n_train_per_batch: int, n_test: int, seed: int
) -> dict[str, tuple[np.ndarray, list[int]]]:
    """The (data, labels) of every batch file an archive built with these arguments holds."""
    contents = {}
    for number, name in enumerate(BATCH_NAMES):
        if name == "test_batch":
            n_images, first_label = n_test, 0
        else:  # labels cycle 0..9 across the whole training set
            n_images, first_label = n_train_per_batch, (number * n_train_per_batch) % 10
        contents[name] = fake_batch_arrays(n_images, seed * 100 + number, first_label)
    return contents


def expected_arrays(n_train_per_batch: int = 40, n_test: int = 40, seed: int = 0):
    """((x_train, y_train), (x_test, y_test)) that load_cifar10 should return for the archive."""
    contents = batch_contents(n_train_per_batch, n_test, seed)

    def to_nhwc(data: np.ndarray) -> np.ndarray:
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

    train_names = BATCH_NAMES[:5]
    x_train = np.concatenate([to_nhwc(contents[name][0]) for name in train_names])
    y_train = np.concatenate([np.array(contents[name][1], dtype=np.int64) for name in train_names])
    x_test = to_nhwc(contents["test_batch"][0])
    y_test = np.array(contents["test_batch"][1], dtype=np.int64)
    return (x_train, y_train), (x_test, y_test)


def add_bytes_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    """Add a regular file called `name` holding `payload` to an open tar."""
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_cifar_archive(
    path: str | os.PathLike,
    n_train_per_batch: int = 40,
    n_test: int = 40,
    seed: int = 0,
    replace: dict[str, bytes] | None = None,
    omit: tuple[str, ...] = (),
) -> Path:
    """Write a gzipped tar laid out like cifar-10-python.tar.gz and return its path.

    `replace` maps a batch name to raw bytes to store instead (for corrupt-data tests);
    `omit` leaves batch files out.
    """
    path = Path(path)
    replace = replace or {}
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        folder.mode = 0o755
        tar.addfile(folder)
        meta = {
            b"num_cases_per_batch": n_train_per_batch,
            b"label_names": CLASS_NAMES,
            b"num_vis": 3072,
        }
        add_bytes_member(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=4))
        for name, (data, labels) in batch_contents(n_train_per_batch, n_test, seed).items():
            if name in omit:
                continue
            batch = {b"batch_label": f"fake {name}".encode(), b"labels": labels, b"data": data}
            payload = replace.get(name, pickle.dumps(batch, protocol=4))
            add_bytes_member(tar, f"cifar-10-batches-py/{name}", payload)
    return path


def write_cifar_folder(
    folder: str | os.PathLike, n_train_per_batch: int = 40, n_test: int = 40, seed: int = 0
) -> Path:
    """Write an extracted cifar-10-batches-py folder with the same contents as the archive."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, (data, labels) in batch_contents(n_train_per_batch, n_test, seed).items():
        batch = {b"batch_label": f"fake {name}".encode(), b"labels": labels, b"data": data}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
    return folder


def assert_same_data(loaded, expected) -> None:
    """Two ((x_train, y_train), (x_test, y_test)) results hold the same values."""
    (x_train, y_train), (x_test, y_test) = loaded
    (ex_train, ey_train), (ex_test, ey_test) = expected
    np.testing.assert_array_equal(x_train, ex_train)
    np.testing.assert_array_equal(y_train, ey_train)
    np.testing.assert_array_equal(x_test, ex_test)
    np.testing.assert_array_equal(y_test, ey_test)


def random_images(n: int, seed: int = 0, low: int = 0) -> np.ndarray:
    """n random uint8 (32, 32, 3) images with pixel values in [low, 255]."""
    rng = np.random.default_rng(seed)
    return rng.integers(low, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def take_batches(dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The first `count` (images, labels) batches of a dataset, as numpy arrays."""
    return [(images.numpy(), labels.numpy()) for images, labels in dataset.take(count)]
