"""RandAugment's and AutoAugment's image ops against PIL (which the policies were searched with),
Keras where its layer computes the same thing, and exact geometry."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageOps

from resnet_tf.data import image_ops as ops
from resnet_tf.data.policies import AUTOAUGMENT_OPS


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    """Six random uint8 images, one of them low-contrast, one flat grey."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    x[1] = x[1] // 3 + 60
    x[2] = 77
    return x


def through_pil(pixels: np.ndarray, transform) -> np.ndarray:
    return np.stack([np.asarray(transform(Image.fromarray(im))) for im in pixels]).astype("f4")


def ours(op, pixels: np.ndarray, magnitude: float) -> np.ndarray:
    images = tf.constant(pixels, tf.float32)
    return op(images, tf.fill([len(pixels)], magnitude)).numpy()


@pytest.mark.parametrize(
    "op, magnitude, pil",
    [
        (ops.auto_contrast, 0.0, ImageOps.autocontrast),
        (ops.equalize, 0.0, ImageOps.equalize),
        (ops.invert, 0.0, ImageOps.invert),
        (ops.solarize, 0.5, lambda im: ImageOps.solarize(im, 128)),
        (ops.solarize, -0.25, lambda im: ImageOps.solarize(im, 192)),
        (ops.posterize, 0.5, lambda im: ImageOps.posterize(im, 6)),
        (ops.posterize, 1.0, lambda im: ImageOps.posterize(im, 4)),
    ],
)
def test_pixel_ops_equal_pil_exactly(pixels, op, magnitude, pil):
    np.testing.assert_array_equal(ours(op, pixels, magnitude), through_pil(pixels, pil))


@pytest.mark.parametrize(
    "op, enhancer",
    [
        (ops.color, ImageEnhance.Color),
        (ops.contrast, ImageEnhance.Contrast),
        (ops.brightness, ImageEnhance.Brightness),
        (ops.sharpness, ImageEnhance.Sharpness),
    ],
)
@pytest.mark.parametrize("magnitude", [-0.7, 0.5])
def test_enhancements_equal_pil_up_to_its_rounding(pixels, op, enhancer, magnitude):
    """PIL rounds to whole values in between; ours keeps fractions until the end."""
    factor = 1.0 + ops.MAX_ENHANCE * magnitude
    expected = through_pil(pixels, lambda im: enhancer(im).enhance(factor))
    found = ours(op, pixels, magnitude)
    assert np.abs(found - expected).max() < 2.0
    assert np.abs(found - expected).mean() < 0.6


def test_ops_equal_keras_layers_where_they_compute_the_same(pixels):
    """Keras' layers draw their settings statefully (so they cannot run in our pipeline), but
    with a fixed setting some compute what ours do."""
    import keras

    images = pixels.astype("f4")
    expected = keras.layers.AutoContrast(value_range=(0, 255))(images)
    np.testing.assert_array_equal(ours(ops.auto_contrast, pixels, 0.0), np.asarray(expected))
    for bits in (4, 6):
        layer = keras.layers.RandomPosterization(factor=(bits, bits), value_range=(0, 255))
        found = ours(ops.posterize, pixels, (8 - bits) / ops.MAX_POSTERIZE_BITS_REMOVED)
        np.testing.assert_array_equal(found, np.asarray(layer(images)))
    # Keras' colour degeneration by f is saturation factor 1 - f (ours rounds the grey, as PIL).
    layer = keras.layers.RandomColorDegeneration(factor=(0.3, 0.3), value_range=(0, 255))
    found = ops.adjust_saturation(tf.constant(images), tf.fill([6], 0.7)).numpy()
    assert np.abs(found - np.asarray(layer(images))).max() < 0.5


@pytest.mark.parametrize(
    "name", sorted(set(AUTOAUGMENT_OPS) - {"auto_contrast", "equalize", "invert"})
)
def test_magnitude_zero_leaves_images_unchanged(pixels, name):
    found = ours(AUTOAUGMENT_OPS[name], pixels, 0.0)
    np.testing.assert_allclose(found, pixels.astype("f4"), atol=1e-3)


def test_rotate_turns_about_the_centre(pixels):
    """90 degrees (magnitude 3 of the 30-degree maximum) is numpy's quarter turn exactly."""
    np.testing.assert_allclose(
        ours(ops.rotate, pixels, 3.0), np.rot90(pixels, 1, axes=(1, 2)), atol=0.01
    )
    # Small angles: the centre pixel of an odd-sized image stays where it is.
    odd = pixels[:, :31, :31]
    assert np.allclose(ours(ops.rotate, odd, 0.37)[:, 15, 15], odd[:, 15, 15], atol=0.01)


@pytest.mark.parametrize("op, axis", [(ops.translate_x, 2), (ops.translate_y, 1)])
def test_translate_moves_whole_pixels_and_fills_grey(pixels, op, axis):
    magnitude = -5 / (ops.MAX_TRANSLATE_FRACTION * 32)  # 5 px left (or up)
    expected = np.full(pixels.shape, ops.FILL_VALUE, "f4")
    kept = [slice(None)] * 4
    kept[axis] = slice(0, 27)
    source = [slice(None)] * 4
    source[axis] = slice(5, 32)
    expected[tuple(kept)] = pixels[tuple(source)]
    np.testing.assert_array_equal(ours(op, pixels, magnitude), expected)


def test_shear_x_shifts_each_row_by_its_distance_from_the_centre():
    line = np.zeros((1, 32, 32, 3), np.uint8)
    line[0, :, 16] = 255  # a vertical line at column 16
    sheared = ours(ops.shear_x, line, 1.0)[0, :, :, 0]  # 0.3 px per row
    for row in (3, 10, 20, 28):
        # The output (x, row) reads the input at x + 0.3 (row - 15.5): the line is found at
        # x = 16 - 0.3 (row - 15.5), where the brightest pixel is.
        assert abs(np.argmax(sheared[row]) - (16 - 0.3 * (row - 15.5))) <= 0.5


def test_each_image_gets_its_own_magnitude(pixels):
    magnitudes = tf.constant([0.0, 0.5, 1.0, -1.0, 0.2, 0.0])
    together = ops.brightness(tf.constant(pixels, tf.float32), magnitudes).numpy()
    for i, m in enumerate(magnitudes.numpy()):
        alone = ours(ops.brightness, pixels[i : i + 1], float(m))[0]
        np.testing.assert_array_equal(together[i], alone)


def test_hue_shift_of_a_full_turn_or_none_changes_nothing_and_half_a_turn_does(pixels):
    images = tf.constant(pixels, tf.float32)
    for shift in (0.0, 1.0):
        np.testing.assert_allclose(ops.adjust_hue(images, tf.fill([6], shift)), pixels, atol=0.02)
    turned = ops.adjust_hue(images, tf.fill([6], 0.5)).numpy()
    # Half a turn maps pure red to cyan.
    red = np.zeros((1, 4, 4, 3), "f4")
    red[..., 0] = 255
    cyan = ops.adjust_hue(tf.constant(red), tf.constant([0.5])).numpy()
    np.testing.assert_allclose(cyan[0, 0, 0], [0, 255, 255], atol=0.02)
    assert np.abs(turned - pixels).mean() > 20
