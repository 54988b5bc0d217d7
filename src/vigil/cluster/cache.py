"""The cluster form of the fingerprint cache: a file's items keyed by where it is and what
version of it that is.

A local scan keys its cache on (device, inode) and checks size and times (vigil.scan.cache); a
cluster scan meets objects that have no inode, and files on shared storage whose device numbers
differ from one machine to the next. Here the key is the file's location (a path or URL) and its
identity from the listing: version or ETag and size for an object, device/inode/size/times for a
file (vigil.cluster.listing). A repeat scan of an unchanged bucket finds every object here and
reads none: their items are matched on the client, against the builds of this scan.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from vigil.cluster.listing import Listed
from vigil.scan.cache import decode_items
from vigil.scan.results import ScannedItem

# Bump when the table changes; a cache of another format (or engine version) is emptied.
FORMAT = 1
_CHUNK = 900
_PENDING = 2000


class ObjectCache:
    """SQLite file of (location) -> (identity, items)."""

    def __init__(self, path: Path, *, engine_version: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        stamp = f"{FORMAT}:{engine_version}"
        row = self._db.execute("SELECT value FROM meta WHERE key='stamp'").fetchone()
        if row is None or row[0] != stamp:
            self._db.execute("DROP TABLE IF EXISTS objects")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('stamp', ?)", (stamp,))
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects (url TEXT PRIMARY KEY, identity TEXT, items BLOB)"
            " WITHOUT ROWID"
        )
        self._pending: list[tuple[str, str, bytes]] = []

    def get_many(self, files: Sequence[Listed]) -> list[list[ScannedItem] | None]:
        """Per file: its items if it is cached under the same identity, else None."""
        rows: dict[str, tuple[str, bytes]] = {}
        for at in range(0, len(files), _CHUNK):
            chunk = [f.url for f in files[at : at + _CHUNK]]
            marks = ",".join("?" * len(chunk))
            for url, identity, items in self._db.execute(
                f"SELECT url, identity, items FROM objects WHERE url IN ({marks})", chunk
            ):
                rows[url] = (identity, items)
        out: list[list[ScannedItem] | None] = []
        for f in files:
            row = rows.get(f.url)
            # An identity without a version (size only) is never trusted as unchanged.
            if row is None or row[0] != f.identity or f.identity.startswith("size="):
                out.append(None)
            else:
                out.append(decode_items(f.url, row[1]))
        return out

    def put_many(self, found: Sequence[tuple[str, str, bytes]]) -> None:
        """Remember files read cleanly: (location, identity, items as vigil.scan.cache
        encodes them)."""
        self._pending.extend(found)
        if len(self._pending) >= _PENDING:
            self.flush()

    def flush(self) -> None:
        """Write what was remembered in one transaction."""
        if not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO objects VALUES (?,?,?)", self._pending)
        self._db.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        self._db.close()
