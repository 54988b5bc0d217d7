"""Catalog migrations: catalogs of every earlier schema are recognised and upgraded on open, on
SQLite and PostgreSQL; a new one is made at head; a newer one is refused; the models match the
migrations; two processes opening an old catalog at once upgrade it once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    inspect,
    text,
)

from vigil.catalog import revision, schema
from vigil.catalog.digest import entry_digest
from vigil.catalog.migrate import alembic_config, revisions
from vigil.catalog.store import Catalog, iter_packed
from vigil.errors import CatalogError
from vigil.hashsets.entry import Entry, ParseReport

ROOT = Path(__file__).resolve().parents[2]


def old_schema(version: int) -> MetaData:
    """The catalog's tables as Vigil of schema `version` made them (frozen: never import these
    from vigil.catalog.schema, which moves on)."""
    md = MetaData()
    Table(
        "hashsets",
        md,
        Column("id", Integer, primary_key=True),
        Column("name", String(200), nullable=False, unique=True),
        Column("format", String(32), nullable=False),
        Column("source", Text, nullable=False),
        Column("version", String(200), nullable=False),
        Column("imported_at", String(40), nullable=False),
        Column("known_good", Boolean, nullable=False, default=False),
        Column("content_sha256", String(64), nullable=False),
        Column("entries", Integer, nullable=False),
        Column("counts", JSON, nullable=False),
        Column("info", JSON, nullable=False),
    )
    Table(
        "entries",
        md,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("set_id", Integer, ForeignKey("hashsets.id"), nullable=False, index=True),
        Column("ext_id", String(200)),
        Column("category", String(64)),
        Column("meta", JSON, nullable=False),
    )
    hashes = Table(
        "hashes",
        md,
        Column("set_id", Integer, ForeignKey("hashsets.id"), nullable=False),
        Column("entry_id", Integer, ForeignKey("entries.id"), nullable=False),
        Column("kind", SmallInteger, nullable=False),
        Column("value", LargeBinary, nullable=False),
        Index("ix_hashes_set", "set_id"),
    )
    if version < 3:
        Index("ix_hashes_kind_value", hashes.c.kind, hashes.c.value)
    if version >= 2:
        Table(
            "video_frames",
            md,
            Column("set_id", Integer, ForeignKey("hashsets.id"), nullable=False),
            Column("entry_id", Integer, ForeignKey("entries.id"), nullable=False),
            Column("frame", Integer, nullable=False),
            Column("timestamp", Float, nullable=False),
            Column("quality", SmallInteger, nullable=False),
            Column("pdq", LargeBinary, nullable=False),
            Index("ix_video_frames_set", "set_id"),
            Index("ix_video_frames_entry", "entry_id"),
        )
    Table(
        "state",
        md,
        Column("key", String(64), primary_key=True),
        Column("value", Integer, nullable=False),
    )
    return md


MD5 = "0123456789abcdef0123456789abcdef"
SHA1 = "00112233445566778899aabbccddeeff00112233"
PDQ = "f0" * 32
FRAMES = [(0, 0.0, 90, "0f" * 32), (1, 1.0, 80, "3c" * 32)]
GENERATION = 7


def make_old_catalog(url: str, version: int) -> None:
    """An old catalog as that Vigil left it: its tables, its state rows, a set of three entries
    (a video's frames too from schema 2 on), and no Alembic version table."""
    md = old_schema(version)
    engine = create_engine(url)
    try:
        md.create_all(engine)
        t = md.tables
        with engine.begin() as conn:
            conn.execute(
                t["state"].insert(),
                [
                    {"key": "schema_version", "value": version},
                    {"key": "generation", "value": GENERATION},
                ],
            )
            conn.execute(
                t["hashsets"].insert(),
                {  # its id is the database's to give, as Vigil let it: 1
                    "name": "police",
                    "format": "csv",
                    "source": "/lists/police.csv",
                    "version": "2026-11",
                    "imported_at": "2026-11-20T10:00:00Z",
                    "known_good": False,
                    "content_sha256": "ab" * 32,
                    "entries": 3 if version >= 2 else 2,
                    "counts": {"by_kind": {"md5": 1, "sha1": 1, "pdq": 1}},
                    "info": {},
                },
            )
            rows = [
                {"id": 1, "set_id": 1, "ext_id": "a1", "category": "1", "meta": {"n": 1}},
                {"id": 2, "set_id": 1, "ext_id": "a2", "category": "2", "meta": {}},
            ]
            if version >= 2:
                rows.append({"id": 3, "set_id": 1, "ext_id": "v1", "category": "1", "meta": {}})
            conn.execute(t["entries"].insert(), rows)
            conn.execute(
                t["hashes"].insert(),
                [
                    {"set_id": 1, "entry_id": 1, "kind": 1, "value": bytes.fromhex(MD5)},
                    {"set_id": 1, "entry_id": 1, "kind": 2, "value": bytes.fromhex(SHA1)},
                    {"set_id": 1, "entry_id": 2, "kind": 4, "value": bytes.fromhex(PDQ)},
                ],
            )
            if version >= 2:
                conn.execute(
                    t["video_frames"].insert(),
                    [
                        {
                            "set_id": 1,
                            "entry_id": 3,
                            "frame": i,
                            "timestamp": ts,
                            "quality": q,
                            "pdq": bytes.fromhex(h),
                        }
                        for i, ts, q, h in FRAMES
                    ],
                )
    finally:
        engine.dispose()


def drop_everything(url: str) -> None:
    """An empty database again (PostgreSQL keeps one schema for the whole session)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for table in (
                "removed_entries",
                "video_frames",
                "hashes",
                "entries",
                "hashsets",
                "state",
            ):
                conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
            conn.execute(text(f"DROP TABLE IF EXISTS {revision.VERSION_TABLE}"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or the session's PostgreSQL schema emptied."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        return
    pg: str = request.getfixturevalue("postgres_url")
    drop_everything(pg)
    yield pg
    drop_everything(pg)


def revision_of(engine: Engine) -> tuple[str, ...] | None:
    with engine.connect() as conn:
        return revisions(conn)


def state(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {k: v for k, v in conn.execute(text("SELECT key, value FROM state"))}


def schema_differences(engine: Engine) -> list[object]:
    """What Alembic's autogenerate would change to make the database match the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        mc = MigrationContext.configure(
            conn, opts={"version_table": revision.VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(mc, schema.metadata))


def structure(engine: Engine) -> dict[str, object]:
    """Every table's columns, keys and indexes, as the database reports them."""
    with engine.connect() as conn:
        insp = inspect(conn)
        return {
            table: {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
                ],
                "pk": insp.get_pk_constraint(table),
                "fks": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"])
                    for f in insp.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"])
                    for i in insp.get_indexes(table)
                ),
                "unique": sorted(
                    tuple(u["column_names"]) for u in insp.get_unique_constraints(table)
                ),
            }
            for table in sorted(insp.get_table_names())
        }


def migrate_from_nothing(url: str) -> None:
    """Alembic's revisions, 0001 to head, on an empty database."""
    from alembic import command

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def test_head_is_the_newest_script() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [revision.HEAD]
    # One revision per schema version, in order.
    chain = [r.revision for r in script.walk_revisions("base", "heads")]
    assert chain == list(reversed(revision.REVISIONS)) == ["0004", "0003", "0002", "0001"]


def test_a_new_catalog_is_made_at_head(url: str) -> None:
    catalog = Catalog(url)
    try:
        assert revision_of(catalog.engine) == (revision.HEAD,)
        assert state(catalog.engine) == {
            "schema_version": revision.SCHEMA_VERSION,
            "generation": 0,
        }
        assert schema_differences(catalog.engine) == []
        assert catalog.sets() == []
    finally:
        catalog.close()


def test_the_revisions_from_nothing_match_the_models(url: str) -> None:
    migrate_from_nothing(url)
    engine = create_engine(url)
    try:
        assert revision_of(engine) == (revision.HEAD,)
        assert state(engine) == {"schema_version": revision.SCHEMA_VERSION, "generation": 0}
        assert schema_differences(engine) == []
    finally:
        engine.dispose()


def test_a_new_catalog_is_what_the_revisions_make(url: str) -> None:
    """New catalogs are made from the models without Alembic: the same tables, keys, indexes
    and version table as the revisions make."""
    migrate_from_nothing(url)
    engine = create_engine(url)
    try:
        by_revisions = structure(engine)
        drop_everything(url)
        Catalog(url).close()
        assert structure(engine) == by_revisions
    finally:
        engine.dispose()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_old_catalog_is_upgraded_on_open(url: str, version: int) -> None:
    make_old_catalog(url, version)
    catalog = Catalog(url)
    try:
        engine = catalog.engine
        assert revision_of(engine) == (revision.HEAD,)
        assert state(engine) == {
            "schema_version": revision.SCHEMA_VERSION,
            "generation": GENERATION,
        }
        with engine.connect() as conn:
            insp = inspect(conn)
            assert insp.has_table("video_frames")
            indexes = {ix["name"] for ix in insp.get_indexes("hashes")}
        assert "ix_hashes_kind_value" not in indexes and "ix_hashes_set_entry" in indexes
        assert schema_differences(engine) == []

        # The data reads back...
        (police,) = catalog.sets()
        assert (police.name, police.version, police.format) == ("police", "2026-11", "csv")
        assert catalog.generation() == GENERATION
        assert list(catalog.iter_hashes("md5")) == [(bytes.fromhex(MD5), 1, 1)]
        got = {e.id: e for e in catalog.iter_entries("police")}
        assert got["a1"].hashes == {"md5": MD5, "sha1": SHA1} and got["a1"].meta == {"n": 1}
        assert got["a2"].hashes == {"pdq": PDQ}
        if version >= 2:
            assert [(f.index, f.timestamp, f.quality, f.hash) for f in got["v1"].vpdq] == FRAMES
        # Every entry got its content digest (what deltas remove entries by).
        with catalog.snapshot() as snap:
            packed = {eid: entry_digest(p) for _s, eid, p in iter_packed(snap.conn)}
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT id, digest FROM entries")).all())
        assert {i: bytes(d) for i, d in stored.items()} == packed and len(packed) == (
            3 if version >= 2 else 2
        )

        # ...and imports go on from there.
        added = [Entry(hashes={"md5": "ff" * 16}, id="n1", category="1")]
        catalog.import_entries("more", added, ParseReport(format="csv"), source="b", version="1")
        assert catalog.generation() == GENERATION + 1
        assert sorted(s.name for s in catalog.sets()) == ["more", "police"]
        arrays = catalog.hash_arrays({"md5": 16})
        assert sorted(arrays["md5"][0].tolist()) == sorted([bytes.fromhex(MD5), b"\xff" * 16])
        old_entries = 3 if version >= 2 else 2
        assert max(arrays["md5"][1].tolist()) == old_entries + 1  # numbered after the old ones
    finally:
        catalog.close()
    # Opened again: nothing more to do.
    again = Catalog(url)
    try:
        assert revision_of(again.engine) == (revision.HEAD,)
        assert len(again.sets()) == 2
    finally:
        again.close()


def test_a_failed_upgrade_leaves_the_catalog_as_it_was(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    real_upgrade = command.upgrade

    def upgrade_then_fail(*args: object, **kwargs: object) -> None:
        real_upgrade(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("power cut")

    make_old_catalog(url, 1)
    monkeypatch.setattr(command, "upgrade", upgrade_then_fail)
    with pytest.raises(RuntimeError, match="power cut"):
        Catalog(url)
    engine = create_engine(url)
    try:
        assert revision_of(engine) is None
        assert state(engine) == {"schema_version": 1, "generation": GENERATION}
        with engine.connect() as conn:
            insp = inspect(conn)
            assert not insp.has_table("video_frames")
            assert "ix_hashes_kind_value" in {ix["name"] for ix in insp.get_indexes("hashes")}
    finally:
        engine.dispose()
    monkeypatch.undo()
    Catalog(url).close()  # and the next open upgrades it
    engine = create_engine(url)
    try:
        assert revision_of(engine) == (revision.HEAD,)
    finally:
        engine.dispose()


def test_a_catalog_newer_than_the_code_is_refused(url: str) -> None:
    Catalog(url).close()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {revision.VERSION_TABLE} SET version_num = '0099'"))
    finally:
        engine.dispose()
    with pytest.raises(CatalogError) as err:
        Catalog(url)
    message = str(err.value)
    assert "0099" in message and revision.HEAD in message and "newer Vigil" in message


def test_an_old_style_catalog_of_an_unknown_version_is_refused(url: str) -> None:
    make_old_catalog(url, 3)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE state SET value = 5 WHERE key = 'schema_version'"))
    finally:
        engine.dispose()
    with pytest.raises(CatalogError, match=r"schema version 5.*schema version 4"):
        Catalog(url)


def test_catalog_tables_without_a_version_are_refused(url: str) -> None:
    make_old_catalog(url, 3)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM state"))
    finally:
        engine.dispose()
    with pytest.raises(CatalogError, match="no schema version"):
        Catalog(url)


def test_other_tables_in_the_database_are_left_alone(url: str) -> None:
    """The server keeps its own tables (and their own Alembic history) in the same database."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(text("INSERT INTO alembic_version VALUES ('server1')"))
        Catalog(url).close()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                ("server1",)
            ]
        assert revision_of(engine) == (revision.HEAD,)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()


OPEN_ON_SIGNAL = textwrap.dedent(
    """
    import json, sys
    from vigil.catalog.store import Catalog
    sys.stdin.readline()
    catalog = Catalog(sys.argv[1])
    print(json.dumps({"sets": [s.name for s in catalog.sets()], "generation": catalog.generation()}))
    catalog.close()
    """
)


def test_two_processes_opening_an_old_catalog_at_once_upgrade_it_once(url: str) -> None:
    # Without the lock this fails on both databases: the second process trips over the version
    # table the first is making. Three rounds, to give the race its chances.
    for _ in range(3):
        drop_everything(url)
        make_old_catalog(url, 1)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_ON_SIGNAL, url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for _ in range(2)
        ]
        # Both are started and waiting; release them together.
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            assert json.loads(out) == {"sets": ["police"], "generation": GENERATION}
        engine = create_engine(url)
        try:
            assert revision_of(engine) == (revision.HEAD,)
            assert state(engine)["schema_version"] == revision.SCHEMA_VERSION
            assert schema_differences(engine) == []
        finally:
            engine.dispose()


OPEN_AND_REPORT_ALEMBIC = textwrap.dedent(
    """
    import sys
    from vigil.catalog.store import Catalog
    Catalog(sys.argv[1]).close()
    print("alembic" in sys.modules)
    """
)


def test_alembic_is_loaded_only_to_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"

    def loads_alembic() -> bool:
        out = subprocess.run(
            [sys.executable, "-c", OPEN_AND_REPORT_ALEMBIC, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.strip() == "True"

    assert not loads_alembic()  # a new catalog is made from the models
    drop_everything(url)
    make_old_catalog(url, 2)
    assert loads_alembic()  # the upgrade
    assert not loads_alembic()  # at head: one query
