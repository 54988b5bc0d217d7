"""Driving real `vigil agent` processes from tests: enrol, run, kill, read their status; a
recording proxy between an agent and its server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.server import VIGIL, Server, run_cli, unique

# Generous: two shared cores, six engineers' suites (never a threshold on speed).
WAIT_SECONDS = 240


def wait_for(what: str, check: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
    """Poll `check` until it returns something true; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def incidents(server: Server, key: str, host: str) -> list[dict[str, Any]]:
    """Every incident of `host`, all pages."""
    out: list[dict[str, Any]] = []
    with server.client(key) as c:
        url: str | None = "/api/v1/incidents"
        params: dict[str, Any] | None = {"host": host, "limit": 1000}
        while url:
            r = c.get(url, params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            out += body["items"]
            url, params = body["next"], None
    return out


@dataclass
class AgentHome:
    """An enrolled agent's home and its running process (if any)."""

    home: Path
    watch: Path
    host: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    extra: list[str] = field(default_factory=list)

    def start(self) -> None:
        """`vigil agent run` in its own process group (a kill takes its workers too)."""
        self.runs += 1
        env = dict(os.environ)
        env.pop("VIGIL_HOME", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*VIGIL, "agent", "run", "--home", str(self.home), "--watch", str(self.watch)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def assert_running(self) -> None:
        """Fail at once, with its log, when the agent has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the agent exited: {self.log.read_text()[-3000:]}")

    def status(self) -> dict[str, Any]:
        """`vigil agent status --json`."""
        done = run_cli("agent", "status", "--home", str(self.home), "--json")
        assert done.returncode == 0, done.stderr
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def wait_ready(self) -> None:
        """Until this run of the agent has written its status (watches in place)."""
        assert self.proc is not None
        pid = self.proc.pid

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the agent exited: {self.log.read_text()[-3000:]}")
            path = self.home / "agent" / "status.json"
            try:
                return bool(json.loads(path.read_text()).get("pid") == pid)
            except (FileNotFoundError, ValueError):
                return False

        wait_for("the agent to start", ready)

    def kill(self) -> None:
        """SIGKILL the agent's whole process group (a power cut, as far as it can tell)."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM and wait (then SIGKILL if it does not end)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None


class Fleet:
    """Agents made by one test."""

    def __init__(self, base: Path, make_home: Callable[[Path], object]) -> None:
        self.base = base
        self.make_home = make_home
        self.agents: list[AgentHome] = []

    def enrol(self, server: Server, url: str | None = None, toml: str = "") -> AgentHome:
        """A new home with the demo catalog, enrolled with `server` (through `url` if given)."""
        name = unique("agent")
        home = self.base / name
        self.make_home(home)
        (home / "agent.toml").write_text('heartbeat = "1s"\ncatalog_poll = "2s"\n' + toml)
        watch = self.base / f"{name}-watched"
        watch.mkdir()
        token = server.secret("token")
        done = run_cli(
            "agent",
            "enroll",
            "--home",
            str(home),
            "--server",
            url or server.url,
            "--token",
            token,
            "--name",
            name,
        )
        assert done.returncode == 0, done.stderr
        a = AgentHome(home, watch, name, self.base / f"{name}.log")
        self.agents.append(a)
        return a

    def stop_all(self) -> None:
        """Stop every agent still running."""
        for a in self.agents:
            a.stop()


def drop(path: Path, data: bytes) -> None:
    """Write a file the way a download lands: written, then closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def server_up(url: str) -> bool:
    """The server answers /healthz."""
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class RecordingProxy:
    """A reverse proxy on loopback that forwards everything to the server and keeps every byte
    the agent sent (request line, headers, body); `alter`, when set, rewrites each answer's body
    on its way back (a man in the middle: `alter(path, body) -> body`)."""

    def __init__(self, upstream: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.upstream = upstream.rstrip("/")
        self.sent: list[bytes] = []
        self.alter: Callable[[str, bytes], bytes] | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                head = f"{self.requestline}\r\n{self.headers}".encode()
                proxy.sent.append(head + body)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                try:
                    r = httpx.request(
                        self.command,
                        proxy.upstream + self.path,
                        content=body,
                        headers=headers,
                        timeout=60,
                    )
                except httpx.TransportError:
                    self.send_error(502)
                    return
                content = r.content
                if proxy.alter is not None:
                    content = proxy.alter(self.path, content)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


def spooled_paths(home: Path) -> set[str]:
    """The paths of the reports waiting in an agent's spool (read from its SQLite file)."""
    import sqlite3

    db = sqlite3.connect(f"file:{home / 'agent' / 'spool.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        return {json.loads(body)["path"] for (body,) in db.execute("SELECT body FROM outbox")}
    finally:
        db.close()
