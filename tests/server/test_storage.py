"""The server's migrations: they make exactly the tables the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from vigil.server.models import Base
from vigil.server.storage import (
    VERSION_TABLE,
    ServerError,
    Storage,
    current_revision,
    head_revision,
    upgrade,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return Storage(f"sqlite:///{tmp_path / 'server.sqlite'}")
    return Storage(request.getfixturevalue("postgres_url"))


def test_migrations_make_what_the_models_describe(storage: Storage) -> None:
    try:
        upgrade(storage.engine)
        upgrade(storage.engine)  # a second run changes nothing
        assert current_revision(storage.engine) == head_revision()
        with storage.engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "version_table": VERSION_TABLE,
                    "include_name": lambda name, type_, parent: (
                        type_ != "table" or name in Base.metadata.tables
                    ),
                },
            )
            assert compare_metadata(ctx, Base.metadata) == []
        assert VERSION_TABLE in inspect(storage.engine).get_table_names()
    finally:
        # The PostgreSQL schema is the session's, shared with the catalog's tests: leave it as found.
        Base.metadata.drop_all(storage.engine)
        with storage.engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
        storage.close()


def test_an_uninitialised_home_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="vigil server init"):
        Storage.open(tmp_path)


def test_upgrade_brings_an_older_database_to_this_vigil_keeping_its_rows(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A server made by an older Vigil (its first revision) is refused until `vigil server
    upgrade` runs; then every command works and its rows are still there."""
    from datetime import UTC, datetime

    from support.server import run_cli

    from vigil.config import record_database_url

    for kind in ("sqlite", "postgresql"):
        home = tmp_path / kind
        home.mkdir()
        if kind == "postgresql":
            record_database_url(home, request.getfixturevalue("postgres_url"))
        storage = Storage.open(home, check=False)
        try:
            upgrade(storage.engine, "0001")
            with storage.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO users (name, role, password_hash, created_at) "
                        "VALUES ('old', 'admin', 'x', :at)"
                    ),
                    {"at": datetime.now(UTC)},
                )
            assert head_revision() != "0001", "no migration after the first to test with"

            refused = run_cli("server", "token", "--home", str(home))
            assert refused.returncode != 0
            assert "vigil server upgrade" in refused.stderr

            done = run_cli("server", "upgrade", "--home", str(home))
            assert done.returncode == 0, done.stderr
            assert f"from revision 0001 to {head_revision()}" in done.stderr
            assert current_revision(storage.engine) == head_revision()
            again = run_cli("server", "upgrade", "--home", str(home))
            assert again.returncode == 0 and "already" in again.stderr

            token = run_cli("server", "token", "--home", str(home))
            assert token.returncode == 0, token.stderr
            with storage.engine.connect() as conn:
                assert conn.execute(text("SELECT name FROM users")).scalars().all() == ["old"]
        finally:
            Base.metadata.drop_all(storage.engine)
            with storage.engine.begin() as conn:
                conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
            storage.close()


def test_upgrade_of_an_uninitialised_home_is_refused(tmp_path: Path) -> None:
    from support.server import run_cli

    done = run_cli("server", "upgrade", "--home", str(tmp_path))
    assert done.returncode != 0
    assert "vigil server init" in done.stderr
