"""The compiled (numba) loops of the matcher, in one module imported only when first needed.

Importing numba takes a few hundred milliseconds, and loading a cached compiled function
another few tens: a scanner pays that at its first PDQ search or batched exact lookup, not at
start-up. `cache=True` keeps the machine code under __pycache__ between runs.
"""

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
def equal_ranges(
    values: np.ndarray, keys: np.ndarray, directory: np.ndarray, bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each key row, the range [first, end) of equal rows in the sorted `values`: a binary
    search within the key's bucket of the prefix directory (vigil.matching.exact)."""
    first = np.empty(keys.shape[0], dtype=np.int64)
    end = np.empty(keys.shape[0], dtype=np.int64)
    for q in range(keys.shape[0]):
        p = ((np.int64(keys[q, 0]) << 16) | (np.int64(keys[q, 1]) << 8) | np.int64(keys[q, 2])) >> (
            24 - bits
        )
        lo = directory[p]
        hi = directory[p + 1]
        bucket_end = hi
        while lo < hi:
            mid = (lo + hi) >> 1
            if _less(values, mid, keys, q) < 0:
                lo = mid + 1
            else:
                hi = mid
        first[q] = lo
        e = lo
        while e < bucket_end and _less(values, e, keys, q) == 0:
            e += 1
        end[q] = e
    return first, end


@numba.njit(cache=True, inline="always")
def _popcount64(x: np.uint64) -> np.int64:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(cache=True, inline="always")
def _push(
    out: np.ndarray, count: int, q: int | np.integer, row: int | np.integer, dist: int | np.integer
) -> np.ndarray:
    """Put an answer in column `count` of the (3, capacity) `out`, doubling it when full."""
    if count == out.shape[1]:
        bigger = np.empty((3, 2 * out.shape[1]), dtype=np.int64)
        bigger[:, :count] = out
        out = bigger
    out[0, count] = q
    out[1, count] = row
    out[2, count] = dist
    return out


@numba.njit(cache=True)
def build_table(
    words: np.ndarray,
    word: int,
    shift: np.uint64,
    width: int,
    offsets: np.ndarray,
    rows: np.ndarray,
) -> None:
    """Counting sort of the rows by one chunk's value: offsets (2**width + 1) and rows (N)."""
    n = words.shape[0]
    mask = (np.uint64(1) << np.uint64(width)) - np.uint64(1)
    offsets[:] = 0
    for i in range(n):
        v = (words[i, word] >> shift) & mask
        offsets[v + 1] += 1
    for v in range(1, offsets.shape[0]):
        offsets[v] += offsets[v - 1]
    fill = offsets[:-1].copy()
    for i in range(n):
        v = (words[i, word] >> shift) & mask
        rows[fill[v]] = i
        fill[v] += 1


@numba.njit(cache=True)
def search(
    words: np.ndarray,
    queries: np.ndarray,
    radius: int,
    cword: np.ndarray,
    cshift: np.ndarray,
    cwidth: np.ndarray,
    cradius: np.ndarray,
    table_base: np.ndarray,
    offsets: np.ndarray,
    rows: np.ndarray,
    mask_start: np.ndarray,
    masks: np.ndarray,
    out: np.ndarray,
) -> tuple[np.ndarray, int]:
    """(query, row, distance) of every answer, as the columns of `out` (grown as needed), and
    how many there are."""
    count = 0
    chunks = cword.shape[0]
    for qi in range(queries.shape[0]):
        q0 = queries[qi, 0]
        q1 = queries[qi, 1]
        q2 = queries[qi, 2]
        q3 = queries[qi, 3]
        for c in range(chunks):
            if cradius[c] < 0:
                continue
            cmask = (np.uint64(1) << np.uint64(cwidth[c])) - np.uint64(1)
            key = (queries[qi, cword[c]] >> cshift[c]) & cmask
            base = table_base[c]
            for mi in range(mask_start[c], mask_start[c + 1]):
                v = key ^ masks[mi]
                lo = offsets[base + v]
                hi = offsets[base + v + 1]
                for t in range(lo, hi):
                    r = rows[c, t]
                    d = _popcount64(words[r, 0] ^ q0) + _popcount64(words[r, 1] ^ q1)
                    if d > radius:
                        continue
                    d += _popcount64(words[r, 2] ^ q2) + _popcount64(words[r, 3] ^ q3)
                    if d > radius:
                        continue
                    # Reported by an earlier chunk already?
                    earlier = False
                    for j in range(c):
                        if cradius[j] < 0:
                            continue
                        jm = (np.uint64(1) << np.uint64(cwidth[j])) - np.uint64(1)
                        x = ((words[r, cword[j]] ^ queries[qi, cword[j]]) >> cshift[j]) & jm
                        if _popcount64(x) <= cradius[j]:
                            earlier = True
                            break
                    if earlier:
                        continue
                    out = _push(out, count, qi, r, d)
                    count += 1
    return out, count


@numba.njit(cache=True)
def brute(
    words: np.ndarray,
    queries: np.ndarray,
    radius: int,
    out: np.ndarray,
) -> int:
    """Every stored row within `radius` of each query, by a full scan: the columns of `out`
    as `search` fills them, and the count, which may exceed its capacity (the caller runs it
    again with room for all: growing `out` here, as `search` does, makes this loop 6x slower)."""
    count = 0
    cap = out.shape[1]
    for r in range(words.shape[0]):
        for qi in range(queries.shape[0]):
            d = _popcount64(words[r, 0] ^ queries[qi, 0]) + _popcount64(
                words[r, 1] ^ queries[qi, 1]
            )
            if d > radius:
                continue
            d += _popcount64(words[r, 2] ^ queries[qi, 2]) + _popcount64(
                words[r, 3] ^ queries[qi, 3]
            )
            if d <= radius:
                if count < cap:
                    out[0, count] = qi
                    out[1, count] = r
                    out[2, count] = d
                count += 1
    return count
