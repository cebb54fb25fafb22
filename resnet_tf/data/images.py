"""One image file or one encoded image -> uint8 (32, 32, 3) RGB: the one decoder every command
and the server use for images a user hands us.

Before anything is decoded: a file must be a regular file within MAX_IMAGE_BYTES (checked on
the open file, so a FIFO never blocks and /dev/zero is never read), and the header must be one
of the formats TensorFlow decodes (image_headers.FORMAT_NAMES) claiming at most
MAX_IMAGE_PIXELS. Then it is decoded as RGB (grey repeated, alpha dropped), turned upright as
its EXIF orientation says (as photo viewers do), and, unless it is already 32x32, resized to
32x32 with tf.image.resize bilinear + antialias, stretched (the aspect ratio is not kept), then
rounded to uint8: the method keras.utils.image_dataset_from_directory uses by default, and
antialiasing keeps large photos from aliasing when shrunk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from resnet_tf.config.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, read_file, size_problem
from resnet_tf.data.cifar10 import IMAGE_SHAPE
from resnet_tf.data.image_headers import (
    FORMAT_NAMES,
    ImageHeader,
    exif_orientation,
    read_header,
)
from resnet_tf.errors import DataError

EXPECTED = f"expected a {', '.join(FORMAT_NAMES[:-1])} or {FORMAT_NAMES[-1]} image"


def load_image(path: str | os.PathLike) -> np.ndarray:
    """One image file (any format TensorFlow decodes, any size or mode) -> uint8 (32, 32, 3)
    RGB, as the module docstring says; a DataError names a file it cannot read."""
    path = Path(path).expanduser()
    return decode_image(read_file(path, MAX_IMAGE_BYTES, "an image", DataError), str(path))


def decode_image(raw: bytes, source: str) -> np.ndarray:
    """Encoded image bytes -> uint8 (32, 32, 3) RGB, as `load_image` decodes a file; `source`
    names the image in a DataError (a file's path, or where in a request it came from)."""
    problem = size_problem(len(raw), MAX_IMAGE_BYTES, "an image")
    if problem is not None:
        raise DataError(f"{source}: {problem}")
    header = read_header(raw)
    _check_header(header, source)
    try:
        # A WebP or JPEG XL decodes only into its own number of channels; an animated WebP is
        # refused above (TensorFlow 2.21 cannot decode one, and crashes on some).
        own_channels = header.format in ("WebP", "JPEG XL")
        image = tf.io.decode_image(
            raw, channels=0 if own_channels else 3, expand_animations=False
        ).numpy()
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise DataError(
            f"{source}: {EXPECTED}, cannot decode this {header.format} ({_decode_reason(error)})"
        ) from None
    image = _upright(_as_rgb(image), exif_orientation(raw, header.format))
    if image.shape == IMAGE_SHAPE:
        return np.ascontiguousarray(image)
    resized = tf.image.resize(image, IMAGE_SHAPE[:2], method="bilinear", antialias=True)
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


def _check_header(header: ImageHeader | None, source: str) -> None:
    if header is None:
        raise DataError(f"{source}: {EXPECTED}, cannot decode it (not one of these formats)")
    if header.width == 0 or header.height == 0:
        raise DataError(
            f"{source}: {EXPECTED}, cannot decode this {header.format} (its header holds no "
            "image size: truncated or corrupt)"
        )
    if header.animated:
        raise DataError(f"{source}: an animated WebP; expected a still image")
    if header.decoded_pixels > MAX_IMAGE_PIXELS:
        frames = f" in {header.frames} frames" if header.frames > 1 else ""
        claimed = (
            f"{header.decoded_pixels:,} pixels{frames}"
            if header.frames > 1
            else f"{header.width}x{header.height} pixels"
        )
        raise DataError(
            f"{source}: the image claims {claimed}, over the limit of "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels (it would be shrunk to 32x32 anyway); "
            "make it smaller first"
        )


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """Grey (and grey + alpha) repeated to RGB, RGBA without its alpha."""
    if image.shape[-1] in (1, 2):
        return np.repeat(image[..., :1], 3, axis=-1)
    return image[..., :3]


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels turned as EXIF orientation 1..8 says they are to be shown."""
    transposed = image.transpose(1, 0, 2)
    return {
        1: image,
        2: image[:, ::-1],  # mirrored
        3: image[::-1, ::-1],  # upside down
        4: image[::-1],  # mirrored upside down
        5: transposed,  # mirrored and turned
        6: transposed[:, ::-1],  # stored turned a quarter anticlockwise
        7: transposed[::-1, ::-1],
        8: transposed[::-1],  # stored turned a quarter clockwise
    }[orientation]


def _decode_reason(error: Exception) -> str:
    """TensorFlow's message, first line, without its op-name wrapping."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    line = re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]", "", line).strip()
    return line or "unknown reason"
