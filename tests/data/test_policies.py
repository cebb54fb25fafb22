"""RandAugment, AutoAugment, colour jitter (on pixels and on normalized values) and MixUp/CutMix: per-image choices, stateless
seeds, and the label arithmetic the loss relies on."""

import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.data import image_ops as ops
from resnet_tf.data.augment import color_jitter, normalized_jitter
from resnet_tf.data.mixing import mix_batch
from resnet_tf.data.policies import (
    AUTOAUGMENT_OPS,
    CIFAR10_POLICY,
    RANDAUGMENT_OPS,
    apply_per_image,
    auto_augment,
    rand_augment,
)

SEED = tf.constant([3, 4], tf.int64)
OTHER_SEED = tf.constant([3, 5], tf.int64)


@pytest.fixture(scope="module")
def images() -> tf.Tensor:
    rng = np.random.default_rng(1)
    return tf.constant(rng.integers(0, 256, (48, 32, 32, 3)), tf.float32)


def test_each_image_goes_through_the_op_it_chose(images):
    names = list(RANDAUGMENT_OPS)
    chosen = np.arange(48) % len(names)
    magnitude = np.linspace(-1, 1, 48).astype("f4")
    found = apply_per_image(images, chosen, magnitude, RANDAUGMENT_OPS).numpy()
    for i in (0, 3, 7, 12, 13, 20, 47):
        op = RANDAUGMENT_OPS[names[chosen[i]]]
        alone = op(images[i : i + 1], magnitude[i : i + 1]).numpy()
        np.testing.assert_allclose(found[i], alone[0], atol=1e-4)


def test_an_op_that_no_image_chose_is_skipped_cleanly(images):
    """Every op also runs on an empty group (tf.dynamic_partition gives one when unchosen)."""
    found = apply_per_image(images, np.zeros(48, "i4"), np.ones(48, "f4"), AUTOAUGMENT_OPS)
    np.testing.assert_array_equal(found, images)


def test_rand_augment_chooses_per_image_and_is_a_pure_function_of_the_seed(images):
    same = tf.repeat(images[:1], 48, axis=0)  # one image 48 times
    out = rand_augment(same, SEED, num_ops=1, level=9.0).numpy()
    distinct = {out[i].tobytes() for i in range(48)}
    assert len(distinct) >= 10  # 14 ops x 2 directions, drawn per image
    np.testing.assert_array_equal(out, rand_augment(same, SEED, num_ops=1, level=9.0))
    assert not np.array_equal(out, rand_augment(same, OTHER_SEED, num_ops=1, level=9.0))
    # Level 0: only the parameter-free ops change anything.
    zero = rand_augment(same, SEED, num_ops=2, level=0.0).numpy()
    assert len({zero[i].tobytes() for i in range(48)}) <= 1 + 2 + 2 * 2


def test_auto_augment_follows_the_cifar10_policy(images):
    assert len(CIFAR10_POLICY) == 25
    for steps in CIFAR10_POLICY:
        for name, probability, level in steps:
            assert name in AUTOAUGMENT_OPS and 0 <= probability <= 1 and 0 <= level <= 9
    same = tf.repeat(images[:1], 48, axis=0)
    out = auto_augment(same, SEED).numpy()
    assert len({out[i].tobytes() for i in range(48)}) >= 10
    np.testing.assert_array_equal(out, auto_augment(same, SEED))
    assert 0 <= out.min() and out.max() <= 255


def test_color_jitter_draws_one_factor_per_image_within_its_range(images):
    dim = images * 0.5 + 20  # no pixel near 255, so brightness is never clipped
    out = color_jitter(dim, SEED, brightness=0.4).numpy()
    ratio = out / dim.numpy()
    per_image = ratio.reshape(48, -1)
    np.testing.assert_allclose(per_image.min(axis=1), per_image.max(axis=1), rtol=1e-5)
    assert 0.6 <= per_image.min() and per_image.max() <= 1.4
    assert per_image[:, 0].std() > 0.1  # the factors differ between images
    np.testing.assert_array_equal(color_jitter(images, SEED), images)  # all ranges 0


def test_normalized_jitter_shifts_then_scales_each_image_by_its_own_draws(images):
    normalized = images / 255 - 0.5
    out = normalized_jitter(normalized, SEED, shift=0.3, scale=0.2).numpy()
    x = normalized.numpy().reshape(48, -1)
    y = out.reshape(48, -1)
    # One straight line per image, over all its pixels and channels: y = factor * (x + shift).
    fits = [np.polyfit(x[i], y[i], 1) for i in range(48)]
    factors = np.array([fit[0] for fit in fits])
    shifts = np.array([fit[1] / fit[0] for fit in fits])
    for i in range(48):
        np.testing.assert_allclose(y[i], factors[i] * (x[i] + shifts[i]), atol=1e-5)
    assert np.all(np.abs(factors - 1) <= 0.2) and np.all(np.abs(shifts) <= 0.3)
    assert factors.std() > 0.05 and shifts.std() > 0.08  # the draws differ between images
    np.testing.assert_array_equal(out, normalized_jitter(normalized, SEED, 0.3, 0.2))
    assert not np.array_equal(out, normalized_jitter(normalized, OTHER_SEED, 0.3, 0.2))
    np.testing.assert_array_equal(normalized_jitter(normalized, SEED), normalized)  # ranges 0


@pytest.mark.parametrize(
    "mixup, cutmix, kinds",
    [(1.0, 0.0, {"mixup"}), (0.0, 1.0, {"cutmix"}), (0.4, 0.4, {"mixup", "cutmix"})],
)
def test_mixed_labels_are_the_share_of_each_image(images, mixup, cutmix, kinds):
    """The labels mix in the images' shares; MixUp alone always blends, CutMix alone always
    pastes (each pixel is one image's), and with both on either may come."""
    labels = tf.constant(np.arange(48) % 10, tf.int32)
    partner = images.numpy()[::-1]
    for seed in range(4):
        batch_seed = tf.constant([seed, 7], tf.int64)
        mixed, soft = mix_batch(images, labels, batch_seed, 10, mixup, cutmix)
        mixed, soft = mixed.numpy(), soft.numpy()
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
        lam = soft[0, 0]  # image 0 has label 0; its partner (47) has label 7
        assert 0 < lam < 1 and soft[0, 7] == pytest.approx(1 - lam, abs=1e-6)
        from_self = np.isclose(mixed, images.numpy()).all(axis=-1)
        from_partner = np.isclose(mixed, partner).all(axis=-1)
        pasted = bool((from_self | from_partner).all())
        blended = np.allclose(mixed, lam * images + (1 - lam) * partner, atol=1e-3)
        assert pasted != blended  # exactly one of the two happened
        assert ("cutmix" if pasted else "mixup") in kinds
        if pasted:
            assert from_self[0].mean() == pytest.approx(lam, abs=1e-6)
        np.testing.assert_array_equal(
            mixed, mix_batch(images, labels, batch_seed, 10, mixup, cutmix)[0]
        )


def test_cutmix_and_mixup_both_on_use_each_for_about_half_the_batches(images):
    labels = tf.constant(np.arange(48) % 10, tf.int32)
    kinds = []
    for seed in range(40):
        mixed, _ = mix_batch(images[:4], labels[:4], tf.constant([seed, 1], tf.int64), 10, 1, 1)
        pixel_sources = np.isclose(mixed, images[:4]) | np.isclose(mixed, images[:4][::-1])
        kinds.append(bool(pixel_sources.all()))
    assert 10 <= sum(kinds) <= 30


def test_ops_keep_the_pixel_range(images):
    for name, op in AUTOAUGMENT_OPS.items():
        out = op(images, tf.fill([48], 1.0)).numpy()
        assert 0 <= out.min() and out.max() <= 255, name
    assert ops.adjust_hue(images, tf.fill([48], 0.3)).numpy().max() <= 255
