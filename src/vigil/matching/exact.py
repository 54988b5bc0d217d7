"""Batched binary search over sorted fixed-width digests (compiled: numba)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _less(a: np.ndarray, i: int, b: np.ndarray, j: int) -> int:
    """-1, 0 or 1: row i of a against row j of b, bytewise (the order NumPy's S dtype sorts by)."""
    for k in range(a.shape[1]):
        if a[i, k] != b[j, k]:
            return -1 if a[i, k] < b[j, k] else 1
    return 0


@numba.njit(cache=True)
def equal_ranges(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each key row, the range [first, end) of equal rows in the sorted `values`."""
    n = values.shape[0]
    first = np.empty(keys.shape[0], dtype=np.int64)
    end = np.empty(keys.shape[0], dtype=np.int64)
    for q in range(keys.shape[0]):
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) >> 1
            if _less(values, mid, keys, q) < 0:
                lo = mid + 1
            else:
                hi = mid
        first[q] = lo
        e = lo
        while e < n and _less(values, e, keys, q) == 0:
            e += 1
        end[q] = e
    return first, end


def as_rows(array: np.ndarray, width: int) -> np.ndarray:
    """A (N, width) uint8 view of an S{width} array (no copy when contiguous)."""
    return np.ascontiguousarray(array).view(np.uint8).reshape(-1, width)
