"""vPDQ against Meta's reference outputs (../shared: vpdq/sample-hashes, tmk/sample-videos).

Every frame (`-r 0`), full resolution, and the 128x128 downsampled variant for two videos: frame
numbers must be identical and every frame the reference gives quality >= 50 within 31 bits.
`pytest -s` prints the distance distribution per video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vigil.fingerprint.pdq import PDQ_MATCH_DISTANCE, PDQ_QUALITY_THRESHOLD, hamming
from vigil.fingerprint.video import vpdq_of_video
from vigil.hashsets.formats.vpdqlist import parse_frame
from vigil.limits import Limits

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "pdq-vectors"
VIDEOS = sorted(p.stem for p in (ROOT / "tmk" / "sample-videos").glob("*.mp4"))
DOWNSAMPLED = ["doorknob-hd-no-bar", "pattern-sd-with-small-logo-bar"]
# The two long chair videos are compared on their first frames only, to keep the suite short.
FIRST_FRAMES = 200


def _cases() -> list[tuple[str, tuple[int, int] | None]]:
    return [(v, None) for v in VIDEOS] + [(v, (128, 128)) for v in DOWNSAMPLED if v in VIDEOS]


@pytest.mark.parametrize(("video", "size"), _cases(), ids=lambda x: str(x))
def test_frames_match_the_reference(video: str, size: tuple[int, int] | None) -> None:
    suffix = "-128x128" if size else ""
    expected_file = ROOT / "vpdq" / "sample-hashes" / f"{video}{suffix}.txt"
    expected = [parse_frame(line) for line in expected_file.read_text().split()]
    limits = Limits()
    if video.startswith("chair"):
        expected = expected[:FIRST_FRAMES]
        limits = Limits(max_video_frames=FIRST_FRAMES)
    got = vpdq_of_video(
        str(ROOT / "tmk" / "sample-videos" / f"{video}.mp4"),
        limits=limits,
        seconds_per_frame=0,
        size=size,
    )
    assert got.stopped is None or got.stopped[0] == "max_video_frames"
    assert [f.index for f in got.frames] == [f.index for f in expected if f]
    distances = []
    for mine, ref in zip(got.frames, expected, strict=True):
        assert ref is not None
        assert abs(mine.timestamp - ref.timestamp) < 0.001
        if ref.quality >= PDQ_QUALITY_THRESHOLD:
            distances.append(hamming(mine.hash, ref.hash))
    d = np.array(distances)
    print(
        f"\n{video}{suffix}: {len(expected)} frames, {len(d)} of quality >= 50: distance "
        f"min {d.min()} median {np.median(d):g} mean {d.mean():.2f} p95 {np.percentile(d, 95):g} "
        f"max {d.max()}"
    )
    assert d.max() <= PDQ_MATCH_DISTANCE
