"""The server's migrations: they make exactly the tables the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from support.server import drop

from vigil.server.models import Base
from vigil.server.storage import (
    VERSION_TABLE,
    ServerError,
    Storage,
    current_revision,
    head_revision,
    upgrade,
)


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
        drop(storage)


def test_0004_adds_the_client_to_incidents_already_stored(storage: Storage) -> None:
    """A database at 0003 holding an agent's and a gateway's incidents (the gateway's address
    then in `owner`) upgrades to head: both keep every field, their client is null, and new
    incidents are written with a client and found by it."""
    from datetime import UTC, datetime

    from sqlalchemy import JSON, column, insert, table
    from sqlalchemy.orm import Session

    from vigil.server import incidents
    from vigil.server.models import Agent

    at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    row = {
        "status": "new", "host": "gw", "user": "bob", "path": "http://photos.test/cat.jpg",
        "hashset": "s", "entry_id": "502", "kind": "pdq", "kinds": ["pdq"],
        "detection": "gateway", "fingerprints": {}, "first_seen": at, "last_seen": at,
        "seen_count": 1, "updated_at": at,
    }  # fmt: skip
    try:
        upgrade(storage.engine, "0003")
        with storage.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO agents (id, host, secret_sha256, enrolled_at) "
                    "VALUES ('a1', 'gw', :secret, :at)"
                ),
                {"secret": "0" * 64, "at": at},
            )
            # The table as 0003 left it (no `client`), written without the models.
            old = table(
                "incidents",
                *(column(c, JSON if c in ("kinds", "fingerprints") else None) for c in row),
                column("identity"),
                column("agent_id"),
                column("owner"),
            )
            conn.execute(
                insert(old),
                [
                    {**row, "identity": identity, "agent_id": "a1", "owner": owner}
                    for identity, owner in (("i-gateway", "192.0.2.44"), ("i-agent", "alice"))
                ],
            )
        upgrade(storage.engine)
        assert current_revision(storage.engine) == head_revision()
        with storage.engine.connect() as conn:
            kept = conn.execute(
                text("SELECT identity, owner, client, path FROM incidents ORDER BY identity")
            ).all()
        assert [tuple(r) for r in kept] == [
            ("i-agent", "alice", None, row["path"]),
            ("i-gateway", "192.0.2.44", None, row["path"]),
        ]
        with Session(storage.engine) as s, s.begin():
            agent = s.get(Agent, "a1")
            assert agent is not None
            report = incidents.MatchReport(
                report_id="r1", path="http://photos.test/new.jpg", hashset="s", entry_id="502",
                kind="pdq", detection=incidents.Detection.GATEWAY, client="2001:db8::5",
            )  # fmt: skip
            incidents.receive(s, agent, [report])
        with Session(storage.engine) as s:
            found, _ = incidents.page(s, incidents.Filters(client="2001:db8::5"), None, 10)
            assert [(i.path, i.client, i.owner) for i in found] == [
                ("http://photos.test/new.jpg", "2001:db8::5", None)
            ]
    finally:
        drop(storage)


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
            drop(storage)


def test_upgrade_of_an_uninitialised_home_is_refused(tmp_path: Path) -> None:
    from support.server import run_cli

    done = run_cli("server", "upgrade", "--home", str(tmp_path))
    assert done.returncode != 0
    assert "vigil server init" in done.stderr
