"""The ICAP protocol over a real socket: a table of raw requests and the reply each must get
(ClamAV's daemon tests' style), then the exchanges with a preview and 100 Continue."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.agent import wait_for
from support.gateway import (
    Conn,
    GatewayProcess,
    chunked,
    http_request_head,
    http_response_head,
    reqmod,
    respmod,
    start_gateway,
)
from support.planted import Tree
from support.server import run_cli

from vigil.gateway.config import BLOCK_PAGE

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def monitor(
    tmp_path_factory: pytest.TempPathFactory, catalog_home: Path
) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("monitor") / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home)
    yield g
    assert g.alive(), g.log_text()[-3000:]
    assert g.stop() == 0


@pytest.fixture(scope="module")
def block(tmp_path_factory: pytest.TempPathFactory, catalog_home: Path) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("block") / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--mode", "block")
    yield g
    assert g.alive(), g.log_text()[-3000:]
    assert g.stop() == 0


def _encap(*sections: tuple[str, bytes], body: str = "null-body") -> tuple[str, bytes]:
    parts, blob = [], b""
    for name, raw in sections:
        parts.append(f"{name}={len(blob)}")
        blob += raw
    parts.append(f"{body}={len(blob)}")
    return ", ".join(parts), blob


REQ = http_request_head("http://origin.test/page")
RES_TEXT = http_response_head(11, "text/plain")
TEXT = b"hello world"
ENC_TEXT, BLOB_TEXT = _encap(("req-hdr", REQ), ("res-hdr", RES_TEXT), body="res-body")
ENC_NULL, BLOB_NULL = _encap(("req-hdr", REQ), ("res-hdr", http_response_head(0)))


def _icap(method: str, service: str, headers: str, encapsulated: str | None = None) -> bytes:
    head = f"{method} icap://127.0.0.1/{service} ICAP/1.0\r\nHost: 127.0.0.1\r\n{headers}"
    if encapsulated is not None:
        head += f"Encapsulated: {encapsulated}\r\n"
    return (head + "\r\n").encode("latin-1")


# (case, raw request, expected ICAP status, the connection closes after it)
TABLE: list[tuple[str, bytes, int, bool]] = [
    ("options respmod", _icap("OPTIONS", "respmod", "", "null-body=0"), 200, False),
    ("options reqmod", _icap("OPTIONS", "reqmod", "", "null-body=0"), 200, False),
    ("options without Encapsulated", _icap("OPTIONS", "respmod", ""), 200, False),
    ("unknown service", _icap("OPTIONS", "avscan", "", "null-body=0"), 404, True),
    ("unknown method", _icap("PATCH", "respmod", "", "null-body=0"), 501, True),
    (
        "REQMOD on the respmod service",
        _icap("REQMOD", "respmod", "", ENC_NULL) + BLOB_NULL,
        405,
        True,
    ),
    ("ICAP/2.0", b"OPTIONS icap://127.0.0.1/respmod ICAP/2.0\r\n\r\n", 505, True),
    ("HTTP, not ICAP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, True),
    ("request line of two words", b"OPTIONS icap://127.0.0.1/respmod\r\n\r\n", 400, True),
    ("empty method", b" icap://127.0.0.1/respmod ICAP/1.0\r\n\r\n", 400, True),
    ("header without colon", _icap("OPTIONS", "respmod", "Broken header\r\n"), 400, True),
    ("RESPMOD without Encapsulated", _icap("RESPMOD", "respmod", "Allow: 204\r\n"), 400, True),
    (
        "Encapsulated out of order",
        _icap("RESPMOD", "respmod", "", "res-hdr=40, req-hdr=0, null-body=80"),
        400,
        True,
    ),
    ("Encapsulated unknown entity", _icap("RESPMOD", "respmod", "", "foo-hdr=0"), 400, True),
    (
        "Encapsulated body not last",
        _icap("RESPMOD", "respmod", "", "res-body=0, res-hdr=10"),
        400,
        True,
    ),
    (
        "Encapsulated headers of 2 GB",
        _icap("RESPMOD", "respmod", "", "res-hdr=0, null-body=2000000000"),
        400,
        True,
    ),
    (
        "Preview not a number",
        _icap("RESPMOD", "respmod", "Preview: lots\r\n", ENC_NULL) + BLOB_NULL,
        400,
        True,
    ),
    (
        "null-body, Allow: 204",
        _icap("RESPMOD", "respmod", "Allow: 204\r\n", ENC_NULL) + BLOB_NULL,
        204,
        False,
    ),
    (
        "null-body, no Allow: 204: echoed",
        _icap("RESPMOD", "respmod", "", ENC_NULL) + BLOB_NULL,
        200,
        False,
    ),
    (
        "text in a preview: 204 without Allow: 204",
        _icap("RESPMOD", "respmod", "Preview: 4\r\n", ENC_TEXT)
        + BLOB_TEXT
        + b"4\r\nhell\r\n0\r\n\r\n",
        204,
        False,
    ),
    (
        "text, no preview, Allow: 204",
        _icap("RESPMOD", "respmod", "Allow: 204\r\n", ENC_TEXT) + BLOB_TEXT + chunked(TEXT),
        204,
        False,
    ),
    (
        "chunk size not hex",
        _icap("RESPMOD", "respmod", "", ENC_TEXT) + BLOB_TEXT + b"zz\r\nhello\r\n0\r\n\r\n",
        400,
        True,
    ),
    (
        "chunk size of 17 hex digits",
        _icap("RESPMOD", "respmod", "", ENC_TEXT) + BLOB_TEXT + b"fffffffffffffffff\r\nx\r\n",
        400,
        True,
    ),
    (
        "chunk data without its CRLF",
        _icap("RESPMOD", "respmod", "", ENC_TEXT) + BLOB_TEXT + b"5\r\nhelloXX0\r\n\r\n",
        400,
        True,
    ),
    (
        "head over 64 KiB",
        _icap("OPTIONS", "respmod", "X-Long: " + "a" * 70000 + "\r\n"),
        400,
        True,
    ),
    (
        "res-hdr without its empty line",
        _icap("RESPMOD", "respmod", "", "res-hdr=0, null-body=19") + b"HTTP/1.1 200 OK\r\nX:",
        400,
        True,
    ),
]


@pytest.mark.parametrize(
    ("raw", "status", "closes"), [c[1:] for c in TABLE], ids=[c[0] for c in TABLE]
)
def test_table(monitor: GatewayProcess, raw: bytes, status: int, closes: bool) -> None:
    with Conn(monitor.port, timeout=60) as c:
        c.send(raw)
        reply = c.reply()
        assert reply.status == status, reply.raw_head
        assert reply.headers["istag"].startswith('"vigil-')
        if closes:
            assert c.closed_by_peer()
        else:
            # The connection stays usable: a second request on it is answered.
            c.send(_icap("OPTIONS", "respmod", "", "null-body=0"))
            assert c.reply().status == 200


def test_echo_of_text_without_preview_or_204(monitor: GatewayProcess) -> None:
    with Conn(monitor.port) as c:
        c.send(_icap("RESPMOD", "respmod", "", ENC_TEXT) + BLOB_TEXT + chunked(TEXT, 3))
        r = c.reply()
    assert r.status == 200
    assert r.sections["res-hdr"] == RES_TEXT
    assert r.body == TEXT


def test_echo_of_null_body_keeps_headers(monitor: GatewayProcess) -> None:
    with Conn(monitor.port) as c:
        c.send(_icap("RESPMOD", "respmod", "", ENC_NULL) + BLOB_NULL)
        r = c.reply()
    assert r.status == 200
    assert r.sections["res-hdr"] == http_response_head(0)
    assert r.body is None


def test_ieof_preview_is_never_continued(block: GatewayProcess, planted: Tree) -> None:
    """The whole body in the preview (`0; ieof`): the answer comes at once, never a 100."""
    data = planted.originals["coffee"]
    with Conn(block.port) as c:
        r = respmod(c, block.port, data, preview=len(data) + 10, allow_204=False)
    assert r.status == 200 and not r.continued
    assert r.http_status == 403
    assert r.body == BLOCK_PAGE.encode()


def test_preview_then_continue_then_block(block: GatewayProcess, planted: Tree) -> None:
    with Conn(block.port) as c:
        r = respmod(c, block.port, planted.originals["astronaut"], preview=4096)
        assert r.continued and r.status == 200 and r.http_status == 403
        # Then an unknown photo on the same connection: 204 after the whole body.
        other = (planted.root / "other/horse.jpg").read_bytes()
        r2 = respmod(c, block.port, other, preview=4096)
        assert r2.continued and r2.status == 204


def test_continued_without_allow_204_echoes_whole_body(
    monitor: GatewayProcess, planted: Tree
) -> None:
    """After a 100 Continue, 204 needs Allow: 204; without it the message comes back whole."""
    data = (planted.root / "other/brick.jpg").read_bytes()
    with Conn(monitor.port) as c:
        r = respmod(c, monitor.port, data, preview=1024, allow_204=False)
    assert r.continued and r.status == 200
    assert r.body == data


def test_non_media_is_decided_from_the_preview(monitor: GatewayProcess) -> None:
    page = b"<html>" + b"x" * 200_000 + b"</html>"
    with Conn(monitor.port) as c:
        r = respmod(
            c, monitor.port, page, preview=4096, res_head=http_response_head(len(page), "text/html")
        )
    assert r.status == 204 and not r.continued


def test_declared_length_over_the_limit_passes_from_the_preview(
    monitor: GatewayProcess, planted: Tree
) -> None:
    data = planted.originals["rocket"]
    head = http_response_head(10**12)  # a terabyte declared: never read
    with Conn(monitor.port) as c:
        r = respmod(c, monitor.port, data, preview=4096, res_head=head)
    assert r.status == 204 and not r.continued


def test_reqmod_block_answers_with_a_response(block: GatewayProcess, planted: Tree) -> None:
    with Conn(block.port) as c:
        r = reqmod(c, block.port, planted.originals["chelsea"], content_type="image/jpeg")
    assert r.status == 200 and r.http_status == 403
    assert "req-hdr" not in r.sections


def test_reqmod_echo_without_204(monitor: GatewayProcess, planted: Tree) -> None:
    data = (planted.root / "other/retina.jpg").read_bytes()
    with Conn(monitor.port) as c:
        r = reqmod(c, monitor.port, data, preview=None, allow_204=False)
    assert r.status == 200
    assert r.sections["req-hdr"].startswith(b"POST http://example.test/upload HTTP/1.1\r\n")
    assert r.body == data


def test_monitor_mode_streams_a_large_body_and_reports_after(
    monitor: GatewayProcess, planted: Tree
) -> None:
    """Over 32 KiB, monitor mode answers 200 at once and echoes the body as it arrives (Squid
    5.7 stops reading a fast origin until the service answers); the copy is fingerprinted once
    whole and its incident follows the answer."""
    data = planted.originals["astronaut"]
    assert len(data) > 32 * 1024
    with Conn(monitor.port) as c:
        r = respmod(c, monitor.port, data, url="http://stream.test/a.jpg")
    assert r.continued and r.status == 200 and r.body == data

    def reported() -> list[dict[str, object]]:
        lines = (monitor.home / "incidents.jsonl").read_text().splitlines()
        return [i for i in map(json.loads, lines) if i["url"] == "http://stream.test/a.jpg"]

    assert wait_for("the streamed body's incident", reported)


def test_no_stream_answers_after_the_whole_body(
    tmp_path: Path, catalog_home: Path, planted: Tree
) -> None:
    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--no-stream")
    try:
        with Conn(g.port) as c:
            r = respmod(c, g.port, planted.originals["astronaut"], url="http://whole.test/a.jpg")
        assert r.continued and r.status == 204
        # The incident was on disk before the answer.
        lines = (home / "incidents.jsonl").read_text().splitlines()
        assert {json.loads(x)["url"] for x in lines} == {"http://whole.test/a.jpg"}
    finally:
        assert g.stop() == 0


def test_options_without_preview_or_204(tmp_path: Path, catalog_home: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--preview", "-1", "--no-offer-204")
    try:
        with Conn(g.port) as c:
            c.send(_icap("OPTIONS", "respmod", "", "null-body=0"))
            r = c.reply()
        assert r.status == 200
        assert "preview" not in r.headers and "allow" not in r.headers
        assert "transfer-preview" not in r.headers
    finally:
        assert g.stop() == 0


def test_block_mode_offers_no_preview_for_downloads(block: GatewayProcess) -> None:
    """Squid 5.7 stalls a fast origin behind a preview the service answers only after the
    whole body (block mode's case): /respmod offers none there; uploads keep theirs."""
    with Conn(block.port) as c:
        c.send(_icap("OPTIONS", "respmod", "", "null-body=0"))
        resp = c.reply()
        c.send(_icap("OPTIONS", "reqmod", "", "null-body=0"))
        req = c.reply()
    assert "preview" not in resp.headers and resp.headers["allow"] == "204"
    assert req.headers["preview"] == "4096" and req.headers["transfer-preview"] == "*"


def test_block_mode_without_preview_streams_non_media(block: GatewayProcess) -> None:
    page = b"<html>" + b"w" * 300_000 + b"</html>"
    with Conn(block.port) as c:
        r = respmod(
            c,
            block.port,
            page,
            preview=None,
            allow_204=False,
            res_head=http_response_head(len(page), "text/html"),
        )
    assert r.status == 200 and r.body == page


def test_transfer_lists_are_advertised(tmp_path: Path, catalog_home: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--transfer-ignore", "css, .js", "--transfer-complete", "mp4")
    try:
        with Conn(g.port) as c:
            c.send(_icap("OPTIONS", "respmod", "", "null-body=0"))
            r = c.reply()
        assert r.headers["transfer-ignore"] == "css, js"
        assert r.headers["transfer-complete"] == "mp4"
        assert r.headers["transfer-preview"] == "*"
    finally:
        assert g.stop() == 0
    bad = run_cli("gateway", "run", "--home", str(home), "--transfer-ignore", "*")
    assert bad.returncode == 2 and "not a file extension" in bad.stderr


def test_idle_connections_are_closed_silently(tmp_path: Path, catalog_home: Path) -> None:
    """Between requests a connection may idle up to --idle-seconds, then it is closed without
    an answer (an ICAP error there would meet a request the proxy just started sending)."""
    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--idle-seconds", "1")
    try:
        with Conn(g.port) as c:
            c.send(_icap("OPTIONS", "respmod", "", "null-body=0"))
            assert c.reply().status == 200
            assert c.closed_by_peer()  # after a second of silence: closed, nothing sent
            assert c.buf == b""
    finally:
        assert g.stop() == 0
