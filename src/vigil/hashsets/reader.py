"""Read any supported hash list as a lazy stream of entries.

    entries, report = read_hashlist(Path("list.json"))
    for entry in entries: ...          # the report fills as the entries are consumed

The format is detected from the content (never the file name) unless named. Files may be
gzip-, bzip2- or xz-compressed, start with a UTF-8 (or UTF-16) byte-order mark and use CRLF.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from vigil.errors import HashListError
from vigil.hashsets import detect, registry
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.listformat import ListFormat, Reading

# The formats' public names (vigil.hashsets.registry).
FORMATS: tuple[str, ...] = registry.NAMES
# Bytes (after decompression) that detection looks at.
HEAD_BYTES = 64 * 1024

_COMPRESSED: dict[bytes, Callable[[BinaryIO], Any]] = {
    b"\x1f\x8b": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    b"BZh": lambda raw: bz2.BZ2File(raw, mode="rb"),
    b"\xfd7zXZ\x00": lambda raw: lzma.LZMAFile(raw, mode="rb"),
}
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# What a damaged compressed stream raises.
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


def read_hashlist(
    path: Path, format: str = "auto", report: ParseReport | None = None
) -> tuple[Iterator[Entry], ParseReport]:
    """Detect the format (unless given) and return a lazy iterator of entries and its report.

    Raises HashListError (AmbiguousFormatError when detection cannot decide) here for a file
    that is no hash list, and during iteration for one that turns out unparseable later on.
    """
    path = Path(path)
    report = report if report is not None else ParseReport()
    explicit = format != "auto"
    if explicit and format not in registry.CHOICES:
        raise HashListError(
            f"unknown hash-list format {format!r}; choose one of auto, {', '.join(FORMATS)}"
        )
    head, complete = _read_head(path)
    if not explicit:
        format = detect.detect(head, str(path), complete)
    else:
        detect.check_content(head, str(path))
    fmt = registry.get(format)
    report.format = fmt.name
    report.known_good = fmt.known_good
    return _entries(path, fmt, Reading(path, explicit), report), report


def _entries(path: Path, fmt: ListFormat, reading: Reading, report: ParseReport) -> Iterator[Entry]:
    try:
        with open_decoded(path) as stream:
            yield from fmt.parse(stream, report, reading)
    except HashListError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    except _DECOMPRESSION_ERRORS as exc:
        raise HashListError(f"{path}: damaged or truncated compressed file: {exc}") from exc
    except OSError as exc:  # bz2 says "Invalid data stream" with a plain OSError
        raise HashListError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _read_head(path: Path) -> tuple[bytes, bool]:
    try:
        with open_decoded(path) as stream:
            head = stream.read(HEAD_BYTES + 1)
    except _DECOMPRESSION_ERRORS as exc:
        raise HashListError(f"{path}: damaged or truncated compressed file: {exc}") from exc
    except OSError as exc:
        raise HashListError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return head[:HEAD_BYTES], len(head) <= HEAD_BYTES


@contextmanager
def open_decoded(path: Path) -> Iterator[BinaryIO]:
    """The file as UTF-8 bytes: decompressed, its byte-order mark removed (UTF-16 re-encoded)."""
    with open(path, "rb") as raw:
        magic = raw.peek(8)[:8]
        stream: BinaryIO = raw
        for prefix, opener in _COMPRESSED.items():
            if magic.startswith(prefix):
                stream = opener(raw)
                break
        with stream:
            start = stream.peek(4)[:4] if hasattr(stream, "peek") else b""  # type: ignore[attr-defined]
            if start.startswith(_UTF8_BOM):
                stream.read(len(_UTF8_BOM))
            elif start.startswith(_UTF16_BOMS):
                text = io.TextIOWrapper(stream, encoding="utf-16", errors="replace")
                yield io.BufferedReader(_Utf8FromText(text))  # type: ignore[misc]
                return
            yield stream


class _Utf8FromText(io.RawIOBase):
    """A raw byte stream that re-encodes a text stream as UTF-8."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        super().__init__()
        self._text = text
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = self._text.read(16 * 1024)
            if not chunk:
                return 0
            self._pending = chunk.encode("utf-8")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
