"""Real servers and real agents over loopback: `vigil server run`, `vigil agent run`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.agent import Fleet
from support.planted import Tree, build
from support.server import Server, listed_server, postgres_schema, run_cli


@pytest.fixture(scope="session")
def agent_postgres_url() -> Iterator[str]:
    """A PostgreSQL schema of the agent suite's own, dropped at the end."""
    with postgres_schema("vigil_agent_test") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def agent_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, planted: Tree
) -> Iterator[Server]:
    """`vigil server init` and `vigil server run`, on SQLite and on PostgreSQL, with the demo
    list in its catalog and published to agents (signed) before the first agent asks."""
    db = request.getfixturevalue("agent_postgres_url") if request.param == "postgresql" else ""
    with listed_server(tmp_path_factory.mktemp("server-home"), db, planted.hashlist) as server:
        yield server


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
