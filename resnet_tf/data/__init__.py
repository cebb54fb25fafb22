"""CIFAR-10 loading, train/validation splits and tf.data pipelines."""

from resnet_tf.data.cifar10 import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CLASS_NAMES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    NUM_CLASSES,
    default_cache_dir,
    is_cifar10_source,
    load_cifar10,
    split_train_val,
)
from resnet_tf.data.image_folder import load_image_folder as load_image_folder
from resnet_tf.data.pipeline import (
    make_eval_dataset,
    make_train_dataset,
    normalize_images,
    random_crop,
    random_cutout,
    random_flip,
    steps_per_epoch,
)

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CLASS_NAMES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NUM_CLASSES",
    "default_cache_dir",
    "is_cifar10_source",
    "load_cifar10",
    "make_eval_dataset",
    "make_train_dataset",
    "normalize_images",
    "random_crop",
    "random_cutout",
    "random_flip",
    "split_train_val",
    "steps_per_epoch",
]


# TEMPORARY (until the data room's splits.py lands)
from dataclasses import dataclass as _dataclass  # noqa: E402

import numpy as _np  # noqa: E402


@_dataclass
class Splits:
    x_train: _np.ndarray
    y_train: _np.ndarray
    x_val: _np.ndarray
    y_val: _np.ndarray


def make_splits(x, y, *, subset, val_size, seed) -> Splits:
    if subset is not None:
        x, y = x[:subset], y[:subset]
    (x_tr, y_tr), (x_val, y_val) = split_train_val(x, y, val_size, seed)
    return Splits(x_tr, y_tr, x_val, y_val)
