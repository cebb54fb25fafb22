"""Tests for resnet_tf.data.cifar10: loading the archive and folder forms, refusing unsafe or
broken files with one-line errors, and facts of the real dataset."""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from resnet_tf.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CLASS_NAMES,
    load_cifar10,
)
from resnet_tf.errors import DataError
from tests.helpers.cifar_archives import (
    assert_same_data,
    expected_arrays,
    write_cifar_archive,
    write_cifar_folder,
)

# --- loading the tiny archive in its different forms ----------------------------------------


def test_tiny_archive_loads_as_nhwc_uint8_with_flat_labels(tiny_cifar_archive):
    (x_train, y_train), (x_test, y_test) = loaded = load_cifar10(tiny_cifar_archive)
    assert x_train.shape == (200, 32, 32, 3) and x_train.dtype == np.uint8
    assert x_test.shape == (40, 32, 32, 3) and x_test.dtype == np.uint8
    assert y_train.shape == (200,) and y_train.dtype == np.uint8
    assert y_test.shape == (40,) and y_test.dtype == np.uint8
    np.testing.assert_array_equal(y_train, np.arange(200) % 10)
    assert_same_data(loaded, expected_arrays(40, 40, seed=0))


def test_planar_rows_become_rgb_pixels(tmp_path):
    archive = write_cifar_archive(tmp_path / "a.tar.gz", n_train_per_batch=10, n_test=10, seed=3)
    (x_train, _), _ = load_cifar10(archive)
    with tarfile.open(archive) as tar:
        raw = pickle.loads(tar.extractfile("cifar-10-batches-py/data_batch_1").read())
    row = raw[b"data"][0]
    # Pixel (row 2, column 5): red at 2*32+5, green 1024 later, blue 2048 later.
    assert tuple(x_train[0, 2, 5]) == (row[69], row[1024 + 69], row[2048 + 69])


def test_loads_extracted_folder_and_folders_holding_either(tmp_path, tiny_cifar_archive):
    batches_folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", 40, 40, seed=0)
    expected = expected_arrays(40, 40, seed=0)
    assert_same_data(load_cifar10(batches_folder), expected)
    assert_same_data(load_cifar10(tmp_path), expected)  # holds cifar-10-batches-py/
    assert_same_data(load_cifar10(tiny_cifar_archive.parent), expected)  # holds the archive
    assert_same_data(load_cifar10(str(tiny_cifar_archive)), expected)


def test_cifar10_dir_env_var_is_used_without_a_path(monkeypatch, tiny_cifar_archive):
    monkeypatch.setenv("CIFAR10_DIR", str(tiny_cifar_archive.parent))
    assert_same_data(load_cifar10(), expected_arrays(40, 40, seed=0))


def test_without_path_falls_back_on_keras(monkeypatch):
    import keras

    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    fake = (
        (np.zeros((3, 32, 32, 3), np.uint8), np.array([[1], [2], [3]], np.uint8)),
        (np.zeros((1, 32, 32, 3), np.uint8), np.array([[9]], np.uint8)),
    )
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: fake)
    (_, y_train), (_, y_test) = load_cifar10()
    assert y_train.tolist() == [1, 2, 3] and y_test.tolist() == [9]


def test_keras_fallback_failure_says_to_pass_a_path(monkeypatch):
    import keras

    def offline():
        raise OSError("no internet")

    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError, match="CIFAR10_DIR"):
        load_cifar10()


# --- errors -----------------------------------------------------------------------------------


def batch_pickle(data, labels) -> bytes:
    return pickle.dumps({b"batch_label": b"x", b"labels": labels, b"data": data}, protocol=4)


def load_error(path) -> str:
    with pytest.raises(DataError) as caught:
        load_cifar10(path)
    message = str(caught.value)
    assert "\n" not in message, "errors should fit on one line"
    return message


def test_missing_path(tmp_path):
    message = load_error(tmp_path / "nowhere.tar.gz")
    assert "nowhere.tar.gz" in message and "no such path" in message


def test_folder_without_cifar(tmp_path):
    assert "found none" in load_error(tmp_path)


def test_missing_batch_files(tmp_path):
    archive = write_cifar_archive(tmp_path / "m.tar.gz", 10, 10, omit=("test_batch",))
    message = load_error(archive)
    assert "m.tar.gz" in message and "test_batch" in message


def test_missing_batch_file_in_folder(tmp_path):
    folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", 10, 10)
    (folder / "data_batch_3").unlink()
    assert "data_batch_3" in load_error(folder)


def test_wrong_array_shape(tmp_path):
    bad = batch_pickle(np.zeros((10, 3000), np.uint8), [0] * 10)
    archive = write_cifar_archive(tmp_path / "s.tar.gz", 10, 10, replace={"data_batch_2": bad})
    message = load_error(archive)
    assert "data_batch_2" in message and "(N, 3072)" in message and "(10, 3000)" in message


def test_wrong_array_dtype(tmp_path):
    bad = batch_pickle(np.zeros((10, 3072), np.float32), [0] * 10)
    archive = write_cifar_archive(tmp_path / "t.tar.gz", 10, 10, replace={"test_batch": bad})
    assert "float32" in load_error(archive)


def test_labels_outside_0_to_9(tmp_path):
    bad = batch_pickle(np.zeros((10, 3072), np.uint8), [0] * 9 + [10])
    archive = write_cifar_archive(tmp_path / "l.tar.gz", 10, 10, replace={"data_batch_1": bad})
    message = load_error(archive)
    assert "data_batch_1" in message and "0..9" in message and "10" in message


def test_truncated_archive(tmp_path, tiny_cifar_archive):
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(tiny_cifar_archive.read_bytes()[:5000])
    message = load_error(truncated)
    assert "truncated.tar.gz" in message and "truncated or corrupt" in message


def test_not_an_archive(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"this is not gzip")
    assert "junk.tar.gz" in load_error(junk)


class RunsAShellCommand:
    """Pickles into a call of os.system, like a hostile batch file would."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_malicious_pickle_in_archive_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": RunsAShellCommand(f"touch {marker}"), b"labels": []})
    archive = write_cifar_archive(tmp_path / "evil.tar.gz", 10, 10, replace={"data_batch_1": evil})
    message = load_error(archive)
    assert "refusing" in message and "data_batch_1" in message and "system" in message
    assert not marker.exists()


def test_malicious_pickle_in_folder_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    folder = write_cifar_folder(tmp_path / "cifar-10-batches-py", 10, 10)
    (folder / "test_batch").write_bytes(pickle.dumps(RunsAShellCommand(f"touch {marker}")))
    assert "test_batch" in load_error(folder)
    assert not marker.exists()


def archive_with_extra_member(path, member: tarfile.TarInfo, payload: bytes = b""):
    write_cifar_archive(path.with_suffix(".plain"), 10, 10)
    with tarfile.open(path.with_suffix(".plain")) as source, tarfile.open(path, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(payload) if member.isfile() else None)
        for existing in source:
            tar.addfile(existing, source.extractfile(existing) if existing.isfile() else None)
    return path


def test_archive_with_escaping_member_is_refused(tmp_path):
    member = tarfile.TarInfo("../evil")
    member.size = 4
    archive = archive_with_extra_member(tmp_path / "escape.tar.gz", member, b"evil")
    message = load_error(archive)
    assert "../evil" in message and "escape.tar.gz" in message
    assert not (tmp_path.parent / "evil").exists()


def test_archive_with_absolute_member_is_refused(tmp_path):
    member = tarfile.TarInfo("/tmp/evil")
    member.size = 4
    assert "/tmp/evil" in load_error(
        archive_with_extra_member(tmp_path / "abs.tar.gz", member, b"evil")
    )


def test_archive_with_links_is_refused(tmp_path):
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_6")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    assert "link" in load_error(archive_with_extra_member(tmp_path / "link.tar.gz", link))
    hard = tarfile.TarInfo("cifar-10-batches-py/extra")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "cifar-10-batches-py/test_batch"
    assert "link" in load_error(archive_with_extra_member(tmp_path / "hard.tar.gz", hard))


# --- the real dataset -------------------------------------------------------------------------


def test_real_archive_matches_known_facts(real_cifar):
    (x_train, y_train), (x_test, y_test) = real_cifar
    assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.shape == (50000,) and y_test.shape == (10000,)
    assert x_train[0, 0, :8, 0].tolist() == [59, 43, 50, 68, 98, 119, 139, 145]
    assert y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert np.bincount(y_train).tolist() == [5000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert CLASS_NAMES[y_train[0]] == "frog"


def test_real_channel_statistics_match_constants(real_cifar):
    (x_train, _), _ = real_cifar
    values = np.arange(256) / 255.0
    for channel in range(3):
        # A histogram of the 256 pixel values gives exact statistics without a float copy.
        counts = np.bincount(x_train[..., channel].ravel(), minlength=256)
        mean = (counts * values).sum() / counts.sum()
        std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
        assert mean == pytest.approx(CIFAR10_MEAN[channel], abs=1e-4)
        assert std == pytest.approx(CIFAR10_STD[channel], abs=1e-4)
