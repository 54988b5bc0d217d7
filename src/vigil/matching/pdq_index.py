"""Hamming-radius search over 256-bit PDQ hashes, behind a small interface.

Callers only build (`build_pdq_index`), save, load (`load_pdq_index`) and search. The default
is `MultiIndexPDQIndex` (multi-index hashing with compiled loops, `vigil.matching.mih`): exact,
like the brute-force scan kept here as the reference the tests compare it with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from vigil.matching.mih import MultiIndex

# Rows compared per step: bounds the temporary memory of one search to a few MiB.
_CHUNK = 1 << 18


class PDQIndex(Protocol):
    """Finds stored hashes within a Hamming radius of query hashes."""

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
        """(query index, stored row, distance) for every stored hash within `radius` of a query.

        `queries` is a (Q, 32) uint8 array of PDQ hashes as bytes.
        """
        ...

    def hashes(self, rows: np.ndarray) -> np.ndarray:
        """The stored hashes of these rows, a (len(rows), 32) uint8 array."""
        ...

    def save(self, directory: Path) -> None:
        """Write the index under `directory`."""
        ...


class BruteForcePDQIndex:
    """Exact search by XOR and popcount over every stored hash (NumPy, no false negatives)."""

    FILE = "pdq.hashes.npy"

    def __init__(self, hashes: np.ndarray) -> None:
        if hashes.ndim != 2 or hashes.shape[1] != 32 or hashes.dtype != np.uint8:
            raise ValueError("PDQ hashes must be an (N, 32) uint8 array")
        self._hashes = hashes
        self._words = np.ascontiguousarray(hashes).view(np.uint64)

    @classmethod
    def load(cls, directory: Path) -> BruteForcePDQIndex:
        """Memory-map a saved index (start-up reads no hash until it is searched)."""
        return cls(np.load(directory / cls.FILE, mmap_mode="r"))

    def save(self, directory: Path) -> None:
        """Write the hashes as one .npy file."""
        np.save(directory / self.FILE, np.ascontiguousarray(self._hashes))

    def __len__(self) -> int:
        return int(self._hashes.shape[0])

    def search(self, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
        """All stored hashes within `radius` of each query."""
        out: list[tuple[int, int, int]] = []
        if len(self) == 0 or len(queries) == 0:
            return out
        qwords = np.ascontiguousarray(queries, dtype=np.uint8).view(np.uint64)
        for start in range(0, len(self), _CHUNK):
            block = self._words[start : start + _CHUNK]
            for qi in range(qwords.shape[0]):
                dist = np.bitwise_count(block ^ qwords[qi]).sum(axis=1, dtype=np.uint16)
                rows = np.flatnonzero(dist <= radius)
                for r in rows:
                    out.append((qi, start + int(r), int(dist[r])))
        return out

    def hashes(self, rows: np.ndarray) -> np.ndarray:
        """The stored hashes of these rows."""
        return np.asarray(self._hashes[np.asarray(rows, dtype=np.int64)], dtype=np.uint8)


class MultiIndexPDQIndex:
    """Exact search by multi-index hashing (`vigil.matching.mih`): same answers as brute force."""

    FILE = BruteForcePDQIndex.FILE
    PREFIX = "pdq.mih"

    def __init__(self, hashes: np.ndarray, index: MultiIndex | None = None) -> None:
        if hashes.ndim != 2 or hashes.shape[1] != 32 or hashes.dtype != np.uint8:
            raise ValueError("PDQ hashes must be an (N, 32) uint8 array")
        self._hashes = hashes
        words = hashes.view(np.uint64) if hashes.flags.c_contiguous else None
        if words is None:
            hashes = np.ascontiguousarray(hashes)
            self._hashes, words = hashes, hashes.view(np.uint64)
        self._index = index if index is not None else MultiIndex.build(words)

    @classmethod
    def load(cls, directory: Path) -> MultiIndexPDQIndex | None:
        """Memory-map a saved index (nothing is read until searched), or None if there is none."""
        try:
            hashes = np.load(directory / cls.FILE, mmap_mode="r")
        except (OSError, ValueError):
            return None
        index = MultiIndex.load(directory, cls.PREFIX, hashes.view(np.uint64))
        return None if index is None else cls(hashes, index)

    def save(self, directory: Path) -> None:
        """Write the hashes and the tables as .npy files."""
        np.save(directory / self.FILE, self._hashes)
        self._index.save(directory, self.PREFIX)

    def __len__(self) -> int:
        return int(self._hashes.shape[0])

    def search(self, queries: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
        """All stored hashes within `radius` of each query."""
        if len(self) == 0 or len(queries) == 0:
            return []
        q = np.ascontiguousarray(queries, dtype=np.uint8).reshape(-1, 32).view(np.uint64)
        return self._index.search(q, radius)

    def hashes(self, rows: np.ndarray) -> np.ndarray:
        """The stored hashes of these rows."""
        return np.asarray(self._hashes[np.asarray(rows, dtype=np.int64)], dtype=np.uint8)


def build_pdq_index(hashes: np.ndarray) -> PDQIndex:
    """The index used for an (N, 32) uint8 array of hashes."""
    return MultiIndexPDQIndex(np.ascontiguousarray(hashes, dtype=np.uint8))


def load_pdq_index(directory: Path) -> PDQIndex | None:
    """The index saved under `directory` by `build_pdq_index(...).save`, or None."""
    return MultiIndexPDQIndex.load(directory)
