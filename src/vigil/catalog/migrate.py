"""Bringing a catalog's schema to this Vigil's revision when it is opened.

A catalog at HEAD costs one query. Anything else (a new database, a catalog of an older Vigil,
one made before Alembic with its version in state.schema_version) is upgraded by Alembic in one
transaction that holds a lock: two processes opening an old catalog at the same moment upgrade
it once, the second finding it done. Alembic is imported only then (it costs more than the rest
of a short command).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from vigil import __version__
from vigil.catalog.revision import HEAD, SCHEMA_VERSION, VERSION_TABLE
from vigil.errors import CatalogError

if TYPE_CHECKING:
    from alembic.config import Config

# Where the revision scripts live (package data).
SCRIPT_LOCATION = "vigil.catalog:migrations"
# Before Alembic: state.schema_version -> the revision that is that schema.
LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003"}
# PostgreSQL advisory lock taken for an upgrade (any fixed number; this one spells "vigilcat").
PG_LOCK_KEY = 0x76_69_67_69_6C_63_61_74
# SQLite: how long an opener waits, in ms, for another process's upgrade to finish.
SQLITE_LOCK_WAIT_MS = 600_000


def ensure_head(engine: Engine) -> None:
    """Upgrade the catalog behind `engine` to HEAD unless it is there already."""
    with engine.connect() as conn:
        found = revisions(conn)
    if found != (HEAD,):
        upgrade(engine)


def revisions(conn: Connection) -> tuple[str, ...] | None:
    """The catalog's revision(s) as recorded by Alembic; None when there is no version table.

    Outside a transaction of the caller's: a missing table ends the one this query began.
    """
    try:
        rows = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").all()
    except DBAPIError:
        conn.rollback()  # PostgreSQL refuses anything more in a failed transaction
        return None
    return tuple(sorted(r[0] for r in rows))


def alembic_config() -> Config:
    """Alembic's configuration for the catalog's scripts (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.set_main_option("path_separator", "os")
    return cfg


def upgrade(engine: Engine) -> None:
    """Recognise the catalog's schema and upgrade it to HEAD, under a lock, in one transaction."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    where = engine.url.render_as_string(hide_password=True)
    with _locked(engine) as conn:
        # Again, under the lock: another process may have upgraded it meanwhile.
        found = revisions(conn) if inspect(conn).has_table(VERSION_TABLE) else None
        if found == (HEAD,):
            return
        cfg.attributes["connection"] = conn
        if found:
            for rev in found:
                try:
                    script.get_revision(rev)
                except CommandError:
                    raise CatalogError(
                        f"the catalog at {where} is at schema revision {rev}, which this Vigil "
                        f"({__version__}, schema revision {HEAD}) does not know: a newer Vigil "
                        "wrote it. Use that version, or a backup of the catalog made before."
                    ) from None
        else:
            legacy = _legacy_revision(conn, where)
            if legacy is not None:
                command.stamp(cfg, legacy)
        command.upgrade(cfg, "head")


def _legacy_revision(conn: Connection, where: str) -> str | None:
    """The revision of a catalog made before Alembic; None for a database without a catalog."""
    tables = set(inspect(conn).get_table_names())
    if not tables & {"hashsets", "state"}:
        return None
    version = None
    if "state" in tables:
        version = conn.execute(
            text("SELECT value FROM state WHERE key = 'schema_version'")
        ).scalar()
    if version is None:
        raise CatalogError(
            f"the database at {where} has catalog tables but no schema version: not a catalog "
            "Vigil made, or a damaged one"
        )
    if version not in LEGACY_REVISIONS:
        raise CatalogError(
            f"the catalog at {where} has schema version {version}, which this Vigil "
            f"({__version__}, schema version {SCHEMA_VERSION}, revision {HEAD}) does not know"
        )
    return LEGACY_REVISIONS[version]


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other upgrade of this catalog can run beside."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # The sqlite3 module begins transactions lazily, and not for DDL at all: take the
            # write lock up front ourselves (BEGIN IMMEDIATE), so the check, the DDL and the
            # version row commit together and a second opener waits for them.
            raw = conn.connection.driver_connection
            assert raw is not None
            saved_isolation = raw.isolation_level
            saved_wait = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            raw.isolation_level = None
            raw.execute(f"PRAGMA busy_timeout = {SQLITE_LOCK_WAIT_MS}")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                raw.execute(f"PRAGMA busy_timeout = {int(saved_wait)}")
                raw.isolation_level = saved_isolation
            return
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield conn
