"""The engine facade as a front uses it: buffers and streams in, complete matches out."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from support.archives import make_7z, make_tar, make_zip, zip_bomb
from support.planted import encode, photo
from support.videos import slideshow_frames, write

from vigil.engine import Engine
from vigil.fingerprint.crypto import digest_bytes
from vigil.hashsets.entry import Entry, ParseReport
from vigil.limits import Limits
from vigil.scan import reader
from vigil.scan.worker import fingerprint_file


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(photo("astronaut"), "JPEG", quality=90)


@pytest.fixture
def engine(tmp_path: Path, jpeg: bytes) -> Engine:
    """A home with the photo listed by MD5 in 'police' (category 1, with metadata) and its PDQ
    in 'police-pdq'."""
    eng = Engine.open(tmp_path / "home")
    assert eng.catalog is not None
    found = eng.fingerprint(jpeg, "astronaut.jpg").items[0].fingerprints
    assert found.pdq is not None
    eng.catalog.import_entries(
        "police",
        [Entry({"md5": found.md5}, id="case-7", category="1", meta={"series": "x"})],
        ParseReport(format="csv"),
        source="t",
        version="1",
    )
    eng.catalog.import_entries(
        "police-pdq",
        [Entry({"pdq": found.pdq.hash}, id="p-1", category="2")],
        ParseReport(format="pdq"),
        source="t",
        version="1",
    )
    yield eng
    eng.close()


def test_a_buffer_is_fingerprinted_as_the_same_file_on_disk(
    engine: Engine, jpeg: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg)
    on_disk = fingerprint_file(str(path), Limits())
    in_memory = engine.fingerprint(jpeg, "a.jpg")
    assert in_memory.complete
    assert [i.fingerprints for i in in_memory.items] == [i.fingerprints for i in on_disk.items]


def test_check_gives_complete_matches_from_the_build(engine: Engine, jpeg: bytes) -> None:
    result = engine.check(jpeg, "upload.jpg")
    got = sorted(
        (m.hashset, m.entry.id, m.entry.category, m.kind, m.distance, m.transform)
        for m in result.matches
    )
    assert got == [
        ("police", "case-7", "1", "md5", 0, None),
        ("police-pdq", "p-1", "2", "pdq", 0, "original"),
    ]
    md5_match = next(m for m in result.matches if m.kind == "md5")
    assert md5_match.entry.meta == {"series": "x"} and md5_match.path == "upload.jpg"
    assert result.build_id == engine.matcher().build_id


def test_archives_and_videos_inside_a_buffer_are_read(
    engine: Engine, jpeg: bytes, tmp_path: Path
) -> None:
    video = write(tmp_path / "v.mp4", slideshow_frames(["coffee"], 2, 5, (96, 64)), fps=5)
    nested = make_tar({"deep/photo.jpg": jpeg})
    for name, data in [
        ("a.zip", make_zip({"in/photo.jpg": jpeg, "in/inner.tar": nested})),
        ("a.7z", make_7z({"photo.jpg": jpeg})),
    ]:
        result = engine.check(data, name)
        assert result.complete, result.errors
        members = sorted({m.member for m in result.matches if m.kind == "md5"}, key=str)
        expected = (
            ["in/inner.tar/deep/photo.jpg", "in/photo.jpg"] if name == "a.zip" else ["photo.jpg"]
        )
        assert members == expected
    found = engine.fingerprint(video.read_bytes(), "clip.mp4")
    assert found.complete, found.errors
    fp = found.items[0].fingerprints
    assert fp.vpdq and len(fp.vpdq) == 2 and fp.media_type.startswith("video/")


def test_a_stream_is_read_once_without_seeking(engine: Engine, jpeg: bytes) -> None:
    class OneWay(io.RawIOBase):
        """A pipe-like stream: read only, never seekable."""

        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            chunk = self._data.read(min(len(b), 1000))
            b[: len(chunk)] = chunk
            return len(chunk)

    data = make_zip({"x/photo.jpg": jpeg})
    result = engine.check(io.BufferedReader(OneWay(data)), "stream.zip")
    assert result.complete, result.errors
    assert {(m.member, m.kind) for m in result.matches} == {
        ("x/photo.jpg", "md5"),
        ("x/photo.jpg", "pdq"),
    }
    whole = next(i for i in result.items if i.member is None).fingerprints
    assert (whole.md5, whole.sha1, whole.sha256) == digest_bytes(data)


def test_limits_hold_in_process(engine: Engine) -> None:
    bomb = engine.fingerprint(
        zip_bomb(64 << 20), "bomb.zip", limits=Limits(max_archive_bytes=1 << 20)
    )
    assert [e.reason for e in bomb.errors] == ["max_archive_bytes"]
    big = engine.fingerprint(b"x" * 5000, "big.bin", limits=Limits(max_file_size=4096))
    assert [e.reason for e in big.errors] == ["max_file_size"] and big.items == []


def test_item_seconds_is_enforced_in_process_for_videos(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = write(tmp_path / "v.mp4", slideshow_frames(["coffee"], 4, 10, (96, 64)), fps=10)
    # Reading the bytes is within the time; decoding the frames is not (no worker to kill).
    monkeypatch.setattr(reader, "_clock", lambda: 0.0)
    found = engine.with_options(vpdq_seconds=0).fingerprint(
        video.read_bytes(), "slow.mp4", limits=Limits(item_seconds=0)
    )
    assert [e.reason for e in found.errors] == ["item_seconds"]
    assert found.items[0].fingerprints.vpdq_error == "item_seconds"


def test_known_good_bytes_are_never_reported_by_similarity(engine: Engine, jpeg: bytes) -> None:
    assert engine.catalog is not None
    md5 = engine.fingerprint(jpeg, "a.jpg").items[0].fingerprints.md5
    engine.catalog.import_entries(
        "nsrl",
        [Entry({"md5": md5})],
        ParseReport(format="nsrl", known_good=True),
        source="n",
        version="1",
    )
    assert engine.refresh() is True
    result = engine.check(jpeg, "a.jpg")
    # The police MD5 listing still alerts; the PDQ similarity does not, and lookup agrees.
    assert [(m.hashset, m.kind) for m in result.matches] == [("police", "md5")]
    fp = result.items[0].fingerprints
    assert [h.kind for h in engine.matcher().lookup(fp)] == ["md5"]


def test_a_newer_build_is_taken_without_touching_calls_in_flight(
    engine: Engine, jpeg: bytes
) -> None:
    before = engine.matcher()
    assert engine.catalog is not None
    engine.catalog.remove("police")
    assert engine.refresh() is True
    assert {m.hashset for m in engine.check(jpeg, "a.jpg").matches} == {"police-pdq"}
    items = engine.fingerprint(jpeg, "a.jpg").items
    assert {m.hashset for m in engine.match(items, matcher=before)} == {"police", "police-pdq"}
