"""The fingerprint cache: what a file's items hashed to, keyed by the file's identity on disk.

A file whose device, inode, size, modification time and change time are unchanged is not read
again; its cached fingerprints are matched against the current catalog, so a scan after a new
hash set was imported needs no file content either. The change time is part of the key because
a user can set the modification time back, but not the change time.

Each file also remembers its *verdict* under the last *match context* it was matched in (the
compiled catalogs, the sets reported, the thresholds: see `vigil.scan.scanner.match_context`): the counts a
summary needs and the hits that were reported. While the context is unchanged, a file is counted
and its hits reported again from the verdict alone: nothing is matched, and only the
fingerprints of files with hits are decoded (a match carries them). A second scan of an unchanged
tree against an unchanged catalog costs little more than walking it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from vigil.fingerprint.fingerprints import Fingerprints
from vigil.matching.matcher import Hit
from vigil.scan.results import ScannedItem

# Bump when fingerprints of the same bytes would come out different (new PDQ code, new fields)
# or the table changes; a cache of another format is emptied.
# 4: each file's verdict (match context, counts, hits reported), items in a table of their own.
# 5: the verdict counts undecoded images.
# 6: PDQ's scanned-side variants (vigil.fingerprint.variants).
# 7: the variants' mirrors placed to the pixel, `centre` by agreement, `centre-tb`/`-lr`, `mask-*`.
# 8: the `unlogo` variant (vigil.fingerprint.unlogo: a semi-opaque corner region taken off) and
#    `unveil` undone on the band's pixel rows.
# 9: `unveil`'s glyphs averaged with the row filled across them, a long run of hot rows split;
#    `unlogo`'s finder widened (more candidate edges, the step's cover along them), the parts
#    of the picture a patch of another colour encloses moved with it, a coarser patch scale.
# 10: `unlogo`'s candidate edges also the highest steps whose lines fit, its detail bounds
#    widened, a region undone only when it holds on the finer thumbnail too.
CACHE_FORMAT = 10
# Inodes per SQL query of `get_many` (SQLite allows 32,766 parameters; old builds 999).
_IN_CHUNK = 900
# Inodes closer than _RUN_GAP form a run; a run of at least _RUN_MIN is read as one range.
_RUN_GAP = 8
_RUN_MIN = 16
# Writes held before one transaction.
_PENDING = 500


@dataclass(frozen=True, slots=True)
class Verdict:
    """What matching a file's items gave under one match context."""

    items: int
    images: int
    videos: int
    known_good: int
    undecoded: int
    # The hits reported: (index of the item in the file, index of the source, hit).
    reports: tuple[tuple[int, int, Hit], ...] = ()

    # Stored as JSON lists of Hit's fields in order: a change to Hit must bump CACHE_FORMAT.
    def reports_json(self) -> bytes | None:
        if not self.reports:
            return None
        return _dumps(
            [
                [i, src, h.entry_id, h.set_id, h.kind, h.distance, h.transform, h.segment]
                for i, src, h in self.reports
            ]
        )

    @staticmethod
    def parse_reports(text: str | bytes | None) -> tuple[tuple[int, int, Hit], ...]:
        if not text:
            return ()
        return tuple((r[0], r[1], Hit(*r[2:])) for r in orjson.loads(text))


def _plain(value: object) -> object:
    """JSON for what orjson does not write itself (NumPy scalars in a video's metadata)."""
    item = getattr(value, "item", None)
    if item is None:
        raise TypeError(f"cannot store a {type(value).__name__} in the fingerprint cache")
    return item()


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_plain)


def encode_items(items: Sequence[ScannedItem]) -> bytes:
    """The cache's form of a file's items: JSON (orjson: the cache writes it for every file
    read and reads it back for every file matched again, 5-10x faster than the json module)."""
    return _dumps([{"member": i.member, "fp": i.fingerprints.to_json_state()} for i in items])


def decode_items(path: str, data: str | bytes) -> list[ScannedItem]:
    """`encode_items` read back, for the file at `path`."""
    return [
        ScannedItem(path, d["member"], Fingerprints.from_dict(d["fp"])) for d in orjson.loads(data)
    ]


@dataclass(slots=True)
class CachedFile:
    """An unchanged file: its verdict under the current context if it has one, and its items
    (empty when the verdict has no hits: they are not decoded then)."""

    verdict: Verdict | None
    items: list[ScannedItem]


# Two tables: `files`, small fixed-width rows read for every file a scan meets, and `items`, the
# fingerprints as JSON, read only for files that must be matched. JSON is stored as bytes (a
# cache written with text JSON, as earlier builds of format 4 did, reads the same).
_TABLES = (
    "CREATE TABLE IF NOT EXISTS files (dev INTEGER, ino INTEGER, size INTEGER, "
    "mtime_ns INTEGER, ctime_ns INTEGER, context INTEGER, n_items INTEGER, n_images INTEGER, "
    "n_videos INTEGER, n_good INTEGER, n_undecoded INTEGER, reports BLOB, "
    "PRIMARY KEY (dev, ino)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS items (dev INTEGER, ino INTEGER, data BLOB, "
    "PRIMARY KEY (dev, ino))",
)


class FingerprintCache:
    """SQLite file of (dev, ino) -> (size, mtime, ctime, verdict) and the items' fingerprints."""

    def __init__(self, path: Path, *, engine_version: str) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        stamp = f"{CACHE_FORMAT}:{engine_version}"
        row = self._db.execute("SELECT value FROM meta WHERE key='stamp'").fetchone()
        if row is None or row[0] != stamp:
            self._db.execute("DROP TABLE IF EXISTS files")
            self._db.execute("DROP TABLE IF EXISTS items")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('stamp', ?)", (stamp,))
        for create in _TABLES:
            self._db.execute(create)
        self._pending: list[tuple[object, ...]] = []
        self._pending_items: list[tuple[int, int, bytes]] = []
        self._verdicts: list[tuple[object, ...]] = []
        self._clean: dict[tuple[int, int, int, int, int], Verdict] = {}
        self.hits = 0
        self.misses = 0

    def get(self, path: str, st: os.stat_result, context: int = 0) -> CachedFile | None:
        """`get_many` of one file."""
        return self.get_many([(path, st)], context)[0]

    def get_many(
        self, files: Sequence[tuple[str, os.stat_result]], context: int = 0
    ) -> list[CachedFile | None]:
        """Per file: None if its identity changed or it was never cached, else what is known of
        it under `context`. One query per device and run of neighbouring inodes (or 900 others);
        the items' JSON comes back only for files whose items are needed."""
        rows = self._select(
            "SELECT ino, size, mtime_ns, ctime_ns, context, n_items, n_images, n_videos, n_good, "
            "n_undecoded, reports, CASE WHEN context=? AND reports IS NULL THEN NULL ELSE "
            "(SELECT data FROM items WHERE items.dev=files.dev AND items.ino=files.ino) END "
            "FROM files",
            [st for _, st in files],
            (context,),
        )
        out: list[CachedFile | None] = []
        clean = self._clean  # most files: a verdict without hits, one of a few kinds
        for path, st in files:
            # (ino, size, mtime_ns, ctime_ns, context, n_items, n_images, n_videos, n_good,
            #  n_undecoded, reports, items' JSON or None)
            row = rows.get((st.st_dev, st.st_ino))
            if (
                row is None
                or row[1] != st.st_size
                or row[2] != st.st_mtime_ns
                or row[3] != st.st_ctime_ns
            ):
                self.misses += 1
                out.append(None)
                continue
            if row[11] is None:
                if row[4] != context or row[10] is not None:  # pragma: no cover - items lost
                    self.misses += 1
                    out.append(None)
                    continue
                self.hits += 1
                counts = (row[5], row[6], row[7], row[8], row[9])
                verdict = clean.get(counts)
                if verdict is None:
                    verdict = clean[counts] = Verdict(*counts)
                out.append(CachedFile(verdict, []))
                continue
            self.hits += 1
            items = decode_items(path, row[11])
            if row[4] != context:
                out.append(CachedFile(None, items))
            else:
                reports = Verdict.parse_reports(row[10])
                verdict = Verdict(row[5], row[6], row[7], row[8], row[9], reports)
                out.append(CachedFile(verdict, items))
        return out

    def _select(
        self, query: str, stats: Sequence[os.stat_result], params: tuple[object, ...] = ()
    ) -> dict[tuple[int, int], tuple[Any, ...]]:
        """`query` (selecting ino first; `params` for its own placeholders) of these files'
        rows, by (dev, ino)."""
        by_dev: dict[int, list[int]] = {}
        for st in stats:
            by_dev.setdefault(st.st_dev, []).append(st.st_ino)
        rows: dict[tuple[int, int], tuple[Any, ...]] = {}
        for dev, inos in by_dev.items():
            # Files of a directory usually have neighbouring inodes: a run of them is read as
            # one range of the table (a sequential read, several times cheaper per row than a
            # lookup per inode); the others by lookups.
            inos.sort()
            singles: list[int] = []
            start = 0
            for i in range(1, len(inos) + 1):
                if i < len(inos) and inos[i] - inos[i - 1] <= _RUN_GAP:
                    continue
                if i - start >= _RUN_MIN:
                    for row in self._db.execute(
                        f"{query} WHERE dev=? AND ino BETWEEN ? AND ?",
                        (*params, dev, inos[start], inos[i - 1]),
                    ):
                        rows[(dev, row[0])] = row
                else:
                    singles.extend(inos[start:i])
                start = i
            for at in range(0, len(singles), _IN_CHUNK):
                chunk = singles[at : at + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    f"{query} WHERE dev=? AND ino IN ({marks})", (*params, dev, *chunk)
                ):
                    rows[(dev, row[0])] = row
        return rows

    def put(
        self, st: os.stat_result, items: list[ScannedItem], verdict: Verdict, context: int
    ) -> None:
        """Remember the items of a file read completely, without errors, and its verdict."""
        self._pending_items.append((st.st_dev, st.st_ino, encode_items(items)))
        self._pending.append(
            (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            + self._verdict_row(verdict, context)
        )
        if len(self._pending) >= _PENDING:
            self.flush()

    def set_verdict(self, st: os.stat_result, verdict: Verdict, context: int) -> None:
        """Remember what a cached file's items gave when matched under `context`."""
        self._verdicts.append(self._verdict_row(verdict, context) + (st.st_dev, st.st_ino))
        if len(self._verdicts) >= _PENDING:
            self.flush()

    @staticmethod
    def _verdict_row(verdict: Verdict, context: int) -> tuple[object, ...]:
        v = verdict
        return (context, v.items, v.images, v.videos, v.known_good, v.undecoded, v.reports_json())

    def flush(self) -> None:
        """Write what was remembered in one transaction."""
        if not self._pending and not self._verdicts:
            return
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", self._pending
        )
        self._db.executemany("INSERT OR REPLACE INTO items VALUES (?,?,?)", self._pending_items)
        self._db.executemany(
            "UPDATE files SET context=?, n_items=?, n_images=?, n_videos=?, n_good=?, "
            "n_undecoded=?, reports=? WHERE dev=? AND ino=?",
            self._verdicts,
        )
        self._db.execute("COMMIT")
        self._pending.clear()
        self._pending_items.clear()
        self._verdicts.clear()

    def clear(self) -> None:
        """Forget everything."""
        self._db.execute("DELETE FROM files")
        self._db.execute("DELETE FROM items")

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        self._db.close()
