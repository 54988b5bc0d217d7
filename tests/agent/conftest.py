"""Real servers and real agents over loopback: `vigil server run`, `vigil agent run`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support.agent import Fleet, published, wait_for
from support.planted import Tree, build
from support.server import Server, run_cli, serve

POSTGRES_URL = os.environ.get(
    "VIGIL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def agent_postgres_url() -> Iterator[str]:
    """A PostgreSQL schema of the agent suite's own, dropped at the end."""
    name = f"vigil_agent_test_{os.getpid()}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
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
def agent_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, planted: Tree
) -> Iterator[Server]:
    """`vigil server init` and `vigil server run`, on SQLite and on PostgreSQL, with the demo
    list in its catalog and published to agents (signed) before the first agent asks."""
    home = tmp_path_factory.mktemp("server-home")
    db = ""
    args = ["server", "init", "--home", str(home)]
    if request.param == "postgresql":
        db = request.getfixturevalue("agent_postgres_url")
        args += ["--db", db]
    init = run_cli(*args)
    assert init.returncode == 0, init.stderr
    done = run_cli("--home", str(home), "hashset", "import", str(planted.hashlist))
    assert done.returncode == 0, done.stderr
    with serve(home) as url:
        # `init` published version 1 (empty); the import becomes version 2 once running.
        wait_for("the demo list published", lambda: published(url) >= 2)
        yield Server(home, url, db, init.stdout.strip(), init)


@pytest.fixture(scope="session")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    """Benign photos: the known ones' hash list, exact and altered copies, unrelated photos."""
    return build(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="session")
def catalog_home(tmp_path_factory: pytest.TempPathFactory, planted: Tree) -> Path:
    """A home whose catalog holds the demo list (imported once, copied for each agent)."""
    home = tmp_path_factory.mktemp("catalog-home")
    done = run_cli("--home", str(home), "hashset", "import", str(planted.hashlist))
    assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def fleet(tmp_path: Path, catalog_home: Path) -> Iterator[Fleet]:
    """Agents started by a test, each in a home with the demo list; all stopped at the end."""
    f = Fleet(tmp_path, lambda home: shutil.copytree(catalog_home, home))
    try:
        yield f
    finally:
        f.stop_all()
