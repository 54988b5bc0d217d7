"""vPDQ: the PDQ hash of sampled video frames, decoded through the FFmpeg libraries (PyAV).

Frames are sampled as Meta's vPDQ does (`vpdq-hash-video`): with the stream's average frame
rate `fps`, every `int(seconds_per_frame * fps)`-th decoded frame (at least every frame), frame
numbers counting decoded frames from 0 and timestamps `frame / fps`. Sampling 0 seconds hashes
every frame, which is what the reference outputs in ../shared were made with (`-r 0`).

The reference converts each sampled frame to RGB with swscale and then to luma with PDQ's
`0.299 R + 0.587 G + 0.114 B`. For the usual YUV formats that luma is an affine function of the
Y plane (BT.601: `1.164 (Y - 16)` for limited range, `Y` for full range; the chroma terms cancel
to within 0.0003), so Vigil reads the Y plane as decoded and skips the colour conversion: the
hash bits are the same up to RGB clipping and rounding, and so is the quality. Other pixel
formats (RGB, palette, ...) go through an RGB conversion as in the reference.

Only sampled frames are converted and hashed; every frame is still decoded (inter-frame codecs
need them), one at a time: a video is never held in memory, and a file on disk is read by
FFmpeg from its path. Animated GIF and WebP are videos too (FFmpeg reads no animated WebP), their
frames come from Pillow and are sampled by their display times.

Limits (vigil.limits): `max_video_seconds` and `max_video_frames` stop decoding at that point in
the video, `max_video_decode_seconds` after that much time spent decoding; the frames hashed
until then are kept (and matched), and the limit is reported by name.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from vigil.errors import LimitExceeded, UnreadableItem
from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.fingerprint.pdq import PDQ, downscale_64, pdq_from_luma
from vigil.limits import Limits

# Meta's default: one frame per second.
VPDQ_SECONDS_PER_FRAME = 1.0

# File names that say "video" although the content cannot (a zero-length file has no content).
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .wmv .asf .flv .3gp .3g2 .ts .mts .m2ts .mpg .mpeg .ogv".split()
)

# 8-bit pixel formats whose first plane is BT.601 luma: limited range unless the format or the
# frame says full range.
_YUV_FULL = frozenset({"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p"})
_Y_PLANE = (
    frozenset({"yuv420p", "yuv422p", "yuv444p", "yuv410p", "yuv411p", "yuv440p", "nv12", "nv21"})
    | _YUV_FULL
)
_LIMITED_SCALE = np.float32(255.0 / 219.0)

_clock = time.monotonic


@dataclass
class VideoHash:
    """The vPDQ of one video: its sampled frames, what the stream says, and a limit if reached."""

    frames: list[VPDQFrame] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    # (reason, message) when decoding stopped early: a limit name, 'truncated' or 'corrupt'.
    stopped: tuple[str, str] | None = None


def frame_mod(seconds_per_frame: float, fps: float) -> int:
    """Every how many decoded frames one is hashed (Meta's `m_frameMod`, at least 1)."""
    return max(1, int(seconds_per_frame * fps))


def vpdq_of_video(
    source: str | BinaryIO,
    *,
    limits: Limits,
    seconds_per_frame: float = VPDQ_SECONDS_PER_FRAME,
    threads: int = 0,
    size: tuple[int, int] | None = None,
    item_deadline: float | None = None,
) -> VideoHash:
    """vPDQ of a video file (a path, or a seekable stream of an archive member's bytes).

    Raises UnreadableItem ('corrupt', 'truncated', 'no-video-stream', 'unsupported') when no
    frame can be read, LimitExceeded('max_image_pixels') for frames larger than that limit.
    `size` (width, height) rescales frames before hashing, as vpdq's downsampling does.
    `item_deadline` (a time.monotonic() value): the whole item's item_seconds limit, checked
    between frames like max_video_decode_seconds.
    """
    import av

    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        reason = "truncated" if _cut_short(source) else _open_reason(exc)
        raise UnreadableItem(reason, f"cannot open the video: {_describe(exc)}") from None
    with container:
        if not container.streams.video:
            raise UnreadableItem("no-video-stream", "a media file without a video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # PyAV has no decoder for the stream's codec id
            raise UnreadableItem("unsupported", "a video stream in a codec FFmpeg cannot decode")
        width, height = ctx.width, ctx.height
        if width <= 0 or height <= 0:
            raise UnreadableItem("corrupt", f"video stream of {width}x{height} pixels")
        if width * height > limits.max_image_pixels:
            raise LimitExceeded(
                "max_image_pixels",
                f"video frames of {width}x{height} exceed {limits.max_image_pixels} pixels",
            )
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if not math.isfinite(fps) or fps <= 0 or fps > 10_000:
            fps = 0.0  # unknown or absurd: sampled by the frames' own times instead
        # 0: FFmpeg picks the number of decoding threads, as the reference does.
        ctx.thread_count = threads
        ctx.thread_type = "AUTO"
        declared = int(stream.frames or 0)
        result = VideoHash(
            info={
                "codec": ctx.name,
                "width": width,
                "height": height,
                "fps": round(fps, 3),
                "declared_frames": declared,
                "declared_seconds": _declared_seconds(container, stream),
            }
        )
        sampler = _Sampler(seconds_per_frame, fps)
        decoded = 0
        deadline = _clock() + limits.max_video_decode_seconds
        try:
            for frame in _decode(container, stream):
                number = decoded
                decoded += 1
                when = frame.time if frame.time is not None else None
                timestamp = number / fps if fps else (when or 0.0)
                stop = _over_limit(
                    limits, decoded, max(timestamp, when or 0.0), deadline, item_deadline
                )
                if stop is not None:
                    decoded -= 1
                    result.stopped = stop
                    break
                if not sampler.wants(number, timestamp):
                    continue
                pdq, cropped = _pdq_of_frame(frame, size)
                result.frames.append(
                    VPDQFrame(number, round(timestamp, 3), pdq.quality, pdq.hash, cropped)
                )
        except av.error.FFmpegError as exc:
            if decoded == 0:
                raise UnreadableItem(
                    "corrupt", f"no frame could be decoded: {_describe(exc)}"
                ) from None
            result.stopped = (
                "corrupt",
                f"decoding failed after {decoded} frames; those were hashed: {_describe(exc)}",
            )
        if decoded == 0 and result.stopped is not None:
            raise LimitExceeded(*result.stopped)  # a limit reached before the first frame
        if decoded == 0:
            raise UnreadableItem("truncated", "the video stream holds no decodable frame")
        if result.stopped is None and declared > 0 and decoded < declared * 0.9:
            result.stopped = (
                "truncated",
                f"{decoded} frames decoded of the {declared} the container declares; "
                "those were hashed",
            )
        result.info["frames"] = decoded
        result.info["seconds"] = round(decoded / fps, 3) if fps else None
        return result


def vpdq_of_animation(
    data: bytes | str,
    *,
    limits: Limits,
    seconds_per_frame: float = VPDQ_SECONDS_PER_FRAME,
    item_deadline: float | None = None,
) -> VideoHash | None:
    """vPDQ of an animated GIF or WebP (None when it has a single frame: a still image)."""
    from PIL import Image, ImageSequence

    from vigil.fingerprint.image import luma_from_image

    try:
        image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
        frames = int(getattr(image, "n_frames", 1))
    except Image.DecompressionBombError as exc:
        raise LimitExceeded("max_image_pixels", f"animation too large to decode: {exc}") from None
    except MemoryError:
        raise
    except Exception as exc:  # Pillow's readers raise more than OSError on damaged data
        raise UnreadableItem("corrupt", f"cannot read the animation: {exc}") from None
    if frames <= 1:
        return None
    if image.width * image.height > limits.max_image_pixels:
        raise LimitExceeded(
            "max_image_pixels",
            f"animation of {image.width}x{image.height} pixels exceeds "
            f"max_image_pixels={limits.max_image_pixels}",
        )
    result = VideoHash(info={"width": image.width, "height": image.height, "fps": None})
    sampler = _Sampler(seconds_per_frame, 0.0)
    deadline = _clock() + limits.max_video_decode_seconds
    clock_ms = 0.0
    number = 0
    try:
        for number, frame in enumerate(ImageSequence.Iterator(image)):
            timestamp = clock_ms / 1000.0
            stop = _over_limit(limits, number + 1, timestamp, deadline, item_deadline)
            if stop is None and frame.width * frame.height > limits.max_image_pixels:
                # A GIF frame may reach past the screen: Pillow then grows the canvas.
                stop = (
                    "max_image_pixels",
                    f"frame {number} of {frame.width}x{frame.height} pixels exceeds "
                    f"max_image_pixels={limits.max_image_pixels}; the frames before were hashed",
                )
            if stop is not None:
                result.stopped = stop
                break
            clock_ms += float(frame.info.get("duration") or 100)
            if sampler.wants(number, timestamp):
                luma = luma_from_image(frame.convert("RGB"))
                pdq = pdq_from_luma(luma)
                cropped = _cropped_hash(luma, 0.0)
                result.frames.append(
                    VPDQFrame(number, round(timestamp, 3), pdq.quality, pdq.hash, cropped)
                )
    except Image.DecompressionBombError as exc:
        if not result.frames:
            raise LimitExceeded("max_image_pixels", f"animation too large: {exc}") from None
        result.stopped = ("max_image_pixels", f"decoding stopped after {number} frames: {exc}")
    except MemoryError:
        raise
    except Exception as exc:  # any decoder failure is a property of this item
        if not result.frames:
            raise UnreadableItem("corrupt", f"cannot decode the animation: {exc}") from None
        result.stopped = ("truncated", f"decoding stopped after {number} frames: {exc}")
    result.info["frames"] = frames
    result.info["seconds"] = round(clock_ms / 1000.0, 3)
    return result


def is_video_name(name: str) -> bool:
    """True when a file name has a video extension (only used to flag empty 'videos')."""
    return os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def reference_lines(frames: list[VPDQFrame]) -> Iterator[str]:
    """The frames as `vpdq-hash-video` writes them: `frame,quality,pdq,timestamp`."""
    for f in frames:
        yield f"{f.index},{f.quality},{f.hash},{f.timestamp:.3f}"


# -- internals ---------------------------------------------------------------------------------


class _Sampler:
    """Which decoded frames are hashed: Meta's frame-number rule, or by time when fps is unknown."""

    def __init__(self, seconds_per_frame: float, fps: float) -> None:
        self._every = frame_mod(seconds_per_frame, fps) if fps else 0
        self._step = seconds_per_frame
        self._next = 0.0

    def wants(self, number: int, timestamp: float) -> bool:
        if self._every:
            return number % self._every == 0
        if timestamp + 1e-9 < self._next:
            return False
        self._next = timestamp + self._step
        return True


def _decode(container: Any, stream: Any) -> Iterator[Any]:
    """Decoded frames of one stream, one at a time, the decoder flushed at the end."""
    for packet in container.demux(stream):
        yield from packet.decode()


def _over_limit(
    limits: Limits, frames: int, seconds: float, deadline: float, item_deadline: float | None
) -> tuple[str, str] | None:
    if frames > limits.max_video_frames:
        return (
            "max_video_frames",
            f"more than {limits.max_video_frames} frames; the frames before were hashed",
        )
    if seconds > limits.max_video_seconds:
        return (
            "max_video_seconds",
            f"longer than {limits.max_video_seconds} seconds; the frames before were hashed",
        )
    now = _clock()
    if item_deadline is not None and now > item_deadline:
        return (
            "item_seconds",
            f"the item took longer than {limits.item_seconds:g} seconds; "
            f"the first {frames - 1} frames were hashed",
        )
    if now > deadline:
        return (
            "max_video_decode_seconds",
            f"decoding took longer than {limits.max_video_decode_seconds:g} seconds; "
            f"the first {frames - 1} frames were hashed",
        )
    return None


def _pdq_of_frame(frame: Any, size: tuple[int, int] | None) -> tuple[PDQ, str | None]:
    """PDQ of a decoded frame, with the luma PDQ's RGB-to-luma conversion would give, and the
    PDQ of the frame without its black borders if it has any."""
    fmt = frame.format.name
    if size is None and fmt in _Y_PLANE and frame.planes[0].line_size >= frame.width:
        plane = frame.planes[0]
        y = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
        y = y[: frame.height, : frame.width]
        block = downscale_64(y)
        full = fmt in _YUV_FULL or int(getattr(frame, "color_range", 0) or 0) == 2
        black = 0.0 if full else 16.0
        if not full:
            # BT.601 limited range: luma = 1.164 (Y - 16), the chroma terms cancelling. The
            # filters and decimation to 64x64 are linear, so the affine map is applied to the
            # 64x64 block instead of every pixel (the reference clips each RGB pixel to 0..255;
            # limited-range Y rarely leaves 16..235, and the clip here covers the rest).
            block -= np.float32(16.0)
            block *= _LIMITED_SCALE
            np.clip(block, 0.0, 255.0, out=block)
        return pdq_from_luma(block), _cropped_hash(y, black)
    if size is not None:
        rgb = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
    else:
        rgb = frame.to_ndarray(format="rgb24")
    rgbf = rgb.astype(np.float32)
    luma = rgbf[..., 0] * np.float32(0.299)
    luma += rgbf[..., 1] * np.float32(0.587)
    luma += rgbf[..., 2] * np.float32(0.114)
    return pdq_from_luma(luma), _cropped_hash(luma, 0.0)


# A border row or column: mean within this of black, and no pixel brighter than BORDER_PEAK.
_BORDER_MEAN = 10.0
_BORDER_PEAK = 40.0
# Borders are only taken off when they are at least this share of the frame's side (together)
# and leave at least MIN_CONTENT of each side: a dark scene is not a border.
_MIN_BORDER = 0.04
_MIN_CONTENT = 0.4


def _cropped_hash(luma: np.ndarray, black: float) -> str | None:
    """PDQ of the frame inside its black borders (letterbox, pillarbox), None without borders."""
    rows, cols = luma.shape
    sub = luma[:, :: max(1, cols // 256)].astype(np.float32) - np.float32(black)
    dark_rows = (sub.mean(axis=1) < _BORDER_MEAN) & (sub.max(axis=1) < _BORDER_PEAK)
    sub = luma[:: max(1, rows // 256), :].astype(np.float32) - np.float32(black)
    dark_cols = (sub.mean(axis=0) < _BORDER_MEAN) & (sub.max(axis=0) < _BORDER_PEAK)
    top, bottom = _run(dark_rows), _run(dark_rows[::-1])
    left, right = _run(dark_cols), _run(dark_cols[::-1])
    keep_rows, keep_cols = rows - top - bottom, cols - left - right
    if keep_rows < _MIN_CONTENT * rows or keep_cols < _MIN_CONTENT * cols:
        return None
    if top + bottom < _MIN_BORDER * rows and left + right < _MIN_BORDER * cols:
        return None
    inner = luma[top : rows - bottom, left : cols - right].astype(np.float32)
    if black:
        inner = np.clip((inner - np.float32(black)) * _LIMITED_SCALE, 0.0, 255.0)
    return pdq_from_luma(inner).hash


def _run(dark: np.ndarray) -> int:
    """Length of the run of True at the start of `dark`."""
    light = np.flatnonzero(~dark)
    return int(light[0]) if light.size else len(dark)


def _declared_seconds(container: Any, stream: Any) -> float | None:
    seconds: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return round(seconds, 3)


def _cut_short(source: str | BinaryIO) -> bool:
    """True for an MP4/MOV/3GP file whose last top-level box runs past the end of the file."""
    try:
        stream: BinaryIO = open(source, "rb") if isinstance(source, str) else source
    except OSError:
        return False
    try:
        stream.seek(0, os.SEEK_END)
        end = stream.tell()
        offset = 0
        while offset + 8 <= end:
            stream.seek(offset)
            header = stream.read(16)
            size = int.from_bytes(header[:4], "big")
            if offset == 0 and header[4:8] != b"ftyp":
                return False  # not ISO base media
            if size == 1 and len(header) == 16:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:
                return False  # a box running to the end of the file by definition
            if size < 8:
                return False
            offset += size
        return offset > end
    except OSError:
        return False
    finally:
        if isinstance(source, str):
            stream.close()
        else:
            stream.seek(0)


def _open_reason(exc: Exception) -> str:
    text = str(exc).lower()
    if "moov atom not found" in text:
        return "truncated"
    return "corrupt"


def _describe(exc: Exception) -> str:
    text = str(exc)
    # PyAV appends the file name; the error line already says which file it is.
    return text.split(": '", 1)[0] if ": '" in text else text
