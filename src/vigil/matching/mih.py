"""Multi-index hashing (Norouzi, Punjani, Fleet: "Fast search in Hamming space with multi-index
hashing", CVPR 2012) over 256-bit PDQ hashes, with compiled (numba) inner loops.

The 256 bits are cut into m chunks (each 64-bit word into `pieces` chunks, so no chunk straddles
a word). By the pigeonhole principle a stored hash within distance r of a query agrees with it to
within r // m bits on at least one chunk; refined (Norouzi et al., section 4): with r = m*r' + a,
within r' bits on one of the first a + 1 chunks or within r' - 1 on one of the others. For each
chunk, a table lists the rows sorted by that chunk's value (a counting sort: `offsets[v]` ..
`offsets[v+1]` are the rows whose chunk equals v). A query probes, per chunk, every value within
its chunk radius and verifies each row found against the full 256 bits, so the search is exact:
the same answers as a brute-force scan, checked by the tests.

A row found through chunk i is reported only if no earlier chunk j < i would have found it (its
chunk j distance is above chunk j's radius), so every answer comes out once without a set.

Chunk width is chosen from the index size: about log2(N) - 2 bits, so a probe finds a few rows on
average and the offset tables stay a few bytes per hash (see `pieces_for`).
"""

from __future__ import annotations

import itertools
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

WORDS = 4  # 256 bits as four uint64 words
FORMAT = 1


def pieces_for(n: int) -> int:
    """Chunks per 64-bit word for an index of n hashes (chunk bits about log2(n) - 2)."""
    if n < 200_000:
        return 5  # 12-13 bit chunks, 20 tables
    if n < 3_000_000:
        return 4  # 16-bit chunks, 16 tables
    return 3  # 21-22 bit chunks, 12 tables


def chunk_layout(pieces: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(word, shift, width) of each of the 4 * pieces chunks."""
    word, shift, width = [], [], []
    for w in range(WORDS):
        sizes = [64 // pieces + (1 if p < 64 % pieces else 0) for p in range(pieces)]
        at = 0
        for s in sizes:
            word.append(w)
            shift.append(at)
            width.append(s)
            at += s
    return (
        np.array(word, dtype=np.int64),
        np.array(shift, dtype=np.uint64),
        np.array(width, dtype=np.int64),
    )


def chunk_radii(radius: int, chunks: int) -> np.ndarray:
    """Per-chunk search radius (-1: chunk not probed) that finds every hash within `radius`."""
    base, extra = divmod(radius, chunks)
    radii = np.full(chunks, base - 1, dtype=np.int64)
    radii[: extra + 1] = base
    return radii


@lru_cache(maxsize=64)
def _flip_masks(width: int, radius: int) -> np.ndarray:
    """Every mask of `width` bits with at most `radius` bits set, fewest bits first."""
    masks = [0]
    for k in range(1, radius + 1):
        for bits in itertools.combinations(range(width), k):
            m = 0
            for b in bits:
                m |= 1 << b
            masks.append(m)
    return np.array(masks, dtype=np.uint64)


def probe_count(radius: int, pieces: int) -> int:
    """How many bucket probes one query costs at this radius (to choose brute force instead)."""
    _, _, width = chunk_layout(pieces)
    radii = chunk_radii(radius, len(width))
    total = 0
    for w, r in zip(width, radii, strict=True):
        if r >= 0:
            total += sum(_comb(int(w), k) for k in range(int(r) + 1))
    return total


def _comb(n: int, k: int) -> int:
    from math import comb

    return comb(n, k)


def _kernels():  # type: ignore[no-untyped-def]
    """The compiled loops (importing numba costs a few hundred ms: only when first needed)."""
    from vigil.matching import kernels

    return kernels


def _answers(out: np.ndarray, n: int) -> list[tuple[int, int, int]]:
    """The first n columns of a kernel's (3, capacity) output as (query, row, distance)."""
    return list(zip(out[0, :n].tolist(), out[1, :n].tolist(), out[2, :n].tolist(), strict=True))


def _collect(fn, *args) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    """Run a kernel; its answers as (query, row, distance) tuples. The kernel grows its output
    as it goes (a search is never run twice because it found more than expected)."""
    out, n = fn(*args, np.empty((3, 1024), dtype=np.int64))
    return _answers(out, n)


def brute_force_search(
    words: np.ndarray, queries: np.ndarray, radius: int
) -> list[tuple[int, int, int]]:
    """Compiled full scan: (query, row, distance) for every row within `radius`."""
    cap = 1024
    while True:
        out = np.empty((3, cap), dtype=np.int64)
        n = _kernels().brute(words, queries, radius, out)
        if n <= cap:
            return _answers(out, n)
        cap = n


class MultiIndex:
    """The tables of a multi-index over an (N, 4) uint64 array of hashes."""

    def __init__(self, words: np.ndarray, pieces: int, offsets: np.ndarray, rows: np.ndarray):
        self.words = words
        self.pieces = pieces
        self.offsets = offsets
        self.rows = rows
        self.cword, self.cshift, self.cwidth = chunk_layout(pieces)
        sizes = (1 << self.cwidth) + 1
        self.table_base = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    @classmethod
    def build(cls, words: np.ndarray, pieces: int | None = None) -> MultiIndex:
        """Counting-sort every chunk's table (linear time, one pass per chunk)."""
        n = words.shape[0]
        pieces = pieces if pieces is not None else pieces_for(n)
        cword, cshift, cwidth = chunk_layout(pieces)
        sizes = (1 << cwidth) + 1
        offsets = np.zeros(int(sizes.sum()), dtype=np.uint32 if n < 2**32 else np.uint64)
        rows = np.empty((len(cwidth), n), dtype=np.uint32)
        at = 0
        for c in range(len(cwidth)):
            size = int(sizes[c])
            _kernels().build_table(
                words, int(cword[c]), cshift[c], int(cwidth[c]), offsets[at : at + size], rows[c]
            )
            at += size
        return cls(words, pieces, offsets, rows)

    def search(self, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
        """Exact radius search; falls back to a full scan when probing would cost more."""
        n = self.words.shape[0]
        chunks = len(self.cwidth)
        # A probe costs about a cache miss; a full scan about 1/8 of one per row (streaming).
        if radius >= 4 * chunks or probe_count(radius, self.pieces) * 8 > n:
            return brute_force_search(self.words, queries, radius)
        radii = chunk_radii(radius, chunks)
        masks = [
            _flip_masks(int(w), int(r)) if r >= 0 else _flip_masks(1, 0)[:0]
            for w, r in zip(self.cwidth, radii, strict=True)
        ]
        mask_start = np.concatenate([[0], np.cumsum([len(m) for m in masks])]).astype(np.int64)
        all_masks = np.concatenate(masks).astype(np.uint64)
        return _collect(
            _kernels().search,
            self.words,
            queries,
            radius,
            self.cword,
            self.cshift,
            self.cwidth,
            radii,
            self.table_base,
            self.offsets,
            self.rows,
            mask_start,
            all_masks,
        )

    def save(self, directory: Path, prefix: str) -> None:
        """Write the tables (the hashes are saved by the caller)."""
        np.save(directory / f"{prefix}.offsets.npy", self.offsets)
        np.save(directory / f"{prefix}.rows.npy", self.rows)
        (directory / f"{prefix}.json").write_text(
            json.dumps({"format": FORMAT, "pieces": self.pieces})
        )

    @classmethod
    def load(cls, directory: Path, prefix: str, words: np.ndarray) -> MultiIndex | None:
        """Memory-map saved tables, or None if there are none of this format."""
        try:
            meta = json.loads((directory / f"{prefix}.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("format") != FORMAT:
            return None
        offsets = np.load(directory / f"{prefix}.offsets.npy", mmap_mode="r")
        rows = np.load(directory / f"{prefix}.rows.npy", mmap_mode="r")
        return cls(words, int(meta["pieces"]), offsets, rows)
