"""Where the server's tables live, and bringing them to the current migration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from vigil.config import database_url, sqlite_wal
from vigil.errors import VigilError

# The server's Alembic version table: apart from the catalog's, so both share one database.
VERSION_TABLE = "vigil_server_version"
# The SQLite file of a home that records no database URL (apart from catalog.sqlite: a large
# hash-set import holds SQLite's one write lock, and incidents must not wait behind it).
SQLITE_FILE = "server.sqlite"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class ServerError(VigilError):
    """The server's state is missing or unusable (not initialised, wrong revision)."""


def server_url(home: Path) -> str:
    """The database URL of the server under `home`."""
    return database_url(home) or f"sqlite:///{home / SQLITE_FILE}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    sqlite_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Writers queue instead of failing at once: intake, heartbeats and commands share the file.
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


# Connections each server process keeps (and may add under load); the API's gate admits as many
# requests at once (see api/gate.py).
POOL_SIZE = 10
POOL_OVERFLOW = 10
# Connections the gate leaves for the heartbeat writer and the background tasks.
RESERVED = 4


def open_engine(url: str) -> Engine:
    """An SQLAlchemy engine on the server's database."""
    engine = create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, target: str = "head") -> None:
    """Bring the server's tables to `target` (the newest revision by default), in one
    transaction where the database allows (PostgreSQL; SQLite commits each migration)."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), target)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: the server's tables were never made)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


def head_revision() -> str:
    """The newest revision this Vigil knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


class Storage:
    """The server's database: an engine and its sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def connections(self) -> int:
        """How many requests may use a connection at once: the pool's size, less those kept
        for the process's own work (the heartbeat writer, the background tasks), which would
        otherwise wait behind a burst of requests holding every connection."""
        return POOL_SIZE + POOL_OVERFLOW - RESERVED

    @classmethod
    def open(cls, home: Path, *, check: bool = True) -> Storage:
        """The server under `home`; with `check`, refused unless initialised at this revision."""
        storage = cls(server_url(home))
        if check:
            found = current_revision(storage.engine)
            if found is None:
                storage.close()
                raise ServerError(f"no server in {home}: run `vigil server init` first")
            if found != head_revision():
                storage.close()
                raise ServerError(
                    f"the server's database is at revision {found}; this Vigil needs "
                    f"{head_revision()}: run `vigil server upgrade` (after a backup), or run "
                    "the Vigil that made it"
                )
        return storage

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed at the end, rolled back on an error."""
        with self.sessions.begin() as session:
            yield session

    def reachable(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False
        return True

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
