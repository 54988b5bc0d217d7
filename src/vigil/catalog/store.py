"""The catalog store: hash sets, their entries and hashes, in SQLite (or any SQLAlchemy database)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from vigil.catalog import schema
from vigil.catalog.digest import entry_digest, meta_from_text, pack_entry, stored_meta
from vigil.catalog.listing import CATALOG_FILE, HashSetInfo
from vigil.catalog.migrate import ensure_head
from vigil.catalog.schema import KIND_CODES, KIND_NAMES
from vigil.config import sqlite_wal
from vigil.errors import CatalogError, HashListError
from vigil.fingerprint.fingerprints import VPDQFrame
from vigil.hashsets.entry import HASH_KINDS, Entry, ParseReport
from vigil.kinds import VPDQ
from vigil.matching.entries import EntryRecord

if TYPE_CHECKING:
    import numpy as np

BATCH = 20_000
# SQLite page cache during an import, KiB (the default is 2 MiB).
IMPORT_CACHE_KIB = 262_144


@dataclass
class ImportResult:
    """What an import did: the set as stored, what it replaced, what was malformed."""

    hashset: HashSetInfo
    report: ParseReport
    replaced: HashSetInfo | None = None
    unchanged: bool = False
    withdrawn: int = 0
    problems: list[str] = field(default_factory=list)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    sqlite_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (identifies an exact re-import of the same list)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Catalog:
    """Imported hash sets. Every change bumps `generation`, which tells matchers to recompile."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            ensure_head(self.engine)
        except BaseException:
            self.engine.dispose()
            raise

    @classmethod
    def open(cls, home: Path) -> Catalog:
        """The catalog under a Vigil home directory: `catalog.sqlite`, or the database the home
        records (`vigil server init --db URL`)."""
        from vigil.config import database_url

        return cls(database_url(home) or f"sqlite:///{home / CATALOG_FILE}")

    @classmethod
    def in_memory(cls) -> Catalog:
        """A throw-away catalog (for hash-list files given directly to `vigil scan`)."""
        return cls("sqlite://")

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    # -- reading -----------------------------------------------------------------------------

    def generation(self) -> int:
        """A counter bumped by every change of the catalog's contents."""
        with self.engine.connect() as conn:
            return _generation(conn)

    def sets(self) -> list[HashSetInfo]:
        """All sets, by name."""
        with self.engine.connect() as conn:
            return _sets(conn)

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A connection in one transaction for a change; on SQLite without foreign-key
        enforcement.

        `hashes.entry_id` has no index of its own (it would slow every import), so with
        enforcement SQLite scans the whole hashes table for every entry row deleted (hours for
        a thousand entries of a catalog of millions). The catalog's own changes keep the rows
        consistent: hashes and frames are deleted before their entries.
        """
        with self.engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # Outside a transaction (pysqlite begins one only for writes): the pragma is a
                # no-op inside one.
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            try:
                with conn.begin():
                    yield conn
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()

    @contextmanager
    def snapshot(self) -> Iterator[CatalogSnapshot]:
        """One consistent view of the whole catalog, for as long as the block runs.

        Everything read through it comes from one read transaction (a snapshot in SQLite's WAL
        mode, REPEATABLE READ on PostgreSQL): a compile that runs while a set is imported or
        removed sees the catalog entirely before or entirely after the change.
        """
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # pysqlite begins no transaction for reads: each SELECT would see the newest
                # state. An explicit BEGIN makes the first read fix the snapshot for the rest.
                conn.exec_driver_sql("BEGIN")
            else:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                conn.begin()
            try:
                yield CatalogSnapshot(conn)
            finally:
                conn.rollback()

    def get(self, name: str) -> HashSetInfo:
        """The set called `name` (CatalogError if there is none)."""
        with self.engine.connect() as conn:
            info = self._get(conn, name)
        if info is None:
            known = ", ".join(s.name for s in self.sets()) or "none imported"
            raise CatalogError(f"no hash set named {name!r} (known: {known})")
        return info

    def _get(self, conn: Connection, name: str) -> HashSetInfo | None:
        row = conn.execute(select(schema.hashsets).where(schema.hashsets.c.name == name)).first()
        return HashSetInfo(**row._mapping) if row else None

    def iter_hashes(self, kind: str) -> Iterator[tuple[bytes, int, int]]:
        """(value, entry_id, set_id) of every hash of one kind, streamed."""
        stmt = select(
            schema.hashes.c.value, schema.hashes.c.entry_id, schema.hashes.c.set_id
        ).where(schema.hashes.c.kind == KIND_CODES[kind])
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(stmt)
            for row in result:
                yield bytes(row[0]), row[1], row[2]

    def entry_frames(self, entry_ids: Iterable[int]) -> dict[int, list[VPDQFrame]]:
        """The vPDQ frames of these entries (for export), in frame order."""
        wanted = sorted(set(entry_ids))
        out: dict[int, list[VPDQFrame]] = {}
        v = schema.video_frames.c
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                stmt = (
                    select(v.entry_id, v.frame, v.timestamp, v.quality, v.pdq)
                    .where(v.entry_id.in_(wanted[start : start + 500]))
                    .order_by(v.entry_id, v.frame)
                )
                for row in conn.execute(stmt):
                    out.setdefault(row[0], []).append(
                        VPDQFrame(row[1], float(row[2]), row[3], bytes(row[4]).hex())
                    )
        return out

    def hash_arrays(
        self, widths: dict[str, int], chunk: int = 1 << 16
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every hash as arrays, per kind (see CatalogSnapshot.hash_arrays)."""
        with self.snapshot() as snap:
            return snap.hash_arrays(widths, chunk)

    def entries(self, ids: Iterable[int]) -> dict[int, EntryRecord]:
        """Entries by catalog id."""
        wanted = sorted(set(ids))
        out: dict[int, EntryRecord] = {}
        e = schema.entries.c
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for row in conn.execute(select(schema.entries).where(e.id.in_(chunk))):
                    out[row.id] = EntryRecord(
                        row.id, row.set_id, row.ext_id, row.category, row.meta
                    )
        return out

    def iter_entries(self, name: str) -> Iterator[Entry]:
        """The entries of a set with their hashes, in import order (for export)."""
        info = self.get(name)
        e, h = schema.entries.c, schema.hashes.c
        last = 0
        while True:
            # Pages of entries, each read completely before the next query (the frames of its
            # videos): no query runs while another one's results are still being streamed.
            with self.engine.connect() as conn:
                ids = list(
                    conn.execute(
                        select(e.id)
                        .where(e.set_id == info.id, e.id > last)
                        .order_by(e.id)
                        .limit(BATCH)
                    ).scalars()
                )
                if not ids:
                    return
                rows = conn.execute(
                    select(e.id, e.ext_id, e.category, e.meta, h.kind, h.value)
                    .select_from(schema.entries.outerjoin(schema.hashes, h.entry_id == e.id))
                    .where(e.set_id == info.id, e.id >= ids[0], e.id <= ids[-1])
                    .order_by(e.id)
                ).all()
            frames = self.entry_frames(ids)
            for entry_id, group in itertools.groupby(rows, key=lambda r: r.id):
                rows_l = list(group)
                first = rows_l[0]
                yield Entry(
                    hashes={
                        KIND_NAMES[r.kind]: bytes(r.value).hex()
                        for r in rows_l
                        if r.kind is not None
                    },
                    id=first.ext_id,
                    category=first.category,
                    meta=dict(first.meta or {}),
                    vpdq=frames.get(entry_id, []),
                )
            last = ids[-1]

    # -- changing ----------------------------------------------------------------------------

    def import_file(
        self,
        path: Path,
        *,
        name: str | None = None,
        format: str = "auto",
        version: str | None = None,
        known_good: bool = False,
    ) -> ImportResult:
        """Import a hash-list file as one set, atomically (a failure leaves the catalog as it was)."""
        from vigil.hashsets.reader import read_hashlist

        path = Path(path)
        if not path.is_file():
            raise HashListError(f"{path}: no such file")
        name = name or _default_name(path)
        digest = file_sha256(path)
        with self.engine.connect() as conn:
            existing = self._get(conn, name)
        if existing is not None and existing.content_sha256 == digest:
            report = ParseReport(format=existing.format)
            return ImportResult(existing, report, unchanged=True)
        entries, report = read_hashlist(path, format)
        if version is None:
            mtime = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
            version = str(report.info.get("version_hint") or mtime.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return self.import_entries(
            name,
            entries,
            report,
            source=str(path.resolve()),
            version=version,
            known_good=known_good,
            content_sha256=digest,
        )

    def import_entries(
        self,
        name: str,
        entries: Iterable[Entry],
        report: ParseReport,
        *,
        source: str,
        version: str,
        known_good: bool = False,
        content_sha256: str = "",
    ) -> ImportResult:
        """Store a parsed list as set `name`, replacing a set of that name, in one transaction."""
        by_kind: Counter[str] = Counter()
        by_category: Counter[str] = Counter()
        count = 0
        with self.writing() as conn:
            # The generation first: its row lock orders concurrent writers, so the entries this
            # change adds carry the generation it commits as.
            generation = self._bump(conn)
            replaced = self._get(conn, name)
            row = {
                "name": name,
                "format": report.format or "unknown",
                "source": source,
                "version": version,
                "imported_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "known_good": known_good,
                "content_sha256": content_sha256,
                "entries": 0,
                "counts": {},
                "info": {},
            }
            # A set imported again keeps its row and the entries that did not change (found by
            # digest); the rest are removed and recorded in removed_entries.
            kept = _DigestIndex()
            if replaced is not None:
                set_id = replaced.id
                conn.execute(
                    update(schema.hashsets).where(schema.hashsets.c.id == set_id).values(**row)
                )
                kept = _DigestIndex(conn, set_id)
            else:
                inserted = conn.execute(insert(schema.hashsets).values(**row)).inserted_primary_key
                assert inserted is not None
                set_id = inserted[0]
            next_id = (
                int(
                    conn.execute(
                        select(func.coalesce(func.max(schema.entries.c.id), 0))
                    ).scalar_one()
                )
                + 1
            )
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # A bigger page cache for the index of tens of millions of hashes (reset below).
                conn.exec_driver_sql(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
            entry_rows: list[tuple[Any, ...]] = []
            hash_rows: list[tuple[int, int, int, bytes]] = []
            frame_rows: list[dict[str, Any]] = []
            for entry in entries:
                valid = {k: v for k, v in entry.hashes.items() if k in HASH_KINDS and v}
                if not valid and not entry.vpdq:
                    continue
                count += 1
                for kind in valid:
                    by_kind[kind] += 1
                if entry.vpdq:
                    by_kind[VPDQ.name] += 1
                    by_kind["vpdq_frames"] += len(entry.vpdq)
                by_category[entry.category if entry.category is not None else "uncategorised"] += 1
                codes = sorted((KIND_CODES[k], bytes.fromhex(v)) for k, v in valid.items())
                frames = [
                    (f.index, float(f.timestamp), int(f.quality), bytes.fromhex(f.hash))
                    for f in entry.vpdq
                ]
                meta = stored_meta(entry.meta)
                try:
                    digest: bytes | None = entry_digest(
                        pack_entry(
                            entry.id,
                            entry.category,
                            meta,
                            [list(c) for c in codes],
                            [list(f) for f in frames],
                        )
                    )
                except (OverflowError, ValueError):
                    # Metadata no bundle can carry (an integer beyond 64 bits): stored, never
                    # kept by a re-import, and refused by the publisher as before.
                    digest = None
                if digest is not None and kept.take(digest):
                    continue  # unchanged: the stored entry stays as it is
                entry_id = next_id
                next_id += 1
                entry_rows.append(
                    (entry_id, set_id, entry.id, entry.category, meta, digest, generation)
                )
                hash_rows.extend((set_id, entry_id, code, value) for code, value in codes)
                frame_rows.extend(
                    {
                        "set_id": set_id,
                        "entry_id": entry_id,
                        "frame": index,
                        "timestamp": ts,
                        "quality": quality,
                        "pdq": pdq,
                    }
                    for index, ts, quality, pdq in frames
                )
                if len(hash_rows) + len(frame_rows) >= BATCH:
                    self._flush(conn, entry_rows, hash_rows, frame_rows)
            self._flush(conn, entry_rows, hash_rows, frame_rows)
            gone = kept.left()
            if gone:
                self._remove_entries(conn, set_id, gone, generation)
            if sqlite:
                conn.exec_driver_sql("PRAGMA cache_size=-2000")
            withdrawn = 0
            if report.deleted_ids:
                withdrawn = self._withdraw(conn, set_id, report.deleted_ids, generation)
                count -= withdrawn
            if count == 0 and report.malformed:
                raise HashListError(
                    f"no valid entries ({report.malformed} malformed records; first: "
                    f"{report.problems[0] if report.problems else '?'})"
                )
            counts = {
                "by_kind": dict(by_kind),
                "by_category": dict(by_category),
                "malformed": report.malformed,
                "withdrawn": withdrawn,
            }
            conn.execute(
                update(schema.hashsets)
                .where(schema.hashsets.c.id == set_id)
                .values(
                    entries=count,
                    counts=counts,
                    info=_jsonable(report.info),
                    known_good=known_good or report.known_good,
                )
            )
            stored = self._get(conn, name)
        assert stored is not None
        return ImportResult(
            stored,
            report,
            replaced=replaced,
            withdrawn=withdrawn,
            problems=[str(p) for p in report.problems],
        )

    def remove(self, name: str) -> HashSetInfo:
        """Delete a set and its entries."""
        with self.writing() as conn:
            info = self._get(conn, name)
            if info is None:
                raise CatalogError(f"no hash set named {name!r}")
            generation = self._bump(conn)
            self._delete_set(conn, info.id)
            # The set as a whole (an empty digest): a set made later may get the same id.
            conn.execute(
                insert(schema.removed_entries).values(
                    set_id=info.id, digest=b"", added=0, removed=generation
                )
            )
        return info

    @staticmethod
    def _flush(
        conn: Connection,
        entry_rows: list[tuple[Any, ...]],
        hash_rows: list[tuple[int, int, int, bytes]],
        frame_rows: list[dict[str, Any]],
    ) -> None:
        """Insert rows gathered as plain tuples; on SQLite straight through the DBAPI cursor."""
        if conn.dialect.name == "sqlite":
            if entry_rows:
                conn.exec_driver_sql(
                    "INSERT INTO entries (id, set_id, ext_id, category, meta, digest, added)"
                    " VALUES (?,?,?,?,?,?,?)",
                    [(i, s, x, c, json.dumps(m), d, a) for i, s, x, c, m, d, a in entry_rows],
                )
            if hash_rows:
                conn.exec_driver_sql(
                    "INSERT INTO hashes (set_id, entry_id, kind, value) VALUES (?,?,?,?)",
                    hash_rows,
                )
        else:
            if entry_rows:
                e_cols = ("id", "set_id", "ext_id", "category", "meta", "digest", "added")
                conn.execute(
                    insert(schema.entries), [dict(zip(e_cols, r, strict=True)) for r in entry_rows]
                )
            if hash_rows:
                h_cols = ("set_id", "entry_id", "kind", "value")
                conn.execute(
                    insert(schema.hashes), [dict(zip(h_cols, r, strict=True)) for r in hash_rows]
                )
        if frame_rows:
            conn.execute(insert(schema.video_frames), frame_rows)
        entry_rows.clear()
        hash_rows.clear()
        frame_rows.clear()

    @staticmethod
    def _delete_set(conn: Connection, set_id: int) -> None:
        conn.execute(delete(schema.hashes).where(schema.hashes.c.set_id == set_id))
        conn.execute(delete(schema.video_frames).where(schema.video_frames.c.set_id == set_id))
        conn.execute(delete(schema.entries).where(schema.entries.c.set_id == set_id))
        conn.execute(delete(schema.hashsets).where(schema.hashsets.c.id == set_id))

    @staticmethod
    def _withdraw(conn: Connection, set_id: int, ext_ids: list[str], generation: int) -> int:
        e = schema.entries.c
        ids: list[int] = []
        for start in range(0, len(ext_ids), 500):
            chunk = ext_ids[start : start + 500]
            ids += [
                r[0]
                for r in conn.execute(select(e.id).where(e.set_id == set_id, e.ext_id.in_(chunk)))
            ]
        Catalog._remove_entries(conn, set_id, ids, generation)
        return len(ids)

    @staticmethod
    def _remove_entries(
        conn: Connection, set_id: int, ids: list[int], generation: int | None
    ) -> None:
        """Delete entries of one set (their hashes and frames first); with a `generation`,
        record each in removed_entries as removed by it."""
        if not ids:
            return
        e = schema.entries.c
        if generation is not None:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(select(e.digest, e.added).where(e.id.in_(chunk))).all()
                conn.execute(
                    insert(schema.removed_entries),
                    [
                        {"set_id": set_id, "digest": d, "added": a, "removed": generation}
                        for d, a in rows
                        if d is not None
                    ],
                )
        delete_entries(conn, set_id, ids)

    @staticmethod
    def _bump(conn: Connection) -> int:
        """Count one more change; the new generation."""
        conn.execute(
            update(schema.state)
            .where(schema.state.c.key == "generation")
            .values(value=schema.state.c.value + 1)
        )
        return _generation(conn)

    def forget_removed(self, upto: int) -> int:
        """Drop the record of entries removed by generations up to `upto` (published: no delta
        needs them any more); how many rows went."""
        r = schema.removed_entries
        with self.engine.begin() as conn:
            return int(conn.execute(delete(r).where(r.c.removed <= upto)).rowcount or 0)


def _default_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz",):
        name = name.removesuffix(suffix)
    return name.rsplit(".", 1)[0] if "." in name else name


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class CatalogSnapshot:
    """Reads of one catalog state (made by `Catalog.snapshot`): what a compile needs."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def generation(self) -> int:
        """The generation of this state."""
        return _generation(self.conn)

    def sets(self) -> list[HashSetInfo]:
        """All sets, by name."""
        return _sets(self.conn)

    def iter_video_frames(self) -> Iterator[tuple[int, int, int, float, int, bytes]]:
        """(entry_id, set_id, frame, timestamp, quality, pdq) of every known video frame."""
        return _video_frames(self.conn)

    def iter_entry_rows(self) -> Iterator[tuple[int, int, str | None, str | None, Any]]:
        """(id, set_id, ext_id, category, meta) of every entry in id order; `meta` as JSON
        text on SQLite (read straight from the DBAPI cursor), a dict elsewhere."""
        sql = "SELECT id, set_id, ext_id, category, meta FROM entries ORDER BY id"
        for rows in _chunks(self.conn, sql, BATCH):
            yield from rows

    def hash_arrays(
        self, widths: dict[str, int], chunk: int = 1 << 16
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every hash as arrays, per kind: (values as S{width}, entry ids, set ids), unsorted.

        One pass over the hashes table, fetched `chunk` rows at a time into arrays allocated
        once at their final size (the counts are asked first), so memory stays near the size of
        the result. A value of the wrong width for its kind is skipped.
        """
        import numpy as np  # here: commands that only read the sets start without it

        h = schema.hashes.c
        codes = {KIND_CODES[k]: k for k in widths}
        counts = {
            codes[int(kind)]: int(n)
            for kind, n in self.conn.execute(select(h.kind, func.count()).group_by(h.kind))
            if int(kind) in codes
        }
        out = {
            k: (
                np.empty(counts.get(k, 0), dtype=f"S{w}"),
                np.empty(counts.get(k, 0), dtype=np.int64),
                np.empty(counts.get(k, 0), dtype=np.int32),
            )
            for k, w in widths.items()
        }
        filled = dict.fromkeys(widths, 0)
        sql = "SELECT kind, value, entry_id, set_id FROM hashes"
        for rows in _chunks(self.conn, sql, chunk):
            kinds, values, entry_ids, set_ids = zip(*rows, strict=True)
            kind_arr = np.array(kinds, dtype=np.int16)
            for code, kind in codes.items():
                idx = np.flatnonzero(kind_arr == code)
                if len(idx) == 0:
                    continue
                width = widths[kind]
                vals = [bytes(values[i]) for i in idx.tolist()]
                if any(len(v) != width for v in vals):
                    keep = [j for j, v in enumerate(vals) if len(v) == width]
                    vals, idx = [vals[j] for j in keep], idx[keep]
                at, end = filled[kind], filled[kind] + len(idx)
                if end > len(out[kind][0]):  # cannot happen in one snapshot; kept for safety
                    out[kind] = tuple(  # type: ignore[assignment]
                        np.resize(a, end) for a in out[kind]
                    )
                v_arr, e_arr, s_arr = out[kind]
                v_arr[at:end] = np.frombuffer(b"".join(vals), dtype=f"S{width}")
                e_arr[at:end] = np.array(entry_ids, dtype=np.int64)[idx]
                s_arr[at:end] = np.array(set_ids, dtype=np.int32)[idx]
                filled[kind] = end
        return {k: tuple(a[: filled[k]] for a in arrs) for k, arrs in out.items()}  # type: ignore[misc]


def _generation(conn: Connection) -> int:
    return int(
        conn.execute(
            select(schema.state.c.value).where(schema.state.c.key == "generation")
        ).scalar_one()
    )


def _sets(conn: Connection) -> list[HashSetInfo]:
    rows = conn.execute(select(schema.hashsets).order_by(schema.hashsets.c.name)).all()
    return [HashSetInfo(**row._mapping) for row in rows]


def _video_frames(conn: Connection) -> Iterator[tuple[int, int, int, float, int, bytes]]:
    v = schema.video_frames.c
    stmt = select(v.entry_id, v.set_id, v.frame, v.timestamp, v.quality, v.pdq).order_by(
        v.entry_id, v.frame
    )
    result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(stmt)
    for row in result:
        yield row[0], row[1], row[2], float(row[3]), row[4], bytes(row[5])


def _chunks(conn: Connection, sql: str, chunk: int) -> Iterator[Sequence[Any]]:
    """Rows of a plain query, `chunk` at a time, in the connection's transaction."""
    if conn.dialect.name == "sqlite":
        # The DBAPI cursor of the same connection: plain tuples, no SQLAlchemy row objects.
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        cur = dbapi.cursor()
        try:
            cur.execute(sql)
            while rows := cur.fetchmany(chunk):
                yield rows
        finally:
            cur.close()
        return
    # Options for this statement only (Connection.execution_options would change the
    # connection for good, and a writer's later executemany cannot use a server-side cursor).
    result = conn.exec_driver_sql(
        sql, execution_options={"stream_results": True, "yield_per": chunk}
    )
    yield from result.partitions(chunk)


class _DigestIndex:
    """The entry ids of one set by digest, for a re-import to find the entries it keeps.

    One id per digest in a plain dict (bytes and ints: nothing the garbage collector walks,
    which a million small lists made it do again and again while a large list was parsed); the
    rare digests held by several entries in a second dict."""

    def __init__(self, conn: Connection | None = None, set_id: int | None = None) -> None:
        self.ids: dict[bytes, int] = {}
        self.more: dict[bytes, list[int]] = {}
        self.unnamed: list[int] = []  # entries without a digest: never kept
        if conn is None:
            return
        sql = f"SELECT id, digest FROM entries WHERE set_id = {int(set_id or 0)}"
        for rows in _chunks(conn, sql, BATCH):
            for eid, digest in rows:
                if digest is None:
                    self.unnamed.append(eid)
                    continue
                key = bytes(digest)
                if key in self.ids:
                    self.more.setdefault(key, []).append(eid)
                else:
                    self.ids[key] = eid

    def take(self, digest: bytes) -> bool:
        """Keep one entry of this digest, if one is left."""
        extra = self.more.get(digest)
        if extra:
            extra.pop()
            return True
        return self.ids.pop(digest, None) is not None

    def left(self) -> list[int]:
        """The ids of the entries not kept."""
        return [*self.ids.values(), *(i for ids in self.more.values() for i in ids), *self.unnamed]


def delete_entries(conn: Connection, set_id: int, ids: Sequence[int]) -> None:
    """Delete entries of one set with their hashes and frames, in the caller's transaction.

    `hashes.entry_id` has no index (it would slow every import), so the ids go into a temporary
    table and each table is scanned once for the set, whatever their number.
    """
    if not ids:
        return
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS vigil_drop_ids (id INTEGER PRIMARY KEY)"
    )
    conn.exec_driver_sql("DELETE FROM vigil_drop_ids")
    tmp = Table("vigil_drop_ids", MetaData(), Column("id", Integer, primary_key=True))
    for start in range(0, len(ids), BATCH):
        conn.execute(insert(tmp), [{"id": i} for i in ids[start : start + BATCH]])
    sid = int(set_id)
    for table in ("hashes", "video_frames"):
        conn.exec_driver_sql(
            f"DELETE FROM {table} WHERE set_id = {sid} AND entry_id IN (SELECT id FROM vigil_drop_ids)"
        )
    conn.exec_driver_sql(
        f"DELETE FROM entries WHERE set_id = {sid} AND id IN (SELECT id FROM vigil_drop_ids)"
    )
    conn.exec_driver_sql("DELETE FROM vigil_drop_ids")


def iter_packed(
    conn: Connection, set_id: int | None = None, added_after: int | None = None
) -> Iterator[tuple[int, int, bytes]]:
    """(set_id, entry_id, packed entry) of every entry (of one set; added after a generation),
    by set then id, packed canonically (vigil.catalog.digest).

    Three ordered streams (entries, hashes, frames) merged on the entry id, so a catalog of
    millions of entries is read without holding its hashes in memory.
    """
    cond = []
    if set_id is not None:
        cond.append(f"set_id = {int(set_id)}")
    where = f" WHERE {' AND '.join(cond)}" if cond else ""
    entry_where = where
    if added_after is not None:
        picked = f"added > {int(added_after)}"
        entry_where = f"{where} AND {picked}" if where else f" WHERE {picked}"
        sub = f"entry_id IN (SELECT id FROM entries{entry_where})"
        where = f"{where} AND {sub}" if where else f" WHERE {sub}"
    entries = iter_rows(
        conn,
        f"SELECT set_id, id, ext_id, category, meta FROM entries{entry_where} ORDER BY set_id, id",
    )
    hashes = iter_rows(
        conn,
        f"SELECT set_id, entry_id, kind, value FROM hashes{where} ORDER BY set_id, entry_id, kind",
    )
    frames = iter_rows(
        conn,
        "SELECT set_id, entry_id, frame, timestamp, quality, pdq FROM video_frames"
        f"{where} ORDER BY set_id, entry_id, frame",
    )
    h = next(hashes, None)
    f = next(frames, None)
    for sid, eid, ext_id, category, meta in entries:
        key = (sid, eid)
        hs: list[list[Any]] = []
        while h is not None and (h[0], h[1]) < key:
            h = next(hashes, None)
        while h is not None and (h[0], h[1]) == key:
            hs.append([int(h[2]), bytes(h[3])])
            h = next(hashes, None)
        fs: list[list[Any]] = []
        while f is not None and (f[0], f[1]) < key:
            f = next(frames, None)
        while f is not None and (f[0], f[1]) == key:
            fs.append([int(f[2]), float(f[3]), int(f[4]), bytes(f[5])])
            f = next(frames, None)
        text = meta if isinstance(meta, str) else json.dumps(meta or {})
        yield sid, eid, pack_entry(ext_id, category, meta_from_text(text), hs, fs)


def iter_rows(conn: Connection, sql: str) -> Iterator[Any]:
    """The rows of a plain query, fetched in batches."""
    for chunk in _chunks(conn, sql, BATCH):
        yield from chunk
