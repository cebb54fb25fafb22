"""Tests for resnet_tf.data.pipeline: argument checks, the eval dataset, and reproducible
training batches (order, resume, seeds) with the augmentations in their documented order."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.config.choices import CROP_MODES, FLIP_MODES, NORMALIZATIONS
from resnet_tf.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    make_eval_dataset,
    make_train_dataset,
    normalize_images,
    random_crop,
    steps_per_epoch,
)
from tests.helpers.cifar_archives import random_images, take_batches

SEED = tf.constant([3, 4], tf.int64)

ALL_AUGMENTATIONS = dict(flip=True, crop_padding=4, crop_mode="zero", cutout=8)
# Every op of the guide's recipes on, in the two combinations the config allows.
EVERY_OP_WITH_RANDAUGMENT = ALL_AUGMENTATIONS | dict(
    randaugment_ops=2,
    color_jitter_ranges=(0.4, 0.4, 0.4, 0.1),
    normalized_jitter_ranges=(0.15, 0.1),
    mixup=0.2,
    cutmix=1.0,
)
EVERY_OP_WITH_AUTOAUGMENT = ALL_AUGMENTATIONS | dict(
    autoaugment="cifar10", flip_mode="alternate", color_jitter_ranges=(0.2, 0, 0.3, 0), cutmix=1.0
)
NO_AUGMENTATION = dict(flip=False, crop_padding=0, cutout=0, normalization="none")


# --- steps and argument checks ----------------------------------------------------------------


def test_the_training_dataset_has_no_autotuning_thread():
    """Its thread could hold up the end of fit() by up to a minute (pipeline.py)."""
    dataset = make_train_dataset(random_images(64), np.zeros(64), batch_size=32, seed=0)
    assert dataset.options().autotune.enabled is False


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


def test_pipeline_accepts_every_choice_the_config_schema_lists():
    x, y = random_images(16), np.zeros(16)
    for normalization in NORMALIZATIONS:  # both datasets normalize with normalize_images
        normalize_images(x[:1], normalization)
    for crop_mode in CROP_MODES:
        random_crop(tf.constant(x), SEED, 4, crop_mode)
    for flip_mode in FLIP_MODES:
        make_train_dataset(x, y, batch_size=16, seed=0, flip_mode=flip_mode)
    for option in ("normalization", "crop_mode", "flip_mode"):
        with pytest.raises(ValueError, match=f"{option} must be one of"):
            make_train_dataset(x, y, batch_size=16, seed=0, **{option: "other"})


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
    (x_train, _), _ = real_cifar
    # The pipeline normalizes each pixel on its own, so the statistics of the normalized set
    # follow from what it makes of each of the 256 values and how often each value occurs;
    # that spares pushing all 50,000 images through it.
    palette = np.repeat(np.arange(256, dtype=np.uint8), 3).reshape(256, 1, 1, 3)
    normalized, _ = take_batches(make_eval_dataset(palette, np.zeros(256), batch_size=256), 1)[0]
    values = normalized.reshape(256, 3).astype(np.float64)
    counts = np.stack(
        [np.bincount(x_train[..., channel].ravel(), minlength=256) for channel in range(3)], axis=1
    )
    count = x_train.shape[0] * 32 * 32
    mean = (counts * values).sum(axis=0) / count
    std = np.sqrt((counts * values**2).sum(axis=0) / count - mean**2)
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


@pytest.mark.parametrize(
    "options", [ALL_AUGMENTATIONS, EVERY_OP_WITH_RANDAUGMENT, EVERY_OP_WITH_AUTOAUGMENT]
)
def test_resuming_at_an_epoch_reproduces_the_uninterrupted_batches(options):
    x = random_images(96)
    y = np.arange(96) % 10
    uninterrupted = take_batches(make_train_dataset(x, y, batch_size=32, seed=5, **options), 9)
    resumed = take_batches(
        make_train_dataset(x, y, batch_size=32, seed=5, start_epoch=2, **options), 3
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


@pytest.mark.parametrize(
    "options, digest",
    [
        (dict(flip_mode="random", crop_mode="zero", cutout=8), "032e628253d436d04e475fb5446fa641"),
        (
            dict(flip_mode="alternate", crop_mode="reflect", cutout=12, normalization="imagenet"),
            "864e22f09f50474ec53e7fe1177f0c93",
        ),
    ],
)
def test_batches_are_pinned_to_the_bit(options, digest):
    """Every op, seed stream and dtype of the training batches is part of the contract: a run
    resumed from an older checkpoint must see the batches it would have seen. A change to any
    of them changes these digests (recorded before the data stage was split into modules)."""
    x = np.random.default_rng(0).integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    dataset = make_train_dataset(x, np.arange(64) % 10, batch_size=16, seed=5, **options)
    found = hashlib.sha256()
    for images, labels in take_batches(dataset, 6):  # all 4 batches of epoch 0, 2 of epoch 1
        found.update(images.tobytes())
        found.update(labels.tobytes())
    assert found.hexdigest()[:32] == digest


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


# --- augmentation in the pipeline -------------------------------------------------------------


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
