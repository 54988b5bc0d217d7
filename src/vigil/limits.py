"""The one table of scan limits: name, default, unit and meaning.

Reaching a limit is never silent: it is raised as `LimitExceeded(name, ...)` and reported as one
line in the scan's error list, and the scan goes on with the next item.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    """Scan limits. Every field has a default and a CLI option (`--limit NAME=VALUE`)."""

    # Largest single file (on disk or inside an archive) that is fingerprinted.
    max_file_size: int = 4 * GiB
    # Bytes decompressed from one top-level archive, all nesting levels together (zip bombs).
    max_archive_bytes: int = 8 * GiB
    # How deep archives may nest (a.zip/b.tar/c.zip is depth 3).
    max_archive_depth: int = 8
    # Members read from one archive (including nested ones).
    max_archive_members: int = 100_000
    # Pixels of one decoded image (decompression bombs).
    max_image_pixels: int = 178_956_970
    # Seconds one item (a file with everything inside it) may take.
    item_seconds: float = 300.0
    # Largest image file whose bytes are held in memory to decode (larger: hashed only).
    max_image_file_size: int = 256 * MiB
    # Largest archive nested in another that must be held in memory to be read (7z cannot be
    # streamed); larger ones are hashed, their members not read.
    max_buffered_archive: int = 256 * MiB
    # Video decoded for vPDQ, in seconds of video and in frames: decoding stops there (the frames
    # hashed until then are kept and matched). Six hours at 60 frames per second fits both.
    max_video_seconds: float = 6 * 3600.0
    max_video_frames: int = 2_000_000
    # Seconds spent decoding one video (below item_seconds, so the frames hashed are kept).
    max_video_decode_seconds: float = 240.0
    # Largest video inside an archive held in memory to decode (a video on disk is read by path).
    max_buffered_video: int = 512 * MiB

    @classmethod
    def table(cls) -> list[tuple[str, Any, str, str]]:
        """Rows of (name, default, unit, meaning) for docs and `vigil scan --help`."""
        return [(n, d, LIMIT_DOCS[n][0], LIMIT_DOCS[n][1]) for n, d in cls.defaults().items()]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Name -> default value."""
        return {f.name: f.default for f in fields(cls)}

    def with_overrides(self, overrides: dict[str, str]) -> Limits:
        """A copy with NAME=VALUE strings applied; sizes accept K/M/G suffixes."""
        changes: dict[str, Any] = {}
        known = self.defaults()
        for name, raw in overrides.items():
            if name not in known:
                raise ValueError(f"unknown limit {name!r}; known limits: {', '.join(known)}")
            kind = float if name in _SECONDS else int
            changes[name] = parse_limit_value(raw, kind)
        return replace(self, **changes)


LIMIT_DOCS: dict[str, tuple[str, str]] = {
    "max_file_size": ("bytes", "largest file or archive member that is fingerprinted"),
    "max_archive_bytes": ("bytes", "bytes decompressed from one archive, nested levels included"),
    "max_archive_depth": ("levels", "how deep archives may nest inside each other"),
    "max_archive_members": ("members", "members read from one archive, nested ones included"),
    "max_image_pixels": ("pixels", "pixels of one decoded image (decompression bombs)"),
    "item_seconds": ("seconds", "time one file may take, everything inside it included"),
    "max_image_file_size": ("bytes", "largest image file decoded for PDQ (larger: hashed only)"),
    "max_buffered_archive": ("bytes", "largest nested 7z held in memory to read its members"),
    "max_video_seconds": ("seconds", "video decoded for vPDQ (the frames before are kept)"),
    "max_video_frames": ("frames", "frames decoded of one video (the frames before are kept)"),
    "max_video_decode_seconds": (
        "seconds",
        "time spent decoding one video (the frames hashed until then are kept)",
    ),
    "max_buffered_video": ("bytes", "largest video inside an archive held in memory to decode"),
}

_SECONDS = frozenset({"item_seconds", "max_video_seconds", "max_video_decode_seconds"})

_SUFFIXES = {"k": 1024, "m": MiB, "g": GiB, "t": 1024 * GiB}


def parse_limit_value(raw: str, kind: type) -> int | float:
    """Parse '512M', '2G', '100000' or '2.5' into a number."""
    text = raw.strip().lower().removesuffix("b")
    mult = 1
    if text and text[-1] in _SUFFIXES:
        mult = _SUFFIXES[text[-1]]
        text = text[:-1]
    try:
        value = float(text) * mult
    except ValueError:
        raise ValueError(f"not a number: {raw!r}") from None
    if value <= 0:
        raise ValueError(f"a limit must be positive: {raw!r}")
    return kind(value)
