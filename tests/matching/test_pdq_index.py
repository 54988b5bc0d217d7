"""The multi-index PDQ index answers exactly what a brute-force scan answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vigil.matching.mih import MultiIndex, brute_force_search, chunk_radii, probe_count
from vigil.matching.pdq_index import (
    BruteForcePDQIndex,
    MultiIndexPDQIndex,
    build_pdq_index,
    load_pdq_index,
)


def flipped(rng: np.random.Generator, rows: np.ndarray, max_bits: int) -> np.ndarray:
    """Copies of `rows` with 0..max_bits random bits flipped each."""
    out = rows.copy()
    bits = np.unpackbits(out, axis=1)
    for i in range(len(out)):
        k = int(rng.integers(0, max_bits + 1))
        bits[i, rng.choice(256, k, replace=False)] ^= 1
    return np.packbits(bits, axis=1)


@pytest.mark.parametrize("pieces", [3, 4, 5])
@pytest.mark.parametrize("radius", [0, 7, 31, 45])
def test_same_answers_as_brute_force(pieces: int, radius: int) -> None:
    rng = np.random.default_rng(pieces * 100 + radius)
    n = 20_000
    hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    # Clusters of near-duplicates (altered copies) as real lists have, not only random hashes.
    hashes[: n // 4] = flipped(rng, hashes[rng.integers(0, 200, n // 4)], 40)
    queries = np.vstack(
        [
            flipped(rng, hashes[rng.integers(0, n, 150)], 45),
            rng.integers(0, 256, (50, 32), np.uint8),
        ]
    )
    index = MultiIndexPDQIndex(hashes, MultiIndex.build(hashes.view(np.uint64), pieces))
    got = sorted(index.search(queries, radius))
    want = sorted(BruteForcePDQIndex(hashes).search(queries, radius))
    assert got == want
    assert len(want) > 0


def test_chunk_radii_cover_the_radius() -> None:
    # Pigeonhole: a hash farther than its radius on every chunk is farther than r overall.
    for chunks in (12, 16, 20):
        for r in range(0, 64):
            radii = chunk_radii(r, chunks)
            assert int((radii + 1).sum()) == r + 1  # the least that is still exact
    assert probe_count(31, 4) == 16 * 17


def test_save_and_memory_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    build_pdq_index(hashes).save(tmp_path)
    loaded = load_pdq_index(tmp_path)
    assert loaded is not None and len(loaded) == 5000
    queries = flipped(rng, hashes[:20], 20)
    assert sorted(loaded.search(queries, 31)) == sorted(
        BruteForcePDQIndex(hashes).search(queries, 31)
    )
    assert load_pdq_index(tmp_path / "missing") is None


def test_empty_index() -> None:
    index = build_pdq_index(np.zeros((0, 32), dtype=np.uint8))
    assert len(index) == 0
    assert index.search(np.zeros((1, 32), dtype=np.uint8), 31) == []


def test_a_query_with_thousands_of_answers_gets_them_all() -> None:
    # Lists hold many copies of degenerate hashes (flat or blank images): one query can have more
    # answers than any output buffer guessed up front.
    rng = np.random.default_rng(3)
    hashes = rng.integers(0, 256, (50_000, 32), dtype=np.uint8)
    common = hashes[7].copy()
    hashes[1000:4000] = common
    hashes[5000:6000] = flipped(rng, np.repeat(common[None], 1000, axis=0), 20)
    queries = np.vstack([common, rng.integers(0, 256, (1, 32), np.uint8), common])
    words, q = hashes.view(np.uint64), queries.view(np.uint64)
    got = sorted(MultiIndex.build(words, pieces=4).search(q, 31))
    want = sorted(brute_force_search(words, q, 31))
    assert got == want
    assert sum(1 for qi, _, _ in got if qi == 0) == sum(1 for qi, _, _ in got if qi == 2) >= 4001
    assert not [a for a in got if a[0] == 1]
