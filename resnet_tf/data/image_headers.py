"""What an encoded image says about itself before it is decoded: its format, its size (and, for
a GIF, the frames decoding would hold), and its EXIF orientation.

tf.io.decode_image decodes PNG, JPEG, GIF, BMP, WebP and JPEG XL (TensorFlow 2.21); each of
them is read here from its header alone, so that a decompression bomb is refused unopened and a
format we cannot read the size of is never handed to a decoder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import tensorflow as tf

FORMAT_NAMES = ("PNG", "JPEG", "GIF", "BMP", "WebP", "JPEG XL")

_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
# JPEG XL's SizeHeader: a width from the height by one of these ratios (index 1..7).
_JXL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int  # 0 when the header is too short to say
    height: int
    frames: int = 1
    pixels: int = -1  # pixels decoding holds at once: width * height unless a GIF says more
    animated: bool = False  # an animated WebP (which TensorFlow cannot decode)

    @property
    def decoded_pixels(self) -> int:
        return self.width * self.height if self.pixels < 0 else self.pixels


def read_header(raw: bytes) -> ImageHeader | None:
    """The header of an image in a format TensorFlow decodes, or None for any other bytes."""
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        if len(raw) >= 24 and raw[12:16] == b"IHDR":
            return ImageHeader("PNG", *struct.unpack(">II", raw[16:24]))
        return ImageHeader("PNG", 0, 0)
    if raw.startswith(b"\xff\xd8\xff"):
        try:
            height, width, _ = tf.image.extract_jpeg_shape(raw).numpy()
        except (tf.errors.InvalidArgumentError, ValueError):
            return ImageHeader("JPEG", 0, 0)
        return ImageHeader("JPEG", int(width), int(height))
    if raw[:4] == b"GIF8":
        return _gif(raw)
    if raw.startswith(b"BM"):
        if len(raw) < 26:
            return ImageHeader("BMP", 0, 0)
        width, height = struct.unpack("<ii", raw[18:26])  # where TensorFlow reads them
        return ImageHeader("BMP", abs(width), abs(height))
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return _webp(raw)
    if raw.startswith(b"\xff\x0a") or raw.startswith(_JXL_CONTAINER):
        return _jpeg_xl(raw)
    return None


def _skip_sub_blocks(raw: bytes, pos: int) -> int:
    """The position after a GIF's chain of data sub-blocks (each a length byte, then data)."""
    while pos < len(raw):
        length = raw[pos]
        pos += 1 + length
        if length == 0:
            return pos
    return len(raw)


def _gif(raw: bytes) -> ImageHeader:
    """TensorFlow decodes a GIF on a canvas of its largest frame's size, after reading every
    frame into memory (one byte per pixel each): both count, not the screen size the header
    states first."""
    if len(raw) < 13:
        return ImageHeader("GIF", 0, 0)
    screen = struct.unpack("<HH", raw[6:10])
    pos = 13 + (3 * (2 << (raw[10] & 7)) if raw[10] & 0x80 else 0)
    widths, heights, total = [0], [0], 0
    while pos < len(raw) and raw[pos] != 0x3B:  # up to the trailer
        if raw[pos] == 0x21:  # an extension: its label, then sub-blocks
            pos = _skip_sub_blocks(raw, pos + 2)
        elif raw[pos] == 0x2C and pos + 10 <= len(raw):  # a frame
            width, height = struct.unpack("<HH", raw[pos + 5 : pos + 9])
            flags = raw[pos + 9]
            pos += 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
            pos = _skip_sub_blocks(raw, pos + 1)  # after the LZW code size byte
            widths.append(width)
            heights.append(height)
            total += width * height
        else:
            break
    frames = len(widths) - 1
    if frames == 0:
        return ImageHeader("GIF", *screen)
    width, height = max(widths), max(heights)
    return ImageHeader("GIF", width, height, frames, max(width * height, total))


def _webp(raw: bytes) -> ImageHeader:
    chunk, data = raw[12:16], raw[20:]
    if chunk == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":  # lossy
        width, height = struct.unpack("<HH", data[6:10])
        return ImageHeader("WebP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:  # lossless
        bits = int.from_bytes(data[1:5], "little")
        return ImageHeader("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(data) >= 10:  # extended: the canvas size, 24 bits each
        width = 1 + int.from_bytes(data[4:7], "little")
        height = 1 + int.from_bytes(data[7:10], "little")
        return ImageHeader("WebP", width, height, animated=bool(data[0] & 0x02))
    return ImageHeader("WebP", 0, 0)


def _jpeg_xl(raw: bytes) -> ImageHeader:
    """The SizeHeader at the start of the codestream (bare, or in the container's jxlc box or
    first jxlp box): bits read least significant first."""
    stream = raw if raw.startswith(b"\xff\x0a") else _jxl_codestream(raw)
    if stream is None or len(stream) < 11:
        return ImageHeader("JPEG XL", 0, 0)
    bits, used = int.from_bytes(stream[2:18], "little"), 0

    def read(count: int) -> int:
        nonlocal used
        value = (bits >> used) & ((1 << count) - 1)
        used += count
        return value

    def dimension(small: int) -> int:
        if small:
            return (read(5) + 1) * 8
        return 1 + read((9, 13, 18, 30)[read(2)])

    small = read(1)
    height = dimension(small)
    ratio = read(3)
    if ratio == 0:
        width = dimension(small)
    else:
        numerator, denominator = _JXL_RATIOS[ratio]
        width = height * numerator // denominator
    return ImageHeader("JPEG XL", width, height)


def _jxl_codestream(raw: bytes) -> bytes | None:
    pos = 0
    while pos + 8 <= len(raw):
        size, kind, head = int.from_bytes(raw[pos : pos + 4], "big"), raw[pos + 4 : pos + 8], 8
        if size == 1:
            size, head = int.from_bytes(raw[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = len(raw) - pos
        if kind == b"jxlc":
            return raw[pos + head : pos + size]
        if kind == b"jxlp":  # a partial codestream: a 4-byte index first
            return raw[pos + head + 4 : pos + size]
        if size < head:
            return None
        pos += size
    return None


def exif_orientation(raw: bytes, image_format: str) -> int:
    """The EXIF orientation (1..8; 1 = as stored) of a JPEG, PNG or WebP; 1 when it has none."""
    tiff = None
    if image_format == "JPEG":
        tiff = _jpeg_exif(raw)
    elif image_format == "PNG":
        tiff = _chunk(raw, 8, b"eXIf", big_endian=True)
    elif image_format == "WebP":
        tiff = _chunk(raw, 12, b"EXIF", big_endian=False)
        if tiff is not None and tiff.startswith(b"Exif\0\0"):
            tiff = tiff[6:]
    return _tiff_orientation(tiff) if tiff else 1


def _jpeg_exif(raw: bytes) -> bytes | None:
    """The TIFF data of a JPEG's APP1 Exif segment, from the markers before the image data."""
    pos = 2
    while pos + 4 <= len(raw) and raw[pos] == 0xFF:
        marker = raw[pos + 1]
        if marker == 0xFF:  # a fill byte
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no Exif before it
            return None
        length = struct.unpack(">H", raw[pos + 2 : pos + 4])[0]
        segment = raw[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\0\0"):
            return segment[6:]
        pos += 2 + length
    return None


def _chunk(raw: bytes, pos: int, wanted: bytes, *, big_endian: bool) -> bytes | None:
    """A PNG chunk (length, type, data, CRC) or a RIFF chunk (type, length, data, padding)."""
    while pos + 8 <= len(raw):
        if big_endian:
            length, kind = struct.unpack(">I", raw[pos : pos + 4])[0], raw[pos + 4 : pos + 8]
        else:
            kind, length = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        if kind == wanted:
            return raw[pos + 8 : pos + 8 + length]
        if kind == b"IDAT":  # a PNG's eXIf comes before its image data (a WebP's, after)
            return None
        pos += 8 + length + (4 if big_endian else length % 2)
    return None


def _tiff_orientation(tiff: bytes) -> int:
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or struct.unpack(order + "H", tiff[2:4])[0] != 42:
        return 1
    directory = struct.unpack(order + "I", tiff[4:8])[0]
    if directory + 2 > len(tiff):
        return 1
    count = struct.unpack(order + "H", tiff[directory : directory + 2])[0]
    for entry in range(directory + 2, min(directory + 2 + 12 * count, len(tiff) - 11), 12):
        tag, kind = struct.unpack(order + "HH", tiff[entry : entry + 4])
        if tag == EXIF_ORIENTATION_TAG and kind == 3:  # SHORT
            value = struct.unpack(order + "H", tiff[entry + 8 : entry + 10])[0]
            return value if 1 <= value <= 8 else 1
    return 1
