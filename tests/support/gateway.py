"""Driving real `vigil gateway run` processes from tests, and a small ICAP client that speaks
the protocol over a socket byte for byte (previews, 100 Continue, chunked replies)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.server import VIGIL, free_port

START_SECONDS = 120


@dataclass
class GatewayProcess:
    """A running gateway: its home, port, log and process."""

    home: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes]
    metrics_port: int | None = None

    def rss_kib(self) -> int:
        """Resident memory of the gateway and its worker processes (KiB)."""
        pids = [self.proc.pid]
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
        total = 0
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            total += next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
        return total

    def alive(self) -> bool:
        """The process has not exited."""
        return self.proc.poll() is None

    def log_text(self) -> str:
        """What it logged."""
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, wait; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_gateway(home: Path, *options: str, metrics: bool = False) -> GatewayProcess:
    """`vigil gateway run --home HOME --listen 127.0.0.1:PORT OPTIONS`, once it accepts
    connections."""
    port = free_port()
    args = [*VIGIL, "gateway", "run", "--home", str(home), "--listen", f"127.0.0.1:{port}"]
    metrics_port = None
    if metrics:
        metrics_port = free_port()
        args += ["--metrics", f"127.0.0.1:{metrics_port}"]
    log = home / f"gateway-{port}.log"
    env = dict(os.environ)
    env.pop("VIGIL_HOME", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen([*args, *options], stdout=out, stderr=subprocess.STDOUT, env=env)
    g = GatewayProcess(home, port, log, proc, metrics_port)
    deadline = time.monotonic() + START_SECONDS
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the gateway exited: {g.log_text()[-3000:]}")
        if "gateway listening" in g.log_text():
            break
        if time.monotonic() > deadline:
            g.stop()
            raise AssertionError(f"the gateway did not start: {g.log_text()[-3000:]}")
        time.sleep(0.2)
    return g


@dataclass
class Reply:
    """An ICAP reply as read off the wire."""

    status: int
    headers: dict[str, str]
    sections: dict[str, bytes] = field(default_factory=dict)
    body: bytes | None = None
    raw_head: bytes = b""
    continued: bool = False  # a 100 Continue came first

    @property
    def http_status(self) -> int | None:
        """The status of an encapsulated HTTP response."""
        head = self.sections.get("res-hdr")
        return int(head.split(b" ", 2)[1]) if head else None


class Conn:
    """One ICAP connection (persistent: several requests may follow)."""

    def __init__(self, port: int, timeout: float = 120) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        """Raw bytes to the gateway."""
        self.sock.sendall(data)

    def send_reading(self, data: bytes) -> Reply:
        """Send while reading the reply, as a proxy does (a gateway may answer early and echo
        the body as it arrives)."""
        import threading

        failed: list[BaseException] = []

        def write() -> None:
            try:
                self.sock.sendall(data)
            except OSError as e:
                failed.append(e)

        t = threading.Thread(target=write, daemon=True)
        t.start()
        try:
            return self.reply()
        finally:
            t.join(timeout=120)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def read_until(self, sep: bytes) -> bytes:
        """Bytes up to and including `sep`."""
        while sep not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed before {sep!r}; had {self.buf[:200]!r}")
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exactly(self, n: int) -> bytes:
        """Exactly n bytes."""
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("closed early")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def closed_by_peer(self) -> bool:
        """The gateway closed the connection (nothing more to read)."""
        if self.buf:
            return False
        try:
            return not self._fill()
        except (ConnectionResetError, TimeoutError):
            return True

    def reply(self) -> Reply:
        """The next reply: its head, encapsulated HTTP heads and chunked body."""
        head = self.read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        r = Reply(status, headers, raw_head=head)
        enc = headers.get("encapsulated")
        if status == 100 or not enc:
            return r
        parts = [(p.split("=")[0].strip(), int(p.split("=")[1])) for p in enc.split(",")]
        end = parts[-1][1]
        blob = self.read_exactly(end)
        for (name, start), (_, stop) in zip(parts, parts[1:], strict=False):
            r.sections[name] = blob[start:stop]
        if parts[-1][0] != "null-body":
            body = b""
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.read_until(b"\r\n")
                    break
                body += self.read_exactly(size)
                assert self.read_exactly(2) == b"\r\n"
            r.body = body
        return r


def chunked(data: bytes, size: int = 65536) -> bytes:
    """A chunked body with its last chunk."""
    out = b"".join(
        b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size])
        for i in range(0, len(data), size)
    )
    return out + b"0\r\n\r\n"


def http_response_head(
    body_length: int | None, content_type: str = "image/jpeg", extra: str = ""
) -> bytes:
    """An origin's response head."""
    length = f"Content-Length: {body_length}\r\n" if body_length is not None else ""
    return (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{length}{extra}\r\n").encode(
        "latin-1"
    )


def http_request_head(url: str, method: str = "GET", extra: str = "") -> bytes:
    """A client's request head as a proxy forwards it."""
    host = url.split("/")[2]
    return f"{method} {url} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")


def respmod(
    conn: Conn,
    port: int,
    body: bytes | None,
    *,
    url: str = "http://example.test/x.jpg",
    preview: int | None = 4096,
    allow_204: bool = True,
    res_head: bytes | None = None,
    headers: str = "",
) -> Reply:
    """A RESPMOD as Squid sends it (preview, then the rest after 100 Continue)."""
    req = http_request_head(url)
    res = res_head or http_response_head(len(body) if body is not None else 0)
    return _modify(
        conn,
        port,
        "RESPMOD",
        "respmod",
        [("req-hdr", req), ("res-hdr", res)],
        "res-body",
        body,
        preview,
        allow_204,
        headers,
    )


def reqmod(
    conn: Conn,
    port: int,
    body: bytes | None,
    *,
    url: str = "http://example.test/upload",
    method: str = "POST",
    content_type: str = "application/octet-stream",
    preview: int | None = 4096,
    allow_204: bool = True,
    headers: str = "",
) -> Reply:
    """A REQMOD of an upload."""
    length = len(body) if body is not None else 0
    req = http_request_head(
        url, method, f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
    )
    return _modify(
        conn,
        port,
        "REQMOD",
        "reqmod",
        [("req-hdr", req)],
        "req-body",
        body,
        preview,
        allow_204,
        headers,
    )


def _modify(
    conn: Conn,
    port: int,
    method: str,
    service: str,
    sections: list[tuple[str, bytes]],
    body_name: str,
    body: bytes | None,
    preview: int | None,
    allow_204: bool,
    headers: str,
) -> Reply:
    enc, blob = [], b""
    for name, raw in sections:
        enc.append(f"{name}={len(blob)}")
        blob += raw
    enc.append(f"{body_name if body is not None else 'null-body'}={len(blob)}")
    head = f"{method} icap://127.0.0.1:{port}/{service} ICAP/1.0\r\nHost: 127.0.0.1\r\n"
    if allow_204:
        head += "Allow: 204\r\n"
    if preview is not None and body is not None:
        head += f"Preview: {preview}\r\n"
    head += headers
    head += "Encapsulated: " + ", ".join(enc) + "\r\n\r\n"
    msg = head.encode("latin-1") + blob
    if body is None:
        conn.send(msg)
        return conn.reply()
    if preview is None:
        return conn.send_reading(msg + chunked(body))
    first, rest = body[:preview], body[preview:]
    if rest:
        conn.send(msg + (b"%x\r\n%s\r\n" % (len(first), first) if first else b"") + b"0\r\n\r\n")
    else:
        conn.send(
            msg + (b"%x\r\n%s\r\n" % (len(first), first) if first else b"") + b"0; ieof\r\n\r\n"
        )
        return conn.reply()
    r = conn.reply()
    if r.status != 100:
        return r
    final = conn.send_reading(chunked(rest))
    final.continued = True
    return final
