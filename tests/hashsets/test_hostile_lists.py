"""Hostile hash lists found by fuzzing (tests/fuzz): each ends in entries or HashListError."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import random
import tracemalloc
from pathlib import Path

import pytest

from vigil.errors import HashListError
from vigil.hashsets.formats import vics
from vigil.hashsets.reader import read_hashlist

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MEDIA_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media"


def read(tmp_path: Path, content: bytes, fmt: str = "auto") -> tuple[list, object]:
    path = tmp_path / "list.txt"
    path.write_bytes(content)
    entries, report = read_hashlist(path, fmt)
    return list(entries), report


@pytest.mark.parametrize("fmt", ["auto", "csv", "vpdq-csv", "nsrl", "hashkeeper"])
def test_csv_header_cell_over_the_csv_field_limit(tmp_path: Path, fmt: str) -> None:
    # csv.Error ("field larger than field limit") escaped from the header row.
    with pytest.raises(HashListError):
        read(tmp_path, b"md5,video_id,pdq," + b"a" * 200_000 + b"\n", fmt)


def test_vpdq_csv_row_over_the_csv_field_limit_is_a_malformed_row(tmp_path: Path) -> None:
    content = f"video_id,pdq\nv,{'a' * 140_000}\nv,{PDQ}\n".encode()
    entries, report = read(tmp_path, content, "vpdq-csv")
    assert [len(e.vpdq) for e in entries] == [1]
    assert report.malformed == 1


@pytest.mark.parametrize("encoding", ["x-unknown", "UTF-7", "shift_jis"])
def test_ncmec_xml_in_an_encoding_that_cannot_be_read(tmp_path: Path, encoding: str) -> None:
    # LookupError (unknown to Python) and ValueError (a multi-byte encoding expat refuses)
    # escaped from the XML declaration.
    content = (
        f'<?xml version="1.0" encoding="{encoding}"?><queryResult><images/></queryResult>'
    ).encode()
    with pytest.raises(HashListError, match="encoding that cannot be read"):
        read(tmp_path, content, "ncmec")


def test_vpdq_line_with_more_digits_than_int_converts(tmp_path: Path) -> None:
    # ValueError (int's 4300-digit limit) escaped from a line the pattern accepts.
    content = f"{'9' * 5000},100,{PDQ},0.000\n0,100,{PDQ},0.000\n".encode()
    entries, report = read(tmp_path, content, "vpdq")
    assert [f.index for f in entries[0].vpdq] == [0]
    assert report.malformed == 1


def test_vics_vpdq_frame_object_with_quality_over_100_is_malformed(tmp_path: Path) -> None:
    # The frame was kept with quality 1000 (text frames were checked, objects were not).
    frame = {"frame": 1, "quality": 1000, "pdq": PDQ}
    alternative = {"HashName": "vPDQ", "HashValue": [frame]}
    media = {"MediaID": 1, "MD5": "a" * 32, "AlternativeHashes": [alternative]}
    entries, report = read(tmp_path, json.dumps({"value": [media]}).encode(), "vics")
    assert entries[0].vpdq == [] and entries[0].hashes == {"md5": "a" * 32}
    assert report.malformed == 1


@pytest.mark.parametrize(
    "document",
    [
        # ijson's path tracking took memory quadratic in the depth: tens of GB for this one.
        '{"@odata.context": "%s", "value": [{"MD5": %s1%s}]}',
        # repr() of the value in the error message overflowed the stack (RecursionError).
        '{"value": [{"MD5": %s1%s}]}',
        '{"@odata.context": "%s", "value": [{"MD5": %s1',
    ],
)
def test_vics_nested_deeper_than_any_record_is_refused_cheaply(
    tmp_path: Path, document: str
) -> None:
    depth = 100_000
    text = document.replace("%s", MEDIA_CONTEXT, 1) if "@odata" in document else document
    text = text.replace("%s", "[" * depth, 1).replace("%s", "]" * depth, 1)
    tracemalloc.start()
    try:
        with pytest.raises(HashListError, match="nested deeper"):
            read(tmp_path, text.encode(), "vics")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_vics_nesting_counts_brackets_outside_strings_only(tmp_path: Path) -> None:
    comment = '[{"\\' * 50  # brackets, quotes and backslashes inside a string
    tags: list = []
    for _ in range(vics.MAX_DEPTH - 4):  # 3 levels above, the innermost [] one more: 64
        tags = [tags]
    media = {"MediaID": 1, "MD5": "b" * 32, "Comments": comment, "Tags": tags}
    document = {"@odata.context": MEDIA_CONTEXT, "value": [media]}
    entries, _ = read(tmp_path, json.dumps(document).encode(), "vics")
    assert entries[0].meta["Comments"] == comment


@pytest.mark.parametrize("compress", [bz2.compress, gzip.compress, lzma.compress])
def test_compressed_list_damaged_after_the_detected_head(tmp_path: Path, compress) -> None:
    # bz2 raised a plain OSError ("Invalid data stream") once past the 64 KiB detection read.
    rnd = random.Random(5)
    lines = "".join(f"{rnd.getrandbits(128):032x}  file{i}\n" for i in range(40_000)).encode()
    data = bytearray(compress(lines))
    data[len(data) * 3 // 4] ^= 0xFF
    path = tmp_path / "list.txt"
    path.write_bytes(bytes(data))
    entries, _ = read_hashlist(path)
    with pytest.raises(HashListError):
        list(entries)


@pytest.mark.parametrize("context", ["", f'"@odata.context": "{MEDIA_CONTEXT}", '])
@pytest.mark.parametrize("where", ["MD5", "@odata.context"])
def test_vics_string_that_is_not_utf8(tmp_path: Path, context: str, where: str) -> None:
    # ijson's C backend raised UnicodeDecodeError (an encoded surrogate, invalid in UTF-8).
    bad = b'"\xed\xa0\x80"'
    if where == "MD5":
        content = b"{" + context.encode() + b'"value": [{"MediaID": 1, "MD5": ' + bad + b"}]}"
    else:
        content = b'{"@odata.context": ' + bad + b', "value": []}'
    with pytest.raises(HashListError, match="not UTF-8"):
        read(tmp_path, content, "vics")
