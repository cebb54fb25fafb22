"""load_image and decode_image: every format TensorFlow decodes is checked from its header
against the pixel limit, a file is checked before it is read, and EXIF orientation is applied."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from resnet_tf.config.limits import MAX_IMAGE_BYTES
from resnet_tf.data import decode_image, load_image
from resnet_tf.errors import DataError
from tests.helpers import REPO_ROOT

JXL_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "images" / "gradient_40x30.jxl"


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (rather than hang the suite) if the block blocks for longer than `seconds`."""

    def expired(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def quadrants(height=24, width=48) -> np.ndarray:
    """An image whose every turn and mirror differs: four flat blocks of their own colours."""
    image = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    image[:h, :w], image[:h, w:] = (250, 10, 10), (10, 250, 10)
    image[h:, :w], image[h:, w:] = (10, 10, 250), (240, 240, 20)
    return image


def resized(image: np.ndarray) -> np.ndarray:
    """What decode_image makes of already decoded pixels (its resize, as written there)."""
    out = tf.image.resize(image, (32, 32), method="bilinear", antialias=True).numpy()
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def exif_with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


# ------------------------------------------------------------------ every decodable format


def webp_vp8x_claiming(width: int, height: int, animated: bool = False) -> bytes:
    flags = 0x02 if animated else 0
    vp8x = bytes([flags, 0, 0, 0]) + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossless_claiming(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    data = b"\x2f" + bits.to_bytes(4, "little") + b"\0" * 8
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def jxl_claiming(width: int, height: int) -> bytes:
    """A JPEG XL codestream's signature and SizeHeader (not small, 30-bit sizes, ratio 0),
    packed least significant bit first."""
    fields = [(0, 1), (3, 2), (height - 1, 30), (0, 3), (3, 2), (width - 1, 30)]
    value, used = 0, 0
    for field, bits in fields:
        value |= field << used
        used += bits
    return b"\xff\x0a" + value.to_bytes(16, "little")


def gif_with_a_frame_larger_than_its_screen(width: int, height: int) -> bytes:
    """A GIF whose header states a 10x10 screen but whose one frame is width x height."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x08\x02\x4c\x01\x00"
    return screen + frame + b"\x3b"


@pytest.mark.parametrize(
    "raw, claimed",
    [
        (webp_vp8x_claiming(16384, 16384), "16384x16384 pixels"),
        (webp_lossless_claiming(16384, 9000), "16384x9000 pixels"),
        (jxl_claiming(100_000, 100_000), "100000x100000 pixels"),
        (gif_with_a_frame_larger_than_its_screen(9000, 9000), "9000x9000 pixels"),
    ],
    ids=["webp_extended", "webp_lossless", "jpeg_xl", "gif_frame"],
)
def test_every_format_is_held_to_the_pixel_limit_before_decoding(raw, claimed):
    assert len(raw) < 100
    with pytest.raises(DataError) as raised:
        decode_image(raw, "bomb")
    assert str(raised.value) == (
        f"bomb: the image claims {claimed}, over the limit of 50 megapixels (it would be "
        "shrunk to 32x32 anyway); make it smaller first"
    )


def test_a_gif_counts_the_pixels_of_all_its_frames():
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 4000, 4000, 0) + b"\x08\x02\x4c\x01\x00"
    raw = b"GIF89a" + struct.pack("<HHBBB", 4000, 4000, 0, 0, 0) + frame * 4 + b"\x3b"
    with pytest.raises(DataError, match=r"claims 64,000,000 pixels in 4 frames, over the limit"):
        decode_image(raw, "frames.gif")


def test_webp_in_every_mode_decodes_as_its_png_does():
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 4), dtype=np.uint8)
    as_png = decode_image(encoded(pixels[..., :3], "PNG"), "p")
    for raw in (
        encoded(pixels[..., :3], "WEBP", lossless=True),
        encoded(pixels, "WEBP", lossless=True, exact=True),  # RGBA: its alpha dropped
    ):
        np.testing.assert_array_equal(decode_image(raw, "w"), as_png)


def test_an_animated_webp_is_refused_in_one_line():
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 120, 240)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=50)
    with pytest.raises(DataError) as raised:
        decode_image(buffer.getvalue(), "moving.webp")
    assert str(raised.value) == "moving.webp: an animated WebP; expected a still image"


def test_jpeg_xl_decodes_as_the_png_it_was_made_from():
    """The fixture: this gradient, encoded losslessly by libjxl's cjxl."""
    y, x = np.mgrid[0:30, 0:40]
    gradient = np.stack([x * 6, y * 8, (x + y) * 3], -1).astype(np.uint8)
    np.testing.assert_array_equal(
        load_image(JXL_FIXTURE), decode_image(encoded(gradient, "PNG"), "png")
    )


def test_bytes_of_no_decodable_format_are_one_line():
    for raw in (b"", b"hello", b"II*\0" + b"\0" * 20):  # nothing, text, a TIFF
        with pytest.raises(DataError, match=r"^x: expected a PNG, JPEG, GIF, BMP, WebP or JPEG"):
            decode_image(raw, "x")


# ------------------------------------------------------------------ the file before its bytes


def test_files_that_are_not_regular_or_too_large_are_refused_unread(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    sparse = tmp_path / "huge.png"
    with open(sparse, "wb") as f:
        f.truncate(8 << 30)  # 8 GB that take no disk space
    folder = tmp_path / "folder.png"
    folder.mkdir()
    expected = {
        fifo: "a FIFO (named pipe), expected an image file",
        "/dev/zero": "a device, expected an image file",
        folder: "a folder, expected an image file",
        sparse: f"8,589,934,592 bytes, over the limit of {MAX_IMAGE_BYTES:,} bytes for an image",
    }
    for path, message in expected.items():
        with deadline(20), pytest.raises(DataError) as raised:
            load_image(path)
        assert str(raised.value) == f"{path}: {message}"
    with pytest.raises(DataError, match="over the limit of"):
        decode_image(b"\x89PNG" + bytes(MAX_IMAGE_BYTES), "request body")


# ------------------------------------------------------------------ EXIF orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_photo_viewers_do(orientation):
    stored = quadrants()
    exif = exif_with_orientation(orientation)
    png = encoded(stored, "PNG", exif=exif)  # lossless: exactly what a viewer shows
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(png))))
    if orientation >= 5:
        assert shown.shape == (48, 24, 3)  # a quarter turn
    np.testing.assert_array_equal(decode_image(png, "p.png"), resized(shown))
    webp = encoded(stored, "WEBP", lossless=True, exif=exif)
    np.testing.assert_array_equal(decode_image(webp, "w.webp"), resized(shown))
    # A JPEG: the same stored pixels as its copy without EXIF, shown turned the same way.
    jpeg = encoded(stored, "JPEG", quality=95, exif=exif)
    plain = encoded(stored, "JPEG", quality=95)
    unturned = Image.fromarray(tf.io.decode_jpeg(plain).numpy())
    unturned.info["exif"] = exif
    upright = ImageOps.exif_transpose(unturned)
    np.testing.assert_array_equal(decode_image(jpeg, "j.jpg"), resized(np.asarray(upright)))
    if orientation == 6:  # stored lying on its left side: the top-left block comes top right
        top_right = decode_image(jpeg, "j.jpg")[2, -3]
        assert top_right[0] > 200 and top_right[1] < 60
