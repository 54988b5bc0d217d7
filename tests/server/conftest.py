"""A real `vigil server run` on a free loopback port, once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import Server, listed_server, postgres_schema

from vigil.server.storage import Storage


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """An empty server database of each kind (no tables: a test migrates it, then `support.server.drop`s them)."""
    if request.param == "sqlite":
        return Storage(f"sqlite:///{tmp_path / 'server.sqlite'}")
    return Storage(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def server_postgres_url() -> Iterator[str]:
    """A PostgreSQL schema of the server suite's own, dropped at the end."""
    with postgres_schema("vigil_server_test") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`vigil server init` then `vigil server run` on a free port, stopped at the end."""
    db = request.getfixturevalue("server_postgres_url") if request.param == "postgresql" else ""
    with listed_server(tmp_path_factory.mktemp("server-home"), db) as server:
        yield server
