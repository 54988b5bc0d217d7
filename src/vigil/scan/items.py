"""What a scan is given: items from any producer (a local walk, a folder watcher, an object-store
listing, an ICAP body), each saying where it is shown, how big it is, how a worker reads it and
what identifies it for the fingerprint cache.

Sources are pickled to the worker processes, so they carry what opens the bytes (a path, the
bytes themselves, a picklable opener), never an open file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from vigil.limits import Limits
from vigil.scan.reader import RawItem, read_bytes, read_file, read_stream
from vigil.scan.results import ScanError


class ItemSource(Protocol):
    """How a worker reads an item's bytes."""

    @property
    def video_path(self) -> str | None:
        """A path a video decoder may open itself (a local file), or None."""
        ...

    def read(
        self, name: str, limits: Limits, want_content: Callable[[str], bool]
    ) -> Iterator[RawItem | ScanError]:
        """The item and everything inside it, as vigil.scan.reader yields them."""
        ...


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file on this machine's file systems."""

    path: str

    @property
    def video_path(self) -> str | None:
        return self.path

    def read(
        self, name: str, limits: Limits, want_content: Callable[[str], bool]
    ) -> Iterator[RawItem | ScanError]:
        return read_file(self.path, limits, want_content)


@dataclass(frozen=True, slots=True)
class Buffer:
    """Bytes held in memory (an ICAP body, an upload, an object fetched whole)."""

    data: bytes
    video_path: str | None = None

    def read(
        self, name: str, limits: Limits, want_content: Callable[[str], bool]
    ) -> Iterator[RawItem | ScanError]:
        return read_bytes(self.data, name, limits, want_content)


@dataclass(frozen=True, slots=True)
class Opened:
    """A stream opened by a picklable callable (an fsspec file, a socket's reader), read once."""

    opener: Callable[[], BinaryIO]
    video_path: str | None = None

    def read(
        self, name: str, limits: Limits, want_content: Callable[[str], bool]
    ) -> Iterator[RawItem | ScanError]:
        try:
            stream = self.opener()
        except FileNotFoundError:
            yield ScanError(name, None, "vanished", "the object disappeared before it was read")
            return
        except PermissionError as exc:
            yield ScanError(name, None, "permission", f"permission denied: {exc}")
            return
        except OSError as exc:
            yield ScanError(name, None, "unreadable", f"cannot open: {exc}")
            return
        with stream:
            yield from read_stream(stream, name, limits, want_content)


@dataclass(slots=True)  # not frozen: a frozen dataclass is built 8x slower, once per file walked
class ScanItem:
    """One thing to scan."""

    # What matches and errors call it (a path, a URL, 'icap://…').
    path: str
    size: int
    # The fingerprint cache's key: a local file's stat (device, inode, size, times), or None
    # when the item is not to be cached.
    identity: os.stat_result | None = None
    # How to read it; None: the local file at `path` (the common case, the cheapest to send).
    source: ItemSource | None = None
