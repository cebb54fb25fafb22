"""Tests for resnet_tf.data as a whole: the front door other stages import, and the option
choices it shares with the config choices. Each module has its own test file:
test_cifar10, test_cache, test_splits, test_augment and test_pipeline."""

from __future__ import annotations

import pytest

import resnet_tf.data as data
from resnet_tf.config import choices
from resnet_tf.data import augment, normalization, pipeline

FRONT_DOOR = {
    # CIFAR-10 facts and loading
    "CLASS_NAMES",
    "NUM_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DATA_DIR_ENV",
    "load_cifar10",
    "is_cifar10_source",
    "default_cache_dir",
    "decode_image",
    "load_image",
    "load_image_folder",
    # what a run trains and validates on
    "Splits",
    "make_splits",
    "split_train_val",
    # pixels -> model inputs
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize_images",
    "random_flip",
    "alternating_flip",
    "random_crop",
    "random_cutout",
    "make_train_dataset",
    "make_eval_dataset",
    "steps_per_epoch",
}


def test_front_door_exports_what_other_stages_use():
    assert set(data.__all__) == FRONT_DOOR
    for name in data.__all__:
        assert getattr(data, name) is not None


@pytest.mark.parametrize("module", [pipeline, augment, normalization])
def test_option_choices_are_the_config_schemas_own_lists(module):
    """One list per option: the data modules use the config's, never a copy of their own."""
    for name in ("NORMALIZATIONS", "CROP_MODES", "FLIP_MODES"):
        if hasattr(module, name):
            assert getattr(module, name) is getattr(choices, name)
