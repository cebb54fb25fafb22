"""tf.data input pipelines for training and evaluation.

The training dataset is infinite and reproducible: the batches of epoch e depend only on
(seed, e). Each epoch is a fresh stateless permutation of all images, and every random
augmentation uses stateless ops seeded from (seed, epoch, batch index). So a run resumed
at epoch k (start_epoch=k) sees exactly the batches an uninterrupted run would have seen.

Images stay in one uint8 tensor; the datasets carry only indices and gather each batch
from it, which keeps pipeline construction fast (the images never become a graph constant).
Augmentation runs on whole batches (vectorized, see augment.py), not per image.

Order of operations for a training batch:
  gather uint8 -> random flip -> pad (zeros = black pixels, or reflect) + random crop
  -> RandAugment or AutoAugment (policies.py) -> colour jitter (on pixel values 0-255)
  -> float32, x / 255, (x - mean) / std -> normalized jitter (a shift and a scale per image)
  -> cutout (zeros after normalization, i.e. the dataset's mean colour, as in DeVries &
  Taylor's Cutout recipe) -> MixUp / CutMix (mixing.py; the labels become mixed one-hot
  vectors).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from resnet_tf.config.choices import AUTOAUGMENT_POLICIES, CROP_MODES, FLIP_MODES
from resnet_tf.data.augment import (
    alternating_flip,
    color_jitter,
    derive_seed,
    normalized_jitter,
    random_crop,
    random_cutout,
    random_flip,
)
from resnet_tf.data.mixing import mix_batch
from resnet_tf.data.normalization import mean_and_std, normalize_images
from resnet_tf.data.policies import auto_augment, rand_augment

# Independent random streams derived from the per-epoch seed. Changing a number changes every
# batch, so a checkpoint saved before the change would no longer resume exactly.
_SHUFFLE_STREAM = 0
_AUGMENT_STREAM = 1
_FLIP_STREAM = 0
_CROP_STREAM = 1
_CUTOUT_STREAM = 2
_POLICY_STREAM = 3
_JITTER_STREAM = 4
_MIX_STREAM = 5
_NORMALIZED_JITTER_STREAM = 6


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


def _epoch_seed(seed: int, epoch: tf.Tensor) -> tf.Tensor:
    """The stateless seed of one epoch (epoch -1 seeds what is drawn once per run)."""
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
    randaugment_ops: int = 0,
    randaugment_magnitude: float = 9.0,
    autoaugment: str = "none",
    color_jitter_ranges: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
    normalized_jitter_ranges: tuple[float, float] = (0.0, 0.0),
    mixup: float = 0.0,
    cutmix: float = 0.0,
    num_classes: int = 10,
    accumulation_steps: int = 1,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Infinite dataset of augmented (images float32 NHWC, labels int32) training batches;
    with mixup or cutmix, the labels are mixed one-hot vectors (float32, num_classes wide).

    Batches of epoch e are a pure function of (seed, e): a fresh permutation of all images,
    remainder dropped (see steps_per_epoch), augmentations seeded by (seed, e, batch index).
    The first batch yielded is the first batch of epoch `start_epoch`, so resuming at epoch k
    reproduces an uninterrupted run. Padding happens on raw pixels (zero mode pads black),
    normalization follows, and cutout comes last (its zeros are the mean colour). flip_mode
    "alternate" flips a random half of the images in even epochs and the other half in odd ones.
    randaugment_ops > 0 turns RandAugment on; color_jitter_ranges are (brightness, contrast,
    saturation, hue), see augment.color_jitter; normalized_jitter_ranges are (shift, scale), see
    augment.normalized_jitter. With accumulation_steps N, an epoch holds a
    whole number of groups of N batches (one weight update each); the rest is dropped.
    The first `skip_batches` batches of epoch `start_epoch` are left out (a resume from inside
    that epoch); the others keep their seeds, so they are the batches an unbroken run sees.
    """
    x, labels = _check_images_and_labels(x, y)
    n_images = x.shape[0]
    if accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be >= 1, found {accumulation_steps}")
    steps = steps_per_epoch(n_images, batch_size * accumulation_steps) * accumulation_steps
    mean_and_std(normalization)  # fail now, not inside the pipeline
    if crop_mode not in CROP_MODES:
        raise ValueError(f"crop_mode must be one of {CROP_MODES}, found {crop_mode!r}")
    if flip_mode not in FLIP_MODES:
        raise ValueError(f"flip_mode must be one of {FLIP_MODES}, found {flip_mode!r}")
    if crop_padding < 0 or cutout < 0:
        raise ValueError(f"crop_padding and cutout must be >= 0, found {crop_padding} and {cutout}")
    if start_epoch < 0:
        raise ValueError(f"start_epoch must be >= 0, found {start_epoch}")
    if not 0 <= skip_batches < steps:
        raise ValueError(f"skip_batches must be in [0, {steps}), found {skip_batches}")
    if autoaugment not in AUTOAUGMENT_POLICIES:
        raise ValueError(
            f"autoaugment must be one of {AUTOAUGMENT_POLICIES}, found {autoaugment!r}"
        )
    if randaugment_ops > 0 and autoaugment != "none":
        raise ValueError("randaugment and autoaugment: one image policy at a time")

    all_images = tf.convert_to_tensor(x)
    all_labels = tf.convert_to_tensor(labels)
    if flip and flip_mode == "alternate":  # which half is mirrored in even epochs, per run
        run_seed = _epoch_seed(seed, tf.constant(-1))
        first_flips = tf.random.stateless_uniform([n_images], seed=run_seed) < 0.5

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = _epoch_seed(seed, epoch)
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n_images, dtype=tf.int32), seed=derive_seed(epoch_seed, _SHUFFLE_STREAM)
        )
        index_batches = tf.reshape(order[: steps * batch_size], [steps, batch_size])
        epochs = tf.fill([steps], tf.cast(epoch, tf.int64))
        return tf.data.Dataset.from_tensor_slices(
            (epochs, tf.range(steps, dtype=tf.int64), index_batches)
        )

    def load_batch(epoch: tf.Tensor, batch_index: tf.Tensor, indices: tf.Tensor):
        batch_seed = derive_seed(
            derive_seed(_epoch_seed(seed, epoch), _AUGMENT_STREAM), batch_index
        )
        images = tf.gather(all_images, indices)
        if flip and flip_mode == "alternate":
            images = alternating_flip(images, indices, first_flips, epoch)
        elif flip:
            images = random_flip(images, derive_seed(batch_seed, _FLIP_STREAM))
        images = random_crop(images, derive_seed(batch_seed, _CROP_STREAM), crop_padding, crop_mode)
        if randaugment_ops > 0 or autoaugment != "none" or any(color_jitter_ranges):
            images = tf.cast(images, tf.float32)  # the image ops work on 0-255 floats
        policy_seed = derive_seed(batch_seed, _POLICY_STREAM)
        if randaugment_ops > 0:
            images = rand_augment(images, policy_seed, randaugment_ops, randaugment_magnitude)
        if autoaugment == "cifar10":
            images = auto_augment(images, policy_seed)
        if any(color_jitter_ranges):
            images = color_jitter(
                images, derive_seed(batch_seed, _JITTER_STREAM), *color_jitter_ranges
            )
        images = normalize_images(images, normalization)
        images = normalized_jitter(
            images, derive_seed(batch_seed, _NORMALIZED_JITTER_STREAM), *normalized_jitter_ranges
        )
        images = random_cutout(images, derive_seed(batch_seed, _CUTOUT_STREAM), cutout)
        labels = tf.gather(all_labels, indices)
        if mixup > 0 or cutmix > 0:
            mix_seed = derive_seed(batch_seed, _MIX_STREAM)
            return mix_batch(images, labels, mix_seed, num_classes, mixup, cutmix)
        return images, labels

    dataset = tf.data.Dataset.counter(start=start_epoch, dtype=tf.int64).flat_map(epoch_batches)
    # Skipped as batch indices, before any image is loaded: cheap, and each batch keeps its seed.
    dataset = dataset.skip(skip_batches)
    dataset = dataset.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(_without_tuning_thread())


def _without_tuning_thread() -> tf.data.Options:
    """tf.data's autotuner runs a thread that sleeps up to a minute between tunings, and the
    iterator of a long run, dropped when fit() returns, can wait out that sleep before fit()
    returns. One map and one prefetch need no tuning beyond their defaults (as many parallel
    calls as cores, the prefetch buffer's own sizing): the thread is left out."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def make_eval_dataset(
    x: np.ndarray, y: np.ndarray, *, batch_size: int, normalization: str = "cifar10"
) -> tf.data.Dataset:
    """Finite dataset of normalized (images float32 NHWC, labels int32) batches, in order.

    The last, smaller batch is kept so every image is evaluated.
    """
    x, labels = _check_images_and_labels(x, y)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, found {batch_size}")
    mean_and_std(normalization)
    all_images = tf.convert_to_tensor(x)
    all_labels = tf.convert_to_tensor(labels)

    def load_batch(indices: tf.Tensor):
        images = normalize_images(tf.gather(all_images, indices), normalization)
        return images, tf.gather(all_labels, indices)

    dataset = tf.data.Dataset.range(x.shape[0]).batch(batch_size)
    dataset = dataset.map(load_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
