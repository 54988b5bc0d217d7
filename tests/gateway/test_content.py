"""What the gateway fingerprints: encoded bodies (gzip, deflate, br) decoded first, multipart
uploads part by part, archives; a decompression bomb bounded; the ISTag follows the catalog;
the counters in /metrics."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import brotli
import httpx
import pytest
from support.agent import wait_for
from support.gateway import Conn, GatewayProcess, http_response_head, reqmod, respmod, start_gateway
from support.planted import Tree
from support.server import run_cli

from vigil.gateway.content import Body, Decoded, TooLarge, split_multipart

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, catalog_home: Path) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("content") / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--mode", "block", "--max-object-size", "20M", metrics=True)
    yield g
    assert g.alive(), g.log_text()[-3000:]
    assert g.stop() == 0


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODINGS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": deflate_raw,
    "br": brotli.compress,
    "gzip, br": lambda d: brotli.compress(gzip.compress(d)),
}


@pytest.mark.parametrize("coding", list(ENCODINGS))
def test_encoded_known_image_is_blocked(gw: GatewayProcess, planted: Tree, coding: str) -> None:
    body = ENCODINGS[coding](planted.originals["coffee"])
    name = coding.replace("deflate-raw", "deflate")
    head = http_response_head(len(body), extra=f"Content-Encoding: {name}\r\n")
    with Conn(gw.port) as c:
        r = respmod(c, gw.port, body, res_head=head, preview=4096)
    assert r.http_status == 403, gw.log_text()[-2000:]


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_encoded_unknown_image_passes_byte_for_byte(
    gw: GatewayProcess, planted: Tree, coding: str
) -> None:
    body = ENCODINGS[coding]((planted.root / "other/camera.jpg").read_bytes())
    head = http_response_head(len(body), extra=f"Content-Encoding: {coding}\r\n")
    with Conn(gw.port) as c:
        r = respmod(c, gw.port, body, res_head=head, preview=4096, allow_204=False)
    assert r.status == 200 and r.body == body


def test_known_image_in_a_zip_is_blocked(gw: GatewayProcess, planted: Tree) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("holiday/IMG_0001.jpg", planted.originals["rocket"])
        z.writestr("readme.txt", "photos")
    with Conn(gw.port) as c:
        r = respmod(
            c,
            gw.port,
            buf.getvalue(),
            res_head=http_response_head(len(buf.getvalue()), "application/zip"),
        )
    assert r.http_status == 403


def test_multipart_upload_of_known_image_is_caught(gw: GatewayProcess, planted: Tree) -> None:
    boundary = "----vigiltest7MA4YWxkTrZu0gW"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nmy holiday\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="cat.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + planted.originals["chelsea"]
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with Conn(gw.port) as c:
        r = reqmod(
            c,
            gw.port,
            body,
            url="http://forum.test/post",
            content_type=f"multipart/form-data; boundary={boundary}",
            headers="X-Client-IP: 10.5.5.5\r\n",
        )
    assert r.http_status == 403
    found = [json.loads(x) for x in (gw.home / "incidents.jsonl").read_text().splitlines()]
    mine = [i for i in found if i["url"] == "http://forum.test/post"]
    assert mine and {i["member"] for i in mine} == {"cat.jpg"}
    assert {i["icap"] for i in mine} == {"REQMOD"}


def test_multipart_upload_of_unknown_image_passes(gw: GatewayProcess, planted: Tree) -> None:
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="f"; filename="m.jpg"\r\n\r\n'
        ).encode()
        + (planted.root / "other/moon.jpg").read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with Conn(gw.port) as c:
        r = reqmod(
            c,
            gw.port,
            body,
            content_type=f"multipart/form-data; boundary={boundary}",
            allow_204=False,
            preview=None,
        )
    assert r.status == 200 and r.body == body


def test_gzip_bomb_is_bounded(gw: GatewayProcess) -> None:
    # 64 MiB of zeros behind a JPEG's magic, gzipped to ~64 KiB: decoded only up to the
    # limit (--max-object-size 20M), then passed as too large; the service is unharmed.
    bomb = gzip.compress(b"\xff\xd8\xff\xe0" + bytes(64 * 1024 * 1024))
    head = http_response_head(len(bomb), extra="Content-Encoding: gzip\r\n")
    before = gw.rss_kib()
    with Conn(gw.port) as c:
        r = respmod(c, gw.port, bomb, res_head=head)
    assert r.status == 204
    assert (gw.rss_kib() - before) / 1024 < 60


def test_decoded_stream_stops_at_its_limit() -> None:
    data = gzip.compress(bytes(10_000_000))
    with pytest.raises(TooLarge):
        Decoded(io.BytesIO(data), ["gzip"], 1_000_000).read()
    assert Decoded(io.BytesIO(data), ["gzip"], 10_000_000).read() == bytes(10_000_000)
    br = brotli.compress(bytes(10_000_000))
    with pytest.raises(TooLarge):
        Decoded(io.BytesIO(br), ["br"], 1_000_000).read()


def test_body_spills_to_a_file_above_its_memory() -> None:
    body = Body(memory=1000)
    body.write(b"a" * 600)
    assert not body.spilled
    body.write(b"b" * 600)
    assert body.spilled
    assert b"".join(body.pieces()) == b"a" * 600 + b"b" * 600
    assert body.head(700) == b"a" * 600 + b"b" * 100
    body.close()


def test_multipart_parts() -> None:
    raw = (
        b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\none\r\n'
        b'--XX\r\nContent-Disposition: form-data; name="b"; filename="x.bin"\r\n\r\n\x00\x01\r\n'
        b"--XX--\r\n"
    )
    parts = split_multipart(io.BytesIO(raw), b"XX", 1024, 10_000)
    assert [(p.name, p.filename, b"".join(p.body.pieces())) for p in parts] == [
        ("a", None, b"one"),
        ("b", "x.bin", b"\x00\x01"),
    ]


def metric(g: GatewayProcess, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{g.metrics_port}/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_matches_and_passes(gw: GatewayProcess, planted: Tree) -> None:
    blocked = metric(gw, "vigil_gateway_blocked_total")
    not_media = metric(gw, 'vigil_gateway_passes_total{reason="not_media"}')
    with Conn(gw.port) as c:
        respmod(c, gw.port, planted.originals["astronaut"])
        respmod(c, gw.port, b"plain text " * 1000, res_head=http_response_head(11000, "text/plain"))
    assert metric(gw, "vigil_gateway_blocked_total") == blocked + 1
    assert metric(gw, 'vigil_gateway_passes_total{reason="not_media"}') == not_media + 1
    assert metric(gw, 'vigil_gateway_requests_total{method="RESPMOD"') >= 2
    assert metric(gw, "vigil_gateway_latency_seconds_count") >= 2
    assert metric(gw, 'vigil_gateway_limit{name="max_object_size"}') == 20 * 1024 * 1024


def test_istag_changes_when_the_catalog_changes(
    tmp_path: Path, catalog_home: Path, planted: Tree
) -> None:
    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home)
    try:

        def istag() -> str:
            with Conn(g.port) as c:
                c.send(
                    b"OPTIONS icap://127.0.0.1/respmod ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n"
                )
                return c.reply().headers["istag"]

        first = istag()
        assert istag() == first
        extra = tmp_path / "more.md5"
        extra.write_text("0123456789abcdef0123456789abcdef  something\n")
        done = run_cli("--home", str(home), "hashset", "import", str(extra), "--name", "more")
        assert done.returncode == 0, done.stderr
        wait_for("a new ISTag", lambda: istag() != first)
    finally:
        assert g.stop() == 0


def _ranged_head(first: int, last: int, total: int) -> bytes:
    return (
        f"HTTP/1.1 206 Partial Content\r\nContent-Type: image/jpeg\r\n"
        f"Content-Range: bytes {first}-{last}/{total}\r\nContent-Length: {last - first + 1}\r\n\r\n"
    ).encode("latin-1")


def test_a_piece_of_a_known_photo_passes_as_partial_and_a_whole_range_is_checked(
    gw: GatewayProcess, planted: Tree
) -> None:
    data = planted.originals["chelsea"]
    piece = data[: len(data) // 2]
    partial = metric(gw, 'vigil_gateway_passes_total{reason="partial"}')
    with Conn(gw.port) as c:
        # A piece (a range request): decided from the preview, never read further, counted.
        r = respmod(
            c,
            gw.port,
            piece,
            url="http://ranged.test/piece.jpg",
            res_head=_ranged_head(0, len(piece) - 1, len(data)),
        )
        assert r.status == 204 and not r.continued
        # The whole object in a 206 (what `Range: bytes=0-` mostly gets): fingerprinted.
        r = respmod(
            c,
            gw.port,
            data,
            url="http://ranged.test/whole.jpg",
            res_head=_ranged_head(0, len(data) - 1, len(data)),
        )
        assert r.continued and r.http_status == 403
    assert metric(gw, 'vigil_gateway_passes_total{reason="partial"}') == partial + 1
    lines = (gw.home / "incidents.jsonl").read_text().splitlines()
    urls = {json.loads(x)["url"] for x in lines}
    assert "http://ranged.test/whole.jpg" in urls
    assert "http://ranged.test/piece.jpg" not in urls
