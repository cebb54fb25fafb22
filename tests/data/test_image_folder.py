"""Image folders: an image whose header claims more pixels than the limit is refused unread."""

import struct
import zlib

import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.config.limits import MAX_IMAGE_PIXELS
from resnet_tf.data.image_folder import load_image_folder
from resnet_tf.data.image_headers import read_header
from resnet_tf.data.images import load_image
from resnet_tf.errors import DataError


def image_size(raw: bytes) -> tuple[int, int] | None:
    header = read_header(raw)
    return None if header is None else (header.width, header.height)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header (signature, IHDR, a tiny IDAT, IEND) claiming width x height RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real 8x8 JPEG whose frame header (SOF0) is rewritten to claim width x height."""
    raw = bytearray(tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)).numpy())
    sof = raw.index(b"\xff\xc0")
    raw[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(raw)


def test_a_png_bomb_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "test" / "cat" / "bomb.png"
    bomb.parent.mkdir(parents=True)
    bomb.write_bytes(png_claiming(100_000, 100_000))
    assert bomb.stat().st_size < 200
    with pytest.raises(DataError) as raised:
        load_image_folder(tmp_path, "test")
    assert str(raised.value) == (
        f"{bomb}: the image claims 100000x100000 pixels, over the limit of 50 megapixels "
        "(it would be shrunk to 32x32 anyway); make it smaller first"
    )


def test_a_jpeg_claiming_too_many_pixels_is_refused(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_claiming(60_000, 60_000))
    with pytest.raises(DataError, match="claims 60000x60000 pixels"):
        load_image(path)


def test_header_sizes_of_each_format():
    assert image_size(png_claiming(7, 5)) == (7, 5)
    assert image_size(jpeg_claiming(640, 480)) == (640, 480)
    real_png = tf.io.encode_png(np.zeros((2, 3, 3), np.uint8)).numpy()
    assert image_size(real_png) == (3, 2)
    assert image_size(b"GIF89a" + struct.pack("<HH", 300, 200) + b"\0" * 8) == (300, 200)
    bmp = b"BM" + b"\0" * 16 + struct.pack("<ii", 40, -30) + b"\0" * 8
    assert image_size(bmp) == (40, 30)
    assert image_size(b"not an image") is None


def test_an_image_at_the_limit_still_loads(tmp_path):
    """A large real photo is fine: only what is over the limit is refused."""
    path = tmp_path / "wide.png"
    path.write_bytes(tf.io.encode_png(np.full((20, 3000, 3), 9, np.uint8)).numpy())
    assert 20 * 3000 <= MAX_IMAGE_PIXELS
    assert (load_image(path) == 9).all()
