"""PDQ against the expected hashes of Meta's reference tools (../shared/conformance/pdq-vectors).

Run with `pytest -s` to see the per-source distance table.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from vigil.fingerprint.fingerprints import PDQ
from vigil.fingerprint.pdq import hamming, pdq_from_bytes

VECTORS = "conformance/pdq-vectors"
MAX = 50_000_000
# The PDQ authors' bar: images of quality >= 80 land within 10 bits of the C++ tool.
CPP_TOLERANCE = 10
QUALITY_TOLERANCE = 5


@dataclass(frozen=True)
class Row:
    file: str
    expected: str
    quality: int | None
    source: str
    dihedral: tuple[str, ...]
    note: str


def load_rows(root: Path) -> list[Row]:
    """Rows of MANIFEST.tsv that are a plain PDQ of a file present here (no vPDQ)."""
    rows = []
    with (root / "MANIFEST.tsv").open(newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            note = r["note"] or ""
            if "NOT COPIED" in note or "NOT a plain PDQ" in note:
                continue
            if r["quality"] == "per-frame" or r["source"].startswith("vpdq"):
                continue
            if not (root / r["file"]).is_file():
                continue
            rows.append(
                Row(
                    file=r["file"],
                    expected=r["expected_pdq_hex"],
                    quality=int(r["quality"]) if r["quality"].isdigit() else None,
                    source=r["source"],
                    dihedral=tuple(h for h in (r["dihedral_8"] or "").split(";") if h),
                    note=note,
                )
            )
    return rows


@cache
def hash_file(path: Path) -> PDQ:
    return pdq_from_bytes(path.read_bytes(), max_pixels=MAX)


@pytest.fixture(scope="module")
def root(shared_dir: Path) -> Path:
    return shared_dir / VECTORS


@pytest.fixture(scope="module")
def rows(root: Path) -> list[Row]:
    found = load_rows(root)
    assert len(found) > 50, "MANIFEST.tsv has fewer usable rows than expected"
    return found


def test_distance_table_by_source(root: Path, rows: list[Row]) -> None:
    by_source: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_source[row.source].append(hamming(hash_file(root / row.file).hash, row.expected))
    print(f"\n{'source':<100} {'min':>4} {'mean':>6} {'max':>4} {'n':>3}")
    for source, distances in sorted(by_source.items()):
        mean = sum(distances) / len(distances)
        stats = f"{min(distances):>4} {mean:>6.2f} {max(distances):>4} {len(distances):>3}"
        print(f"{source[:100]:<100} {stats}")
    assert by_source


def test_cpp_reference_rows(root: Path, rows: list[Row]) -> None:
    cpp = [r for r in rows if r.source.startswith("cpp-ref")]
    assert len(cpp) >= 25
    failures = []
    checked = 0
    for row in cpp:
        ours = hash_file(root / row.file)
        distance = hamming(ours.hash, row.expected)
        quality = row.quality if row.quality is not None else ours.quality
        print(f"{row.file:<60} {distance:>3} bits, quality {ours.quality} (expected {row.quality})")
        if quality >= 80:
            checked += 1
            if distance > CPP_TOLERANCE:
                failures.append(f"{row.file}: {distance} bits")
        if row.quality is not None and abs(ours.quality - row.quality) > QUALITY_TOLERANCE:
            failures.append(f"{row.file}: quality {ours.quality}, expected {row.quality}")
    assert checked >= 20
    assert not failures, failures


def test_cpp_dihedral_variants(root: Path, rows: list[Row]) -> None:
    (row,) = [r for r in rows if r.source.startswith("cpp-ref") and len(r.dihedral) == 8]
    assert row.file.endswith("dih/bridge-1-original.jpg")
    ours = hash_file(root / row.file)
    assert ours.dihedral[0] == ours.hash
    for k, (got, expected) in enumerate(zip(ours.dihedral, row.dihedral, strict=True)):
        assert hamming(got, expected) <= CPP_TOLERANCE, f"variant {k}"
    # The 8 files are the original turned and flipped; each one's hash is the matching
    # variant of the original's hash (JPEG re-encoding and the reference's off-centre even box
    # window, 8 px here, cost a few bits).
    files = sorted((root / row.file).parent.glob("bridge-*.jpg"))
    assert len(files) == 8
    for path, variant in zip(files, ours.dihedral, strict=True):
        distance = hamming(hash_file(path).hash, variant)
        print(f"{path.name}: {distance} bits from the variant of the original")
        assert distance <= CPP_TOLERANCE, path.name


def test_identical_pixels_identical_hash(root: Path) -> None:
    # Same bytes under two names (MANIFEST README): the same hash, bit for bit.
    a = hash_file(root / "pdq/data/reg-test-input/dih/bridge-1-original.jpg")
    b = hash_file(root / "pdq/data/bridge-mods/aaa-orig.jpg")
    assert a == b
