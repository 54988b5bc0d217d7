"""read_file on archives: members (nested), their digests and paths, bad archives and limits."""

from __future__ import annotations

import itertools
import os
import tracemalloc
from pathlib import Path

import pytest
from support.archives import (
    compress,
    digests,
    image_bytes,
    make_7z,
    make_encrypted_zip,
    make_tar,
    make_zip,
    nested_zips,
    zip_bomb,
)

from vigil.fingerprint.mediatype import is_image
from vigil.limits import Limits, MiB
from vigil.scan import reader
from vigil.scan.reader import RawItem, read_file
from vigil.scan.results import ScanError

A, B, C = image_bytes(1), image_bytes(2, "JPEG"), image_bytes(3)


def scan(tmp_path: Path, name: str, data: bytes, limits: Limits | None = None) -> list:
    p = tmp_path / name
    p.write_bytes(data)
    return list(read_file(str(p), limits or Limits(), is_image))


def items(out: list) -> dict[str | None, RawItem]:
    return {i.member: i for i in out if isinstance(i, RawItem)}


def order(out: list) -> list[str | None]:
    return [i.member for i in out if isinstance(i, RawItem)]


def errors(out: list) -> list[tuple[str | None, str]]:
    return [(e.member, e.reason) for e in out if isinstance(e, ScanError)]


def assert_item(item: RawItem, data: bytes, media_type: str | None = None) -> None:
    assert (item.md5, item.sha1, item.sha256) == digests(data)
    assert item.size == len(data)
    if media_type:
        assert item.media_type == media_type
    if is_image(item.media_type):
        assert item.content == data
    else:
        assert item.content is None


@pytest.mark.parametrize(
    "name, build",
    [
        ("a.zip", lambda m: make_zip(m)),
        ("a.zip", lambda m: make_zip(m, stored=True)),
        ("a.zip", lambda m: make_zip(m, streamed=True)),
        ("a.tar", lambda m: make_tar(m)),
        ("a.tar.gz", lambda m: make_tar(m, "gz")),
        ("a.tar.bz2", lambda m: make_tar(m, "bz2")),
        ("a.tar.xz", lambda m: make_tar(m, "xz")),
        ("a.7z", lambda m: make_7z(m)),
    ],
)
def test_each_format_yields_members_then_itself(tmp_path: Path, name: str, build) -> None:
    members = {"x/a.png": A, "b.jpg": B, "notes.txt": b"hello\n"}
    data = build(members)
    out = scan(tmp_path, name, data)
    assert errors(out) == []
    assert order(out) == ["x/a.png", "b.jpg", "notes.txt", None]
    got = items(out)
    assert_item(got["x/a.png"], A, "image/png")
    assert_item(got["b.jpg"], B, "image/jpeg")
    assert_item(got["notes.txt"], b"hello\n", "text/plain")
    assert_item(got[None], data)


@pytest.mark.parametrize(
    "kind, media_type",
    [("gz", "application/gzip"), ("bz2", "application/x-bzip2"), ("xz", "application/x-xz")],
)
def test_single_file_compression_is_one_member(tmp_path: Path, kind: str, media_type: str) -> None:
    out = scan(tmp_path, f"photo.png.{kind}", compress(A, kind))
    assert errors(out) == []
    assert order(out) == ["photo.png", None]
    assert_item(items(out)["photo.png"], A, "image/png")
    assert_item(items(out)[None], compress(A, kind), media_type)


def test_compressed_file_without_known_suffix_is_data(tmp_path: Path) -> None:
    out = scan(tmp_path, "blob", compress(b"text " * 100, "gz"))
    assert order(out) == ["data", None]


def test_three_levels_zip_in_tar_gz_in_7z(tmp_path: Path) -> None:
    inner = make_zip({"deep/c.png": C, "readme.txt": b"r"})
    middle = make_tar({"b.jpg": B, "inner.zip": inner}, "gz")
    top = make_7z({"a.png": A, "mid.tar.gz": middle})
    out = scan(tmp_path, "top.7z", top)
    assert errors(out) == []
    assert order(out) == [
        "a.png",
        "mid.tar.gz/b.jpg",
        "mid.tar.gz/inner.zip/deep/c.png",
        "mid.tar.gz/inner.zip/readme.txt",
        "mid.tar.gz/inner.zip",
        "mid.tar.gz",
        None,
    ]
    got = items(out)
    assert_item(got["a.png"], A)
    assert_item(got["mid.tar.gz/b.jpg"], B)
    assert_item(got["mid.tar.gz/inner.zip/deep/c.png"], C)
    assert_item(got["mid.tar.gz/inner.zip"], inner, "application/zip")
    assert_item(got["mid.tar.gz"], middle, "application/gzip")
    assert_item(got[None], top, "application/x-7z-compressed")


def test_7z_and_streamed_zip_nested_in_zip(tmp_path: Path) -> None:
    # A nested 7z needs seeking: it is read from memory. A streamed zip (sizes after the data)
    # is read by libarchive's streaming zip reader.
    seven = make_7z({"a.png": A})
    streamed = make_zip({"b.jpg": B, "c.png": C}, streamed=True, stored=True)
    gz = compress(C, "xz")
    top = make_zip({"s.7z": seven, "t.zip": streamed, "u/c.png.xz": gz})
    out = scan(tmp_path, "top.zip", top)
    assert errors(out) == []
    assert order(out) == [
        "s.7z/a.png",
        "s.7z",
        "t.zip/b.jpg",
        "t.zip/c.png",
        "t.zip",
        "u/c.png.xz/c.png",
        "u/c.png.xz",
        None,
    ]
    got = items(out)
    assert_item(got["s.7z/a.png"], A)
    assert_item(got["s.7z"], seven)
    assert_item(got["t.zip/c.png"], C)
    assert_item(got["t.zip"], streamed)
    assert_item(got["u/c.png.xz/c.png"], C)
    assert_item(got["u/c.png.xz"], gz)


def test_nested_7z_larger_than_memory_cap_is_hashed_and_reported(tmp_path: Path) -> None:
    seven = make_7z({"noise.bin": os.urandom(50_000)})
    out = scan(tmp_path, "t.tar", make_tar({"s.7z": seven}), Limits(max_buffered_archive=10_000))
    assert errors(out) == [("s.7z", "max_buffered_archive")]
    assert order(out) == ["s.7z", None]
    assert_item(items(out)["s.7z"], seven)


def test_office_document_is_opened_like_a_zip(tmp_path: Path) -> None:
    docx = make_zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "_rels/.rels": b"<r/>",
            "word/document.xml": b"<w/>",
            "word/media/image1.png": A,
        }
    )
    out = scan(tmp_path, "report.docx", docx)
    assert items(out)[None].media_type.startswith("application/vnd.openxmlformats")
    assert_item(items(out)["word/media/image1.png"], A)


def test_only_regular_members_are_items(tmp_path: Path) -> None:
    out = scan(tmp_path, "t.tar", make_tar({"a.png": A}, extras=True))
    assert errors(out) == []
    assert order(out) == ["a.png", None]


def test_leading_dot_slash_is_dropped_from_member_paths(tmp_path: Path) -> None:
    out = scan(tmp_path, "t.tar", make_tar({"./x/a.png": A, "/abs.txt": b"z"}))
    assert order(out) == ["x/a.png", "abs.txt", None]


# -- bad archives -------------------------------------------------------------------------------


def test_encrypted_zip_members(tmp_path: Path) -> None:
    data = make_encrypted_zip({"e1.png": A, "e2.png": B})
    out = scan(tmp_path, "enc.zip", data)
    assert errors(out) == [("e1.png", "encrypted"), ("e2.png", "encrypted")]
    assert order(out) == [None]  # the archive itself is still an item
    assert_item(items(out)[None], data)


def test_encrypted_zip_aes(tmp_path: Path) -> None:
    out = scan(tmp_path, "enc.zip", make_encrypted_zip({"e1.png": A}, "aes256"))
    assert errors(out) == [("e1.png", "encrypted")]


def test_encrypted_zip_nested_then_scan_goes_on(tmp_path: Path) -> None:
    enc = make_encrypted_zip({"e1.png": A, "e2.png": B})
    out = scan(tmp_path, "t.tar", make_tar({"enc.zip": enc, "after.png": C}))
    # Streamed, libarchive cannot find where an encrypted member ends: the rest of that zip is
    # reported once, at the archive, and the tar goes on.
    assert errors(out) == [("enc.zip/e1.png", "encrypted"), ("enc.zip", "encrypted")]
    assert order(out) == ["enc.zip", "after.png", None]
    assert_item(items(out)["enc.zip"], enc)


def test_truncated_zip_yields_members_before_the_damage(tmp_path: Path) -> None:
    full = make_zip({"a.png": A, "b.bin": os.urandom(20_000), "c.png": C})
    data = full[: len(A) + 10_000]
    out = scan(tmp_path, "cut.zip", data)
    assert errors(out) == [("b.bin", "corrupt")]
    assert order(out) == ["a.png", None]
    assert_item(items(out)["a.png"], A)
    assert_item(items(out)[None], data)


def test_truncated_tar_gz(tmp_path: Path) -> None:
    full = make_tar({"a.png": A, "noise": os.urandom(200_000), "c.png": C}, "gz")
    out = scan(tmp_path, "cut.tar.gz", full[:100_000])
    assert errors(out) == [("noise", "corrupt")]
    assert order(out) == ["a.png", None]


def test_truncated_plain_tar(tmp_path: Path) -> None:
    full = make_tar({"a.png": A, "b.jpg": B})
    out = scan(tmp_path, "cut.tar", full[: 512 + len(A) + 700])
    assert len(errors(out)) == 1 and errors(out)[0][1] == "corrupt"
    assert order(out) == ["a.png", None]


def test_garbage_behind_a_gzip_header(tmp_path: Path) -> None:
    # The first deflate block has the reserved type 11, so the stream is invalid whatever
    # follows. (Purely random bytes are not: about 1 in 100 happens to be a short deflate stream
    # that ends early, and libarchive, which does not check gzip's CRC, then reads the rest as
    # a valid compressed file.)
    data = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff" + os.urandom(3000)
    out = scan(tmp_path, "bad.tar.gz", data)
    assert errors(out) == [(None, "corrupt")]
    assert "cannot open" in next(e for e in out if isinstance(e, ScanError)).message
    assert_item(items(out)[None], data, "application/gzip")


def test_damaged_member_data_in_zip(tmp_path: Path) -> None:
    noise = os.urandom(20_000)
    data = bytearray(make_zip({"a.png": A, "noise": noise, "c.png": C}, stored=True))
    at = bytes(data).index(noise[:64])
    data[at + 100 : at + 110] = bytes(10)  # stored: the CRC no longer matches
    out = scan(tmp_path, "crc.zip", bytes(data))
    assert errors(out) == [("noise", "corrupt")]
    assert order(out)[0] == "a.png" and order(out)[-1] is None


def test_corrupt_nested_archive_is_hashed_and_the_parent_goes_on(tmp_path: Path) -> None:
    # Cut well past the first block libarchive reads ahead: a truncated gzip stream whose whole
    # (short) tail arrives in the first read fails already when the archive is opened.
    bad = make_tar({"a.png": A, "noise": os.urandom(600_000)}, "gz")[:400_000]
    out = scan(tmp_path, "outer.zip", make_zip({"bad.tar.gz": bad, "z.jpg": B}))
    assert errors(out) == [("bad.tar.gz/noise", "corrupt")]
    assert order(out) == ["bad.tar.gz/a.png", "bad.tar.gz", "z.jpg", None]
    assert_item(items(out)["bad.tar.gz"], bad)  # digests of all its bytes, read or not


# -- limits -------------------------------------------------------------------------------------


def test_member_over_max_file_size_by_header(tmp_path: Path) -> None:
    big = bytes(50_000)  # compresses well: the zip itself is under the limit
    out = scan(tmp_path, "a.zip", make_zip({"big": big, "a.png": A}), Limits(max_file_size=20_000))
    assert errors(out) == [("big", "max_file_size")]
    assert order(out) == ["a.png", None]


def test_member_over_max_file_size_with_size_unknown(tmp_path: Path) -> None:
    # A streamed zip nested in a tar: no sizes before the data, so the limit is enforced while
    # reading (the outer file itself is under the limit).
    big = bytes(300_000)
    inner = make_zip({"big": big, "a.png": A}, streamed=True)
    outer = make_tar({"inner.zip": inner})
    out = scan(tmp_path, "t.tar", outer, Limits(max_file_size=len(outer)))
    assert errors(out) == [("inner.zip/big", "max_file_size")]
    assert order(out) == ["inner.zip/a.png", "inner.zip", None]


def test_nested_archive_over_max_file_size_with_size_unknown(tmp_path: Path) -> None:
    inner = make_tar({"a.png": A, "z": bytes(300_000)})
    mid = make_zip({"inner.tar": inner, "after.txt": b"after"}, streamed=True)
    top = make_tar({"mid.zip": mid, "last.txt": b"last"})
    out = scan(tmp_path, "t.tar", top, Limits(max_file_size=100_000))
    assert errors(out) == [("mid.zip/inner.tar", "max_file_size")]
    assert order(out) == ["mid.zip/after.txt", "mid.zip", "last.txt", None]


def test_zip_bomb_stops_at_max_archive_bytes(tmp_path: Path) -> None:
    bomb = zip_bomb(2048 * MiB)  # 2 GiB of zeros, about 2 MB compressed
    assert len(bomb) < 4 * MiB
    limits = Limits(max_archive_bytes=32 * MiB)
    tracemalloc.start()
    try:
        out = scan(tmp_path, "bomb.zip", bomb, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert errors(out) == [("zeros.bin", "max_archive_bytes")]
    assert "zip bomb" in next(e for e in out if isinstance(e, ScanError)).message
    assert order(out) == [None]  # the bomb file itself is hashed and can match
    assert peak < 16 * MiB  # Python allocations: a few blocks, not the member


def test_nested_bombs_count_together(tmp_path: Path) -> None:
    # 42.zip style: several bombs nested one level down, each under the limit alone.
    bomb = zip_bomb(16 * MiB)
    outer = make_zip({f"b{i}.zip": bomb for i in range(4)})
    out = scan(tmp_path, "42.zip", outer, Limits(max_archive_bytes=40 * MiB))
    assert errors(out) == [("b2.zip/zeros.bin", "max_archive_bytes")]
    assert order(out) == ["b0.zip/zeros.bin", "b0.zip", "b1.zip/zeros.bin", "b1.zip", None]


def test_tar_gz_bomb_counts_data_libarchive_skips(tmp_path: Path) -> None:
    # The member is refused by size, but skipping it still decompresses the gzip stream.
    data = make_tar({"zeros": bytes(32 * MiB), "after.png": A}, "gz")
    out = scan(tmp_path, "b.tar.gz", data, Limits(max_file_size=MiB, max_archive_bytes=8 * MiB))
    assert errors(out) == [("zeros", "max_file_size"), (None, "max_archive_bytes")]
    assert order(out) == [None]


def test_deep_nesting_stops_at_max_archive_depth(tmp_path: Path) -> None:
    data = nested_zips(6, A, "a.png")
    out = scan(tmp_path, "quine.zip", data, Limits(max_archive_depth=3))
    assert errors(out) == [("l2.zip/l3.zip/l4.zip", "max_archive_depth")]
    # The archive too deep is still an item (hashed), its members are not read.
    assert order(out) == ["l2.zip/l3.zip/l4.zip", "l2.zip/l3.zip", "l2.zip", None]


def test_deep_nesting_within_the_limit_is_read(tmp_path: Path) -> None:
    out = scan(tmp_path, "deep.zip", nested_zips(6, A, "a.png"), Limits(max_archive_depth=6))
    assert errors(out) == []
    assert_item(items(out)["l2.zip/l3.zip/l4.zip/l5.zip/l6.zip/a.png"], A)


def test_max_archive_members_counts_nested_members(tmp_path: Path) -> None:
    inner = make_zip({f"i{n}.txt": b"%d" % n for n in range(3)})
    data = make_tar({"a.txt": b"a", "inner.zip": inner, "z.txt": b"z"})
    out = scan(tmp_path, "t.tar", data, Limits(max_archive_members=4))
    # a.txt, inner.zip, inner.zip/i0.txt, inner.zip/i1.txt; the 5th stops the file
    assert errors(out) == [("inner.zip/i2.txt", "max_archive_members")]
    assert order(out) == ["a.txt", "inner.zip/i0.txt", "inner.zip/i1.txt", None]


def test_item_seconds_inside_an_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_tar({f"m{n}.bin": os.urandom(1000) for n in range(50)})
    ticks = itertools.count(step=1.0)  # one second per look at the clock
    monkeypatch.setattr(reader, "_clock", lambda: next(ticks))
    out = scan(tmp_path, "slow.tar", data, Limits(item_seconds=40))
    assert [r for _, r in errors(out)] == ["item_seconds"]
    assert order(out)[-1] is None  # the file was hashed before its members were read
    assert 0 < len(order(out)) < 51
