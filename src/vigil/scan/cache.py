"""The fingerprint cache: what a file's items hashed to, keyed by the file's identity on disk.

A file whose device, inode, size, modification time and change time are unchanged is not read
again; its cached fingerprints are matched against the current catalog, so a scan after a new
hash set was imported needs no file content either. The change time is part of the key because
a user can set the modification time back, but not the change time.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from vigil.fingerprint.fingerprints import Fingerprints
from vigil.scan.results import ScannedItem

# Bump when fingerprints of the same bytes would come out different (new PDQ code, new fields).
CACHE_FORMAT = 3
# Inodes per SQL query of `get_many` (SQLite allows 32,766 parameters; old builds 999).
_IN_CHUNK = 900


class FingerprintCache:
    """SQLite file of (dev, ino) -> (size, mtime, ctime, the items' fingerprints)."""

    def __init__(self, path: Path, *, engine_version: str) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files (dev INTEGER, ino INTEGER, size INTEGER, "
            "mtime_ns INTEGER, ctime_ns INTEGER, items TEXT, PRIMARY KEY (dev, ino))"
        )
        stamp = f"{CACHE_FORMAT}:{engine_version}"
        row = self._db.execute("SELECT value FROM meta WHERE key='stamp'").fetchone()
        if row is None or row[0] != stamp:
            self._db.execute("DELETE FROM files")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('stamp', ?)", (stamp,))
        self._pending: list[tuple[int, int, int, int, int, str]] = []
        self.hits = 0
        self.misses = 0

    def get(self, path: str, st: os.stat_result) -> list[ScannedItem] | None:
        """The cached items of this file if its identity is unchanged, else None."""
        row = self._db.execute(
            "SELECT size, mtime_ns, ctime_ns, items FROM files WHERE dev=? AND ino=?",
            (st.st_dev, st.st_ino),
        ).fetchone()
        if row is None or tuple(row[:3]) != (st.st_size, st.st_mtime_ns, st.st_ctime_ns):
            self.misses += 1
            return None
        self.hits += 1
        return [
            ScannedItem(path, d["member"], Fingerprints.from_dict(d["fp"]))
            for d in json.loads(row[3])
        ]

    def get_many(
        self, files: Sequence[tuple[str, os.stat_result]]
    ) -> list[list[ScannedItem] | None]:
        """`get` of many files with one query per device (a scan asks a directory at a time)."""
        by_dev: dict[int, list[int]] = {}
        for _, st in files:
            by_dev.setdefault(st.st_dev, []).append(st.st_ino)
        rows: dict[tuple[int, int], tuple[int, int, int, str]] = {}
        for dev, inos in by_dev.items():
            for start in range(0, len(inos), _IN_CHUNK):
                chunk = inos[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                for ino, size, mtime, ctime, items in self._db.execute(
                    "SELECT ino, size, mtime_ns, ctime_ns, items FROM files "
                    f"WHERE dev=? AND ino IN ({marks})",
                    (dev, *chunk),
                ):
                    rows[(dev, ino)] = (size, mtime, ctime, items)
        out: list[list[ScannedItem] | None] = []
        for path, st in files:
            row = rows.get((st.st_dev, st.st_ino))
            if row is None or row[:3] != (st.st_size, st.st_mtime_ns, st.st_ctime_ns):
                self.misses += 1
                out.append(None)
                continue
            self.hits += 1
            out.append(
                [
                    ScannedItem(path, d["member"], Fingerprints.from_dict(d["fp"]))
                    for d in json.loads(row[3])
                ]
            )
        return out

    def put(self, st: os.stat_result, items: list[ScannedItem]) -> None:
        """Remember the items of a file read completely, without errors."""
        data = json.dumps(
            [{"member": i.member, "fp": i.fingerprints.to_json_state()} for i in items]
        )
        self._pending.append(
            (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, data)
        )
        if len(self._pending) >= 500:
            self.flush()

    def flush(self) -> None:
        """Write remembered items in one transaction."""
        if not self._pending:
            return
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)", self._pending)
        self._db.execute("COMMIT")
        self._pending.clear()

    def clear(self) -> None:
        """Forget everything."""
        self._db.execute("DELETE FROM files")

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        self._db.close()
