"""Damaged and hostile images and animations found by fuzzing (tests/fuzz): each ends in a
result, UnreadableItem or LimitExceeded."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.videos import write

from vigil.errors import LimitExceeded, UnreadableItem
from vigil.fingerprint.pdq import pdq_from_bytes
from vigil.fingerprint.video import vpdq_of_animation, vpdq_of_video
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


def avif_without_its_primary_item() -> bytes:
    picture = Image.fromarray(np.random.default_rng(3).integers(0, 255, (32, 48, 3), np.uint8))
    out = io.BytesIO()
    picture.save(out, format="AVIF")
    data = bytearray(out.getvalue())
    at = data.index(b"pitm") + 8  # after the box type, its version and flags: the item id
    data[at : at + 2] = b"\x00\x00"
    return bytes(data)


@pytest.mark.parametrize("fast", [False, True])
def test_avif_naming_no_primary_item(fast: bool) -> None:
    # Pillow's AVIF reader raised RuntimeError ("Missing or empty image item") from Image.open.
    with pytest.raises(UnreadableItem) as raised:
        pdq_from_bytes(avif_without_its_primary_item(), max_pixels=10**7, fast=fast)
    assert raised.value.reason == "corrupt"


def small_video(tmp_path: Path, name: str) -> Path:
    rnd = np.random.default_rng(4)
    frames = [rnd.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in range(4)]
    return write(tmp_path / name, iter(frames), fps=5)


@pytest.mark.parametrize("on_disk", [False, True])
def test_video_stream_in_a_codec_ffmpeg_does_not_know(tmp_path: Path, on_disk: bool) -> None:
    # PyAV gives such a stream no codec context: AttributeError on None.width escaped.
    path = small_video(tmp_path, "v.mp4")
    data = path.read_bytes().replace(b"avc1", b"zzzz")
    path.write_bytes(data)
    with pytest.raises(UnreadableItem) as raised:
        vpdq_of_video(str(path) if on_disk else io.BytesIO(data), limits=Limits())
    assert raised.value.reason == "unsupported"
