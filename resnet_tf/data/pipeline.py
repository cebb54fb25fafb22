"""tf.data input pipelines for training and evaluation.

The training dataset is infinite and reproducible: the batches of epoch e depend only on
(seed, e). Each epoch is a fresh stateless permutation of all images, and every random
augmentation uses stateless ops seeded from (seed, epoch, batch index). So a run resumed
at epoch k (start_epoch=k) sees exactly the batches an uninterrupted run would have seen.

Images stay in one uint8 tensor; the datasets carry only indices and gather each batch
from it, which keeps pipeline construction fast (no 150 MB graph constant). Augmentation
runs on whole batches (vectorized), which measured faster than per-image augmentation.

Order of operations for a training batch:
  gather uint8 -> random flip -> pad (zeros = black pixels, or reflect) + random crop
  -> float32, x / 255, (x - mean) / std -> cutout (zeros after normalization, i.e. the
  dataset's mean colour, as in DeVries & Taylor's Cutout recipe).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from resnet_tf.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD

NORMALIZATIONS = ("cifar10", "imagenet", "none")
CROP_MODES = ("zero", "reflect")
FLIP_MODES = ("random", "alternate")

# Independent random streams derived from the per-epoch seed.
_SHUFFLE_STREAM = 0
_AUGMENT_STREAM = 1
_FLIP_STREAM = 0
_CROP_STREAM = 1
_CUTOUT_STREAM = 2


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Number of full training batches per epoch (the remainder is dropped)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, found {batch_size}")
    steps = n_images // batch_size
    if steps == 0:
        raise ValueError(
            f"need at least one full batch: {n_images} images is fewer than batch_size {batch_size}"
        )
    return steps


def _check_images_and_labels(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate the arrays early, where the error message can still be clear."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images as uint8 (N, H, W, 3), found {x.dtype} {x.shape}")
    labels = np.asarray(y).reshape(-1)
    if labels.shape[0] != x.shape[0]:
        raise ValueError(
            f"expected one label per image, found {labels.shape[0]} labels for {x.shape[0]} images"
        )
    return x, labels.astype(np.int32)


def _mean_and_std(normalization: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if normalization == "cifar10":
        return CIFAR10_MEAN, CIFAR10_STD
    if normalization == "imagenet":
        return IMAGENET_MEAN, IMAGENET_STD
    if normalization == "none":
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, found {normalization!r}")


def normalize_images(images: tf.Tensor, normalization: str = "cifar10") -> tf.Tensor:
    """uint8 images -> float32 (x / 255 - mean) / std per channel; "none" just scales to [0, 1]."""
    mean, std = _mean_and_std(normalization)
    scaled = tf.cast(images, tf.float32) / 255.0
    if normalization == "none":
        return scaled
    return (scaled - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def _derive_seed(seed: tf.Tensor, stream: int) -> tf.Tensor:
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
        [batch], seed=_derive_seed(seed, 1), minval=0, maxval=width, dtype=tf.int32
    )
    top = centre_rows - size // 2
    left = centre_cols - size // 2
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)  # (B, H)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)  # (B, W)
    inside = in_rows[:, :, None] & in_cols[:, None, :]  # (B, H, W)
    return tf.where(inside[..., None], tf.zeros_like(images), images)


def _epoch_seed(seed: int, epoch: tf.Tensor) -> tf.Tensor:
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])


def make_train_dataset(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    start_epoch: int = 0,
    normalization: str = "cifar10",
    flip: bool = True,
    flip_mode: str = "random",
    crop_padding: int = 4,
    crop_mode: str = "zero",
    cutout: int = 0,
) -> tf.data.Dataset:
    """Infinite dataset of augmented (images float32 NHWC, labels int32) training batches.

    Batches of epoch e are a pure function of (seed, e): a fresh permutation of all images,
    remainder dropped (see steps_per_epoch), augmentations seeded by (seed, e, batch index).
    The first batch yielded is the first batch of epoch `start_epoch`, so resuming at epoch k
    reproduces an uninterrupted run. Padding happens on raw pixels (zero mode pads black),
    normalization follows, and cutout comes last (its zeros are the mean colour). flip_mode
    "alternate" flips a random half of the images in even epochs and the other half in odd ones.
    """
    x, labels = _check_images_and_labels(x, y)
    n_images = x.shape[0]
    steps = steps_per_epoch(n_images, batch_size)
    _mean_and_std(normalization)  # fail now, not inside the pipeline
    if crop_mode not in CROP_MODES:
        raise ValueError(f"crop_mode must be one of {CROP_MODES}, found {crop_mode!r}")
    if flip_mode not in FLIP_MODES:
        raise ValueError(f"flip_mode must be one of {FLIP_MODES}, found {flip_mode!r}")
    if crop_padding < 0 or cutout < 0:
        raise ValueError(f"crop_padding and cutout must be >= 0, found {crop_padding} and {cutout}")
    if start_epoch < 0:
        raise ValueError(f"start_epoch must be >= 0, found {start_epoch}")

    all_images = tf.convert_to_tensor(x)
    all_labels = tf.convert_to_tensor(labels)
    if flip and flip_mode == "alternate":  # which half is mirrored in even epochs, per run
        run_seed = _epoch_seed(seed, tf.constant(-1))
        first_flips = tf.random.stateless_uniform([n_images], seed=run_seed) < 0.5

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = _epoch_seed(seed, epoch)
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n_images, dtype=tf.int32), seed=_derive_seed(epoch_seed, _SHUFFLE_STREAM)
        )
        index_batches = tf.reshape(order[: steps * batch_size], [steps, batch_size])
        epochs = tf.fill([steps], tf.cast(epoch, tf.int64))
        return tf.data.Dataset.from_tensor_slices(
            (epochs, tf.range(steps, dtype=tf.int64), index_batches)
        )

    def load_batch(epoch: tf.Tensor, batch_index: tf.Tensor, indices: tf.Tensor):
        batch_seed = _derive_seed(
            _derive_seed(_epoch_seed(seed, epoch), _AUGMENT_STREAM), batch_index
        )
        images = tf.gather(all_images, indices)
        if flip and flip_mode == "alternate":
            images = alternating_flip(images, indices, first_flips, epoch)
        elif flip:
            images = random_flip(images, _derive_seed(batch_seed, _FLIP_STREAM))
        images = random_crop(
            images, _derive_seed(batch_seed, _CROP_STREAM), crop_padding, crop_mode
        )
        images = normalize_images(images, normalization)
        images = random_cutout(images, _derive_seed(batch_seed, _CUTOUT_STREAM), cutout)
        return images, tf.gather(all_labels, indices)

    dataset = tf.data.Dataset.counter(start=start_epoch, dtype=tf.int64).flat_map(epoch_batches)
    dataset = dataset.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(
    x: np.ndarray, y: np.ndarray, *, batch_size: int, normalization: str = "cifar10"
) -> tf.data.Dataset:
    """Finite dataset of normalized (images float32 NHWC, labels int32) batches, in order.

    The last, smaller batch is kept so every image is evaluated.
    """
    x, labels = _check_images_and_labels(x, y)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, found {batch_size}")
    _mean_and_std(normalization)
    all_images = tf.convert_to_tensor(x)
    all_labels = tf.convert_to_tensor(labels)

    def load_batch(indices: tf.Tensor):
        images = normalize_images(tf.gather(all_images, indices), normalization)
        return images, tf.gather(all_labels, indices)

    dataset = tf.data.Dataset.range(x.shape[0]).batch(batch_size)
    dataset = dataset.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
