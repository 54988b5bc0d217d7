"""Batched binary search over sorted fixed-width digests (compiled: numba)."""

from __future__ import annotations

import numpy as np


def equal_ranges(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each key row, the range [first, end) of equal rows in the sorted `values`.

    Compiled (numba, imported on first use: a scanner that never looks up in bulk never pays
    for it).
    """
    from vigil.matching import kernels

    return kernels.equal_ranges(values, keys)  # type: ignore[no-any-return]


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
