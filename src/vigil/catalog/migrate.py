"""Bringing a catalog's schema to this Vigil's revision when it is opened.

A catalog at HEAD costs one query. A new one is made from the models, at HEAD. An older one (of an
earlier revision, or made before Alembic with its version in state.schema_version) is upgraded by
Alembic. Either happens in one transaction that holds a lock: two processes opening an old
catalog at the same moment upgrade it once, the second finding it done. Alembic is imported only
to upgrade (it costs more than the rest of a short command).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    inspect,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from vigil import __version__
from vigil.catalog import schema
from vigil.catalog.revision import HEAD, REVISIONS, SCHEMA_VERSION, VERSION_TABLE
from vigil.errors import CatalogError

if TYPE_CHECKING:
    from alembic.config import Config

# Where the revision scripts live (package data).
SCRIPT_LOCATION = "vigil.catalog:migrations"
# Tables that say a database holds a catalog (of any revision).
CATALOG_TABLES = {"hashsets", "entries", "hashes", "state"}
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
    if found == (HEAD,):
        return
    for rev in found or ():
        if rev not in REVISIONS:
            raise _newer(_where(engine), rev)
    upgrade(engine)


def _where(engine: Engine) -> str:
    """The catalog's URL for messages (without a password)."""
    return engine.url.render_as_string(hide_password=True)


def _newer(where: str, rev: str) -> CatalogError:
    """The error for a catalog at a revision this Vigil does not know."""
    return CatalogError(
        f"the catalog at {where} is at schema revision {rev}, which this Vigil "
        f"({__version__}, schema revision {HEAD}) does not know: a newer Vigil "
        "wrote it. Use that version, or a backup of the catalog made before."
    )


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
    # New revisions: versions/r0004_some_change.py (a module name mypy accepts).
    cfg.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
    return cfg


def upgrade(engine: Engine) -> None:
    """Make, or recognise and upgrade, the catalog to HEAD, under a lock, in one transaction."""
    where = _where(engine)
    with _locked(engine) as conn:
        tables = set(inspect(conn).get_table_names())
        # Again, under the lock: another process may have done it meanwhile.
        found = revisions(conn) if VERSION_TABLE in tables else None
        if found == (HEAD,):
            return
        if not found and not tables & CATALOG_TABLES:
            _create_at_head(conn)
        else:
            _run_alembic(conn, found, tables, where)


def _create_at_head(conn: Connection) -> None:
    """A new catalog: the tables of the models, recorded at HEAD, without Alembic.

    The same tables as the revisions make from nothing (a test compares them), at a fraction of
    the cost: `vigil scan --hashset FILE` makes a catalog in memory on every run.
    """
    schema.metadata.create_all(conn)
    # Alembic's own version table (alembic.ddl.impl.DefaultImpl.version_table_impl).
    version = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(conn, checkfirst=True)
    conn.execute(version.insert(), {"version_num": HEAD})
    conn.execute(
        schema.state.insert(),
        [{"key": "schema_version", "value": SCHEMA_VERSION}, {"key": "generation", "value": 0}],
    )


def _run_alembic(
    conn: Connection, found: tuple[str, ...] | None, tables: set[str], where: str
) -> None:
    """Upgrade an existing catalog to HEAD with its revisions (stamping one made before them)."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    script = ScriptDirectory.from_config(cfg)
    if found:
        for rev in found:
            try:
                script.get_revision(rev)
            except CommandError:
                raise _newer(where, rev) from None
    else:
        command.stamp(cfg, _legacy_revision(conn, tables, where))
    command.upgrade(cfg, "head")


def _legacy_revision(conn: Connection, tables: set[str], where: str) -> str:
    """The revision of a catalog made before Alembic, from its state.schema_version."""
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
