"""Damaged and hostile images and animations found by fuzzing (tests/fuzz): each ends in a
result, UnreadableItem or LimitExceeded."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from vigil.errors import LimitExceeded, UnreadableItem
from vigil.fingerprint.video import vpdq_of_animation
from vigil.limits import Limits


def animated_gif(frames: int = 4, size: tuple[int, int] = (40, 32)) -> bytes:
    rnd = np.random.default_rng(7)
    images = [
        Image.fromarray(rnd.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        for _ in range(frames)
    ]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100)
    return out.getvalue()


def descriptors(gif: bytes) -> list[int]:
    """Offsets of the image descriptors (',') of a GIF."""
    at = 13 + (3 << ((gif[10] & 7) + 1) if gif[10] & 0x80 else 0)
    found = []
    while at < len(gif) and gif[at] != 0x3B:
        if gif[at] == 0x21:
            at += 2
        else:
            found.append(at)
            flags = gif[at + 9]
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        while gif[at]:
            at += gif[at] + 1
        at += 1
    return found


def test_gif_cut_short_after_an_image_descriptor() -> None:
    # Pillow's n_frames raised IndexError (reading the LZW code size past the end).
    gif = animated_gif()
    second = descriptors(gif)[1]
    with pytest.raises(UnreadableItem):
        vpdq_of_animation(gif[: second + 10], limits=Limits())


def test_gif_frame_reaching_past_the_screen_stops_at_max_image_pixels() -> None:
    # A later frame larger than the screen grows Pillow's canvas: 3000x3000 was decoded and
    # hashed whatever max_image_pixels said (up to 65535x2730, 178M pixels, before Pillow's
    # own bomb check).
    gif = bytearray(animated_gif())
    third = descriptors(bytes(gif))[2]
    gif[third + 5 : third + 9] = struct.pack("<HH", 3000, 3000)
    found = vpdq_of_animation(bytes(gif), limits=Limits(max_image_pixels=1_000_000))
    assert found is not None
    assert found.stopped is not None and found.stopped[0] == "max_image_pixels"
    assert "frame 2 of 3000x3000" in found.stopped[1]
    assert [f.index for f in found.frames] == [0]  # one frame a second: 0.1 s each


def test_animation_larger_than_max_image_pixels_is_refused_before_decoding() -> None:
    with pytest.raises(LimitExceeded) as raised:
        vpdq_of_animation(animated_gif(), limits=Limits(max_image_pixels=1000))
    assert raised.value.limit == "max_image_pixels"
