"""VICS 2.0 and CSV export: the shape police tools expect, and a round trip through the reader."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from vigil.hashsets.entry import Entry
from vigil.hashsets.export import CSV_COLUMNS, write_csv, write_vics
from vigil.hashsets.reader import read_hashlist

MD5 = "2c1743a391305fbf367df8e4f069f9f9"
SHA1 = "be76331b95dfc399cd776d2fc68021e0db03cc4f"
SHA256 = "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"
PDQ = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"
FILES = [{"MD5": MD5.upper(), "FileName": "a.jpg", "FilePath": "D:\\found\\a.jpg"}]

ENTRIES = [
    Entry(
        hashes={"md5": MD5, "sha1": SHA1, "sha256": SHA256, "pdq": PDQ},
        id="12",
        category="1",
        meta={"MediaFiles": FILES, "VictimIdentified": False, "MediaSize": 5},
    ),
    Entry(hashes={"pdq": PDQ}, id="ex-pdq-1", category="A"),
    Entry(hashes={"sha1": SHA1}, id=None, category=None),
]


def read_back(tmp_path: Path, text: str) -> tuple[list[Entry], dict[str, object]]:
    path = tmp_path / "out"
    path.write_text(text, encoding="utf-8")
    entries, report = read_hashlist(path)
    return list(entries), {"format": report.format, "malformed": report.malformed, **report.info}


def test_write_vics_shape() -> None:
    out = io.StringIO()
    assert write_vics(ENTRIES, out) == 3
    doc = json.loads(out.getvalue())
    assert doc["@odata.context"] == (
        "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"
    )
    first, second, third = doc["value"]
    assert first["MediaID"] == 12
    assert first["Category"] == 1
    assert first["MD5"] == MD5.upper()
    assert first["SHA1"] == SHA1.upper()
    assert first["MediaFiles"] == FILES
    assert first["VictimIdentified"] is False
    assert {(a["HashName"], a["HashValue"]) for a in first["AlternativeHashes"]} == {
        ("SHA256", SHA256),
        ("PDQ", PDQ),
    }
    assert second["MediaID"] == 13  # made up: one above the largest seen
    assert second["MediaID@vigil.sourceId"] == "ex-pdq-1"
    assert second["Category"] == "A"
    assert "MD5" not in second
    assert third["MediaID"] == 14
    assert third["Category"] is None


def test_write_vics_uk_and_empty() -> None:
    out = io.StringIO()
    assert write_vics([], out, context="UK") == 0
    doc = json.loads(out.getvalue())
    assert doc["value"] == []
    assert "/2.0.xml/UK/" in doc["@odata.context"]


def test_write_vics_streams_from_a_generator() -> None:
    def generate():
        for i in range(1000):
            yield Entry(hashes={"md5": f"{i:032x}"}, id=str(i))

    out = io.StringIO()
    assert write_vics(generate(), out) == 1000
    assert len(json.loads(out.getvalue())["value"]) == 1000


def test_vics_round_trip(tmp_path: Path) -> None:
    out = io.StringIO()
    write_vics(ENTRIES, out)
    entries, info = read_back(tmp_path, out.getvalue())
    assert info["format"] == "vics"
    assert info["malformed"] == 0
    assert info["version"] == "2.0"
    assert [e.hashes for e in entries] == [e.hashes for e in ENTRIES]
    assert [e.id for e in entries] == ["12", "ex-pdq-1", "14"]  # no id: a made-up one
    assert [e.category for e in entries] == [e.category for e in ENTRIES]
    assert entries[0].meta == ENTRIES[0].meta


@pytest.mark.parametrize("name", ["vics-1.3-media.json", "vics-2.0-cases.json"])
def test_vics_examples_round_trip(tmp_path: Path, shared_dir: Path, name: str) -> None:
    original, _ = read_hashlist(shared_dir / "formats" / name)
    original = list(original)
    out = io.StringIO()
    write_vics(original, out)
    entries, _ = read_back(tmp_path, out.getvalue())
    assert [(e.hashes, e.id, e.category) for e in entries] == [
        (e.hashes, e.id, e.category) for e in original
    ]
    case_keys = {"case_id", "case_number"}  # a flat Media list has no cases
    assert [e.meta for e in entries] == [
        {k: v for k, v in e.meta.items() if k not in case_keys} for e in original
    ]


def test_write_csv_and_round_trip(tmp_path: Path) -> None:
    out = io.StringIO()
    assert write_csv(ENTRIES, out) == 3
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS) == "id,category,md5,sha1,sha256,pdq"
    assert lines[2] == f"ex-pdq-1,A,,,,{PDQ}"
    entries, info = read_back(tmp_path, out.getvalue())
    assert info["format"] == "csv"
    assert info["malformed"] == 0
    assert [(e.hashes, e.id, e.category, e.meta) for e in entries] == [
        (e.hashes, e.id, e.category, {}) for e in ENTRIES
    ]


def test_csv_example_round_trip(tmp_path: Path, shared_dir: Path) -> None:
    original = list(read_hashlist(shared_dir / "formats" / "example-hashes.csv")[0])
    out = io.StringIO()
    write_csv(original, out)
    entries, _ = read_back(tmp_path, out.getvalue())
    assert entries == original
