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


def cut(
    files: Iterable[Listed],
    protocol: str = "file",
    *,
    max_files: int = SHARD_FILES,
    max_bytes: int = SHARD_BYTES,
) -> Iterator[Shard]:
    """Shards of these files in their order: at most `max_files` files and, unless a single file
    is larger, `max_bytes` bytes each."""
    if max_files < 1 or max_bytes < 1:
        raise ValueError("a shard holds at least one file and one byte")
    held: list[Listed] = []
    size = 0
    for f in files:
        if held and (len(held) >= max_files or size + f.size > max_bytes):
            yield Shard(shard_name(held), tuple(held), protocol)
            held, size = [], 0
        held.append(f)
        size += f.size
    if held:
        yield Shard(shard_name(held), tuple(held), protocol)
