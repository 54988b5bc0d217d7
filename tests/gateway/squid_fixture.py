"""A real Squid (Debian's `squid`, run by the test as `squid -N -f FILE`) in front of a gateway,
and a local origin that serves bodies written at once or trickled.

Squid listens on a loopback port, keeps its pid file and logs in a temporary folder, caches
nothing, and calls the gateway with the squid.conf lines the README documents (`icap_lines`).
The origin writes a response's head and whole body in one `sendall` (what a fast server or a
CDN does; Squid 5.7 stalls there unless the ICAP service streams or a delay pool kicks it, see
docs/gateway.md "Squid"), or in 8 KB pieces 5 ms apart with `?trickle=1`.

Used by tests/gateway/test_squid.py and benchmarks/bench_gateway.py.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

START_SECONDS = 60
TRICKLE_PIECE = 8192
TRICKLE_PAUSE = 0.005


def squid_binary() -> str:
    """Debian's squid (in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("squid") or (
        "/usr/sbin/squid" if Path("/usr/sbin/squid").exists() else None
    )
    if found is None:
        raise AssertionError(
            "squid is not installed (Debian package `squid`; scripts/test installs it)"
        )
    return found


def icap_client_binary() -> str:
    """Debian's c-icap-client (package c-icap); missing, the test fails (never skipped)."""
    found = shutil.which("c-icap-client")
    if found is None:
        raise AssertionError(
            "c-icap-client is not installed (Debian package c-icap; scripts/test installs it)"
        )
    return found


# Monitor mode: Squid 5.7 may mark a whole response the gateway echoed as truncated and then
# close the client's persistent connection (Squid bug 5279, docs/gateway.md "Closed client
# connections"); a store that can hold a whole object never waits for the client in between.
# Not in block mode: there Squid would read its server in pieces of up to 4 MB, filling its
# 64 KB buffer toward the gateway at once, and every body over 64 KB would stall (see below).
READ_AHEAD_GAP = "read_ahead_gap 4 MB"
MONITOR_MODE_LINES = [READ_AHEAD_GAP]


def icap_lines(
    icap_port: int,
    host: str = "127.0.0.1",
    skip_types: Sequence[str] = (),
    tls_cafile: Path | None = None,
) -> list[str]:
    """The squid.conf lines of the README: every response and upload through the gateway
    (`skip_types`: rep_mime_type patterns of responses Squid does not send, the optional
    lines of docs/gateway.md "Skipping declared types"; `tls_cafile`: ICAP over TLS, the
    gateway's certificate checked against this CA file)."""
    scheme, tls = ("icaps", f"tls-cafile={tls_cafile} ") if tls_cafile else ("icap", "")
    skip = (
        [
            f"acl vigil_skip rep_mime_type -i {' '.join(skip_types)}",
            "adaptation_access vigil_resp deny vigil_skip",
        ]
        if skip_types
        else []
    )
    return [
        "icap_enable on",
        f"icap_service vigil_resp respmod_precache bypass=off {tls}"
        f"{scheme}://{host}:{icap_port}/respmod",
        f"icap_service vigil_req reqmod_precache bypass=off {tls}{scheme}://{host}:{icap_port}/reqmod",
        *skip,
        "adaptation_access vigil_resp allow all",
        # Only requests with a body (uploads) go through REQMOD, whatever their method.
        "acl vigil_body_length req_header Content-Length [1-9]",
        "acl vigil_body_chunked req_header Transfer-Encoding .",
        "adaptation_access vigil_req allow vigil_body_length",
        "adaptation_access vigil_req allow vigil_body_chunked",
        "adaptation_access vigil_req deny all",
        "icap_send_client_ip on",
        "icap_send_client_username on",
        # Squid suspends a service after 10 failures by default, turning one early error into
        # errors for everything after it.
        "icap_service_failure_limit -1",
    ]


# Squid 5.7 as Debian ships it re-arms a paused origin read only from the client side or from a
# delay pool (docs/gateway.md "Squid"). In block mode the gateway must read a whole body before
# answering, so nothing reaches the client side: a delay pool with a huge, finite rate (-1/-1
# creates no pool member) kicks a stalled read within a second, a 16 KB first read leaves room
# in Squid's 64 KB ICAP buffer (the gateway offers no preview for downloads in block mode: Squid
# would hold the body back while it waits for the preview's answer). Uploads stay out of the
# pool: with them in it, Squid 5.7 never delivers the body of a block page answered to a REQMOD.
BLOCK_MODE_LINES = [
    "acl vigil_upload method POST PUT",
    "delay_pools 1",
    "delay_class 1 1",
    "delay_parameters 1 1000000000/1000000000",
    "delay_access 1 deny vigil_upload",
    "delay_access 1 allow all",
    "reply_header_max_size 16 KB",
]


def squid_lines(icap_port: int, mode: str, tls_cafile: Path | None = None) -> list[str]:
    """Every squid.conf line the README gives for `mode`."""
    return [
        *icap_lines(icap_port, tls_cafile=tls_cafile),
        *(BLOCK_MODE_LINES if mode == "block" else MONITOR_MODE_LINES),
    ]


# A test-only proxy account for Squid's basic authentication (Debian's basic_ncsa_auth reads
# APR1/MD5-crypt lines as htpasswd writes them); the hash was made with
# `openssl passwd -apr1 -salt vigiltst proxy-test-password`.
PROXY_USER = "alice"
PROXY_PASSWORD = "proxy-test-password"
PROXY_PASSWORD_LINE = "alice:$apr1$vigiltst$buMmeQ/7WexZkLnRnlAEo1"
NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"


@dataclass
class SquidProcess:
    """A running Squid: its folder, HTTP port and process (and its one user, with `auth`)."""

    folder: Path
    port: int
    proc: subprocess.Popen[bytes]
    auth: bool = False

    @property
    def proxy(self) -> str:
        """The proxy URL for clients (with the test user's credentials when Squid asks)."""
        if self.auth:
            return f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    @property
    def anonymous_proxy(self) -> str:
        """The proxy URL without credentials."""
        return f"http://127.0.0.1:{self.port}"

    def cache_log(self) -> str:
        """Squid's cache.log (its diagnostics)."""
        path = self.folder / "cache.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[str]:
        """Squid's access.log lines (`time elapsed client:port code/status bytes method URL
        user hierarchy type`)."""
        path = self.folder / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def client_connections(self) -> set[str]:
        """The client connections (address:port) access.log shows requests from."""
        return {line.split()[2] for line in self.access_log() if len(line.split()) > 2}

    def alive(self) -> bool:
        """The process has not exited."""
        return self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM (shutdown_lifetime 0), wait; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def free_port() -> int:
    """A loopback port nobody listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_squid(folder: Path, lines: Sequence[str], auth: bool = False) -> SquidProcess:
    """`squid -N -f folder/squid.conf` on a free loopback port with `lines` added; returns once
    Squid accepts connections. `auth`: only the test user (PROXY_USER), by basic
    authentication."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    port = free_port()
    access = ["http_access allow localhost"]
    if auth:
        if not Path(NCSA_AUTH).exists():
            raise AssertionError(f"{NCSA_AUTH} is missing (Debian package `squid`)")
        (folder / "passwd").write_text(PROXY_PASSWORD_LINE + "\n")
        access = [
            f"auth_param basic program {NCSA_AUTH} {folder}/passwd",
            "auth_param basic realm vigil-test",
            "acl vigil_users proxy_auth REQUIRED",
            "http_access allow localhost vigil_users",
        ]
    conf = [
        f"http_port 127.0.0.1:{port}",
        f"pid_filename {folder}/squid.pid",
        # Squid's own format with the client's port: one port per persistent connection.
        "logformat vigil %ts.%03tu %6tr %>a:%>p %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt",
        f"access_log stdio:{folder}/access.log vigil",
        f"cache_log {folder}/cache.log",
        "cache_store_log none",
        f"coredump_dir {folder}",
        "cache deny all",
        "cache_mem 8 MB",
        "pinger_enable off",
        "shutdown_lifetime 0 seconds",
        *access,
        "http_access deny all",
        *lines,
    ]
    (folder / "squid.conf").write_text("\n".join(conf) + "\n")
    if os.geteuid() == 0:
        # Squid drops root for its cache_effective_user (Debian: proxy), which must write here.
        user = pwd.getpwnam("proxy")
        for path in [folder, *folder.iterdir()]:
            os.chown(path, user.pw_uid, user.pw_gid)
    out = open(folder / "squid.out", "wb")  # noqa: SIM115 — kept open by the process
    proc = subprocess.Popen(
        [squid_binary(), "-N", "-f", str(folder / "squid.conf")],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    squid = SquidProcess(folder, port, proc, auth)
    deadline = time.monotonic() + START_SECONDS
    while "Accepting HTTP Socket connections" not in squid.cache_log():
        if proc.poll() is not None or time.monotonic() > deadline:
            squid.stop()
            raise AssertionError(
                "squid did not start: "
                + (folder / "squid.out").read_text(errors="replace")[-3000:]
                + squid.cache_log()[-3000:]
            )
        time.sleep(0.1)
    return squid


@dataclass
class Resource:
    """What the origin serves at one path."""

    body: bytes
    content_type: str
    encoding: str | None = None


@dataclass
class Upload:
    """A request body the origin received."""

    path: str
    content_type: str
    body: bytes


@dataclass
class Origin:
    """A local HTTP/1.1 origin (keep-alive): GET serves a resource at once, or trickled with
    `?trickle=1`; POST and PUT keep what they received and answer `received N`."""

    server: ThreadingHTTPServer
    resources: dict[str, Resource] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)

    @property
    def base(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, path: str, body: bytes, content_type: str, encoding: str | None = None) -> str:
        """Serve `body` at `path`; its URL."""
        self.resources[path] = Resource(body, content_type, encoding)
        return self.base + path

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def start_origin() -> Origin:
    """An origin on a free loopback port, served by a thread."""
    origin: Origin

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            res = origin.resources.get(parts.path)
            if res is None:
                self._send(404, b"not here\n", "text/plain")
                return
            self._send(200, res.body, res.content_type, res.encoding, "trickle=1" in parts.query)

        def do_POST(self) -> None:  # noqa: N802
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                body = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            origin.uploads.append(
                Upload(urlsplit(self.path).path, self.headers.get("Content-Type", ""), body)
            )
            self._send(200, f"received {len(body)}\n".encode(), "text/plain")

        do_PUT = do_POST  # noqa: N815

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str,
            encoding: str | None = None,
            trickle: bool = False,
        ) -> None:
            head = (
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                + (f"Content-Encoding: {encoding}\r\n" if encoding else "")
                + "Cache-Control: no-store\r\n\r\n"
            ).encode("latin-1")
            if not trickle:
                self.connection.sendall(head + body)  # head and whole body in one write
                return
            self.connection.sendall(head)
            for i in range(0, len(body), TRICKLE_PIECE):
                self.connection.sendall(body[i : i + TRICKLE_PIECE])
                time.sleep(TRICKLE_PAUSE)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    origin = Origin(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return origin


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    """The local origin, for a module's tests."""
    o = start_origin()
    yield o
    o.stop()


def squid_folder() -> Path:
    """A temporary folder Squid's user can reach (pytest's own are private to root)."""
    return Path(tempfile.mkdtemp(prefix="vigil-squid-"))


@pytest.fixture
def squid_for() -> Iterator[object]:
    """Start Squids in front of gateways: `squid_for(icap_port, mode, auth)` (the README's
    lines for the mode; `auth`: basic proxy authentication of the test user); each is stopped (and its folder removed) at the end and must
    not have died during the test."""
    started: list[SquidProcess] = []

    def start(
        icap_port: int, mode: str = "monitor", auth: bool = False, tls_cafile: Path | None = None
    ) -> SquidProcess:
        s = start_squid(squid_folder(), squid_lines(icap_port, mode, tls_cafile), auth)
        started.append(s)
        return s

    yield start
    for s in started:
        alive = s.alive()
        s.stop()
        log = s.cache_log()
        shutil.rmtree(s.folder, ignore_errors=True)
        assert alive, f"squid died during the test: {log[-3000:]}"
