"""Tests for resnet_tf.data.splits: the stratified train/validation split and make_splits."""

from __future__ import annotations

import numpy as np
import pytest

from resnet_tf.data import Splits, load_cifar10, make_splits, split_train_val


def labelled_images(n_per_class=30, n_classes=10):
    y = np.repeat(np.arange(n_classes, dtype=np.uint8), n_per_class)
    x = np.arange(len(y), dtype=np.int64)  # the "image" is its own index, to track it
    return x, y


def test_split_is_stratified_disjoint_and_complete():
    x, y = labelled_images()
    (x_tr, y_tr), (x_val, y_val) = split_train_val(x, y, val_size=50, seed=0)
    assert len(x_val) == 50 and len(x_tr) == 250
    assert np.bincount(y_val).tolist() == [5] * 10
    assert sorted(np.concatenate([x_tr, x_val]).tolist()) == x.tolist()
    np.testing.assert_array_equal(y[x_val], y_val)
    np.testing.assert_array_equal(y[x_tr], y_tr)


def test_split_with_uneven_classes_spreads_the_remainder():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    x = np.arange(100)
    (_, _), (_, y_val) = split_train_val(x, y, val_size=11, seed=1)
    assert len(y_val) == 11
    assert np.bincount(y_val, minlength=3).tolist() in ([7, 3, 1], [6, 4, 1], [6, 3, 2])


def test_split_is_deterministic_per_seed():
    x, y = labelled_images()
    first = split_train_val(x, y, 40, seed=7)[1][0]
    again = split_train_val(x, y, 40, seed=7)[1][0]
    other = split_train_val(x, y, 40, seed=8)[1][0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_split_val_size_zero_gives_empty_validation():
    x, y = labelled_images()
    (x_tr, y_tr), (x_val, y_val) = split_train_val(x, y, 0, seed=0)
    np.testing.assert_array_equal(x_tr, x)
    assert x_val.shape == (0,) and y_val.shape == (0,)


@pytest.mark.parametrize("val_size", [-1, 300, 301])
def test_split_impossible_val_size(val_size):
    x, y = labelled_images()
    with pytest.raises(ValueError, match="val_size"):
        split_train_val(x, y, val_size, seed=0)


def test_split_keeps_image_arrays_intact(tiny_cifar_archive):
    (x, y), _ = load_cifar10(tiny_cifar_archive)
    (x_tr, y_tr), (x_val, y_val) = split_train_val(x, y, 20, seed=0)
    assert x_tr.shape == (180, 32, 32, 3) and x_val.shape == (20, 32, 32, 3)
    assert np.bincount(y_val).tolist() == [2] * 10


def test_make_splits_takes_the_subset_then_splits_it():
    x, y = labelled_images()
    splits = make_splits(x, y, subset=100, val_size=10, seed=3)
    assert isinstance(splits, Splits)
    (x_tr, y_tr), (x_val, y_val) = split_train_val(x[:100], y[:100], 10, seed=3)
    np.testing.assert_array_equal(splits.x_train, x_tr)
    np.testing.assert_array_equal(splits.y_train, y_tr)
    np.testing.assert_array_equal(splits.x_val, x_val)
    np.testing.assert_array_equal(splits.y_val, y_val)
    assert sorted(np.concatenate([splits.x_train, splits.x_val]).tolist()) == list(range(100))


def test_make_splits_without_subset_uses_every_image():
    x, y = labelled_images()
    splits = make_splits(x, y, subset=None, val_size=0, seed=0)
    np.testing.assert_array_equal(splits.x_train, x)
    np.testing.assert_array_equal(splits.y_train, y)
    assert splits.x_val.shape == (0,) and splits.y_val.shape == (0,)
