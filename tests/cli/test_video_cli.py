"""Videos end to end: `vigil hash --vpdq-out` builds a list, `vigil scan` finds altered copies.

The known video is a 20-second slideshow of benign photos; its copies are re-encoded with
another codec and bitrate, shrunk, cut to 10 seconds, moved to other containers, given black
borders, put in a zip; an unrelated slideshow must not match. Bad videos give one named error
line each and the scan goes on. Everything runs as real `vigil` processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.videos import (
    OTHER,
    SLIDESHOW,
    animated_gif,
    bordered,
    decoded,
    resized,
    slideshow_frames,
    write,
)

VIGIL = [sys.executable, "-m", "vigil.cli"]


def vigil(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_HOME": str(home)}
    return subprocess.run([*VIGIL, *args], capture_output=True, text=True, env=env, timeout=300)


@dataclass
class Videos:
    root: Path
    known: Path
    copies: dict[str, Path]  # name -> altered copy that must match
    unrelated: Path
    bad: dict[str, tuple[Path, str]]  # name -> (file, expected reason)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Videos:
    base = tmp_path_factory.mktemp("videos")
    known = write(base / "known.mp4", slideshow_frames(SLIDESHOW, 20, 10, (240, 180)))
    root = base / "scan"
    root.mkdir()
    copies = {
        "mpeg4 in AVI at 150 kbit/s": write(
            root / "reencoded.avi", decoded(known), codec="mpeg4", bit_rate=150_000
        ),
        "half size, MKV": write(root / "small.mkv", resized(decoded(known), (120, 90))),
        "10-second clip": write(root / "clip.mp4", decoded(known, 5, 10)),
        "WebM (VP8)": write(root / "copy.webm", decoded(known), codec="libvpx"),
        "letterboxed": write(root / "letterbox.mov", bordered(decoded(known), 36, 0)),
        "pillarboxed, FLV": write(
            root / "pillarbox.flv", bordered(decoded(known), 0, 48), codec="flv"
        ),
        "MPEG-TS": write(root / "copy.ts", decoded(known), codec="mpeg2video", fmt="mpegts"),
        "animated GIF": animated_gif(root / "copy.gif", resized(decoded(known, 0, 8), (120, 90))),
    }
    clip_bytes = copies["10-second clip"].read_bytes()
    with zipfile.ZipFile(root / "archive.zip", "w") as z:
        z.writestr("inner/clip-renamed.dat", clip_bytes)
    copies["clip inside a zip"] = root / "archive.zip"
    unrelated = write(root / "unrelated.mp4", slideshow_frames(OTHER, 12, 10, (240, 180)))
    bad_dir = root / "bad"
    bad_dir.mkdir()
    whole = copies["10-second clip"].read_bytes()
    (bad_dir / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (bad_dir / "empty.mp4").write_bytes(b"")
    (bad_dir / "corrupt.mkv").write_bytes(
        (root / "small.mkv").read_bytes()[:64] + os.urandom(20_000)
    )
    _audio_only(bad_dir / "audio-only.mkv")
    bad = {
        "truncated": (bad_dir / "truncated.mp4", "truncated"),
        "zero-length": (bad_dir / "empty.mp4", "truncated"),
        "corrupt": (bad_dir / "corrupt.mkv", "corrupt"),
        "no video stream": (bad_dir / "audio-only.mkv", "no-video-stream"),
    }
    return Videos(root, known, copies, unrelated, bad)


def _audio_only(path: Path) -> None:
    import av
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 8000), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def scanned(
    videos: Videos, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, list, str, int]:
    home = tmp_path_factory.mktemp("home")
    lists = tmp_path_factory.mktemp("lists")
    hashed = vigil("hash", "--vpdq-out", str(lists), str(videos.known), home=home)
    assert hashed.returncode == 0, hashed.stderr
    listing = lists / "known.txt"
    imported = vigil("hashset", "import", str(listing), "--name", "police", home=home)
    assert imported.returncode == 0, imported.stderr
    proc = vigil("scan", str(videos.root), "--json", home=home)
    matches = [json.loads(line) for line in proc.stdout.splitlines()]
    return home, listing, matches, proc.stderr, proc.returncode


def test_vigil_hash_writes_the_reference_form(scanned: tuple) -> None:
    _, listing, *_ = scanned
    lines = listing.read_text().splitlines()
    assert len(lines) == 20  # one frame a second of a 20-second video at 10 fps
    frame, quality, pdq, timestamp = lines[1].split(",")
    assert (frame, timestamp) == ("10", "1.000")
    assert 0 <= int(quality) <= 100 and len(pdq) == 64


@pytest.mark.parametrize(
    "name",
    [
        "mpeg4 in AVI at 150 kbit/s",
        "half size, MKV",
        "10-second clip",
        "WebM (VP8)",
        "letterboxed",
        "pillarboxed, FLV",
        "MPEG-TS",
        "animated GIF",
        "clip inside a zip",
    ],
)
def test_each_altered_copy_matches_its_original(videos: Videos, scanned: tuple, name: str) -> None:
    matches = scanned[2]
    path = str(videos.copies[name])
    got = [m for m in matches if m["path"] == path and m["kind"] == "vpdq"]
    assert got, f"{name} not found: {scanned[3]}"
    hit = got[0]
    assert hit["entry"]["id"] == "known" and hit["hashset"] == "police"
    assert hit["distance"] <= 31 and hit["transform"] is None
    segment = hit["segment"]
    assert segment["query_match_percent"] >= 80
    assert set(segment) == {
        "query_start",
        "query_end",
        "match_start",
        "match_end",
        "query_match_percent",
        "compared_match_percent",
    }
    print(f"{name}: distance {hit['distance']}, segment {segment}")


def test_the_clip_reports_where_it_was_cut_from(videos: Videos, scanned: tuple) -> None:
    path = str(videos.copies["10-second clip"])
    hit = next(m for m in scanned[2] if m["path"] == path and m["kind"] == "vpdq")
    seg = hit["segment"]
    assert (seg["query_start"], seg["query_end"]) == (0.0, 9.0)
    assert 4.0 <= seg["match_start"] <= 6.0 and 13.0 <= seg["match_end"] <= 15.0
    assert 40 <= seg["compared_match_percent"] <= 60


def test_the_unrelated_video_and_the_original_exact_file(videos: Videos, scanned: tuple) -> None:
    assert not [m for m in scanned[2] if m["path"] == str(videos.unrelated)]


def test_bad_videos_are_named_errors_and_the_scan_goes_on(videos: Videos, scanned: tuple) -> None:
    _, _, matches, stderr, rc = scanned
    assert rc == 2  # errors win over matches, like clamscan
    assert len({m["path"] for m in matches}) == len(videos.copies)
    for name, (path, reason) in videos.bad.items():
        lines = [x for x in stderr.splitlines() if x.startswith(f"vigil: error: {path}:")]
        assert len(lines) == 1, f"{name}: {lines}"
        assert f": {reason}: " in lines[0], f"{name}: {lines[0]}"


def test_a_second_scan_gives_the_same_matches_from_the_cache(
    videos: Videos, scanned: tuple
) -> None:
    home, _, matches, _, rc = scanned
    again = vigil("scan", str(videos.root), "--json", home=home)
    assert again.returncode == rc
    second = [json.loads(line) for line in again.stdout.splitlines()]
    assert sorted(json.dumps(m, sort_keys=True) for m in second) == sorted(
        json.dumps(m, sort_keys=True) for m in matches
    )
    # Every file read without an error the first time came from the cache (the bad ones are
    # read again, and give the same errors).
    files = [p for p in videos.root.rglob("*") if p.is_file()]
    bad = {path for path, _ in videos.bad.values()}
    assert f"{len(files) - len(bad):,} from cache" in again.stderr, again.stderr


def test_p_and_q_are_options(videos: Videos, scanned: tuple) -> None:
    home = scanned[0]
    clip = videos.copies["10-second clip"]
    strict = vigil("scan", str(clip), "--json", "--vpdq-compared-percent", "90", home=home)
    assert strict.returncode == 0 and strict.stdout == "", strict.stderr
    loose = vigil("scan", str(videos.unrelated), "--json", "--vpdq-match-percent", "0", home=home)
    assert loose.returncode == 0  # a frame must still be within the distance: no hit at all


def test_video_limits_are_reported_by_name(videos: Videos, scanned: tuple) -> None:
    home = scanned[0]
    proc = vigil(
        "scan",
        str(videos.known),
        "--json",
        "--no-cache",
        "--limit",
        "max_video_seconds=4",
        home=home,
    )
    assert proc.returncode == 2
    assert "max_video_seconds" in proc.stderr
    # The first 4 seconds were hashed, and they are frames of the known video: still a match.
    hits = [json.loads(x) for x in proc.stdout.splitlines()]
    vpdq = [m for m in hits if m["kind"] == "vpdq"]
    assert vpdq and vpdq[0]["segment"]["query_end"] <= 4.0
    assert vpdq[0]["fingerprints"]["vpdq_error"] == "max_video_seconds"
