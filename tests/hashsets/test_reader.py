"""Detection, malformed records, unparseable files, compression and encodings."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from vigil.errors import AmbiguousFormatError, HashListError
from vigil.hashsets.entry import Entry, ParseReport
from vigil.hashsets.reader import read_hashlist

MD5_A = "2c1743a391305fbf367df8e4f069f9f9"
MD5_B = "fd9ab41e47a9ef4f6477a8a000bf404f"
SHA1_A = "be76331b95dfc399cd776d2fc68021e0db03cc4f"
SHA256_A = "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"
PDQ = "f8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"


def write(tmp_path: Path, content: str | bytes, name: str = "list") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def read(path: Path, format: str = "auto") -> tuple[list[Entry], ParseReport]:
    entries, report = read_hashlist(path, format)
    return list(entries), report


# -- detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "format"),
    [
        (f"{MD5_A}\n{MD5_B}\n", "md5sum"),
        (f"{MD5_A.upper()}\n", "md5sum"),
        (f"MD5\n{MD5_A}\n", "md5sum"),
        (f"{SHA1_A}\n", "sha1sum"),
        (f"SHA-1\n{SHA1_A}\n", "sha1sum"),
        (f"{MD5_A}  a.jpg\n{SHA1_A}  b.jpg\n", "md5sum"),
        (f"{SHA256_A}  a.jpg\n", "sha256sum"),
        (f"SHA256 (a.jpg) = {SHA256_A}\n", "sha256sum"),
        (f"MD5 (a.jpg) = {MD5_A}\n", "md5sum"),
        (f"SHA-256\n{SHA256_A}\n", "sha256sum"),
        (f"PDQ\n{PDQ}\n", "pdq"),
        (f"pdq {PDQ}\n", "pdq"),
        (f"md5;category\n{MD5_A};1\n", "csv"),
        (f"MD5\tSHA-1\n{MD5_A}\t{SHA1_A}\n", "csv"),
        ('{"value": [{"MD5": "' + MD5_A + '"}]}', "vics"),
        ("<queryResult><images><image><id>1</id></image></images></queryResult>", "ncmec"),
    ],
)
def test_detection(tmp_path: Path, content: str, format: str) -> None:
    _, report = read_hashlist(write(tmp_path, content))
    assert report.format == format


def test_plain_64_hex_list_is_ambiguous(tmp_path: Path) -> None:
    path = write(tmp_path, f"{SHA256_A}\n{PDQ}\n")
    with pytest.raises(AmbiguousFormatError) as caught:
        read_hashlist(path)
    message = str(caught.value)
    assert str(path) in message
    assert "64 hex characters could be SHA-256 or PDQ" in message
    assert "--format sha256sum or --format pdq" in message


def test_md5_list_with_64_hex_lines_is_ambiguous(tmp_path: Path) -> None:
    with pytest.raises(AmbiguousFormatError):
        read_hashlist(write(tmp_path, f"{MD5_A}\n{SHA256_A}\n"))


def test_ambiguous_list_reads_once_named(tmp_path: Path) -> None:
    path = write(tmp_path, f"{SHA256_A}\n{PDQ}\n")
    as_sha, report = read(path, "sha256sum")
    assert report.format == "sha256sum"
    assert [e.hashes for e in as_sha] == [{"sha256": SHA256_A}, {"sha256": PDQ}]
    as_pdq, report = read(path, "pdq")
    assert report.format == "pdq"
    assert [e.hashes for e in as_pdq] == [{"pdq": SHA256_A}, {"pdq": PDQ}]


def test_bare_64_hex_in_pdq_list_needs_explicit_format(tmp_path: Path) -> None:
    entries, report = read(write(tmp_path, f"pdq {PDQ}\n{SHA256_A}\n"))
    assert [e.hashes for e in entries] == [{"pdq": PDQ}]
    assert report.malformed == 1
    assert report.problems[0].line == 2
    assert "--format pdq" in report.problems[0].message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \r\n", "empty"),
        (bytes(range(256)) * 4, "binary"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00\x01" * 100, "binary"),
        (b"SQLite format 3\x00" + b"\x00" * 100, "SQLite"),
        (b"PK\x03\x04" + b"\x00" * 100, "ZIP"),
        (b"hello world\nthis is prose\n", "not a recognised hash list"),
        (b"name,size,date\na.jpg,1,2020\n", "no hash column"),
        (b'{"foo": 1}', "not a VICS"),
        (b"<html><body>hi</body></html>", "not an NCMEC"),
        (b"0123456789abcdef\n", "not MD5"),
        (b"# only a comment\n", "only comments"),
    ],
)
def test_not_a_hash_list_raises(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(HashListError, match=message):
        read_hashlist(write(tmp_path, content))


def test_unknown_format_name(tmp_path: Path) -> None:
    with pytest.raises(HashListError, match="unknown hash-list format 'foo'"):
        read_hashlist(write(tmp_path, f"{MD5_A}\n"), "foo")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HashListError, match="cannot read"):
        read_hashlist(tmp_path / "nope")


def test_empty_file_raises_even_with_format(tmp_path: Path) -> None:
    with pytest.raises(HashListError, match="empty"):
        read_hashlist(write(tmp_path, b""), "md5sum")


def test_iteration_is_lazy(tmp_path: Path) -> None:
    path = write(tmp_path, f"{MD5_A}\nbad line\n")
    entries, report = read_hashlist(path)
    assert report.format == "md5sum"
    assert report.malformed == 0  # nothing read yet
    assert [e.hashes for e in entries] == [{"md5": MD5_A}]
    assert report.malformed == 1


# -- malformed records -------------------------------------------------------------------------


def test_sums_malformed_lines_have_line_numbers(tmp_path: Path) -> None:
    content = (
        f"{MD5_A}  a.jpg\n"  # 1
        "\n"  # 2 blank: not a record
        f"{MD5_A[:-1]}  short.jpg\n"  # 3 31 hex
        f"{MD5_B}  b.jpg\n"  # 4
        "zzzz  not-hex.jpg\n"  # 5
        "# a comment\n"  # 6
        f"{SHA256_A}  c.jpg\n"  # 7 64 hex in an md5sum list
        f"{SHA1_A} *d.jpg\n"  # 8 SHA-1 by length
    )
    entries, report = read(write(tmp_path, content), "md5sum")
    assert [e.hashes for e in entries] == [{"md5": MD5_A}, {"md5": MD5_B}, {"sha1": SHA1_A}]
    assert [e.meta["file_name"] for e in entries] == ["a.jpg", "b.jpg", "d.jpg"]
    assert [p.line for p in report.problems] == [3, 5, 7]
    assert report.malformed == 3
    assert "31 hex characters" in report.problems[0].message
    assert "SHA-256 or PDQ" in report.problems[2].message


def test_named_64_hex_lines_are_sha256sum_output(tmp_path: Path) -> None:
    entries, report = read(write(tmp_path, f"{MD5_A}  a.jpg\n{SHA256_A}  c.jpg\n"))
    assert report.format == "sha256sum"
    assert [e.hashes for e in entries] == [{"md5": MD5_A}, {"sha256": SHA256_A}]


def test_declared_type_line_fixes_the_kind(tmp_path: Path) -> None:
    entries, report = read(write(tmp_path, f"MD5\n{MD5_A}\n{SHA1_A}\n"))
    assert [e.hashes for e in entries] == [{"md5": MD5_A}]
    assert [p.line for p in report.problems] == [3]


def test_md5sum_escaped_names(tmp_path: Path) -> None:
    (entry,), _ = read(write(tmp_path, f"\\{MD5_A}  a\\nb\\\\c.jpg\n"), "md5sum")
    assert entry.meta["file_name"] == "a\nb\\c.jpg"


def test_csv_malformed_rows(tmp_path: Path) -> None:
    content = (
        "ID;Category;MD5;SHA-256;Note\n"  # 1
        f"a;1;{MD5_A};{SHA256_A};first\n"  # 2
        f"b;1;{MD5_A}\n"  # 3 wrong column count
        "c;2;nothex;;\n"  # 4 bad hash, nothing else
        f"d;2;{MD5_B};abc;\n"  # 5 bad sha256, md5 kept
        "\n"  # 6 blank
        "e;2;;;no hash\n"  # 7 no hash
        f"f;A;{MD5_B.upper()};;\n"  # 8
    )
    entries, report = read(write(tmp_path, content))
    assert report.format == "csv"
    assert [(e.id, e.category) for e in entries] == [("a", "1"), ("d", "2"), ("f", "A")]
    assert entries[0].hashes == {"md5": MD5_A, "sha256": SHA256_A}
    assert entries[0].meta == {"Note": "first"}
    assert entries[1].hashes == {"md5": MD5_B}
    assert entries[2].hashes == {"md5": MD5_B}
    assert [p.line for p in report.problems] == [3, 4, 5, 7]
    assert "3 columns, expected 5" in report.problems[0].message


def test_csv_header_without_hash_column_named_explicitly(tmp_path: Path) -> None:
    entries, _ = read_hashlist(write(tmp_path, "name,size\na,1\n"), "csv")
    with pytest.raises(HashListError, match="no hash column"):
        list(entries)


def test_csv_tab_delimited_with_quotes(tmp_path: Path) -> None:
    content = f'"md5"\t"file name"\n"{MD5_A}"\t"a, b.jpg"\n'
    (entry,), report = read(write(tmp_path, content))
    assert report.format == "csv"
    assert entry.meta == {"file name": "a, b.jpg"}


def test_pdq_lines(tmp_path: Path) -> None:
    content = f"pdq {PDQ}\nPDQ {PDQ.upper()} label1 label2\npdq abc\nmd5 {MD5_A}\n"
    entries, report = read(write(tmp_path, content))
    assert [e.hashes for e in entries] == [{"pdq": PDQ}, {"pdq": PDQ}]
    assert entries[1].meta == {"labels": "label1 label2"}
    assert [p.line for p in report.problems] == [3, 4]


def test_nsrl_malformed_row(tmp_path: Path, shared_dir: Path) -> None:
    original = (shared_dir / "formats" / "NSRLFile-example.txt").read_bytes()
    broken = original + b'"NOTHEX","2C1743A391305FBF367DF8E4F069F9F9","0","x",1,1,"1",""\r\n'
    broken += b'"BE76331B95DFC399CD776D2FC68021E0DB03CC4F"\r\n'
    entries, report = read(write(tmp_path, broken))
    assert report.known_good is True
    assert len(entries) == 5  # the row with a bad SHA-1 keeps its MD5
    assert entries[4].hashes == {"md5": MD5_A}
    assert [p.line for p in report.problems] == [6, 7]


# -- NCMEC -------------------------------------------------------------------------------------

NCMEC = """<?xml version="1.0" encoding="UTF-8"?>
<ns:queryResult xmlns:ns="https://hashsharing.ncmec.org/HashSharing/v2">
  <ns:images count="2" maxTimestamp="2026-01-01T00:00:00Z">
    <ns:image><ns:id>i1</ns:id><ns:classification>B2</ns:classification>
      <ns:fingerprints><ns:md5>{md5}</ns:md5><ns:pdq>{pdq}</ns:pdq><ns:pdna>1,2,3</ns:pdna>
      </ns:fingerprints></ns:image>
    <ns:image><ns:id>i2</ns:id><ns:fingerprints><ns:md5>bad</ns:md5></ns:fingerprints></ns:image>
  </ns:images>
  <ns:videos count="1" maxTimestamp="2026-02-01T00:00:00Z">
    <ns:video><ns:id>v1</ns:id><ns:fingerprints><ns:sha1>{sha1}</ns:sha1></ns:fingerprints>
    </ns:video>
  </ns:videos>
  <ns:deletedVideos><ns:deletedVideo><ns:id>v0</ns:id></ns:deletedVideo></ns:deletedVideos>
</ns:queryResult>
"""


def test_ncmec_namespaces_videos_pdq_and_deletions(tmp_path: Path) -> None:
    content = NCMEC.format(md5=MD5_A.upper(), pdq=PDQ, sha1=SHA1_A)
    entries, report = read(write(tmp_path, content))
    assert report.format == "ncmec"
    assert [(e.id, e.category) for e in entries] == [("i1", "B2"), ("v1", None)]
    assert entries[0].hashes == {"md5": MD5_A, "pdq": PDQ}
    assert entries[0].meta["pdna"] == "1,2,3"
    assert entries[1].meta["media"] == "video"
    assert report.deleted_ids == ["v0"]
    assert report.info["maxTimestamp"] == "2026-02-01T00:00:00Z"
    assert report.malformed == 1
    assert report.problems[0].record == 2
    assert "i2" in report.problems[0].message


def test_ncmec_invalid_xml_raises_during_iteration(tmp_path: Path) -> None:
    content = NCMEC.format(md5=MD5_A, pdq=PDQ, sha1=SHA1_A)
    entries, _ = read_hashlist(write(tmp_path, content[: len(content) // 2]))
    with pytest.raises(HashListError, match="invalid or truncated NCMEC XML"):
        list(entries)


# -- compression and encodings -----------------------------------------------------------------


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_input(tmp_path: Path, shared_dir: Path, compress: object) -> None:
    original = shared_dir / "formats" / "vics-2.0-cases.json"
    path = write(tmp_path, compress(original.read_bytes()), "list.bin")  # type: ignore[operator]
    entries, report = read(path)
    plain, _ = read(original)
    assert report.format == "vics"
    assert entries == plain


def test_gzip_text_list(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(f"{MD5_A}  a\r\n{MD5_B}  b\r\n".encode()), "x.gz")
    entries, report = read(path)
    assert report.format == "md5sum"
    assert [e.hashes["md5"] for e in entries] == [MD5_A, MD5_B]


def test_truncated_gzip_raises(tmp_path: Path, shared_dir: Path) -> None:
    data = gzip.compress((f"{MD5_A}\n" * 50_000).encode())
    path = write(tmp_path, data[: len(data) // 2], "x.gz")
    with pytest.raises(HashListError, match="compressed"):
        list(read_hashlist(path)[0])


def test_bom_and_crlf(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbfid,md5\r\nx1," + MD5_A.encode() + b"\r\nx2," + MD5_B.encode() + b"\r\n"
    entries, report = read(write(tmp_path, content))
    assert report.format == "csv"
    assert [(e.id, e.hashes) for e in entries] == [("x1", {"md5": MD5_A}), ("x2", {"md5": MD5_B})]
    assert entries[0].meta == {}


def test_bom_crlf_sums_keep_clean_names(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbf" + f"{MD5_A} *a.jpg\r\n".encode()
    (entry,), _ = read(write(tmp_path, content))
    assert entry.meta["file_name"] == "a.jpg"


def test_bom_in_json(tmp_path: Path, shared_dir: Path) -> None:
    original = shared_dir / "formats" / "vics-1.3-media.json"
    entries, report = read(write(tmp_path, b"\xef\xbb\xbf" + original.read_bytes()))
    assert report.format == "vics"
    assert len(entries) == 3


def test_utf16_with_bom(tmp_path: Path) -> None:
    # What Windows PowerShell's Out-File writes by default.
    content = f"MD5\r\n{MD5_A.upper()}\r\n{MD5_B.upper()}\r\n".encode("utf-16")
    entries, report = read(write(tmp_path, content))
    assert report.format == "md5sum"
    assert [e.hashes["md5"] for e in entries] == [MD5_A, MD5_B]


def test_latin1_file_names_do_not_make_a_file_binary(tmp_path: Path) -> None:
    content = f"{MD5_A}  caf\xe9.jpg\n".encode("latin-1") * 3
    entries, report = read(write(tmp_path, content))
    assert report.format == "md5sum"
    assert entries[0].meta["file_name"] == "caf\ufffd.jpg"
