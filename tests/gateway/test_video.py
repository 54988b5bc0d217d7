"""Videos through the gateway: a transcoded copy of a known video (vPDQ) is blocked; an unknown
video passes byte for byte. The videos are slideshows of benign photos made at test time."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.gateway import Conn, GatewayProcess, http_response_head, respmod, start_gateway
from support.server import run_cli
from support.videos import SLIDESHOW, decoded, resized, slideshow_frames, write

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

OTHER = ["camera", "moon", "coins", "horse", "brick", "grass"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("videos")
    known = write(base / "known.mp4", slideshow_frames(SLIDESHOW, 20, 10, (240, 180)))
    return {
        "known": known,
        "copy": write(base / "small.mkv", resized(decoded(known), (120, 90))),
        "unrelated": write(base / "other.mp4", slideshow_frames(OTHER, 12, 10, (240, 180))),
    }


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, videos: dict[str, Path]
) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("video-home")
    lists = tmp_path_factory.mktemp("lists")
    hashed = run_cli("--home", str(home), "hash", "--vpdq-out", str(lists), str(videos["known"]))
    assert hashed.returncode == 0, hashed.stderr
    imported = run_cli(
        "--home", str(home), "hashset", "import", str(lists / "known.txt"), "--name", "police"
    )
    assert imported.returncode == 0, imported.stderr
    g = start_gateway(home, "--mode", "block")
    yield g
    assert g.alive(), g.log_text()[-3000:]
    assert g.stop() == 0
    shutil.rmtree(lists, ignore_errors=True)


def test_transcoded_copy_of_known_video_is_blocked(
    gw: GatewayProcess, videos: dict[str, Path]
) -> None:
    data = videos["copy"].read_bytes()
    head = http_response_head(len(data), "video/x-matroska")
    with Conn(gw.port) as c:
        r = respmod(c, gw.port, data, url="http://video.test/copy.mkv", preview=None, res_head=head)
    assert r.http_status == 403, gw.log_text()[-2000:]
    assert "vpdq" in gw.log_text()


def test_unknown_video_passes(gw: GatewayProcess, videos: dict[str, Path]) -> None:
    data = videos["unrelated"].read_bytes()
    head = http_response_head(len(data), "video/mp4")
    with Conn(gw.port) as c:
        r = respmod(c, gw.port, data, preview=None, allow_204=False, res_head=head)
    assert r.status == 200 and r.body == data
