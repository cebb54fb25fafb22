"""Tests for resnet_tf.data.pipeline: reproducible training batches, augmentation values, eval."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    make_eval_dataset,
    make_train_dataset,
    random_crop,
    random_cutout,
    random_flip,
    steps_per_epoch,
)

SEED = tf.constant([3, 4], tf.int64)


def random_images(n, seed=0, low=0):
    rng = np.random.default_rng(seed)
    return rng.integers(low, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def take_batches(dataset, count):
    return [(images.numpy(), labels.numpy()) for images, labels in dataset.take(count)]


ALL_AUGMENTATIONS = dict(flip=True, crop_padding=4, crop_mode="zero", cutout=8)
NO_AUGMENTATION = dict(flip=False, crop_padding=0, cutout=0, normalization="none")


# --- steps and argument checks ----------------------------------------------------------------


def test_steps_per_epoch_drops_the_remainder():
    assert steps_per_epoch(45000, 128) == 351
    assert steps_per_epoch(256, 128) == 2
    with pytest.raises(ValueError):
        steps_per_epoch(100, 128)
    with pytest.raises(ValueError):
        steps_per_epoch(100, 0)


@pytest.mark.parametrize(
    "bad_arguments",
    [dict(normalization="zscore"), dict(crop_mode="wrap"), dict(batch_size=1000), dict(cutout=-1)],
)
def test_train_dataset_rejects_bad_arguments(bad_arguments):
    arguments = dict(batch_size=16, seed=0) | bad_arguments
    with pytest.raises(ValueError):
        make_train_dataset(random_images(64), np.zeros(64, np.uint8), **arguments)


def test_datasets_reject_non_uint8_images():
    with pytest.raises(ValueError, match="uint8"):
        make_eval_dataset(np.zeros((4, 32, 32, 3), np.float32), np.zeros(4), batch_size=2)


# --- evaluation dataset -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "normalization, mean, std",
    [
        ("cifar10", CIFAR10_MEAN, CIFAR10_STD),
        ("imagenet", IMAGENET_MEAN, IMAGENET_STD),
        ("none", (0, 0, 0), (1, 1, 1)),
    ],
)
def test_eval_dataset_normalizes_in_order_and_keeps_the_remainder(normalization, mean, std):
    x = random_images(70)
    y = np.arange(70) % 10
    batches = take_batches(make_eval_dataset(x, y, batch_size=32, normalization=normalization), 10)
    assert [len(labels) for _, labels in batches] == [32, 32, 6]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.dtype == np.float32 and labels.dtype == np.int32
    expected = (x / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(images, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, y)


def test_normalized_real_training_set_has_zero_mean_unit_std(real_cifar):
    (x_train, y_train), _ = real_cifar
    totals = np.zeros(3)
    squares = np.zeros(3)
    for images, _ in make_eval_dataset(x_train, y_train, batch_size=2000):
        images = images.numpy().astype(np.float64)
        totals += images.sum(axis=(0, 1, 2))
        squares += (images**2).sum(axis=(0, 1, 2))
    count = x_train.shape[0] * 32 * 32
    mean = totals / count
    std = np.sqrt(squares / count - mean**2)
    np.testing.assert_allclose(mean, 0.0, atol=2e-3)
    np.testing.assert_allclose(std, 1.0, atol=2e-3)


# --- training dataset: order and reproducibility ----------------------------------------------


def test_train_batches_have_fixed_shapes_and_types():
    dataset = make_train_dataset(
        random_images(64), np.arange(64) % 10, batch_size=16, seed=0, **ALL_AUGMENTATIONS
    )
    images, labels = next(iter(dataset))
    assert images.shape == (16, 32, 32, 3) and images.dtype == tf.float32
    assert labels.shape == (16,) and labels.dtype == tf.int32


def test_each_epoch_is_a_fresh_permutation_without_the_remainder():
    x = random_images(100)
    y = np.arange(100)  # each label names its image
    batches = take_batches(make_train_dataset(x, y, batch_size=32, seed=1, **NO_AUGMENTATION), 9)
    epochs = [np.concatenate([labels for _, labels in batches[i : i + 3]]) for i in (0, 3, 6)]
    for labels in epochs:
        assert (
            len(labels) == 96 and len(set(labels.tolist())) == 96
        )  # remainder dropped, no repeats
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    for images, labels in batches:  # images travel with their labels
        np.testing.assert_allclose(images, x[labels] / 255.0, atol=1e-6)


def test_resuming_at_an_epoch_reproduces_the_uninterrupted_batches():
    x = random_images(96)
    y = np.arange(96) % 10
    uninterrupted = take_batches(
        make_train_dataset(x, y, batch_size=32, seed=5, **ALL_AUGMENTATIONS), 9
    )
    resumed = take_batches(
        make_train_dataset(x, y, batch_size=32, seed=5, start_epoch=2, **ALL_AUGMENTATIONS), 3
    )
    for (images_a, labels_a), (images_b, labels_b) in zip(uninterrupted[6:9], resumed):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)


def test_start_epoch_one_matches_epoch_one_of_a_fresh_run():
    x = random_images(96, seed=2)
    y = np.arange(96) % 10
    from_start = take_batches(
        make_train_dataset(x, y, batch_size=32, seed=0, **ALL_AUGMENTATIONS), 6
    )
    from_one = take_batches(
        make_train_dataset(x, y, batch_size=32, seed=0, start_epoch=1, **ALL_AUGMENTATIONS), 3
    )
    for (images_a, labels_a), (images_b, labels_b) in zip(from_start[3:], from_one):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    assert not np.array_equal(from_start[0][0], from_one[0][0])  # epochs differ


def test_iterating_the_same_dataset_twice_gives_the_same_batches():
    dataset = make_train_dataset(
        random_images(64), np.arange(64) % 10, batch_size=16, seed=9, **ALL_AUGMENTATIONS
    )
    first, second = take_batches(dataset, 5), take_batches(dataset, 5)
    for (images_a, _), (images_b, _) in zip(first, second):
        np.testing.assert_array_equal(images_a, images_b)


def test_different_seeds_give_different_batches():
    x = random_images(64)
    y = np.arange(64)
    batch_a = take_batches(make_train_dataset(x, y, batch_size=16, seed=0, **ALL_AUGMENTATIONS), 1)[
        0
    ]
    batch_b = take_batches(make_train_dataset(x, y, batch_size=16, seed=1, **ALL_AUGMENTATIONS), 1)[
        0
    ]
    assert not np.array_equal(batch_a[1], batch_b[1])
    assert not np.array_equal(batch_a[0], batch_b[0])


def test_augmentations_differ_between_epochs_for_the_same_image():
    x = np.repeat(random_images(1), 16, axis=0)  # 16 copies of one image: order cannot matter
    y = np.zeros(16)
    batches = take_batches(make_train_dataset(x, y, batch_size=16, seed=0, **ALL_AUGMENTATIONS), 2)
    assert not np.array_equal(batches[0][0], batches[1][0])


# --- augmentation values ----------------------------------------------------------------------


def test_random_flip_mirrors_some_images_and_leaves_the_rest():
    images = random_images(64)
    flipped = random_flip(tf.constant(images), SEED).numpy()
    mirrored = np.array([np.array_equal(out, img[:, ::-1]) for out, img in zip(flipped, images)])
    unchanged = np.array([np.array_equal(out, img) for out, img in zip(flipped, images)])
    assert np.all(mirrored | unchanged)
    assert 10 < mirrored.sum() < 54
    assert flipped[mirrored][0, 0, 0].tolist() == images[mirrored][0, 0, 31].tolist()


def test_alternating_flip_shows_each_image_both_ways_in_two_epochs():
    """Epochs 0 and 2 flip the same random half; epochs 1 and 3 the other half."""
    images = random_images(64)
    y = np.arange(64)  # labels identify the images after shuffling
    options = dict(NO_AUGMENTATION, flip=True, flip_mode="alternate")
    dataset = make_train_dataset(images, y, batch_size=64, seed=5, **options)
    with pytest.raises(ValueError, match="flip_mode must be one of"):
        make_train_dataset(images, y, batch_size=64, seed=5, flip_mode="sometimes")
    images = images.astype(np.float32) / 255  # as normalization "none" gives them

    def flipped_in(batch):
        out, labels = batch
        assert all(
            np.array_equal(o, images[k]) or np.array_equal(o, images[k][:, ::-1])
            for o, k in zip(out, labels)
        )
        mirrored = [np.array_equal(o, images[k][:, ::-1]) for o, k in zip(out, labels)]
        return np.array(mirrored)[np.argsort(labels)]

    epochs = [flipped_in(batch) for batch in take_batches(dataset, 4)]
    assert 16 < epochs[0].sum() < 48
    np.testing.assert_array_equal(epochs[1], ~epochs[0])
    np.testing.assert_array_equal(epochs[2], epochs[0])
    np.testing.assert_array_equal(epochs[3], ~epochs[0])


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


def test_cutout_in_the_pipeline_blacks_out_a_square_after_normalization():
    x = np.full((16, 32, 32, 3), 255, np.uint8)
    dataset = make_train_dataset(
        x,
        np.zeros(16),
        batch_size=16,
        seed=0,
        flip=False,
        crop_padding=0,
        cutout=6,
        normalization="none",
    )
    images, _ = take_batches(dataset, 1)[0]
    zeros_per_image = np.all(images == 0, axis=-1).sum(axis=(1, 2))
    assert np.all((zeros_per_image >= 9) & (zeros_per_image <= 36))
    assert np.all((images == 0) | (images == 1))


def test_zero_padding_is_black_before_normalization():
    x = np.full((64, 32, 32, 3), 255, np.uint8)
    dataset = make_train_dataset(x, np.zeros(64), batch_size=64, seed=0, flip=False, crop_padding=4)
    images, _ = take_batches(dataset, 1)[0]
    black = (0.0 - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD)
    white = (1.0 - np.array(CIFAR10_MEAN)) / np.array(CIFAR10_STD)
    is_black = np.all(np.isclose(images, black, atol=1e-5), axis=-1)
    is_white = np.all(np.isclose(images, white, atol=1e-5), axis=-1)
    assert np.all(is_black | is_white) and is_black.any()


def test_real_training_batch_with_all_augmentations(real_cifar):
    (x_train, y_train), _ = real_cifar
    dataset = make_train_dataset(
        x_train, y_train, batch_size=128, seed=0, crop_mode="reflect", cutout=16
    )
    images, labels = take_batches(dataset, 1)[0]
    assert images.shape == (128, 32, 32, 3) and np.isfinite(images).all()
    assert labels.min() >= 0 and labels.max() <= 9
    assert -2.5 < images.mean() < 2.5
