"""RandAugment and AutoAugment's CIFAR-10 policy: which image op each image gets, and how hard.

Both choose per image (not per batch), from a stateless seed, and run each op once on the
images that chose it (tf.dynamic_partition, then stitched back), so a batch costs one op per
image and layer whatever the number of ops. Magnitudes use the papers' 0-10 level scale:
level 10 is each op's strongest setting (image_ops.MAX_*), and the ops with a direction turn
either way with equal chance.
"""

from __future__ import annotations

import tensorflow as tf

from resnet_tf.data import image_ops as ops

# RandAugment's 14 ops (Cubuk et al. 2020), in a fixed order: the index is what is drawn.
RANDAUGMENT_OPS: dict[str, ops.ImageOp] = {
    "identity": ops.identity,
    "auto_contrast": ops.auto_contrast,
    "equalize": ops.equalize,
    "rotate": ops.rotate,
    "solarize": ops.solarize,
    "color": ops.color,
    "posterize": ops.posterize,
    "contrast": ops.contrast,
    "brightness": ops.brightness,
    "sharpness": ops.sharpness,
    "shear_x": ops.shear_x,
    "shear_y": ops.shear_y,
    "translate_x": ops.translate_x,
    "translate_y": ops.translate_y,
}
# AutoAugment's CIFAR-10 policy also inverts.
AUTOAUGMENT_OPS: dict[str, ops.ImageOp] = {**RANDAUGMENT_OPS, "invert": ops.invert}

MAX_LEVEL = 10

# The policy AutoAugment found on reduced CIFAR-10 (Cubuk et al. 2019, appendix): 25
# sub-policies of two steps, each (op, probability, level 0-9); an image gets one sub-policy
# at random and each of its two steps happens with its probability. Level 0 where the op has
# no magnitude.
CIFAR10_POLICY: tuple[tuple[tuple[str, float, int], tuple[str, float, int]], ...] = (
    (("invert", 0.1, 0), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
    (("auto_contrast", 0.5, 0), ("equalize", 0.9, 0)),
    (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, 0), ("equalize", 0.5, 0)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translate_x", 0.5, 8)),
    (("equalize", 0.3, 0), ("auto_contrast", 0.4, 0)),
    (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, 0)),
    (("equalize", 0.2, 0), ("auto_contrast", 0.6, 0)),
    (("equalize", 0.2, 0), ("equalize", 0.6, 0)),
    (("color", 0.9, 9), ("equalize", 0.6, 0)),
    (("auto_contrast", 0.8, 0), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("auto_contrast", 0.9, 0)),
    (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
    (("auto_contrast", 0.9, 0), ("solarize", 0.8, 3)),
    (("equalize", 0.8, 0), ("invert", 0.1, 0)),
    (("translate_y", 0.7, 9), ("auto_contrast", 0.9, 0)),
)


def apply_per_image(
    images: tf.Tensor, op_index: tf.Tensor, magnitude: tf.Tensor, table: dict[str, ops.ImageOp]
) -> tf.Tensor:
    """Image i through op number op_index[i] of `table` with magnitude[i]; each op runs once,
    on the images that chose it."""
    functions = list(table.values())
    count = len(functions)
    op_index = tf.cast(op_index, tf.int32)
    positions = tf.dynamic_partition(tf.range(tf.shape(images)[0]), op_index, count)
    groups = tf.dynamic_partition(images, op_index, count)
    magnitudes = tf.dynamic_partition(magnitude, op_index, count)
    done = [op(group, m) for op, group, m in zip(functions, groups, magnitudes, strict=True)]
    result = tf.dynamic_stitch(positions, done)
    return tf.ensure_shape(result, images.shape)


def _random_signs(seed: tf.Tensor, shape) -> tf.Tensor:
    return tf.where(tf.random.stateless_uniform(shape, seed=seed) < 0.5, -1.0, 1.0)


def rand_augment(images: tf.Tensor, seed: tf.Tensor, num_ops: int, level: float) -> tf.Tensor:
    """num_ops layers; in each, every image gets one of the 14 ops (uniformly, identity
    included) at `level` (0-10) in a random direction."""
    batch = tf.shape(images)[0]
    magnitude = tf.cast(level / MAX_LEVEL, images.dtype)
    for layer in range(num_ops):
        layer_seed = tf.random.experimental.stateless_fold_in(seed, layer)
        choice = tf.random.stateless_uniform(
            [batch], seed=layer_seed, maxval=len(RANDAUGMENT_OPS), dtype=tf.int32
        )
        signs = _random_signs(tf.random.experimental.stateless_fold_in(layer_seed, 1), [batch])
        images = apply_per_image(images, choice, magnitude * signs, RANDAUGMENT_OPS)
    return images


def _policy_tensors() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """CIFAR10_POLICY as (op index, probability, magnitude) tensors of shape (25, 2)."""
    names = list(AUTOAUGMENT_OPS)
    index = [[names.index(op) for op, _, _ in steps] for steps in CIFAR10_POLICY]
    probability = [[p for _, p, _ in steps] for steps in CIFAR10_POLICY]
    magnitude = [[level / MAX_LEVEL for _, _, level in steps] for steps in CIFAR10_POLICY]
    return (
        tf.constant(index, tf.int32),
        tf.constant(probability, tf.float32),
        tf.constant(magnitude, tf.float32),
    )


def auto_augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """AutoAugment's CIFAR-10 policy: one of its 25 sub-policies per image, each of the two
    steps applied with its probability (identity otherwise), directions at random."""
    batch = tf.shape(images)[0]
    index, probability, magnitude = _policy_tensors()
    chosen = tf.random.stateless_uniform(
        [batch], seed=seed, maxval=len(CIFAR10_POLICY), dtype=tf.int32
    )
    happens = tf.random.stateless_uniform(
        [batch, 2], seed=tf.random.experimental.stateless_fold_in(seed, 1)
    ) < tf.gather(probability, chosen)
    signs = _random_signs(tf.random.experimental.stateless_fold_in(seed, 2), [batch, 2])
    op_index = tf.where(happens, tf.gather(index, chosen), 0)  # 0: identity
    strength = tf.gather(magnitude, chosen) * signs
    for step in range(2):
        images = apply_per_image(images, op_index[:, step], strength[:, step], AUTOAUGMENT_OPS)
    return images
