"""read_file on plain files: one read, digests, media type, content, and what goes wrong on disk."""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
from pathlib import Path

import pytest
from support.archives import compress, digests, image_bytes, make_tar, make_zip

from vigil.fingerprint.mediatype import is_image
from vigil.limits import Limits
from vigil.scan import reader
from vigil.scan.reader import RawItem, read_file
from vigil.scan.results import ScanError


def read(path: Path | str, limits: Limits | None = None, want=is_image) -> list:
    return list(read_file(str(path), limits or Limits(), want))


def errors(out: list) -> list[tuple[str | None, str]]:
    return [(e.member, e.reason) for e in out if isinstance(e, ScanError)]


def test_plain_file_digests_and_type_from_content(tmp_path: Path) -> None:
    data = b"just some text\n" * 1000
    p = tmp_path / "photo.jpg"  # the name lies: the type comes from the content
    p.write_bytes(data)
    [item] = read(p)
    assert isinstance(item, RawItem)
    assert item.member is None
    assert item.size == len(data)
    assert (item.md5, item.sha1, item.sha256) == digests(data)
    assert item.media_type == "text/plain"
    assert item.content is None


def test_image_content_is_kept_when_wanted(tmp_path: Path) -> None:
    data = image_bytes(7)
    p = tmp_path / "noext"
    p.write_bytes(data)
    [item] = read(p)
    assert item.media_type == "image/png"
    assert item.content == data
    assert (item.md5, item.sha1, item.sha256) == digests(data)
    [item] = read(p, want=lambda mt: False)
    assert item.content is None


def test_large_file_read_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(3 * reader.CHUNK + 12345)
    p = tmp_path / "big.bin"
    p.write_bytes(data)
    [item] = read(p, want=lambda mt: True)
    assert (item.md5, item.sha1, item.sha256, item.size) == (*digests(data), len(data))
    assert item.content == data


def test_image_larger_than_max_image_file_size_is_hashed_not_held(tmp_path: Path) -> None:
    data = image_bytes(8, size=(300, 300))
    p = tmp_path / "big.png"
    p.write_bytes(data)
    [item] = read(p, Limits(max_image_file_size=len(data) - 1))
    assert item.media_type == "image/png" and item.content is None
    assert item.sha256 == digests(data)[2]


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty"
    p.write_bytes(b"")
    [item] = read(p)
    assert item.size == 0 and item.media_type == "application/x-empty"
    assert item.md5 == digests(b"")[0]


def test_file_larger_than_max_file_size_is_not_read(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 1000)
    out = read(p, Limits(max_file_size=999))
    assert errors(out) == [(None, "max_file_size")]
    assert len(out) == 1


def test_vanished_between_walk_and_read(tmp_path: Path) -> None:
    p = tmp_path / "gone"
    p.write_bytes(b"x")
    items = read_file(str(p), Limits(), is_image)  # nothing is read until iterated
    p.unlink()
    [err] = list(items)
    assert (err.path, err.member, err.reason) == (str(p), None, "vanished")


def test_permission_denied_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root reads files whatever their mode, so the refusal is simulated at open().
    p = tmp_path / "secret"
    p.write_bytes(b"x")

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(p))

    monkeypatch.setattr(reader.os, "open", refuse)
    [err] = read(p)
    assert err.reason == "permission" and "permission denied" in err.message


def test_io_error_is_unreadable() -> None:
    # /proc/self/mem is a regular file whose first page cannot be read (EIO).
    if not os.path.exists("/proc/self/mem"):
        pytest.skip("no /proc")
    out = read("/proc/self/mem")
    assert [e.reason for e in out] == ["unreadable"]


def test_file_growing_while_read_is_changed(tmp_path: Path) -> None:
    p = tmp_path / "growing.bin"
    p.write_bytes(os.urandom(2 * reader.CHUNK))

    def grow(media_type: str) -> bool:
        # Called once the head is sniffed, while the rest is still unread.
        with open(p, "ab") as f:
            f.write(b"more")
        return False

    out = list(read_file(str(p), Limits(), grow))
    assert errors(out) == [(None, "changed")]
    assert not [i for i in out if isinstance(i, RawItem)]


def test_file_shrinking_while_read_is_changed(tmp_path: Path) -> None:
    p = tmp_path / "shrinking.bin"
    p.write_bytes(os.urandom(2 * reader.CHUNK))

    def shrink(media_type: str) -> bool:
        os.truncate(p, reader.CHUNK + 10)
        return False

    out = list(read_file(str(p), Limits(), shrink))
    assert errors(out) == [(None, "changed")]


@pytest.mark.parametrize("change", ["grow", "shrink", "touch"])
def test_small_file_changing_while_read_is_changed(tmp_path: Path, change: str) -> None:
    # Files under one chunk are read in one call; a change is caught all the same.
    p = tmp_path / "small.bin"
    p.write_bytes(os.urandom(5000))

    def alter(media_type: str) -> bool:  # called once the bytes are in
        if change == "grow":
            with open(p, "ab") as f:
                f.write(b"more")
        elif change == "shrink":
            os.truncate(p, 100)
        else:
            os.utime(p, ns=(0, 10**9))
        return True

    out = list(read_file(str(p), Limits(), alter))
    assert errors(out) == [(None, "changed")]
    assert not [i for i in out if isinstance(i, RawItem)]


def test_small_file_grown_between_stat_and_read_is_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "small.bin"
    p.write_bytes(os.urandom(5000))
    real_fstat = os.fstat
    calls = itertools.count()

    def fstat_then_grow(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        if next(calls) == 0:  # the size the read is planned with, then the file grows
            with open(p, "ab") as f:
                f.write(b"x" * 10)
        return st

    monkeypatch.setattr(reader.os, "fstat", fstat_then_grow)
    out = read(p)
    assert errors(out) == [(None, "changed")]


def test_small_file_read_whole_is_kept_exactly(tmp_path: Path) -> None:
    data = os.urandom(reader.CHUNK - 1)
    p = tmp_path / "photo.bin"
    p.write_bytes(data)
    [item] = list(read_file(str(p), Limits(), lambda media_type: True))
    assert isinstance(item, RawItem)
    assert item.content == data and item.size == len(data)
    assert (item.md5, item.sha1, item.sha256) == (
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )
    assert (
        list(read_file(str(p), Limits(max_image_file_size=100), lambda m: True))[0].content is None
    )


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    p = tmp_path / "fifo"
    os.mkfifo(p)
    assert errors(read(p)) == [(None, "not-regular")]


def test_directory_is_not_regular(tmp_path: Path) -> None:
    assert errors(read(tmp_path)) == [(None, "not-regular")]


def test_item_seconds_while_reading_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "slow.bin"
    p.write_bytes(os.urandom(3 * reader.CHUNK))
    ticks = itertools.count(step=100.0)  # every look at the clock: 100 s later
    monkeypatch.setattr(reader, "_clock", lambda: next(ticks))
    out = read(p, Limits(item_seconds=250))
    assert errors(out) == [(None, "item_seconds")]
    assert len(out) == 1


# -- compressed plain files: the text they hold, not an archive libarchive imagines in it -------

# Text libarchive's mtree bidder takes for a manifest: short lines of one word each make it bid,
# and the parser then gives up on a later line of prose (as on a real Debian changelog.gz).
CHANGELOG = (
    b"v2.0.1\n------\n\n\nMisc\n^^^^\n* #101: Minor refactorings to support logging.\n\n"
    b"Documentation changes\n^^^^^^^^^^^^^^^^^^^^^\n"
    b'* #102: Updated the "Your Project\xe2\x80\x99s Version" page.\n'
)
# ... and lines it parses as a manifest to the end: one empty "member" per line.
WORDS = b"v2.0.1\n------\n\n\nMisc\n^^^^\n"


@pytest.mark.parametrize("text", [CHANGELOG, WORDS], ids=["prose", "words"])
@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_a_compressed_text_is_one_member_the_text(tmp_path: Path, text: bytes, kind: str) -> None:
    p = tmp_path / f"changelog.{kind}"
    p.write_bytes(compress(text, kind))
    out = read(p)
    assert errors(out) == []
    assert [item.member for item in out] == ["changelog", None]
    assert (out[0].md5, out[0].sha1, out[0].sha256) == digests(text)
    assert out[0].size == len(text) and out[0].media_type == "text/plain"


def test_a_compressed_mtree_manifest_is_a_text_too(tmp_path: Path) -> None:
    # Vigil does not read mtree manifests (a manifest describes files, it holds none): a .gz of
    # one is its text, not the empty entries it lists.
    manifest = b"#mtree\n./docs type=dir mode=0755\n./docs/readme type=file size=12\n"
    p = tmp_path / "spec.gz"
    p.write_bytes(compress(manifest, "gz"))
    out = read(p)
    assert errors(out) == []
    assert [item.member for item in out] == ["spec", None]
    assert out[0].md5 == digests(manifest)[0]


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_a_compressed_tar_is_still_an_archive(tmp_path: Path, kind: str) -> None:
    png, text = image_bytes(3), CHANGELOG
    p = tmp_path / f"docs.tar.{kind}"
    p.write_bytes(make_tar({"a.png": png, "doc/changelog": text}, kind))
    out = read(p)
    assert errors(out) == []
    got = {item.member: item for item in out}
    assert list(got) == ["a.png", "doc/changelog", None]
    assert got["a.png"].md5 == digests(png)[0] and got["a.png"].content == png
    assert got["doc/changelog"].md5 == digests(text)[0]


def test_a_compressed_zip_is_read_one_level_down(tmp_path: Path) -> None:
    png = image_bytes(4)
    inner = make_zip({"x.png": png})
    p = tmp_path / "bundle.zip.gz"
    p.write_bytes(compress(inner, "gz"))
    out = read(p)
    assert errors(out) == []
    assert [item.member for item in out] == ["bundle.zip/x.png", "bundle.zip", None]
    assert out[0].md5 == digests(png)[0]
