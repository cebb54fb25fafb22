"""The image operations of RandAugment and AutoAugment, on whole batches.

Every op takes float32 NHWC images holding pixel values in [0, 255] (before normalization)
and one signed magnitude per image in [-1, 1]: the fraction of the op's strongest setting
(MAX_* below), its sign the direction where the op has one (rotate left or right, brighter or
darker); ops without a direction use its absolute value. Magnitude 0 leaves an image unchanged
for every op except the parameter-free ones (auto_contrast, equalize, invert). Each image gets
its own magnitude, so one call serves a batch in which every image drew its own setting.

The definitions follow PIL's ImageOps/ImageEnhance, which the published policies were searched
with: blends with a degenerate image (grey, mean grey, black, a smoothed copy) for the four
enhancements, and Python Imaging's histogram equalization. Geometric ops keep the image size and
fill what comes in from outside with mid-grey, as the AutoAugment authors did.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

# The strongest setting of each op (magnitude 1, i.e. level 10 on the papers' 0-10 scale).
MAX_ROTATE_DEGREES = 30.0
MAX_SHEAR = 0.3  # horizontal (or vertical) shift per pixel of distance from the centre
MAX_TRANSLATE_FRACTION = 0.3  # of the image side: 10 px of 32 at magnitude 1, rounded
MAX_ENHANCE = 0.9  # colour, contrast, brightness, sharpness: factor 1 +- 0.9
MAX_POSTERIZE_BITS_REMOVED = 4  # keep 8..4 bits
FILL_VALUE = 128.0  # what geometric ops bring in from outside the image

ImageOp = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _per_image(values: tf.Tensor) -> tf.Tensor:
    return values[:, None, None, None]


def _blend(degenerate: tf.Tensor, images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """PIL's ImageEnhance: degenerate + factor * (image - degenerate), clipped to [0, 255]."""
    blended = degenerate + _per_image(factor) * (images - degenerate)
    return tf.clip_by_value(blended, 0.0, 255.0)


def _enhance_factor(magnitude: tf.Tensor) -> tf.Tensor:
    return 1.0 + MAX_ENHANCE * magnitude


def grayscale(images: tf.Tensor) -> tf.Tensor:
    """ITU-R 601-2 luma in whole values, as PIL's "L" mode, kept as one channel."""
    weights = tf.constant([0.299, 0.587, 0.114], images.dtype)
    return tf.round(tf.tensordot(images, weights, axes=[[3], [0]])[..., None])


def _to_pixels(images: tf.Tensor) -> tf.Tensor:
    """Round to whole pixel values (int32), for the ops defined on 8-bit pixels."""
    return tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.int32)


# ------------------------------------------------------------------ ops without a magnitude


def identity(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    del magnitude
    return images


def auto_contrast(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Stretch each channel of each image to the full 0-255 range (a flat channel is kept)."""
    del magnitude
    low = tf.reduce_min(images, axis=[1, 2], keepdims=True)
    high = tf.reduce_max(images, axis=[1, 2], keepdims=True)
    spread = high - low
    flat = spread <= 0.0
    scale = tf.where(flat, 1.0, 255.0 / tf.where(flat, 1.0, spread))
    offset = tf.where(flat, 0.0, low)
    return tf.clip_by_value((images - offset) * scale, 0.0, 255.0)


def equalize(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """PIL's ImageOps.equalize on each channel of each image: the look-up table that spreads the
    cumulative histogram evenly, leaving out the brightest value's count."""
    del magnitude
    batch, height, width = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    channels = images.shape[3]
    pixels = tf.reshape(tf.transpose(_to_pixels(images), [0, 3, 1, 2]), [batch * channels, -1])
    counts = tf.math.bincount(pixels, minlength=256, maxlength=256, axis=-1)  # (B*C, 256)
    brightest = tf.reduce_max(pixels, axis=1)
    brightest_count = tf.gather(counts, brightest, batch_dims=1)
    step = (height * width - brightest_count) // 255
    below = tf.cumsum(counts, axis=1, exclusive=True)
    table = tf.minimum((step[:, None] // 2 + below) // tf.maximum(step, 1)[:, None], 255)
    equalized = tf.where(step[:, None] > 0, tf.gather(table, pixels, batch_dims=1), pixels)
    equalized = tf.reshape(equalized, [batch, channels, height, width])
    return tf.cast(tf.transpose(equalized, [0, 2, 3, 1]), images.dtype)


def invert(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    del magnitude
    return 255.0 - images


# ------------------------------------------------------------------ pixel-value ops


def solarize(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Invert the pixels at or above a threshold that falls from 256 (none) to 0 (all)."""
    threshold = _per_image(256.0 * (1.0 - tf.abs(magnitude)))
    return tf.where(images >= threshold, 255.0 - images, images)


def posterize(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Keep the top 8..4 bits of each 8-bit value (zero the others)."""
    removed = tf.cast(tf.round(MAX_POSTERIZE_BITS_REMOVED * tf.abs(magnitude)), tf.int32)
    mask = 256 - tf.bitwise.left_shift(tf.ones_like(removed), removed)  # e.g. 0b11110000
    kept = tf.bitwise.bitwise_and(_to_pixels(images), _per_image(mask))
    return tf.cast(kept, images.dtype)


def adjust_saturation(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Blend with the image's greyscale: factor 0 is grey, 1 the image, above 1 more colourful."""
    return _blend(grayscale(images), images, factor)


def adjust_contrast(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Blend with the image's mean grey value (rounded, as PIL)."""
    mean = tf.round(tf.reduce_mean(grayscale(images), axis=[1, 2, 3], keepdims=True))
    return _blend(mean, images, factor)


def adjust_brightness(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Blend with black."""
    return _blend(tf.zeros_like(images), images, factor)


def color(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    return adjust_saturation(images, _enhance_factor(magnitude))


def contrast(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    return adjust_contrast(images, _enhance_factor(magnitude))


def brightness(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    return adjust_brightness(images, _enhance_factor(magnitude))


def sharpness(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Blend with PIL's "smooth" filtered copy (the border pixels stay as they are), so factors
    below 1 blur and above 1 sharpen."""
    height, width = images.shape[1], images.shape[2]
    # PIL's 3x3 smoothing kernel: 5 in the centre, 1 around, divided by 13; as shifted slices
    # of the interior (a convolution misbehaves on the empty batches apply_per_image can pass).
    total = 4.0 * images[:, 1 : height - 1, 1 : width - 1]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            total += images[:, 1 + dy : height - 1 + dy, 1 + dx : width - 1 + dx]
    smooth = tf.pad(tf.round(total / 13.0), [[0, 0], [1, 1], [1, 1], [0, 0]])
    border = tf.pad(
        tf.zeros([height - 2, width - 2], tf.bool), [[1, 1], [1, 1]], constant_values=True
    )
    smooth = tf.where(border[None, :, :, None], images, smooth)
    return _blend(smooth, images, _enhance_factor(magnitude))


# ------------------------------------------------------------------ geometric ops


def _transform(images: tf.Tensor, transforms: tf.Tensor, interpolation: str) -> tf.Tensor:
    """Resample each image through its own projective transform (8 numbers mapping an output
    pixel's (x, y) to the input point it reads), filling the outside with FILL_VALUE."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.cast(transforms, tf.float32),
        output_shape=tf.shape(images)[1:3],
        fill_value=FILL_VALUE,
        interpolation=interpolation,
        fill_mode="CONSTANT",
    )


def _affine(a0, a1, a2, b0, b1, b2) -> tf.Tensor:
    zero = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)


def _centre(images: tf.Tensor) -> tuple[float, float]:
    return (images.shape[2] - 1) / 2.0, (images.shape[1] - 1) / 2.0


def rotate(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Rotate about the centre by up to MAX_ROTATE_DEGREES (positive: counter-clockwise)."""
    angle = magnitude * (MAX_ROTATE_DEGREES * math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = _centre(images)
    # The output pixel (x, y) reads the input at the point rotated back by the angle.
    transforms = _affine(cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy)
    return _transform(images, transforms, "BILINEAR")


def shear_x(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Shift each row sideways in proportion to its distance from the centre row."""
    shear = MAX_SHEAR * magnitude
    one, zero = tf.ones_like(shear), tf.zeros_like(shear)
    _, cy = _centre(images)
    return _transform(images, _affine(one, shear, -shear * cy, zero, one, zero), "BILINEAR")


def shear_y(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Shift each column up or down in proportion to its distance from the centre column."""
    shear = MAX_SHEAR * magnitude
    one, zero = tf.ones_like(shear), tf.zeros_like(shear)
    cx, _ = _centre(images)
    return _transform(images, _affine(one, zero, zero, shear, one, -shear * cx), "BILINEAR")


def _pixels_of(magnitude: tf.Tensor, side: int) -> tf.Tensor:
    return tf.round(MAX_TRANSLATE_FRACTION * side * magnitude)


def translate_x(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Move the content right (positive) or left by whole pixels."""
    shift = _pixels_of(magnitude, images.shape[2])
    one, zero = tf.ones_like(shift), tf.zeros_like(shift)
    return _transform(images, _affine(one, zero, -shift, zero, one, zero), "NEAREST")


def translate_y(images: tf.Tensor, magnitude: tf.Tensor) -> tf.Tensor:
    """Move the content down (positive) or up by whole pixels."""
    shift = _pixels_of(magnitude, images.shape[1])
    one, zero = tf.ones_like(shift), tf.zeros_like(shift)
    return _transform(images, _affine(one, zero, zero, zero, one, -shift), "NEAREST")


# ------------------------------------------------------------------ colour jitter's extra op


def adjust_hue(images: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """Turn each image's hue by `shift` of a full turn (per image, in [-0.5, 0.5])."""
    hsv = tf.image.rgb_to_hsv(images / 255.0)
    turned = tf.math.floormod(hsv[..., :1] + _per_image(shift), 1.0)
    rgb = tf.image.hsv_to_rgb(tf.concat([turned, hsv[..., 1:]], axis=-1))
    return tf.clip_by_value(rgb * 255.0, 0.0, 255.0)
