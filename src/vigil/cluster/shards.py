"""Shards: the unit of work a worker scans, thousands of files at a time.

One task per file would leave the cluster waiting on its scheduler (each task costs it about a
millisecond, dask/distributed issue 37); a shard of a few thousand files costs it the same once.
A shard is cut by count and by bytes, whichever comes first, so a shard of videos is not a day's
work while one of thumbnails is a second's.

A shard's name is a digest of what it holds (each file's location, size and identity), so the
same unchanged listing cuts the same shards under the same names: that is what a checkpoint
records as done, and a changed file makes its shard a new one that is scanned again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from vigil.cluster.listing import Listed

# Files and bytes a shard holds at most (see the README's section on a billion files).
SHARD_FILES = 2000
SHARD_BYTES = 4 * 1024**3


@dataclass(frozen=True, slots=True)
class Shard:
    """Files scanned by one task, and its deterministic name."""

    name: str
    files: tuple[Listed, ...]
    protocol: str = "file"

    @property
    def bytes(self) -> int:
        """Total size of its files."""
        return sum(f.size for f in self.files)


def shard_name(files: Iterable[Listed]) -> str:
    """The digest of the files' locations, sizes and identities."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.url}\0{f.size}\0{f.identity}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


class Cutter:
    """`cut` fed part by part: the files of many small parts (a tree of thousands of small
    folders) fill shards together. Fed in the parts' order, it cuts the same shards every time."""

    def __init__(self, max_files: int = SHARD_FILES, max_bytes: int = SHARD_BYTES) -> None:
        if max_files < 1 or max_bytes < 1:
            raise ValueError("a shard holds at least one file and one byte")
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._held: list[Listed] = []
        self._size = 0
        self._protocol = "file"

    def feed(self, files: Iterable[Listed], protocol: str = "file") -> Iterator[Shard]:
        """Shards filled by these files (a change of protocol ends the shard held)."""
        if protocol != self._protocol:
            yield from self.flush()
            self._protocol = protocol
        for f in files:
            if self._held and (
                len(self._held) >= self.max_files or self._size + f.size > self.max_bytes
            ):
                yield from self.flush()
            self._held.append(f)
            self._size += f.size

    def flush(self) -> Iterator[Shard]:
        """The shard held, if any."""
        if self._held:
            yield Shard(shard_name(self._held), tuple(self._held), self._protocol)
        self._held, self._size = [], 0


def cut(
    files: Iterable[Listed],
    protocol: str = "file",
    *,
    max_files: int = SHARD_FILES,
    max_bytes: int = SHARD_BYTES,
) -> Iterator[Shard]:
    """Shards of these files in their order: at most `max_files` files and, unless a single file
    is larger, `max_bytes` bytes each."""
    cutter = Cutter(max_files, max_bytes)
    yield from cutter.feed(files, protocol)
    yield from cutter.flush()
