"""Tests for resnet_tf.data.augment: what each batch op does to pixel values."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.data import make_train_dataset, random_crop, random_cutout, random_flip
from tests.helpers.cifar_archives import random_images, take_batches

SEED = tf.constant([3, 4], tf.int64)
NO_AUGMENTATION = dict(flip=False, crop_padding=0, cutout=0, normalization="none")


def test_random_flip_mirrors_some_images_and_leaves_the_rest():
    images = random_images(64)
    flipped = random_flip(tf.constant(images), SEED).numpy()
    mirrored = np.array([np.array_equal(out, img[:, ::-1]) for out, img in zip(flipped, images)])
    unchanged = np.array([np.array_equal(out, img) for out, img in zip(flipped, images)])
    assert np.all(mirrored | unchanged)
    assert 10 < mirrored.sum() < 54
    assert flipped[mirrored][0, 0, 0].tolist() == images[mirrored][0, 0, 31].tolist()


def test_crop_with_zero_padding_is_identity():
    images = random_images(8)
    np.testing.assert_array_equal(random_crop(tf.constant(images), SEED, 0).numpy(), images)
    dataset = make_train_dataset(images, np.arange(8), batch_size=8, seed=0, **NO_AUGMENTATION)
    batch_images, labels = take_batches(dataset, 1)[0]
    np.testing.assert_allclose(batch_images, images[labels] / 255.0, atol=1e-6)


def find_shift(output, padded, padding):
    """The (row, col) offset at which `output` is a window of `padded`, or None."""
    size = output.shape[0]
    for row in range(2 * padding + 1):
        for col in range(2 * padding + 1):
            if np.array_equal(output, padded[row : row + size, col : col + size]):
                return row, col
    return None


@pytest.mark.parametrize("mode, numpy_mode", [("zero", "constant"), ("reflect", "reflect")])
def test_crop_output_is_a_shifted_copy_of_the_padded_image(mode, numpy_mode):
    padding = 4
    images = random_images(32, low=1)  # no zero pixels, so zero padding is recognisable
    cropped = random_crop(tf.constant(images), SEED, padding, mode).numpy()
    shifts = []
    for output, image in zip(cropped, images):
        padded = np.pad(image, [(padding, padding), (padding, padding), (0, 0)], mode=numpy_mode)
        shift = find_shift(output, padded, padding)
        assert shift is not None
        row, col = shift
        # One known pixel: the image's top-left pixel lands at (padding - row, padding - col).
        if row <= padding and col <= padding:
            assert output[padding - row, padding - col].tolist() == image[0, 0].tolist()
        shifts.append(shift)
    assert len(set(shifts)) > 5  # offsets really vary per image
    if mode == "reflect":
        assert cropped.min() > 0


def test_cutout_zeroes_one_square_of_the_right_size():
    size = 8
    ones = tf.ones([200, 32, 32, 3])
    out = random_cutout(ones, SEED, size).numpy()
    full_squares = 0
    for image in out:
        zero = np.all(image == 0, axis=-1)
        assert np.all((image == 0) | (image == 1))
        assert np.all(np.any(image == 0, axis=-1) == zero)  # whole pixels, all channels
        rows, cols = np.flatnonzero(zero.any(axis=1)), np.flatnonzero(zero.any(axis=0))
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert zero.sum() == height * width  # one solid rectangle
        assert 1 <= height <= size and 1 <= width <= size
        if height == size and width == size:
            full_squares += 1
    assert full_squares > 100  # most squares sit fully inside (centres are uniform)
    np.testing.assert_array_equal(random_cutout(ones, SEED, 0).numpy(), ones.numpy())
