"""The gateway driven by Debian's c-icap-client (package c-icap), the reference ICAP client."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from gateway.squid_fixture import icap_client_binary
from support.agent import wait_for
from support.planted import Tree

from vigil.gateway.config import BLOCK_PAGE

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


def icap_client(port: int, *args: str) -> str:
    """Run c-icap-client against the gateway; what it printed (it prints to stderr)."""
    done = subprocess.run(
        [icap_client_binary(), "-i", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        timeout=120,
        check=False,
    )
    out = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 0, out
    return out


def incidents(home: Path) -> list[dict[str, object]]:
    path = home / "incidents.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_options(gateway, planted: Tree) -> None:
    g = gateway()
    for service, method in (("respmod", "RESPMOD"), ("reqmod", "REQMOD")):
        out = icap_client(g.port, "-s", service, "-method", "OPTIONS")
        assert "ICAP/1.0 200 OK" in out
        assert f"Methods: {method}" in out
        assert "Allow 204: Yes" in out
        assert "Preview: 4096" in out
        assert "Transfer-Preview: *" in out
        assert 'ISTag: "vigil-' in out
        assert "Max-Connections: 1000" in out
        assert "Options-TTL: " in out


def test_respmod_known_image_with_preview_raises_incident(gateway, planted: Tree) -> None:
    g = gateway()
    photo = planted.root / "alt/chelsea-q50.jpg"
    out = icap_client(
        g.port,
        "-s", "respmod",
        "-f", str(photo),
        "-resp", "http://photos.test/cat.jpg",
        "-x", "X-Client-IP: 10.1.2.3",
        "-x", "X-Client-Username: alice",
        "-v",
    )  # fmt: skip
    assert "204 No Content" in out  # monitor mode: the image passes
    found = incidents(g.home)
    assert found, g.log_text()
    assert {i["url"] for i in found} == {"http://photos.test/cat.jpg"}
    assert {i["path"] for i in found} == {"http://photos.test/cat.jpg"}
    assert {i["client"] for i in found} == {"10.1.2.3"}
    assert {i["owner"] for i in found} == {None}
    assert {i["user"] for i in found} == {"alice"}
    assert {i["detection"] for i in found} == {"gateway"}
    assert {i["entry"]["id"] for i in found} == {"502"}  # chelsea's entry
    assert all(i["kind"] == "pdq" for i in found)  # re-encoded: a near match


def test_respmod_without_preview_or_204_echoes_unknown_image(
    gateway, planted: Tree, tmp_path: Path
) -> None:
    g = gateway()
    photo = planted.root / "other/moon.jpg"
    out = tmp_path / "out.jpg"
    icap_client(
        g.port, "-s", "respmod", "-f", str(photo), "-o", str(out), "-nopreview", "-no204",
        "-resp", "http://photos.test/moon.jpg",
    )  # fmt: skip
    assert out.read_bytes() == photo.read_bytes()
    assert incidents(g.home) == []


def test_respmod_without_preview_echoes_known_image_in_monitor_mode(
    gateway, planted: Tree, tmp_path: Path
) -> None:
    g = gateway()
    photo = planted.root / "alt/astronaut-mirror.jpg"
    out = tmp_path / "out.jpg"
    icap_client(
        g.port, "-s", "respmod", "-f", str(photo), "-o", str(out), "-nopreview", "-no204",
        "-resp", "http://photos.test/a.jpg",
    )  # fmt: skip
    assert out.read_bytes() == photo.read_bytes()
    # Over 32 KiB, the body was echoed as it arrived and fingerprinted after the answer.
    found = wait_for("the incident", lambda: incidents(g.home))
    assert [i["transform"] for i in found] == ["flipy"]


def test_reqmod_upload_of_known_image(gateway, planted: Tree) -> None:
    g = gateway()
    icap_client(
        g.port, "-s", "reqmod", "-req", "http://upload.test/put", "-method", "POST",
        "-f", str(planted.root / "docs/report.txt"), "-x", "X-Client-IP: 10.9.9.9",
    )  # fmt: skip
    found = wait_for("the incidents", lambda: incidents(g.home))
    assert found, g.log_text()
    assert {(i["url"], i["icap"], i["client"]) for i in found} == {
        ("http://upload.test/put", "REQMOD", "10.9.9.9")
    }
    assert {i["kind"] for i in found} >= {"sha256"}  # the exact file


def test_reqmod_unknown_upload_passes(gateway, planted: Tree, tmp_path: Path) -> None:
    g = gateway()
    photo = planted.root / "other/camera.jpg"
    out = tmp_path / "out"
    icap_client(
        g.port, "-s", "reqmod", "-req", "http://upload.test/put", "-method", "PUT",
        "-f", str(photo), "-o", str(out), "-no204", "-nopreview",
    )  # fmt: skip
    assert out.read_bytes() == photo.read_bytes()
    assert incidents(g.home) == []


def test_block_mode(gateway, planted: Tree, tmp_path: Path) -> None:
    g = gateway("--mode", "block")
    out = tmp_path / "blocked.html"
    done = icap_client(
        g.port, "-s", "respmod", "-f", str(planted.root / "alt/rocket-half.png"),
        "-o", str(out), "-resp", "http://photos.test/rocket.png", "-v",
    )  # fmt: skip
    assert "HTTP/1.1 403 Forbidden" in done
    assert out.read_text() == BLOCK_PAGE
    assert [i["entry"]["id"] for i in incidents(g.home)] == ["503"]
    # An unknown image passes unchanged, in block mode too.
    photo = planted.root / "other/coins.jpg"
    out2 = tmp_path / "coins.jpg"
    icap_client(
        g.port, "-s", "respmod", "-f", str(photo), "-o", str(out2), "-no204",
        "-resp", "http://photos.test/coins.jpg",
    )  # fmt: skip
    assert out2.read_bytes() == photo.read_bytes()


def test_block_page_is_configurable(gateway, planted: Tree, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html><body>Stopped by the proxy of Example Ltd.</body></html>")
    g = gateway("--mode", "block", "--block-page", str(page))
    out = tmp_path / "blocked.html"
    icap_client(
        g.port, "-s", "reqmod", "-req", "http://upload.test/put", "-method", "POST",
        "-f", str(planted.root / "docs/report.txt"), "-o", str(out),
    )  # fmt: skip
    assert out.read_text() == page.read_text()
