"""MixUp and CutMix: each training batch mixed with itself in reverse order.

Image i is mixed with image B-1-i (the batch is already a random draw, so reversing it pairs
images at random without more randomness), in a ratio `lam` drawn once per batch from
Beta(alpha, alpha), from the batch's stateless seed. The labels become mixed one-hot vectors,
lam * one_hot(y_i) + (1 - lam) * one_hot(y_partner): a cross-entropy on them is the mix of the
two labels' losses, and label smoothing, applied to them by the loss, smooths both alike.

MixUp (Zhang et al. 2018) blends whole images; CutMix (Yun et al. 2019) pastes a box of the
partner covering a share 1 - lam of the image (cut at the borders, lam then recomputed from the
box actually pasted). Both are linear in the pixels, so mixing normalized images equals
normalizing mixed ones.
"""

from __future__ import annotations

import tensorflow as tf


def _beta(seed: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """One draw from Beta(alpha, alpha), as g1 / (g1 + g2) of two Gamma(alpha) draws."""
    gammas = tf.random.stateless_gamma([2], seed=seed, alpha=alpha)
    return gammas[0] / tf.maximum(gammas[0] + gammas[1], 1e-12)


def _box_mask(seed: tf.Tensor, lam: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """A (H, W, 1) boolean box of about (1 - lam) of the image, centred anywhere, cut at the
    borders."""
    side = tf.sqrt(1.0 - lam)
    box_h = tf.cast(tf.round(side * height), tf.int32)
    box_w = tf.cast(tf.round(side * width), tf.int32)
    centre = tf.random.stateless_uniform([2], seed=seed, minval=0.0, maxval=1.0)
    cy = tf.cast(centre[0] * height, tf.int32)
    cx = tf.cast(centre[1] * width, tf.int32)
    top, bottom = tf.maximum(cy - box_h // 2, 0), tf.minimum(cy + box_h - box_h // 2, height)
    left, right = tf.maximum(cx - box_w // 2, 0), tf.minimum(cx + box_w - box_w // 2, width)
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    return inside[:, :, None]


def mix_batch(
    images: tf.Tensor,
    labels: tf.Tensor,
    seed: tf.Tensor,
    num_classes: int,
    mixup: float = 0.0,
    cutmix: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor]:
    """(mixed images, mixed one-hot labels (B, num_classes) float32). mixup and cutmix are the
    Beta alphas (0: off); with both on, each batch uses one of them with equal chance."""
    if mixup <= 0 and cutmix <= 0:
        raise ValueError("mix_batch needs mixup or cutmix > 0")
    one_hot = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)
    partner_images, partner_labels = tf.reverse(images, [0]), tf.reverse(one_hot, [0])
    if mixup > 0 and cutmix > 0:
        use_cutmix = tf.random.stateless_uniform([], seed=seed) < 0.5
    else:
        use_cutmix = tf.constant(cutmix > 0)
    alpha = tf.where(use_cutmix, float(cutmix), float(mixup))
    lam = _beta(tf.random.experimental.stateless_fold_in(seed, 1), alpha)

    height, width = images.shape[1], images.shape[2]
    box = _box_mask(tf.random.experimental.stateless_fold_in(seed, 2), lam, height, width)
    cut = tf.where(box[None], partner_images, images)
    box_lam = 1.0 - tf.reduce_mean(tf.cast(box, tf.float32))
    blended = lam * images + (1.0 - lam) * partner_images
    mixed_images = tf.where(use_cutmix, cut, blended)
    lam = tf.where(use_cutmix, box_lam, lam)
    return mixed_images, lam * one_hot + (1.0 - lam) * partner_labels
