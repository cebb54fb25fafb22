"""Tests for resnet_tf.data.cache: a second load skips decoding, a changed source does not,
an unwritable cache only warns, and where the cache lives."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

from resnet_tf.data import cache, cifar10, default_cache_dir, load_cifar10
from tests.helpers.cifar_archives import assert_same_data, expected_arrays, write_cifar_archive


def test_second_load_comes_from_the_cache(monkeypatch, tmp_path, session_cache_dir):
    archive = write_cifar_archive(tmp_path / "c.tar.gz", 10, 10, seed=5)
    first = load_cifar10(archive)
    assert not list(session_cache_dir.glob("*.tmp")), "temp files must be renamed or removed"

    def must_not_decode(path):
        raise AssertionError("archive decoded again despite the cache")

    monkeypatch.setattr(cifar10, "_decode_archive", must_not_decode)
    assert_same_data(load_cifar10(archive), first)
    assert not list(tmp_path.glob("*.np*")), "cache must not be written next to the data"


def test_changed_source_is_decoded_again(tmp_path):
    archive = tmp_path / "d.tar.gz"
    write_cifar_archive(archive, 10, 10, seed=1)
    old_stat = archive.stat()
    load_cifar10(archive)
    write_cifar_archive(archive, 10, 10, seed=2)
    os.utime(archive, ns=(old_stat.st_atime_ns, old_stat.st_mtime_ns + 10**9))
    assert_same_data(load_cifar10(archive), expected_arrays(10, 10, seed=2))


def test_unwritable_cache_dir_warns_once_and_still_loads(monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RESNET_TF_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(cache, "_warned_about_cache", False)
    archive = write_cifar_archive(tmp_path / "e.tar.gz", 10, 10, seed=4)
    with pytest.warns(RuntimeWarning, match="cache"):
        assert_same_data(load_cifar10(archive), expected_arrays(10, 10, seed=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_cifar10(archive)


@pytest.mark.parametrize("damage", ["junk bytes", "float labels"])
def test_damaged_cache_file_is_rebuilt(monkeypatch, tmp_path, damage):
    monkeypatch.setenv("RESNET_TF_CACHE_DIR", str(tmp_path / "cache"))
    archive = write_cifar_archive(tmp_path / "f.tar.gz", 10, 10, seed=6)
    load_cifar10(archive)
    (cache_file,) = (tmp_path / "cache").glob("*.npz")
    if damage == "junk bytes":
        cache_file.write_bytes(b"not an npz")
    else:
        images, labels = np.zeros((50, 32, 32, 3), np.uint8), np.zeros(50)
        np.savez(cache_file, x_train=images, y_train=labels, x_test=images, y_test=labels)
    assert_same_data(load_cifar10(archive), expected_arrays(10, 10, seed=6))
    with np.load(cache_file) as stored:  # decoded again and rewritten
        assert stored["y_train"].dtype == np.uint8 and stored["x_test"].shape[0] == 10


def test_default_cache_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_TF_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RESNET_TF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "resnet_tf"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "resnet_tf"


def test_cached_real_load_is_fast(real_cifar_path, real_cifar):
    start = time.perf_counter()
    (x_train, _), _ = load_cifar10(real_cifar_path)
    elapsed = time.perf_counter() - start
    assert x_train.shape == (50000, 32, 32, 3)
    assert elapsed < 2.0, f"cached load took {elapsed:.2f}s"
