"""Batched binary search over sorted fixed-width digests (compiled: numba)."""

from __future__ import annotations

import numpy as np


def equal_ranges(
    values: np.ndarray, keys: np.ndarray, directory: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each key row, the range [first, end) of equal rows in the sorted `values`, searched
    within the key's bucket of the prefix `directory` (see `prefix_directory`).

    Compiled (numba, imported on first use: a scanner that never looks up in bulk never pays
    for it).
    """
    from vigil.matching import kernels

    bits = directory_bits(len(directory))
    return kernels.equal_ranges(values, keys, directory, bits)  # type: ignore[no-any-return]


def directory_bits(size: int) -> int:
    """The prefix bits of a directory of `size` entries (2**bits + 1)."""
    return (size - 1).bit_length() - 1


def prefix_directory(rows: np.ndarray) -> np.ndarray:
    """Where each value of the first `bits` bits starts in sorted (N, width) digest rows.

    Entry p is the first row whose leading bits are >= p, entry 2**bits is N: the rows with
    prefix p are [directory[p], directory[p + 1]). About 8 rows a bucket (bits = log2(N) - 3,
    at most 24), so a lookup is a few comparisons after one read of a small table, instead of
    a binary search through the whole (memory-mapped) array.
    """
    n = rows.shape[0]
    bits = max(0, min(24, n.bit_length() - 4))
    counts = np.zeros(1 << bits, dtype=np.int64)
    for start in range(0, n, 1 << 22):  # in slices: no N-sized temporaries
        part = rows[start : start + (1 << 22)]
        prefix = (
            (part[:, 0].astype(np.int64) << 16)
            | (part[:, 1].astype(np.int64) << 8)
            | part[:, 2].astype(np.int64)
        ) >> (24 - bits)
        counts += np.bincount(prefix, minlength=1 << bits)
    directory = np.zeros((1 << bits) + 1, dtype=np.int64)
    np.cumsum(counts, out=directory[1:])
    return directory


def as_rows(array: np.ndarray, width: int) -> np.ndarray:
    """A (N, width) uint8 view of an S{width} array (no copy when contiguous)."""
    return np.ascontiguousarray(array).view(np.uint8).reshape(-1, width)


def sort_order(values: np.ndarray, width: int) -> np.ndarray:
    """The stable order that sorts an S{width} array bytewise (as NumPy's S dtype sorts).

    Sorting the strings directly compares bytes one by one; this sorts their big-endian 64-bit
    words instead (the first word decides almost always): about 1.4x faster on random digests.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    padded = -(-width // 8) * 8
    rows = as_rows(values, width)
    if padded != width:
        rows = np.concatenate([rows, np.zeros((n, padded - width), dtype=np.uint8)], axis=1)
    words = rows.view(">u8")
    order = np.argsort(words[:, 0], kind="stable")
    first = words[order, 0]
    tied = np.flatnonzero(first[1:] == first[:-1])
    if len(tied) == 0:
        return order
    if len(tied) > n // 64:  # many equal prefixes (duplicated lists): sort the strings
        return np.argsort(values, kind="stable")
    # Few ties: re-sort each run of equal first words by the whole value.
    starts = tied[np.concatenate([[True], tied[1:] != tied[:-1] + 1])]
    for s in starts.tolist():
        e = s + 1
        while e < n and first[e] == first[s]:
            e += 1
        run = order[s:e]
        order[s:e] = run[np.argsort(values[run], kind="stable")]
    return order
