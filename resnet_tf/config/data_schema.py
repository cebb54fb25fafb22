"""The data section of a run config (`data:`): where CIFAR-10 is read from, the validation
split, normalization and the training images' augmentation. Part of the schema (schema.py),
kept apart so that each module stays readable; the same rules apply (the comment above a field
is its meaning, docs/configuration.md is written from it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from resnet_tf.config.choices import AUTOAUGMENT_POLICIES, CROP_MODES, FLIP_MODES, NORMALIZATIONS
from resnet_tf.config.ranges import value_range


@dataclass
class RandAugmentConfig:
    """RandAugment (Cubuk et al. 2020), off unless num_ops > 0 (docs/data.md#augmentation)."""

    # Ops applied one after another to each image, each drawn per image from RandAugment's 14
    # (identity included); 0: off.
    num_ops: int = field(default=0, metadata=value_range(0, 10))
    # Strength on the papers' 0-10 scale (10: each op's strongest setting).
    magnitude: float = field(default=9.0, metadata=value_range(0.0, 10.0))


@dataclass
class ColorJitterConfig:
    """Colour jitter, per image; all 0 (the default) is off."""

    # Per image: brightness, contrast and saturation factors uniform in [1 - x, 1 + x], and the
    # hue turned by up to +-hue of a full turn, in this order; 0 leaves that one out.
    brightness: float = field(default=0.0, metadata=value_range(0.0, 1.0))
    contrast: float = field(default=0.0, metadata=value_range(0.0, 1.0))
    saturation: float = field(default=0.0, metadata=value_range(0.0, 1.0))
    hue: float = field(default=0.0, metadata=value_range(0.0, 0.5))


@dataclass
class NormalizedJitterConfig:
    """Brightness and contrast jitter per image, on the normalized images; both 0 is off."""

    # Add a shift uniform in [-shift, shift], in units of each channel's std.
    shift: float = field(default=0.0, metadata=value_range(0.0, 5.0))
    # Then multiply by a factor uniform in [1 - scale, 1 + scale] (about the mean colour).
    scale: float = field(default=0.0, metadata=value_range(0.0, 1.0))


@dataclass
class AugmentConfig:
    """The training images' augmentation, drawn from (seed, epoch) so resume is exact."""

    # Mirror images left-right.
    flip: bool = True
    # random: each image flipped with probability 1/2 in each epoch; alternate: a random half
    # in even epochs and the other half in odd ones, so each image is seen both ways.
    flip_mode: Literal[FLIP_MODES] = "random"
    # Pad by this many pixels, then crop a random 32x32 window (a translation); 0: off.
    crop_padding: int = field(default=4, metadata=value_range(0, 16))
    # What fills the padding: zeros, or the image reflected at its edge.
    crop_mode: Literal[CROP_MODES] = "zero"
    # Blank a random square of this side in each image (DeVries and Taylor 2017); 0: off.
    cutout: int = field(default=0, metadata=value_range(0, 32))
    # After flip and crop, on raw pixels: RandAugment (Cubuk et al. 2020) or AutoAugment's
    # CIFAR-10 policy (Cubuk et al. 2019), one or the other, then colour jitter.
    randaugment: RandAugmentConfig = field(default_factory=RandAugmentConfig)
    # AutoAugment's CIFAR-10 policy, or none (not together with randaugment).
    autoaugment: Literal[AUTOAUGMENT_POLICIES] = "none"
    color_jitter: ColorJitterConfig = field(default_factory=ColorJitterConfig)
    normalized_jitter: NormalizedJitterConfig = field(default_factory=NormalizedJitterConfig)
    # Mix pairs of images in each batch, and their labels in the loss, with a ratio drawn from
    # Beta(alpha, alpha) per batch: MixUp blends whole images, CutMix pastes a box; 0: off.
    # With both on, each batch gets one of the two with equal chance.
    mixup: float = field(default=0.0, metadata=value_range(0.0, 10.0))
    # CutMix's alpha, as mixup's (0: off).
    cutmix: float = field(default=0.0, metadata=value_range(0.0, 10.0))


@dataclass
class DataConfig:
    """Where CIFAR-10 is read from, the validation split and the images' preparation."""

    # Archive, extracted folder, or a folder holding either; null: $CIFAR10_DIR, then Keras' cache.
    path: str | None = None
    # Training images held out (per class, drawn by the seed) to pick checkpoints on; 0: none.
    val_size: int = field(default=5000, metadata=value_range(0, 49000))
    # Use only the first N training images (quick experiments and tests); null: all 50,000.
    subset: int | None = field(default=None, metadata=value_range(10, 50000))
    # Per-channel mean/std of CIFAR-10's or ImageNet's training pixels, or pixels / 255.
    normalization: Literal[NORMALIZATIONS] = "cifar10"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
