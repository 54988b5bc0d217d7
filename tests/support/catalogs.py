"""Catalogs for the bundle and change-record tests: synthetic entries of every kind, imported
as a set, read back as comparable data."""

from __future__ import annotations

import random

from vigil.catalog.store import Catalog
from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.hashsets.entry import Entry, ParseReport
from vigil.updates import bundle as B

FORMATS = [
    "NSRLFile-example.txt",
    "example-hashes.csv",
    "example.hsh",
    "example.md5sum.txt",
    "example.pdq.txt",
    "example.sha1sum.txt",
    "ncmec-entries-example.xml",
    "vics-1.3-media.json",
    "vics-2.0-cases.json",
]


def synthetic(n: int, seed: int, videos: int = 3) -> list[Entry]:
    """Entries with every kind of hash, categories, metadata, and vPDQ videos."""
    rnd = random.Random(seed)

    def hx(nbytes: int) -> str:
        return rnd.randbytes(nbytes).hex()

    out = [
        Entry(
            {"md5": hx(16), "sha1": hx(20), "sha256": hx(32), "pdq": hx(32)},
            id=f"e{seed}-{i}",
            category=rnd.choice(["1", "2", None]),
            meta={"note": f"n{i}", "z": [1, 2.5], "a": {"b": True}},
        )
        for i in range(n)
    ]
    for v in range(videos):
        vr = random.Random(f"{seed}-{v}")  # the same videos whatever `n` is
        frames = [VPDQFrame(f, f * 0.5, 100, vr.randbytes(32).hex()) for f in range(5)]
        out.append(Entry({}, id=f"video{seed}-{v}", category="1", vpdq=frames))
    return out


def put(catalog: Catalog, name: str, entries: list[Entry]) -> None:
    catalog.import_entries(name, entries, ParseReport(format="vics"), source="test", version="1")


def content(catalog: Catalog) -> dict[str, B.SetContent]:
    with catalog.snapshot() as snap:
        return B.read_catalog(snap.conn)


def normalised(catalog: Catalog) -> dict[str, tuple[dict[str, object], list[bytes]]]:
    """The catalog as comparable data (entries as a sorted multiset)."""
    return {n: (c.info, sorted(c.entries)) for n, c in content(catalog).items()}
