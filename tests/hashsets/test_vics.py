"""VICS quirks, on small documents written by the tests themselves."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from vigil.errors import HashListError
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.reader import read_hashlist

MD5_A = "2C1743A391305FBF367DF8E4F069F9F9"
SHA1_A = "BE76331B95DFC399CD776D2FC68021E0DB03CC4F"
MD5_B = "FD9AB41E47A9EF4F6477A8A000BF404F"
PDQ = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"
SHA256 = "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"
PHOTODNA = "A" * 192
CTX_20 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{}/$metadata#{}"
CTX_1X = "http://github.com/ICMEC/ProjectVic/DataModels/{}.xml#{}"


def write(tmp_path: Path, doc: Any, name: str = "list.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=1), encoding="utf-8")
    return path


def read(path: Path) -> tuple[list[Entry], ParseReport]:
    entries, report = read_hashlist(path)
    return list(entries), report


def media(media_id: int = 1, **fields: Any) -> dict[str, Any]:
    return {"MediaID": media_id, "Category": 1, "MD5": MD5_A, "SHA1": SHA1_A, **fields}


def test_uk_context_and_letter_categories(tmp_path: Path) -> None:
    doc = {
        "@odata.context": CTX_20.format("UK", "Media"),
        "value": [media(1, Category="A"), media(2, Category="C", MD5=MD5_B, SHA1=None)],
    }
    entries, report = read(write(tmp_path, doc))
    assert report.info["scheme"] == "UK"
    assert report.info["version"] == "2.0"
    assert [e.category for e in entries] == ["A", "C"]
    assert entries[1].hashes == {"md5": MD5_B.lower()}


def test_custom_context(tmp_path: Path) -> None:
    doc = {"@odata.context": CTX_20.format("CUSTOM", "Media"), "value": [media()]}
    _, report = read(write(tmp_path, doc))
    assert report.info["scheme"] == "CUSTOM"


def test_11_media_list_with_navigation_links(tmp_path: Path) -> None:
    record = media(
        7,
        **{
            "odata.id": "Media(7)",
            "MediaFiles@odata.navigationLinkUrl": "Media(7)/MediaFiles",
            "Exifs": [{"MD5": MD5_A, "PropertyName": "Make", "PropertyValue": "X"}],
        },
    )
    doc = {"odata.metadata": CTX_1X.format("1.1", "Media"), "value": [record]}
    entries, report = read(write(tmp_path, doc))
    assert report.info["version"] == "1.1"
    assert report.info["payload"] == "Media"
    assert "scheme" not in report.info
    assert entries[0].id == "7"
    assert entries[0].hashes == {"md5": MD5_A.lower(), "sha1": SHA1_A.lower()}
    assert entries[0].meta == {}  # odata annotations and Exifs are not kept


def test_uppercase_hashes_and_string_booleans(tmp_path: Path) -> None:
    record = media(
        3,
        VictimIdentified="TRUE",
        OffenderIdentified="false",
        IsDistributed="true",
        SelfGenerated="False",
        MimeType="image/jpeg",
        MediaSize=12345,
        Tags="tag1",
        MediaFiles=[{"FileName": "a.jpg", "FilePath": "C:\\a", "Deleted": "true"}],
    )
    doc = {"@odata.context": CTX_20.format("US", "Media"), "value": [record]}
    (entry,), _ = read(write(tmp_path, doc))
    assert entry.hashes == {"md5": MD5_A.lower(), "sha1": SHA1_A.lower()}
    assert entry.meta["VictimIdentified"] is True
    assert entry.meta["OffenderIdentified"] is False
    assert entry.meta["IsDistributed"] is True
    assert entry.meta["SelfGenerated"] is False
    assert entry.meta["MimeType"] == "image/jpeg"
    assert entry.meta["MediaSize"] == 12345
    assert entry.meta["Tags"] == "tag1"
    assert entry.meta["MediaFiles"] == [{"FileName": "a.jpg", "FilePath": "C:\\a", "Deleted": True}]


def test_alternative_hashes_pdq_sha256_photodna(tmp_path: Path) -> None:
    record = media(
        4,
        AlternativeHashes=[
            {"MD5": MD5_A, "HashName": "PDQ", "HashValue": PDQ.upper()},
            {"MD5": MD5_A, "HashName": "SHA-256", "HashValue": SHA256},
            {"MD5": MD5_A, "HashName": "PhotoDNA", "HashValue": PHOTODNA},
            {"MD5": MD5_A, "HashName": "SomethingNew", "HashValue": "xyz"},
        ],
        PhotoDNA=PHOTODNA,
    )
    doc = {"odata.metadata": CTX_1X.format("1.3", "Media"), "value": [record]}
    (entry,), report = read(write(tmp_path, doc))
    assert report.malformed == 0
    assert entry.hashes == {
        "md5": MD5_A.lower(),
        "sha1": SHA1_A.lower(),
        "pdq": PDQ,
        "sha256": SHA256,
    }
    assert entry.meta["alternative_hashes"] == [
        {"HashName": "PhotoDNA", "HashValue": PHOTODNA},
        {"HashName": "SomethingNew", "HashValue": "xyz"},
    ]
    assert entry.meta["PhotoDNA"] == PHOTODNA


def test_only_alternative_hash_is_enough(tmp_path: Path) -> None:
    record = {
        "MediaID": 5,
        "Category": None,
        "AlternativeHashes": [{"HashName": "PDQ", "HashValue": PDQ}],
    }
    doc = {"@odata.context": CTX_20.format("US", "Media"), "value": [record]}
    (entry,), _ = read(write(tmp_path, doc))
    assert entry.hashes == {"pdq": PDQ}
    assert entry.category is None


def test_truncated_file_raises(tmp_path: Path) -> None:
    doc = {"@odata.context": CTX_20.format("US", "Media"), "value": [media(i) for i in range(50)]}
    text = json.dumps(doc)
    path = write(tmp_path, text[: len(text) * 2 // 3])
    entries, _ = read_hashlist(path)
    with pytest.raises(HashListError, match="truncated"):
        list(entries)


def test_broken_records_are_counted_and_skipped(tmp_path: Path) -> None:
    doc = {
        "@odata.context": CTX_20.format("US", "Media"),
        "value": [
            media(1),
            media(2, MD5="XYZ", SHA1=None),  # not hex, nothing else: skipped
            media(3, MD5=MD5_A[:-1]),  # wrong length, SHA1 still good: kept
            {"MediaID": 4, "Category": 1},  # no hash at all: skipped
            "not an object",
            media(6),
        ],
    }
    entries, report = read(write(tmp_path, doc))
    assert [e.id for e in entries] == ["1", "3", "6"]
    assert entries[1].hashes == {"sha1": SHA1_A.lower()}
    assert report.malformed == 4
    assert [p.record for p in report.problems] == [2, 3, 4, 5]
    assert all(p.line is None for p in report.problems)
    assert "MediaID 2" in report.problems[0].message
    assert "not hexadecimal" in report.problems[0].message
    assert "31 hex characters" in report.problems[1].message
    assert "record 2" in str(report.problems[0])


def test_odata_context_after_value(tmp_path: Path) -> None:
    text = (
        '{"value": ['
        + json.dumps(media(9))
        + '], "@odata.context": "'
        + CTX_20.format("UK", "Media")
        + '"}'
    )
    entries, report = read(write(tmp_path, text))
    assert [e.id for e in entries] == ["9"]
    assert report.info["scheme"] == "UK"


def test_cases_with_keys_in_any_order(tmp_path: Path) -> None:
    doc = {
        "value": [
            {"CaseNumber": "C-1", "Media": [media(1), media(2)], "CaseID": "late-id"},
            {"CaseID": "g-2", "CaseNumber": "C-2", "Media": [media(3)], "TotalMediaFiles": 99},
        ],
        "@odata.context": CTX_20.format("US", "Cases"),
    }
    entries, report = read(write(tmp_path, doc))
    assert [e.id for e in entries] == ["1", "2", "3"]
    # A case's fields that come after its Media list cannot reach the Media already streamed.
    assert entries[0].meta["case_number"] == "C-1"
    assert "case_id" not in entries[0].meta
    assert entries[2].meta["case_id"] == "g-2"
    assert [c["CaseID"] for c in report.info["cases"]] == ["late-id", "g-2"]
    assert report.info["payload"] == "Cases"


def test_bare_list_of_media(tmp_path: Path) -> None:
    entries, _ = read(write(tmp_path, [media(1), media(2, MD5=MD5_B)]))
    assert [e.id for e in entries] == ["1", "2"]


def test_string_media_id_and_float_category(tmp_path: Path) -> None:
    text = (
        '{"@odata.context": "' + CTX_20.format("US", "Media") + '", "value": '
        '[{"MediaID": "abc-1", "Category": 2.0, "MD5": "' + MD5_A + '"}]}'
    )
    (entry,), _ = read(write(tmp_path, text))
    assert entry.id == "abc-1"
    assert entry.category == "2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"odata.metadata": "x", "value": [}', "invalid"),
        ('{"odata.metadata": "x"}', "no.*value|without a VICS 'value'"),
        ('{"value": []} trailing', "invalid"),
    ],
)
def test_unparseable_json(tmp_path: Path, text: str, message: str) -> None:
    entries, _ = read_hashlist(write(tmp_path, text), "vics")
    with pytest.raises(HashListError, match=message):
        list(entries)


def test_memory_stays_bounded(tmp_path: Path) -> None:
    # 20,000 Media (~8 MB of JSON) must parse within a small, constant amount of memory.
    path = tmp_path / "big.json"
    with path.open("w") as out:
        out.write('{"@odata.context": "' + CTX_20.format("US", "Media") + '", "value": [')
        for i in range(20_000):
            out.write(("," if i else "") + json.dumps(media(i, Comments="x" * 200)))
        out.write("]}")
    tracemalloc.start()
    try:
        entries, report = read_hashlist(path)
        count = sum(1 for _ in entries)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert report.malformed == 0
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"


def test_invalid_utf8_is_reported_readably(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(
        b'{"value": [{"MediaID": 1, "MD5": "' + MD5_A.encode() + b'", "Comments": "\xff"}]}'
    )
    entries, _ = read_hashlist(path, "vics")
    with pytest.raises(HashListError) as caught:
        list(entries)
    message = str(caught.value)
    assert "invalid bytes in UTF8" in message
    assert "\n" not in message and "b'" not in message
