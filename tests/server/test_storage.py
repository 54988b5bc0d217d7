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
