"""The data stage: CIFAR-10 (or a folder of labelled images) -> splits -> tf.data pipelines.

Other stages import from here, not from the modules below, so the modules can move freely:
  cifar10.py       the CIFAR-10 format and load_cifar10 (safe decoding, source resolution)
  cache.py         the on-disk cache of decoded arrays
  images.py        load_image (a file) and decode_image (bytes) -> 32x32 RGB, within the limits
  image_headers.py each decodable format's size and EXIF orientation, read from its header
  image_folder.py  labelled images from class folders
  splits.py        data.subset and the stratified train/validation split
  normalization.py uint8 pixels -> normalized float32
  augment.py       stateless-seeded batch augmentation ops
  pipeline.py      the reproducible training and evaluation datasets
"""

from resnet_tf.data.augment import alternating_flip, random_crop, random_cutout, random_flip
from resnet_tf.data.cache import default_cache_dir
from resnet_tf.data.cifar10 import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CLASS_NAMES,
    DATA_DIR_ENV,
    NUM_CLASSES,
    is_cifar10_source,
    load_cifar10,
)
from resnet_tf.data.image_folder import load_image_folder
from resnet_tf.data.images import decode_image, load_image
from resnet_tf.data.normalization import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    mean_and_std,
    normalize_images,
)
from resnet_tf.data.pipeline import make_eval_dataset, make_train_dataset, steps_per_epoch
from resnet_tf.data.splits import Splits, make_splits, split_train_val

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CLASS_NAMES",
    "DATA_DIR_ENV",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "NUM_CLASSES",
    "Splits",
    "alternating_flip",
    "default_cache_dir",
    "is_cifar10_source",
    "load_cifar10",
    "decode_image",
    "load_image",
    "load_image_folder",
    "make_eval_dataset",
    "make_splits",
    "make_train_dataset",
    "mean_and_std",
    "normalize_images",
    "random_crop",
    "random_cutout",
    "random_flip",
    "split_train_val",
    "steps_per_epoch",
]
