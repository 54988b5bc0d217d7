"""The compiled matcher: exact lookups, PDQ radius with rotations, known-good, persistence."""

from __future__ import annotations

import gc
import random
from pathlib import Path

import numpy as np
import pytest

from vigil.catalog.store import Catalog
from vigil.fingerprint.fingerprints import DIHEDRAL_NAMES, PDQ, Fingerprints
from vigil.hashsets.entry import Entry, ParseReport
from vigil.matching.builds import BuildStore
from vigil.matching.matcher import Matcher, MatchSettings
from vigil.matching.pdq_index import BruteForcePDQIndex
from vigil.matching.settings import PDQ_LOW_QUALITY_DISTANCE

rng = random.Random(7)


def rand_hex(nbytes: int) -> str:
    return bytes(rng.getrandbits(8) for _ in range(nbytes)).hex()


def flip_bits(h: str, n: int) -> str:
    b = bytearray(bytes.fromhex(h))
    for bit in rng.sample(range(256), n):
        b[bit // 8] ^= 1 << (bit % 8)
    return b.hex()


def fp(
    md5: str = "0" * 32, sha1: str = "0" * 40, sha256: str = "0" * 64, pdq: PDQ | None = None
) -> Fingerprints:
    return Fingerprints(size=1, md5=md5, sha1=sha1, sha256=sha256, media_type="image/jpeg", pdq=pdq)


def test_exact_lookup_each_kind_and_duplicates_across_sets(catalog: Catalog) -> None:
    md5, sha1, sha256 = rand_hex(16), rand_hex(20), rand_hex(32)
    catalog.import_entries(
        "a",
        [Entry({"md5": md5}, id="1", category="1")],
        ParseReport(format="csv"),
        source="a",
        version="1",
    )
    catalog.import_entries(
        "b",
        [Entry({"md5": md5, "sha256": sha256}, id="2")],
        ParseReport(format="csv"),
        source="b",
        version="1",
    )
    catalog.import_entries(
        "c", [Entry({"sha1": sha1}, id="3")], ParseReport(format="csv"), source="c", version="1"
    )
    m = Matcher.compile(catalog)
    hits = m.lookup(fp(md5=md5, sha1=sha1, sha256=sha256))
    got = sorted((m.set_names[h.set_id], h.kind, h.distance) for h in hits)
    assert got == [("a", "md5", 0), ("b", "md5", 0), ("b", "sha256", 0), ("c", "sha1", 0)]
    assert m.lookup(fp(md5=rand_hex(16))) == []


def test_md5_with_trailing_zero_bytes_is_found(catalog: Catalog) -> None:
    md5 = "ab" + "00" * 15
    catalog.import_entries(
        "a", [Entry({"md5": md5}, id="1")], ParseReport(format="csv"), source="a", version="1"
    )
    m = Matcher.compile(catalog)
    assert [h.kind for h in m.lookup(fp(md5=md5))] == ["md5"]
    assert m.lookup(fp(md5="ab" + "00" * 14 + "01")) == []


def test_pdq_radius_quality_and_transform(catalog: Catalog) -> None:
    known = rand_hex(32)
    catalog.import_entries(
        "p", [Entry({"pdq": known}, id="k")], ParseReport(format="pdq"), source="p", version="1"
    )
    m = Matcher.compile(catalog)
    near = flip_bits(known, 20)
    far = flip_bits(known, 40)
    others = tuple(rand_hex(32) for _ in range(7))
    hits = m.lookup(fp(pdq=PDQ(near, 90, (near, *others))))
    assert [(h.kind, h.distance, h.transform) for h in hits] == [("pdq", 20, "original")]
    assert m.lookup(fp(pdq=PDQ(far, 90, (far, *others)))) == []
    # Quality below the gate: not matched, unless the gate is lowered.
    assert m.lookup(fp(pdq=PDQ(near, 29, (near, *others)))) == []
    assert len(m.lookup(fp(pdq=PDQ(near, 29, (near, *others))), MatchSettings(pdq_quality=20))) == 1
    # Just under the gate (pdq_low_quality..pdq_quality): matched within the tighter distance only.
    assert len(m.lookup(fp(pdq=PDQ(near, 30, (near, *others))))) == 1
    edge = flip_bits(known, PDQ_LOW_QUALITY_DISTANCE)
    assert len(m.lookup(fp(pdq=PDQ(edge, 49, (edge, *others))))) == 1
    past = flip_bits(known, PDQ_LOW_QUALITY_DISTANCE + 1)
    assert m.lookup(fp(pdq=PDQ(past, 49, (past, *others)))) == []
    assert len(m.lookup(fp(pdq=PDQ(past, 50, (past, *others))))) == 1
    off = MatchSettings(pdq_low_quality=50)
    assert m.lookup(fp(pdq=PDQ(near, 49, (near, *others))), off) == []
    # The known image mirrored: only the flipx variant of the scanned hash is near.
    variants = (rand_hex(32),) * 4 + (flip_bits(known, 3),) + (rand_hex(32),) * 3
    hits = m.lookup(fp(pdq=PDQ(variants[0], 90, variants)))
    assert [(h.distance, h.transform) for h in hits] == [(3, "flipx")]
    assert m.lookup(fp(pdq=PDQ(variants[0], 90, variants)), MatchSettings(rotations=False)) == []
    assert DIHEDRAL_NAMES[4] == "flipx"


def test_known_good_sets_never_alert_and_mark_the_item(catalog: Catalog) -> None:
    md5 = rand_hex(16)
    catalog.import_entries(
        "nsrl",
        [Entry({"md5": md5})],
        ParseReport(format="nsrl", known_good=True),
        source="n",
        version="1",
    )
    m = Matcher.compile(catalog)
    assert m.lookup(fp(md5=md5)) == []
    assert m.known_good(fp(md5=md5)) is True
    assert m.known_good(fp(md5=rand_hex(16))) is False


def test_restrict_to_named_sets(catalog: Catalog) -> None:
    md5 = rand_hex(16)
    for name in ("a", "b"):
        catalog.import_entries(
            name, [Entry({"md5": md5})], ParseReport(format="csv"), source=name, version="1"
        )
    m = Matcher.compile(catalog)
    b_id = next(i for i, n in m.set_names.items() if n == "b")
    only_b = m.view({b_id})
    assert [m.set_names[h.set_id] for h in only_b.lookup(fp(md5=md5))] == ["b"]
    # A view changes nothing for the other holders of the build.
    assert sorted(m.set_names[h.set_id] for h in m.lookup(fp(md5=md5))) == ["a", "b"]
    assert only_b.context_key() != m.context_key()


def test_saved_matcher_is_reused_until_the_catalog_changes(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path)
    md5 = rand_hex(16)
    cat.import_entries(
        "a", [Entry({"md5": md5})], ParseReport(format="csv"), source="a", version="1"
    )
    store = BuildStore(tmp_path / "builds")
    first = store.for_catalog(cat)
    d = tmp_path / "builds" / first.build_id
    stamp = (d / "meta.json").stat().st_mtime_ns
    again = store.for_catalog(cat)
    assert (d / "meta.json").stat().st_mtime_ns == stamp  # not rebuilt
    assert again.build_id == first.build_id
    assert isinstance(again._exact["md5"].values, np.memmap)  # memory-mapped, not read
    assert [h.kind for h in again.lookup(fp(md5=md5))] == ["md5"]
    cat.import_entries(
        "b", [Entry({"sha1": rand_hex(20)})], ParseReport(format="csv"), source="b", version="1"
    )
    third = store.for_catalog(cat)
    assert third.generation == first.generation + 1
    assert sorted(third.set_names.values()) == ["a", "b"]
    # The earlier build is still mapped here (first, again): kept until they are let go.
    assert d.is_dir()
    del first, again
    gc.collect()
    store.collect()
    assert not d.exists() and store.current_id() == third.build_id


def test_brute_force_index_agrees_with_python_popcount() -> None:
    hashes = np.frombuffer(
        bytes(rng.getrandbits(8) for _ in range(32 * 3000)), dtype=np.uint8
    ).reshape(-1, 32)
    index = BruteForcePDQIndex(hashes.copy())
    q = hashes[[5, 17]].copy()
    q[0, 0] ^= 0b111
    got = index.search(q, 64)
    ints = [int.from_bytes(bytes(h), "big") for h in hashes]
    qi = [int.from_bytes(bytes(h), "big") for h in q]
    want = sorted(
        (i, r, (qi[i] ^ ints[r]).bit_count())
        for i in range(2)
        for r in range(len(ints))
        if (qi[i] ^ ints[r]).bit_count() <= 64
    )
    assert sorted(got) == want
    assert (0, 5, 3) in got and (1, 17, 0) in got


@pytest.mark.parametrize("batch", [5, 1000], ids=["numpy-search", "compiled-search"])
def test_batched_exact_lookup_agrees_with_single(catalog: Catalog, batch: int) -> None:
    md5s = [rand_hex(16) for _ in range(50)]
    # Digests that differ only in trailing or leading zero bytes sort and compare bytewise.
    md5s += ["ab" * 15 + "00", "ab" * 15 + "01", "00" * 15 + "ab", "00" * 16]
    catalog.import_entries(
        "a",
        [Entry({"md5": h}, id=str(i)) for i, h in enumerate(md5s)]
        + [Entry({"md5": md5s[0]}, id="dup")],
        ParseReport(format="csv"),
        source="a",
        version="1",
    )
    m = Matcher.compile(catalog)
    head = [md5s[0], rand_hex(16), md5s[7], md5s[49], "ab" * 16, "ab" * 15 + "00", "00" * 16]
    queries = head + [
        rand_hex(16) if i % 3 else md5s[i % len(md5s)] for i in range(batch - len(head))
    ]
    qi, ents, sids = m.exact_many("md5", np.array([bytes.fromhex(q) for q in queries], dtype="S16"))
    got = list(zip(qi.tolist(), ents.tolist(), sids.tolist(), strict=True))
    want = [
        (qi, e, s)
        for qi, q in enumerate(queries)
        for e, s in m._exact["md5"].find(bytes.fromhex(q))
    ]
    assert sorted(got) == sorted(want)
    assert {qi for qi, _, _ in got if qi < len(head)} == {0, 2, 3, 5, 6}
    ids = {
        q: sorted(catalog.entries([e])[e].ext_id for i, e, _ in got if i == q) for q in (0, 5, 6)
    }
    assert ids == {0: ["0", "dup"], 5: ["50"], 6: ["53"]}
    assert len(m.exact_many("md5", np.array([], dtype="S16"))[0]) == 0


@pytest.mark.parametrize("width", [16, 20, 32])
def test_prefix_directory_search_finds_every_listed_digest(width: int) -> None:
    from vigil.matching.matcher import _ExactTable

    rng = np.random.default_rng(width)
    n = 20_000
    rows = rng.integers(0, 256, (n, width), dtype=np.uint8)
    rows[:300, :3] = [0x12, 0x34, 0x56]  # a crowded prefix bucket
    rows[300:310] = rows[310:320]  # duplicated digests (listed by two sets)
    rows[400:410, :3] = 0xFF  # the last bucket
    rows[410:420, :3] = 0  # the first bucket
    values = rows.view(f"S{width}").ravel()
    values = values[np.argsort(values, kind="stable")]
    table = _ExactTable(values, np.arange(n), np.zeros(n, dtype=np.int32))
    assert len(table.directory) > 2  # prefix bits are in use at this size
    unlisted = rng.integers(0, 256, (500, width), dtype=np.uint8)
    unlisted[:100, :3] = [0x12, 0x34, 0x56]  # same prefix as many listed, not listed
    keys = np.concatenate([values[rng.integers(0, n, 1000)], values[:20], values[-20:]])
    keys = np.concatenate([keys, unlisted.view(f"S{width}").ravel()])
    rng.shuffle(keys)
    got = sorted(zip(*(a.tolist() for a in table.find_many(keys)), strict=True))
    lo = np.searchsorted(values, keys, side="left")
    hi = np.searchsorted(values, keys, side="right")
    want = sorted((q, r, 0) for q in range(len(keys)) for r in range(lo[q], hi[q]))
    assert got == want
    assert len({q for q, _, _ in got}) >= 1040  # every listed key
