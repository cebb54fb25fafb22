"""Labelled images from a folder of class folders, as CIFAR-10-shaped arrays.

Layout: `<root>/<split>/<class name>/*.png|jpg|...`, or `<root>/<class name>/...` directly.
Class folders are matched to CIFAR-10 names ignoring case; classes without a folder are simply
absent. Each image is read by images.load_image (the limits, RGB, EXIF orientation, 32x32), as
predict.py and the server read theirs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from resnet_tf.data.cifar10 import CLASS_NAMES, LABEL_DTYPE
from resnet_tf.data.images import load_image
from resnet_tf.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".jxl")


def _class_folders(folder: Path, split: str | None) -> dict[int, Path]:
    """Map class index -> class folder, refusing any sub-folder that is not a CIFAR-10 class."""
    index_of = {name.lower(): index for index, name in enumerate(CLASS_NAMES)}
    found: dict[int, Path] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        index = index_of.get(sub.name.lower())
        if index is None:
            split_hint = f", or a '{split}' split folder" if split else ""
            raise DataError(
                f"{sub}: unknown class folder '{sub.name}'; expected CIFAR-10 class names "
                f"({', '.join(CLASS_NAMES)}, any case){split_hint}"
            )
        if index in found:
            raise DataError(
                f"{folder}: two folders for class '{CLASS_NAMES[index]}': "
                f"'{found[index].name}' and '{sub.name}'"
            )
        found[index] = sub
    return found


def load_image_folder(
    path: str | os.PathLike, split: str | None = "test"
) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N, 32, 32, 3), labels uint8 (N,)) with CIFAR-10 label numbers.

    `<path>/<split>` is used when it exists, else `path` itself must hold the class folders.
    Images come in class order, then file-name order, so results are reproducible.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of class folders, found no such folder")
    folder = root / split if split and (root / split).is_dir() else root
    class_folders = _class_folders(folder, split if folder == root else None)
    if not class_folders:
        raise DataError(
            f"{folder}: expected class folders named after CIFAR-10 classes "
            f"({', '.join(CLASS_NAMES)}), found none"
        )
    images, labels = [], []
    for index in sorted(class_folders):
        files = sorted(
            p
            for p in class_folders[index].iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        images.extend(load_image(file) for file in files)
        labels.extend([index] * len(files))
    if not images:
        raise DataError(
            f"{folder}: expected {'/'.join(IMAGE_SUFFIXES)} images in the class folders, found none"
        )
    return np.stack(images), np.asarray(labels, dtype=LABEL_DTYPE)
