"""Pixel normalization: uint8 images -> the float32 inputs a model sees.

Training, evaluation and data-dependent initialisation must all normalize the same way, so
they all call `normalize_images` with the run's `data.normalization`.
"""

from __future__ import annotations

import tensorflow as tf

from resnet_tf.config.choices import NORMALIZATIONS
from resnet_tf.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD

# The usual per-channel statistics of ImageNet pixels / 255, RGB order.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def mean_and_std(normalization: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The per-channel (mean, std) of a normalization; a ValueError names the choices, so a
    pipeline can check its option before it builds anything."""
    if normalization == "cifar10":
        return CIFAR10_MEAN, CIFAR10_STD
    if normalization == "imagenet":
        return IMAGENET_MEAN, IMAGENET_STD
    if normalization == "none":
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, found {normalization!r}")


def normalize_images(images: tf.Tensor, normalization: str = "cifar10") -> tf.Tensor:
    """uint8 images -> float32 (x / 255 - mean) / std per channel; "none" just scales to [0, 1]."""
    mean, std = mean_and_std(normalization)
    scaled = tf.cast(images, tf.float32) / 255.0
    if normalization == "none":
        return scaled
    return (scaled - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)
