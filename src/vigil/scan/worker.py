"""Fingerprinting one file and everything inside it: the unit of work a scan hands to a core."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vigil.errors import LimitExceeded, UnreadableItem
from vigil.fingerprint import pdq
from vigil.fingerprint.fingerprints import Fingerprints
from vigil.fingerprint.mediatype import (
    ANIMATED_IMAGE_TYPES,
    WEAK_IMAGE_TYPES,
    is_image,
    is_video,
)
from vigil.fingerprint.pdq import pdq_from_bytes
from vigil.fingerprint.video import (
    VPDQ_SECONDS_PER_FRAME,
    VideoHash,
    is_video_name,
    vpdq_of_animation,
    vpdq_of_video,
)
from vigil.limits import Limits
from vigil.scan.reader import RawItem, read_file
from vigil.scan.results import ScanError, ScannedItem

if TYPE_CHECKING:
    from vigil.scan.items import ItemSource


@dataclass
class FileResult:
    """The items of one file, and what went wrong reading it."""

    path: str
    items: list[ScannedItem] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)


def fingerprints_of(
    raw: RawItem,
    path: str,
    limits: Limits,
    errors: list[ScanError],
    vpdq_seconds: float = VPDQ_SECONDS_PER_FRAME,
    fast_pdq: bool = False,
    video_path: str | None = None,
    deadline: float | None = None,
) -> Fingerprints:
    """Fingerprints of one read item; a perceptual-hash failure is added to `errors`.

    `video_path`: where a top-level video can be decoded from (a local file; otherwise its bytes
    must be in `raw.content`). `deadline`: the item's item_seconds limit (time.monotonic()),
    checked between video frames; one image decode is bounded by max_image_pixels instead.
    """
    fp = Fingerprints(
        size=raw.size, md5=raw.md5, sha1=raw.sha1, sha256=raw.sha256, media_type=raw.media_type
    )
    if is_video(raw.media_type):
        _video(fp, raw, path, limits, errors, vpdq_seconds, video_path, deadline)
        return fp
    if raw.size == 0 and is_video_name(raw.member or path):
        # An empty file has no type; named like a video it is most likely a damaged one.
        fp.vpdq_error = "truncated"
        errors.append(ScanError(path, raw.member, "truncated", "zero-length video file"))
        return fp
    if not is_image(raw.media_type):
        return fp
    if raw.content is None:
        fp.pdq_error = "max_image_file_size"
        errors.append(
            ScanError(
                path,
                raw.member,
                "max_image_file_size",
                f"image of {raw.size} bytes is over the max_image_file_size limit "
                f"({limits.max_image_file_size}); hashed, not decoded",
            )
        )
        return fp
    try:
        fp.pdq = pdq_from_bytes(raw.content, max_pixels=limits.max_image_pixels, fast=fast_pdq)
    except LimitExceeded as e:
        fp.pdq_error = e.limit
        errors.append(ScanError(path, raw.member, e.limit, str(e)))
    except UnreadableItem as e:
        if raw.media_type in WEAK_IMAGE_TYPES:
            fp.media_type = "application/octet-stream"
            return fp
        fp.pdq_error = e.reason
        if e.reason == "unsupported":
            # No decoder knows this content (libmagic names image types on a byte or two of
            # evidence: JPEG XL's FF 0A, BIOS logos, ...). It is still hashed and matched
            # exactly; only a damaged image of a format Vigil decodes is an error.
            return fp
        errors.append(ScanError(path, raw.member, e.reason, str(e)))
    if fp.pdq is not None and raw.media_type in ANIMATED_IMAGE_TYPES:
        _animation(fp, raw, path, limits, errors, vpdq_seconds, deadline)
    return fp


def prepare(videos: bool = False) -> None:
    """Make this process ready to fingerprint: call before forking workers, so they inherit it,
    and at the start of a long-running front, so no request pays a cold start (the compiled PDQ
    kernels, the digests' self-check, libmagic's database, the image decoders and libarchive are
    loaded by fingerprinting a few tiny generated items; `videos` also loads the video library,
    ~0.15 s that a one-shot scan without videos need not pay)."""
    pdq.warm()
    from vigil.scan.items import Buffer

    for name, data in _warm_samples():
        fingerprint_item(name, Buffer(data), Limits())
    if videos:
        import av  # noqa: F401 - FFmpeg's libraries, loaded once here


def _warm_samples() -> list[tuple[str, bytes]]:
    """A small JPEG, a PNG and a zip holding the PNG, made here."""
    import zipfile

    import numpy as np
    from PIL import Image

    ramp = np.add.outer(np.arange(64), np.arange(64)).astype(np.uint8)
    image = Image.fromarray(np.stack([ramp, ramp.T, 255 - ramp], axis=-1))
    out: list[tuple[str, bytes]] = []
    for fmt in ("JPEG", "PNG"):
        buf = io.BytesIO()
        image.save(buf, fmt)
        out.append((f"warm.{fmt.lower()}", buf.getvalue()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("warm.png", out[1][1])
    out.append(("warm.zip", buf.getvalue()))
    return out


def _video(
    fp: Fingerprints,
    raw: RawItem,
    path: str,
    limits: Limits,
    errors: list[ScanError],
    vpdq_seconds: float,
    video_path: str | None,
    deadline: float | None,
) -> None:
    """vPDQ of a video: from its bytes when they are held, else from its path on disk."""
    source: str | io.BytesIO
    if raw.content is not None:
        source = io.BytesIO(raw.content)
    elif raw.member is None and video_path is not None:
        source = video_path
    else:
        where = "inside an archive" if raw.member is not None else "in memory"
        fp.vpdq_error = "max_buffered_video"
        errors.append(
            ScanError(
                path,
                raw.member,
                "max_buffered_video",
                f"video of {raw.size} bytes {where} is over the max_buffered_video "
                f"limit ({limits.max_buffered_video}); hashed, not decoded",
            )
        )
        return
    try:
        _keep(
            fp,
            vpdq_of_video(
                source, limits=limits, seconds_per_frame=vpdq_seconds, item_deadline=deadline
            ),
        )
    except LimitExceeded as e:
        fp.vpdq_error = e.limit
        errors.append(ScanError(path, raw.member, e.limit, str(e)))
    except UnreadableItem as e:
        fp.vpdq_error = e.reason
        errors.append(ScanError(path, raw.member, e.reason, str(e)))
    if fp.vpdq_error and fp.vpdq is not None:
        errors.append(ScanError(path, raw.member, fp.vpdq_error, _stopped_message(fp)))


def _animation(
    fp: Fingerprints,
    raw: RawItem,
    path: str,
    limits: Limits,
    errors: list[ScanError],
    vpdq_seconds: float,
    deadline: float | None,
) -> None:
    """vPDQ of an animated GIF or WebP (a still one keeps its PDQ only)."""
    assert raw.content is not None
    try:
        found = vpdq_of_animation(
            raw.content, limits=limits, seconds_per_frame=vpdq_seconds, item_deadline=deadline
        )
    except LimitExceeded as e:
        fp.vpdq_error = e.limit
        errors.append(ScanError(path, raw.member, e.limit, str(e)))
        return
    except UnreadableItem as e:
        fp.vpdq_error = e.reason
        errors.append(ScanError(path, raw.member, e.reason, str(e)))
        return
    if found is not None:
        _keep(fp, found)
        if fp.vpdq_error:
            errors.append(ScanError(path, raw.member, fp.vpdq_error, _stopped_message(fp)))


def _keep(fp: Fingerprints, found: VideoHash) -> None:
    fp.vpdq = found.frames
    fp.video = found.info
    if found.stopped is not None:
        fp.vpdq_error = found.stopped[0]
        fp.video = {**found.info, "stopped": found.stopped[1]}


def _stopped_message(fp: Fingerprints) -> str:
    return str((fp.video or {}).get("stopped", "video not read to the end"))


def _wants_content(media_type: str) -> bool:
    return is_image(media_type) or is_video(media_type)


def fingerprint_file(
    path: str,
    limits: Limits,
    vpdq_seconds: float = VPDQ_SECONDS_PER_FRAME,
    fast_pdq: bool = False,
) -> FileResult:
    """Read a file once and fingerprint it and every archive member in it."""
    return fingerprint_item(path, None, limits, vpdq_seconds, fast_pdq)


def fingerprint_item(
    path: str,
    source: ItemSource | None,
    limits: Limits,
    vpdq_seconds: float = VPDQ_SECONDS_PER_FRAME,
    fast_pdq: bool = False,
) -> FileResult:
    """Read an item once (the local file at `path` when `source` is None) and fingerprint it
    and every archive member in it, within its item_seconds."""
    deadline = time.monotonic() + limits.item_seconds
    result = FileResult(path)
    if source is None:
        raws = read_file(path, limits, _wants_content)
        video_path: str | None = path
    else:
        raws = source.read(path, limits, _wants_content)
        video_path = source.video_path
    for raw in raws:
        if isinstance(raw, ScanError):
            result.errors.append(raw)
            continue
        result.items.append(
            ScannedItem(
                path,
                raw.member,
                fingerprints_of(
                    raw,
                    path,
                    limits,
                    result.errors,
                    vpdq_seconds,
                    fast_pdq,
                    video_path,
                    deadline,
                ),
            )
        )
    return result
