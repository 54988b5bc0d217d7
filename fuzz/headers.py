"""Rewrite the declared size of an image (PNG, GIF, BMP, JPEG, WebP VP8X) to other values.

Byte flips rarely hit a size field with a valid checksum; these edits do, so the decoders'
size checks (max_image_pixels, Pillow's decompression-bomb guard) meet absurd sizes.
"""

from __future__ import annotations

import struct
import zlib


def with_size(data: bytes, width: int, height: int, frame: int = 0) -> bytes:
    """`data` declaring `width` x `height` (clipped to what the format's fields hold).

    `frame` picks, in a GIF, which image descriptor's size is rewritten (0: the screen).
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        body = data[12:16] + struct.pack(">II", _fit(width, 31), _fit(height, 31)) + data[24:29]
        return data[:8] + data[8:12] + body + struct.pack(">I", zlib.crc32(body)) + data[33:]
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(data, width, height, frame)
    if data.startswith(b"BM") and len(data) >= 26:
        return data[:18] + struct.pack("<ii", _fit(width, 31), _fit(height, 31)) + data[26:]
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data, width, height)
    if data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8X":
        size = (
            struct.pack("<I", _fit(width - 1, 24))[:3] + struct.pack("<I", _fit(height - 1, 24))[:3]
        )
        return data[:24] + size + data[30:]
    return data


def _fit(value: int, bits: int) -> int:
    return max(0, min(value, (1 << bits) - 1))


def _gif(data: bytes, width: int, height: int, frame: int) -> bytes:
    out = bytearray(data)
    if frame == 0:
        out[6:10] = struct.pack("<HH", _fit(width, 16), _fit(height, 16))
        return bytes(out)
    # Walk to the frame-th image descriptor (',') and set its width and height.
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    seen = 0
    while at < len(out):
        kind = out[at]
        if kind == 0x21:  # extension: label, then sub-blocks
            at += 2
            at = _skip_blocks(out, at)
        elif kind == 0x2C:
            seen += 1
            if seen == frame:
                out[at + 5 : at + 9] = struct.pack("<HH", _fit(width, 16), _fit(height, 16))
                return bytes(out)
            flags = out[at + 9] if at + 9 < len(out) else 0
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            at = _skip_blocks(out, at + 1)  # LZW minimum code size, then the data
        else:
            break
    return bytes(out)


def _skip_blocks(data: bytearray, at: int) -> int:
    while at < len(data) and data[at]:
        at += data[at] + 1
    return at + 1


def _jpeg(data: bytes, width: int, height: int) -> bytes:
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2) and at + 9 <= len(data):
            dims = struct.pack(">HH", _fit(height, 16), _fit(width, 16))
            return data[: at + 5] + dims + data[at + 9 :]
        at += 2 + length
    return data
