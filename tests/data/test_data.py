"""Tests for resnet_tf.data as a whole: the front door other stages import, and the option
choices it shares with the config choices. Each module has its own test file:
test_cifar10, test_cache, test_splits, test_augment and test_pipeline."""

from __future__ import annotations

import pytest

import resnet_tf.data as data
from resnet_tf.config import choices
from resnet_tf.data import augment, normalization, pipeline
from tests.helpers import REPO_ROOT

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
    "mean_and_std",
    "normalize_images",
    "random_flip",
    "alternating_flip",
    "random_crop",
    "random_cutout",
    "make_train_dataset",
    "make_eval_dataset",
    "steps_per_epoch",
}


SUBMODULES = "resnet_tf.data."


def names_other_stages_take_from_data() -> set[str]:
    """Every name a module outside resnet_tf/data/ imports from resnet_tf.data or reads as an
    attribute of it (`data_lib.X`)."""
    import ast

    package = REPO_ROOT / "resnet_tf"
    used = set()
    for path in package.rglob("*.py"):
        if path.is_relative_to(package / "data"):
            continue
        tree = ast.parse(path.read_text())
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "resnet_tf.data":
                used.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "resnet_tf.data."
            ):
                used.add(node.module)  # past the front door: never in FRONT_DOOR
            elif isinstance(node, ast.ImportFrom) and node.module == "resnet_tf":
                aliases.update(a.asname or a.name for a in node.names if a.name == "data")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                used.add(node.attr)
    return used


def test_front_door_exports_what_other_stages_use():
    assert set(data.__all__) == FRONT_DOOR
    used = names_other_stages_take_from_data()
    assert used - FRONT_DOOR == set()  # other stages use the front door only
    assert {"load_cifar10", "make_train_dataset", "load_image"} <= used
    for name in data.__all__:
        value = getattr(data, name)
        if callable(value):  # defined in the data stage, not re-exported from elsewhere
            assert value.__module__.startswith("resnet_tf.data."), name


@pytest.mark.parametrize("module", [pipeline, augment, normalization])
def test_option_choices_are_the_config_schemas_own_lists(module):
    """One list per option: the data modules use the config's, never a copy of their own."""
    for name in ("NORMALIZATIONS", "CROP_MODES", "FLIP_MODES"):
        if hasattr(module, name):
            assert getattr(module, name) is getattr(choices, name)
