"""A real `vigil server run` on a free loopback port, once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from support.server import VIGIL, Server, free_port, run_cli

POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# How long a server may take to answer /healthz after it is started (2 shared cores).
START_SECONDS = 60


@pytest.fixture(scope="session")
def server_postgres_url() -> Iterator[str]:
    """A PostgreSQL schema of the server suite's own, dropped at the end (a plain postgresql://
    URL: the server must read it as psycopg 3)."""
    name = f"vigil_server_test_{os.getpid()}"
    admin_url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(admin_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {name}"))
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable ({e})")
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{name}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`vigil server init` then `vigil server run` on a free port, stopped at the end."""
    home = tmp_path_factory.mktemp("server-home")
    db = ""
    init_args = ["server", "init", "--home", str(home)]
    if request.param == "postgresql":
        db = request.getfixturevalue("server_postgres_url")
        init_args += ["--db", db]
    init = run_cli(*init_args)
    assert init.returncode == 0, init.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed at the end
    proc = subprocess.Popen(
        [*VIGIL, "server", "run", "--home", str(home), "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited: {(home / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no answer on /healthz: {(home / 'server.log').read_text()}")
            time.sleep(0.2)
        yield Server(home, url, db, init.stdout.strip(), init)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
