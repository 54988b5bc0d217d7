"""Driving a real `vigil server`: its commands, its HTTP API, enrolled agents."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from vigil.server.accounts import new_enrolment_token
from vigil.server.storage import Storage

VIGIL = [sys.executable, "-m", "vigil.cli"]
# How long a server may take to answer /healthz after it is started (2 shared cores).
START_SECONDS = 60


def run_cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `vigil ARGS` and return what it did (stdout, stderr, status)."""
    env = dict(os.environ)
    env.pop("VIGIL_HOME", None)
    if home is not None:
        env["VIGIL_HOME"] = str(home)
    return subprocess.run(
        [*VIGIL, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def free_port() -> int:
    """A loopback port nobody listens on (just now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server: its home, URL, database, and the admin's first secrets."""

    home: Path
    url: str
    db: str
    admin_password: str
    init: subprocess.CompletedProcess[str]

    def secret(self, *args: str) -> str:
        """Run a `vigil server` command that prints one secret, and return it."""
        done = run_cli("server", *args, home=self.home)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def api_key(self, user: str) -> str:
        """A new API key of `user`."""
        return self.secret("apikey", "--user", user)

    def user(self, name: str, role: str) -> str:
        """A new user with `role` and an API key for it; returns the key."""
        self.secret("user", "add", name, "--role", role)
        return self.api_key(name)

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client that sends `key` as its bearer credential."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def enroll(self, host: str | None = None) -> tuple[str, httpx.Client]:
        """Enrol a new agent; its id and a client holding its credential."""
        # Made in the database directly: `vigil server token` itself is tested in test_cli.
        storage = self.storage()
        try:
            with storage.session() as s:
                token = new_enrolment_token(s)
        finally:
            storage.close()
        with self.client() as c:
            r = c.post("/api/v1/enroll", json={"token": token, "host": host or unique("host")})
        assert r.status_code == 200, r.text
        body = r.json()
        return body["agent_id"], self.client(body["credential"])

    def storage(self) -> Storage:
        """The server's database, opened from the test (to check what it stored)."""
        return Storage.open(self.home)


def unique(prefix: str) -> str:
    """A name no other test uses (tests share one server per database)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextmanager
def serve(home: Path, *options: str, verify: ssl.SSLContext | bool = True) -> Iterator[str]:
    """`vigil server run` on a free loopback port until the block ends; yields its base URL
    (https when `options` carry a certificate, checked against `verify`)."""
    port = free_port()
    scheme = "https" if "--tls-cert" in options else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    log_path = home / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [
                *VIGIL,
                "server",
                "run",
                "--home",
                str(home),
                "--listen",
                f"127.0.0.1:{port}",
                *options,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + START_SECONDS
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"the server exited: {log_path.read_text()}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"no answer on /healthz: {log_path.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def drop(storage: Storage) -> None:
    """Drop the server's tables and close: the PostgreSQL schema is the session's, shared with
    the catalog's tests, so it is left as found."""
    from sqlalchemy import text

    from vigil.server.models import Base
    from vigil.server.storage import VERSION_TABLE

    Base.metadata.drop_all(storage.engine)
    with storage.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
    storage.close()


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A PostgreSQL schema of the caller's own (`prefix` and this process), dropped at the end;
    yields a plain postgresql:// URL whose search_path is that schema (the server must read such
    a URL as psycopg 3). Fails the test where PostgreSQL is not reachable: never skipped."""
    from sqlalchemy import create_engine, text

    name = f"{prefix}_{os.getpid()}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {name}"))
    except Exception as e:  # noqa: BLE001
        import pytest

        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable ({e})")
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


def published(url: str) -> int:
    """The catalog version a server publishes (0 before the first)."""
    body = httpx.get(f"{url}/readyz", timeout=10).json()
    return int(body.get("catalog_version") or 0)


@contextmanager
def listed_server(home: Path, db: str = "", hashlist: Path | None = None) -> Iterator[Server]:
    """`vigil server init` (on `db`, else SQLite) and `vigil server run` until the block ends;
    with `hashlist` imported and published (signed, to enrolled homes) before it is yielded."""
    args = ["server", "init", "--home", str(home), *(["--db", db] if db else [])]
    init = run_cli(*args)
    assert init.returncode == 0, init.stderr
    if hashlist is not None:
        done = run_cli("--home", str(home), "hashset", "import", str(hashlist))
        assert done.returncode == 0, done.stderr
    with serve(home) as url:
        if hashlist is not None:
            # `init` published version 1 (empty); the import becomes version 2 once running.
            deadline = time.monotonic() + START_SECONDS
            while published(url) < 2:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the list was not published: {url}")
                time.sleep(0.3)
        yield Server(home, url, db, init.stdout.strip(), init)
