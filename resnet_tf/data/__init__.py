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
