"""Malformed and hostile ICAP input, slow clients and bursts: the gateway keeps answering,
loses no incident, and its memory stays bounded."""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support.agent import wait_for
from support.gateway import (
    Conn,
    GatewayProcess,
    chunked,
    http_request_head,
    http_response_head,
    respmod,
    start_gateway,
)
from support.planted import Tree

# Real processes over loopback: run in the suite's process-parallel group (scripts/test).
pytestmark = pytest.mark.e2e

READ_SECONDS = 2  # the gateway's --read-seconds here: slow clients are cut after this
BURST = 200


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, catalog_home: Path) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("robust") / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(
        home, "--read-seconds", str(READ_SECONDS), "--memory-per-object", "256K", "--workers", "2"
    )
    yield g
    assert g.alive(), g.log_text()[-3000:]
    assert g.stop() == 0


def answers(g: GatewayProcess) -> bool:
    """The gateway answers an OPTIONS on a new connection."""
    with Conn(g.port, timeout=60) as c:
        c.send(
            b"OPTIONS icap://127.0.0.1/respmod ICAP/1.0\r\nHost: x\r\nEncapsulated: null-body=0\r\n\r\n"
        )
        return c.reply().status == 200


def incidents(g: GatewayProcess) -> list[dict[str, object]]:
    path = g.home / "incidents.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def valid_request(body: bytes, preview: int | None = None) -> bytes:
    """A RESPMOD with its whole body, or only its preview's first `preview` bytes."""
    req = http_request_head("http://origin.test/x.jpg")
    res = http_response_head(len(body))
    head = (
        "RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nHost: 127.0.0.1\r\nAllow: 204\r\n"
        + (f"Preview: {preview}\r\n" if preview is not None else "")
        + f"Encapsulated: req-hdr=0, res-hdr={len(req)}, res-body={len(req) + len(res)}\r\n\r\n"
    ).encode()
    sent = body if preview is None else body[:preview]
    return head + req + res + b"%x\r\n%s\r\n0\r\n\r\n" % (len(sent), sent)


def send_and_read(port: int, data: bytes) -> bytes:
    """Send raw bytes, half-close, and read whatever comes back until the gateway closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            return b""
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return out


def test_fuzzed_requests_get_icap_errors_and_never_stop_the_service(gw: GatewayProcess) -> None:
    rng = random.Random(1344)
    base = valid_request(b"\xff\xd8\xff\xe0" + bytes(rng.randrange(256) for _ in range(3000)))
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            i = rng.randrange(len(data))
            if op < 0.4:
                data[i] = rng.randrange(256)
            elif op < 0.6:
                del data[i : i + rng.randint(1, 40)]
            elif op < 0.8:
                data[i:i] = rng.choice(
                    [b"\r\n", b":", b"\r\n\r\n", b"ffffffff", b";ieof", b"\x00", b" " * 50]
                )
            else:
                data = data[: rng.randrange(len(data))]
        out = send_and_read(gw.port, bytes(data))
        # Whatever came back is ICAP: an answer or an error, never anything else.
        assert out == b"" or out.startswith(b"ICAP/1.0 "), out[:200]
    assert gw.alive() and answers(gw)


@pytest.mark.parametrize(
    "cut",
    [
        b"RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nHost: x\r\nEncapsu",
        b"RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=200\r\n\r\nHTTP/1.1 200",
        "body half sent",
        "preview sent, body after 100 Continue half sent",
    ],
)
def test_early_disconnects(gw: GatewayProcess, planted: Tree, cut: bytes | str) -> None:
    data = planted.originals["astronaut"]
    for _ in range(10):
        with Conn(gw.port) as c:
            if cut == "body half sent":
                c.send(valid_request(data)[: 2000 + len(data) // 2])
            elif cut == "preview sent, body after 100 Continue half sent":
                c.send(valid_request(data, preview=1024))
                assert c.reply().status == 100
                c.send(b"%x\r\n" % (len(data) - 1024) + data[1024 : 1024 + len(data) // 3])
            else:
                assert isinstance(cut, bytes)
                c.send(cut)
    assert gw.alive() and answers(gw)


def test_a_body_that_stops_coming_is_cut_and_the_next_waits_for_each_piece(
    gw: GatewayProcess, planted: Tree
) -> None:
    """--read-seconds bounds the wait for each piece of a body, not the body: a client that
    stops mid-body is answered 408 and closed; one whose pieces keep coming, each sooner than
    that but the whole slower, is served."""
    data = (planted.root / "other/moon.jpg").read_bytes()[:20_000]  # held whole (< 32 KiB)
    whole = valid_request(data)
    head = whole[: whole.index(b"\r\n\r\n", whole.index(b"HTTP/1.1 200 OK")) + 4]
    with socket.create_connection(("127.0.0.1", gw.port), timeout=60) as s:
        s.sendall(head + b"%x\r\n%s\r\n" % (4096, data[:4096]))
        out = b""
        while chunk := s.recv(65536):  # nothing more is sent
            out += chunk
    assert out.startswith(b"ICAP/1.0 408 "), out[:200]
    pieces = [data[i : i + 2000] for i in range(0, len(data), 2000)]
    with socket.create_connection(("127.0.0.1", gw.port), timeout=60) as s:
        s.sendall(head)
        for piece in pieces:  # 10 pieces, each 1 s after the last: 10 s in all, > 2 s
            time.sleep(READ_SECONDS / 2)
            s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        s.sendall(b"0\r\n\r\n")
        reply = s.recv(65536)
    assert reply.startswith(b"ICAP/1.0 204 "), reply[:200]
    assert answers(gw)


def test_huge_declared_chunk_then_disconnect(gw: GatewayProcess) -> None:
    data = valid_request(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    head = data[: data.index(b"\xff\xd8") - len(b"68\r\n")]
    for _ in range(10):
        with Conn(gw.port) as c:
            c.send(head + b"fffffffffff\r\n" + b"\xff\xd8\xff\xe0" + b"\0" * 100_000)
    assert gw.alive() and answers(gw)


def test_slow_loris_is_cut_and_stalls_nobody(gw: GatewayProcess, planted: Tree) -> None:
    slow = [socket.create_connection(("127.0.0.1", gw.port), timeout=60) for _ in range(30)]
    try:
        for s in slow:
            s.sendall(b"RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\n")
        # Others are served meanwhile, a known image among them.
        with Conn(gw.port) as c:
            r = respmod(
                c, gw.port, planted.originals["rocket"], headers="X-Client-IP: 10.0.0.77\r\n"
            )
            # Monitor mode: passed (a body over 32 KiB is echoed as it arrives).
            assert r.status == 204 or r.body == planted.originals["rocket"]
        wait_for("the incident", lambda: any(i["client"] == "10.0.0.77" for i in incidents(gw)))
        # The slow ones, a byte now and then, are answered 408 and closed.
        for s in slow:
            s.sendall(b"H")
        replies = []
        for s in slow:
            out = b""
            while True:
                try:
                    s.sendall(b"o")
                except OSError:
                    pass
                try:
                    data = s.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                out += data
            replies.append(out)
        assert all(r.startswith(b"ICAP/1.0 408 ") for r in replies), replies[:3]
    finally:
        for s in slow:
            s.close()
    assert answers(gw)


def test_burst_of_200_loses_no_incident_and_memory_stays_bounded(
    gw: GatewayProcess, planted: Tree
) -> None:
    known = planted.originals["chelsea"]
    unknown = (planted.root / "other/motorcycle_left.jpg").read_bytes()
    # Large bodies sniffed as images (a JPEG's magic, then noise): read whole, held mostly on
    # disk (--memory-per-object 256K), fingerprinted (undecodable), passed.
    rng = random.Random(7)
    large = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(3 * 1024 * 1024)
    text = b"<html>" + b"y" * 500_000 + b"</html>"
    before = gw.rss_kib()
    seen_before = len(incidents(gw))

    def one(i: int) -> tuple[int, int, bytes | None]:
        body = (known, unknown, large, text)[i % 4]
        ctype = "text/html" if i % 4 == 3 else "image/jpeg"
        with Conn(gw.port) as c:
            r = respmod(
                c,
                gw.port,
                body,
                url=f"http://burst.test/{i}",
                preview=4096 if i % 2 else None,
                allow_204=i % 8 not in (2, 3),
                res_head=http_response_head(len(body), ctype),
                headers=f"X-Client-IP: 10.2.{i // 250}.{i % 250}\r\n",
            )
            return i, r.status, r.body

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        results = list(pool.map(one, range(BURST)))
    for i, status, body in results:
        if status == 200:  # no 204 allowed: the whole message echoed
            assert body == (known, unknown, large, text)[i % 4], i
        else:
            assert status == 204, (i, status)
    burst = [
        x for x in incidents(gw)[seen_before:] if str(x["url"]).startswith("http://burst.test/")
    ]
    expected = {f"http://burst.test/{i}" for i in range(0, BURST, 4)}
    assert {x["url"] for x in burst} == expected
    grown_mib = (gw.rss_kib() - before) / 1024
    # 200 bodies of up to 3 MiB at once would be 600 MiB held in memory.
    assert grown_mib < 150, f"RSS grew by {grown_mib:.0f} MiB"
    assert answers(gw)


def test_connections_over_the_limit_get_503(tmp_path: Path, catalog_home: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--max-connections", "5")
    try:
        held = [Conn(g.port) for _ in range(5)]
        for c in held:  # each is open and served
            c.send(
                b"OPTIONS icap://127.0.0.1/respmod ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n"
            )
            assert c.reply().status == 200
        with Conn(g.port) as extra:
            assert extra.reply().status == 503
            assert extra.closed_by_peer()
        held.pop().close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the freed slot is given to the next one
            with Conn(g.port) as c:
                c.send(
                    b"OPTIONS icap://127.0.0.1/respmod ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n"
                )
                if c.reply().status == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("a freed connection slot was not reused")
        for c in held:
            c.close()
    finally:
        assert g.stop() == 0


def test_sigterm_finishes_the_request_in_progress(
    tmp_path: Path, catalog_home: Path, planted: Tree
) -> None:
    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--mode", "block", metrics=True)
    data = planted.originals["astronaut"]
    whole = valid_request(data)
    head = whole[: whole.index(b"HTTP/1.1 200 OK")]
    head = whole[: whole.index(b"\r\n\r\n", len(head)) + 4]  # up to the res-hdr's end
    full = head + chunked(data, 4096)
    cut = len(full) // 2
    with Conn(g.port) as c:
        c.send(full[:cut])  # the head and half the body

        def body_bytes() -> float:
            text = httpx.get(f"http://127.0.0.1:{g.metrics_port}/metrics", timeout=30).text
            line = next(
                x for x in text.splitlines() if x.startswith("vigil_gateway_body_bytes_total")
            )
            return float(line.split()[1])

        wait_for("the gateway reading the body", lambda: body_bytes() > 0)
        g.proc.send_signal(signal.SIGTERM)
        c.send(full[cut:])
        r = c.reply()
    assert r.status == 200 and r.http_status == 403
    assert g.proc.wait(timeout=120) == 0
    lines = (home / "incidents.jsonl").read_text().splitlines()
    assert [json.loads(x)["url"] for x in lines] == ["http://origin.test/x.jpg"]


def test_streamed_bodies_queue_is_bounded(
    tmp_path: Path, catalog_home: Path, planted: Tree
) -> None:
    """Monitor mode answers before fingerprinting; when the worker is behind, new answers wait
    for a place in the queue (1 worker: 4 places) instead of the queue growing with traffic,
    and every body is still reported."""
    import io

    from PIL import Image

    home = tmp_path / "home"
    shutil.copytree(catalog_home, home)
    g = start_gateway(home, "--workers", "1", metrics=True)
    big = Image.open(io.BytesIO(planted.originals["astronaut"])).resize((3000, 3000))
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    seen: list[float] = []
    done = False

    def sample() -> None:
        while not done:
            text = httpx.get(f"http://127.0.0.1:{g.metrics_port}/metrics", timeout=30).text
            line = next(
                x for x in text.splitlines() if x.startswith("vigil_gateway_streamed_backlog ")
            )
            seen.append(float(line.split()[1]))

    def one(i: int) -> bytes | None:
        with Conn(g.port) as c:
            return respmod(c, g.port, data, url=f"http://queue.test/{i}").body

    try:
        with ThreadPoolExecutor(max_workers=13) as pool:
            sampler = pool.submit(sample)
            bodies = list(pool.map(one, range(12)))
            done = True
            sampler.result()
        assert all(b == data for b in bodies)
        # Full (the worker was behind), and never over.
        assert max(seen) == 4, max(seen)
        wait_for(
            "every body reported",
            lambda: (
                {i["url"] for i in incidents(g)} == {f"http://queue.test/{i}" for i in range(12)}
            ),
        )
    finally:
        assert g.stop() == 0
