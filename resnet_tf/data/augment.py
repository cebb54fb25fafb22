"""Batch augmentation ops: flips, crops, cutout and colour jitter, on whole NHWC batches.

Each op works on a whole batch at once (vectorized), which is faster than mapping per image,
and draws its randomness from a stateless seed the caller passes in, never from a global RNG:
the same seed gives the same augmentation, which is what makes the training pipeline's batches
a pure function of (seed, epoch). Derive one seed per op with `derive_seed`, so no two ops
share random numbers.
"""

from __future__ import annotations

import tensorflow as tf

from resnet_tf.config.choices import CROP_MODES
from resnet_tf.data import image_ops


def derive_seed(seed: tf.Tensor, stream: int | tf.Tensor) -> tf.Tensor:
    """A new stateless seed for a named sub-stream, so streams never share random numbers."""
    return tf.random.experimental.stateless_fold_in(seed, stream)


def random_flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirror each image left-right with probability 1/2 (vectorized over the batch)."""
    batch = tf.shape(images)[0]
    flip = tf.random.stateless_uniform([batch], seed=seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def alternating_flip(
    images: tf.Tensor, indices: tf.Tensor, first_flips: tf.Tensor, epoch: tf.Tensor
) -> tf.Tensor:
    """Mirror image i if first_flips[i] in even epochs, and if not in odd ones (airbench's
    alternating flip): every image is seen both ways in any two consecutive epochs, which
    random flips only give on average."""
    odd_epoch = tf.math.floormod(epoch, 2) == 1
    flip = tf.math.logical_xor(tf.gather(first_flips, indices), odd_epoch)
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def random_crop(images: tf.Tensor, seed: tf.Tensor, padding: int, mode: str = "zero") -> tf.Tensor:
    """Pad each side by `padding` px (zeros or reflection) and crop back to size at a random offset.

    Each image gets its own offset in [0, 2 * padding] on both axes.
    """
    if mode not in CROP_MODES:
        raise ValueError(f"crop_mode must be one of {CROP_MODES}, found {mode!r}")
    if padding == 0:
        return images
    height, width = images.shape[1], images.shape[2]
    pad_mode = "CONSTANT" if mode == "zero" else "REFLECT"
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]], mode=pad_mode)
    batch = tf.shape(images)[0]
    offsets = tf.random.stateless_uniform(
        [batch, 2], seed=seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32
    )
    rows = offsets[:, 0:1] + tf.range(height)[None, :]
    cols = offsets[:, 1:2] + tf.range(width)[None, :]
    picked_rows = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(picked_rows, cols, axis=2, batch_dims=1)


def random_cutout(images: tf.Tensor, seed: tf.Tensor, size: int) -> tf.Tensor:
    """Zero a size x size square per image, centred anywhere (clipped at the borders).

    Applied after normalization, so zero means the mean colour (or black with "none").
    """
    if size == 0:
        return images
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    centre_rows = tf.random.stateless_uniform(
        [batch], seed=seed, minval=0, maxval=height, dtype=tf.int32
    )
    centre_cols = tf.random.stateless_uniform(
        [batch], seed=derive_seed(seed, 1), minval=0, maxval=width, dtype=tf.int32
    )
    top = centre_rows - size // 2
    left = centre_cols - size // 2
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)  # (B, W)
    inside = in_rows[:, :, None] & in_cols[:, None, :]  # (B, H, W)
    return tf.where(inside[..., None], tf.zeros_like(images), images)


def color_jitter(
    images: tf.Tensor,
    seed: tf.Tensor,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
) -> tf.Tensor:
    """Per image, in this order: brightness, contrast and saturation factors drawn uniformly
    from [1 - x, 1 + x], then the hue turned by a draw from [-hue, hue] of a full turn (0 leaves
    one out). On float pixel values in [0, 255], before normalization."""
    draws = tf.random.stateless_uniform(
        [tf.shape(images)[0], 4], seed=seed, minval=-1.0, maxval=1.0
    )
    if brightness > 0:
        images = image_ops.adjust_brightness(images, 1.0 + brightness * draws[:, 0])
    if contrast > 0:
        images = image_ops.adjust_contrast(images, 1.0 + contrast * draws[:, 1])
    if saturation > 0:
        images = image_ops.adjust_saturation(images, 1.0 + saturation * draws[:, 2])
    if hue > 0:
        images = image_ops.adjust_hue(images, hue * draws[:, 3])
    return images


def normalized_jitter(
    images: tf.Tensor, seed: tf.Tensor, shift: float = 0.0, scale: float = 0.0
) -> tf.Tensor:
    """Per image, on normalized values: add a shift drawn from [-shift, shift], then multiply
    by a factor drawn from [1 - scale, 1 + scale] (about 0, the dataset's mean colour).

    The CIFAR-10 speedrun records' light brightness and contrast jitter: two draws and two
    elementwise ops per image, no clipping.
    """
    if shift == 0 and scale == 0:
        return images
    draws = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2, 1, 1, 1], seed=seed, minval=-1.0, maxval=1.0
    )
    return (images + shift * draws[:, 0]) * (1.0 + scale * draws[:, 1])
