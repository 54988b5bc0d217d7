"""A real `vigil server run` on a free loopback port, once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from support.server import Server, run_cli, serve

POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


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
    with serve(home) as url:
        yield Server(home, url, db, init.stdout.strip(), init)
