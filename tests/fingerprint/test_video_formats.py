"""Every container and codec the issue names is sniffed as a video and fingerprinted by vPDQ.

One short slideshow is encoded into each format with PyAV at test time; each copy's sampled
frames must be the same frames as the H.264/MP4 copy's, within the PDQ match distance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from support.videos import CONTAINERS, slideshow_frames, write

from vigil.fingerprint.mediatype import is_video
from vigil.fingerprint.pdq import PDQ_MATCH_DISTANCE, PDQ_QUALITY_THRESHOLD, hamming
from vigil.limits import Limits
from vigil.scan.worker import fingerprint_file

SIZE = (176, 144)  # a size every codec here accepts (H.263 has a fixed list)
SECONDS, FPS = 4, 10


def frames() -> list:
    return list(slideshow_frames(["astronaut", "coffee", "chelsea"], SECONDS, FPS, SIZE))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list:
    path = write(tmp_path_factory.mktemp("ref") / "clip.mp4", iter(frames()), fps=FPS)
    [item] = fingerprint_file(str(path), Limits()).items
    assert item.fingerprints.media_type == "video/mp4"
    return item.fingerprints.vpdq


def assert_same_frames(vpdq: list, reference: list) -> None:
    assert [f.index for f in vpdq] == [f.index for f in reference]
    for ours, ref in zip(vpdq, reference, strict=True):
        if min(ours.quality, ref.quality) >= PDQ_QUALITY_THRESHOLD:
            assert hamming(ours.hash, ref.hash) <= PDQ_MATCH_DISTANCE, (ours, ref)


@pytest.mark.parametrize("name,codec,fmt", CONTAINERS, ids=[f[0] for f in CONTAINERS])
def test_container_and_codec(
    tmp_path: Path, reference: list, name: str, codec: str, fmt: str | None
) -> None:
    path = write(tmp_path / name, iter(frames()), fps=FPS, codec=codec, fmt=fmt)
    result = fingerprint_file(str(path), Limits())
    assert result.errors == []
    [item] = result.items
    fp = item.fingerprints
    assert is_video(fp.media_type), fp.media_type
    assert len(fp.vpdq) == SECONDS
    assert_same_frames(fp.vpdq, reference)


def test_animated_webp(tmp_path: Path, reference: list) -> None:
    images = [Image.fromarray(f) for f in frames()]
    path = tmp_path / "clip.webp"
    images[0].save(
        path, "WEBP", save_all=True, append_images=images[1:], duration=1000 // FPS, quality=90
    )
    [item] = fingerprint_file(str(path), Limits()).items
    fp = item.fingerprints
    assert fp.media_type == "image/webp" and fp.pdq is not None  # the first frame as an image
    assert len(fp.vpdq) == SECONDS
    assert_same_frames(fp.vpdq, reference)
