"""Benign test videos: slideshows of scikit-image photos, and altered copies made with PyAV.

A slideshow shows each photo for two seconds while the view slowly pans and zooms, so that its
frames change like a film's. Alterations decode a video and encode it again (another codec,
bitrate, size or container, a cut, black borders): real transcoding losses, made at test time.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from support.planted import photo

SLIDESHOW = [
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "motorcycle_left",
    "retina",
    "ihc",
    "color",
    "logo",
    "cell",
]
OTHER = ["camera", "moon", "coins", "brick", "hubble_deep_field", "page"]

# Containers and codecs other than H.264 in MP4 that `write` makes (file name, codec, format):
# one of each family the scanner calls a video.
CONTAINERS = [
    ("clip.mov", "h264", None),
    ("clip.mkv", "h264", None),
    ("clip.webm", "libvpx", None),
    ("clip.avi", "mpeg4", None),
    ("clip.wmv", "wmv2", "asf"),
    ("clip.flv", "flv", None),
    ("clip.3gp", "h263", None),
    ("clip.ts", "mpeg2video", "mpegts"),
]


def slideshow_frames(
    names: list[str], seconds: float, fps: int, size: tuple[int, int]
) -> Iterator[np.ndarray]:
    """RGB frames: each photo for 2 s, panned and zoomed a little every frame."""
    width, height = size
    photos = [photo(n) for n in names]
    for number in range(int(seconds * fps)):
        t = number / fps
        image = photos[int(t // 2) % len(photos)]
        phase = (t % 2) / 2
        w, h = image.size
        zoom = 0.9 - 0.15 * phase
        cw, ch = int(w * zoom), int(h * zoom)
        x, y = int((w - cw) * phase), int((h - ch) * (1 - phase) / 2)
        view = image.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BILINEAR)
        yield np.asarray(view)


def write(
    path: Path,
    frames: Iterator[np.ndarray],
    *,
    fps: int = 10,
    codec: str = "h264",
    fmt: str | None = None,
    bit_rate: int | None = None,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode RGB frames into `path` (container from `fmt` or the file name)."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.pix_fmt = pix_fmt
        if bit_rate:
            stream.bit_rate = bit_rate
        first = True
        for rgb in frames:
            if first:
                stream.height, stream.width = rgb.shape[:2]
                first = False
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def decoded(path: Path, start: float = 0.0, seconds: float | None = None) -> Iterator[np.ndarray]:
    """RGB frames of a video from `start` for `seconds` (all by default)."""
    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        fps = float(stream.average_rate or 10)
        for number, frame in enumerate(src.decode(stream)):
            t = number / fps
            if t < start:
                continue
            if seconds is not None and t >= start + seconds:
                break
            yield frame.to_ndarray(format="rgb24")


def resized(frames: Iterator[np.ndarray], size: tuple[int, int]) -> Iterator[np.ndarray]:
    for rgb in frames:
        yield np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def bordered(frames: Iterator[np.ndarray], top: int, left: int) -> Iterator[np.ndarray]:
    """Black bars: `top` rows above and below, `left` columns left and right."""
    for rgb in frames:
        yield np.pad(rgb, ((top, top), (left, left), (0, 0)))


def animated_gif(path: Path, frames: Iterator[np.ndarray], ms: int = 100) -> Path:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms, loop=0)
    return path
