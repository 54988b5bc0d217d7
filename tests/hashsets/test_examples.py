"""Every example list in ../shared/formats parses, detected from content, to its entries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.reader import FORMATS, read_hashlist

# The examples hash the words alpha, bravo, charlie, delta.
MD5 = {
    "alpha": "2c1743a391305fbf367df8e4f069f9f9",
    "bravo": "fd9ab41e47a9ef4f6477a8a000bf404f",
    "charlie": "bf779e0933a882808585d19455cd7937",
    "delta": "63bcabf86a9a991864777c631c5b7617",
}
SHA1 = {
    "alpha": "be76331b95dfc399cd776d2fc68021e0db03cc4f",
    "bravo": "962665711e0e6ff33104712f82068162cdb1f9c0",
    "charlie": "d8cd10b920dcbdb5163ca0185e402357bc27c265",
    "delta": "736fcab46d3c183000b547caa2f1f0abcdcd1c87",
}
SHA256 = {
    "alpha": "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8",
    "bravo": "f144a6907dc4284d1f9fe6a7d9b9ff53c02c1d07ba68f24d413d7ff7f757a782",
    "charlie": "b9dd960c1753459a78115d3cb845a57d924b6877e805b08bd01086ccdf34433c",
    "delta": "4f4a9410ffcdf895c4adb880659e9b5c0dd1f23a30790684340b3eaacb045398",
}
PDQ_1 = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"
PDQ_2 = "b0a10efd71cc3f429413d48d0ffffe12e34e0e17ada952a9d29684210aa9e5af"
WORDS = ("alpha", "bravo", "charlie", "delta")


def read(path: Path, format: str = "auto") -> tuple[list[Entry], ParseReport]:
    entries, report = read_hashlist(path, format)
    return list(entries), report


@pytest.fixture(scope="module")
def formats_dir(shared_dir: Path) -> Path:
    return shared_dir / "formats"


def test_formats_tuple_is_the_public_one() -> None:
    assert FORMATS == (
        "vics",
        "ncmec",
        "csv",
        "md5sum",
        "sha1sum",
        "sha256sum",
        "pdq",
        "nsrl",
        "hashkeeper",
        "vpdq",
        "vpdq-csv",
    )


def test_vics_13_media(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "vics-1.3-media.json")
    assert report.format == "vics"
    assert report.malformed == 0
    assert report.info["version"] == "1.3"
    assert report.info["payload"] == "Media"
    assert report.info["odata_context"].endswith("1.3.xml#Media")
    assert [e.id for e in entries] == ["1", "2", "3"]
    assert [e.category for e in entries] == ["1", "2", None]
    for entry, word in zip(entries, ("alpha", "bravo", "charlie"), strict=True):
        assert entry.hashes == {"md5": MD5[word], "sha1": SHA1[word]}
        assert entry.meta["IsPrecategorized"] is True
        assert entry.meta["VictimIdentified"] is False
        assert entry.meta["IsDistributed"] is True
        assert entry.meta["MediaFiles"][0]["FileName"] == f"{word}.jpg"
        assert word in entry.meta["Comments"]
        assert not any(key.startswith("odata") for key in entry.meta)
    assert entries[0].meta["MediaSize"] == 5
    assert entries[1].meta["Series"] == "ExampleSeries"
    assert "Series" not in entries[0].meta  # empty strings are dropped


def test_vics_20_cases(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "vics-2.0-cases.json")
    assert report.format == "vics"
    assert report.info["version"] == "2.0"
    assert report.info["scheme"] == "US"
    assert report.info["payload"] == "Cases"
    assert report.info["source_application"] == "example 1.0"
    assert report.info["cases"][0]["CaseNumber"] == "EXAMPLE-1"
    assert [(e.id, e.category) for e in entries] == [("10", "1"), ("11", "3")]
    for entry, word in zip(entries, ("charlie", "delta"), strict=True):
        assert entry.hashes == {"md5": MD5[word], "sha1": SHA1[word], "sha256": SHA256[word]}
        assert entry.meta["case_id"] == "3f2b8f0e-0000-4000-8000-000000000001"
        assert entry.meta["case_number"] == "EXAMPLE-1"
        assert entry.meta["VictimIdentified"] is True
        assert entry.meta["DateUpdated"] == "2026-01-01T00:00:00Z"
        assert "alternative_hashes" not in entry.meta  # SHA256 became a matchable hash


def test_ncmec(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "ncmec-entries-example.xml")
    assert report.format == "ncmec"
    assert report.deleted_ids == ["image0"]
    assert report.info["maxTimestamp"] == "2026-01-01T00:00:00Z"
    assert [(e.id, e.category) for e in entries] == [("image1", "A1"), ("image2", "A1")]
    assert entries[0].hashes == {"md5": MD5["alpha"], "sha1": SHA1["alpha"]}
    assert entries[1].hashes == {"md5": MD5["bravo"], "sha1": SHA1["bravo"]}
    assert entries[0].meta["member"] == "Example Member"
    assert entries[0].meta["member_id"] == "42"
    assert entries[0].meta["timestamp"] == "2026-01-01T00:00:01Z"


def test_csv(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "example-hashes.csv")
    assert report.format == "csv"
    assert report.malformed == 0
    assert [(e.id, e.category) for e in entries] == [
        ("ex-0", "1"),
        ("ex-1", "2"),
        ("ex-2", "3"),
        ("ex-3", "1"),
        ("ex-pdq-1", "1"),
    ]
    for entry, word in zip(entries, WORDS, strict=False):
        assert entry.hashes == {"md5": MD5[word], "sha1": SHA1[word], "sha256": SHA256[word]}
    assert entries[4].hashes == {"pdq": PDQ_1}


def test_md5sum(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "example.md5sum.txt")
    assert report.format == "md5sum"
    assert [e.hashes for e in entries] == [{"md5": MD5[w]} for w in WORDS]
    assert [e.meta["file_name"] for e in entries] == [f"{w}.jpg" for w in WORDS]


def test_sha1sum(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "example.sha1sum.txt")
    assert report.format == "sha1sum"
    assert [e.hashes for e in entries] == [{"sha1": SHA1[w]} for w in WORDS]
    assert [e.meta["file_name"] for e in entries] == [f"{w}.jpg" for w in WORDS]


def test_pdq(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "example.pdq.txt")
    assert report.format == "pdq"
    assert [e.hashes for e in entries] == [{"pdq": PDQ_1}, {"pdq": PDQ_2}]


def test_nsrl_is_known_good(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "NSRLFile-example.txt")
    assert report.format == "nsrl"
    assert report.known_good is True
    assert [e.hashes for e in entries] == [{"sha1": SHA1[w], "md5": MD5[w]} for w in WORDS]
    assert [e.meta["FileName"] for e in entries] == [f"{w}.dll" for w in WORDS]
    assert entries[2].meta["FileSize"] == "7"
    assert all(e.id is None for e in entries)


def test_hashkeeper(formats_dir: Path) -> None:
    entries, report = read(formats_dir / "example.hsh")
    assert report.format == "hashkeeper"
    assert report.known_good is False
    assert [e.hashes for e in entries] == [{"md5": MD5[w]} for w in WORDS]
    assert [e.id for e in entries] == ["1", "2", "3", "4"]
    assert [e.meta["file_name"] for e in entries] == [f"{w}.jpg" for w in WORDS]
    assert entries[0].meta["directory"].startswith("C:")


@pytest.mark.parametrize(
    ("name", "format"),
    [
        ("vics-1.3-media.json", "vics"),
        ("vics-2.0-cases.json", "vics"),
        ("ncmec-entries-example.xml", "ncmec"),
        ("example-hashes.csv", "csv"),
        ("example.md5sum.txt", "md5sum"),
        ("example.sha1sum.txt", "sha1sum"),
        ("example.pdq.txt", "pdq"),
        ("NSRLFile-example.txt", "nsrl"),
        ("example.hsh", "hashkeeper"),
    ],
)
def test_detected_from_content_not_name(
    formats_dir: Path, tmp_path: Path, name: str, format: str
) -> None:
    copy = tmp_path / "list.dat"
    shutil.copy(formats_dir / name, copy)
    explicit, _ = read(copy, format)
    detected, report = read(copy)
    assert report.format == format
    assert detected == explicit
    assert detected
