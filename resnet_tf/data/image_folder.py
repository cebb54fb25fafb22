"""Labelled images from a folder of class folders, as CIFAR-10-shaped arrays.

Layout: `<root>/<split>/<class name>/*.png|jpg|jpeg`, or `<root>/<class name>/...` directly.
Class folders are matched to CIFAR-10 names ignoring case; classes without a folder are simply
absent. Each image is decoded as RGB (grey is repeated, alpha dropped) and, unless it is already
32x32, resized to 32x32 with tf.image.resize bilinear + antialias, stretched (the aspect ratio is
not kept), then rounded to uint8: the same method keras.utils.image_dataset_from_directory uses
by default, and antialiasing keeps large photos from aliasing when shrunk.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np
import tensorflow as tf

from resnet_tf.data.cifar10 import CLASS_NAMES, IMAGE_SHAPE, LABEL_DTYPE
from resnet_tf.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# Images are shrunk to 32x32: a larger one is a mistake or a decompression bomb (a small PNG
# can claim gigapixels, and decoding it would take gigabytes).
MAX_PIXELS = 50_000_000


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


def _decode_reason(error: Exception) -> str:
    """TensorFlow's message, first line, without its op-name wrapping."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    line = re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]", "", line).strip()
    return line or "unknown reason"


def image_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, GIF or BMP header, without decoding; None when the
    header is not one of those (decoding then says what is wrong)."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n") and raw[12:16] == b"IHDR" and len(raw) >= 24:
        return struct.unpack(">II", raw[16:24])
    if raw.startswith(b"\xff\xd8"):
        try:
            height, width, _ = tf.image.extract_jpeg_shape(raw).numpy()
        except (tf.errors.InvalidArgumentError, ValueError):
            return None
        return int(width), int(height)
    if raw[:6] in (b"GIF87a", b"GIF89a") and len(raw) >= 10:
        return struct.unpack("<HH", raw[6:10])
    if raw.startswith(b"BM") and len(raw) >= 26:
        width, height = struct.unpack("<ii", raw[18:26])
        return abs(width), abs(height)
    return None


def load_image(path: str | os.PathLike) -> np.ndarray:
    """One image file (PNG, JPEG, GIF or BMP, any size or mode) -> uint8 (32, 32, 3) RGB,
    decoded and resized as the module docstring says; a DataError names a file it cannot read."""
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read image file: {error.strerror}") from None
    return decode_image(raw, str(path))


def decode_image(raw: bytes, source: str) -> np.ndarray:
    """Encoded image bytes -> uint8 (32, 32, 3) RGB, as `load_image` decodes a file; `source`
    names the image in a DataError (a file's path, or where in a request it came from)."""
    try:
        size = image_size(raw)
        if size is not None and size[0] * size[1] > MAX_PIXELS:
            raise DataError(
                f"{source}: the image claims {size[0]}x{size[1]} pixels, over the limit of "
                f"{MAX_PIXELS // 1_000_000} megapixels (it would be shrunk to 32x32 anyway); "
                "make it smaller first"
            )
        image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise DataError(
            f"{source}: expected a PNG, JPEG, GIF or BMP image, cannot decode it "
            f"({_decode_reason(error)})"
        ) from None
    if tuple(image.shape) == IMAGE_SHAPE:
        return image.numpy()
    resized = tf.image.resize(image, IMAGE_SHAPE[:2], method="bilinear", antialias=True)
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


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
