"""The durable spool: every incident report is written here before anything is sent, and leaves
only when the server acknowledged it.

SQLite in WAL mode with synchronous=FULL, so a report committed here survives a SIGKILL or a
power cut. Report ids are made by the agent from what was found (vigil.endpoint.reports), so the
same finding spooled twice is one row, and a resend after a lost acknowledgement is recognised by
the server as the same report. Several processes may hold the spool (the daemon, a manual or a
scheduled scan): each opens its own connection.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from vigil.config import sqlite_wal
from vigil.endpoint.enrolment import agent_dir

SPOOL_FILE = "spool.sqlite"
# Ids delivered are remembered this long, so a scheduled rescan does not send them again.
DELIVERED_DAYS = 90

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, body TEXT NOT NULL,"
    " created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS delivered (id TEXT PRIMARY KEY, at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rejected (id TEXT PRIMARY KEY, body TEXT NOT NULL,"
    " reason TEXT NOT NULL, at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # When each version of a matching file was first seen: all its reports carry that time, even
    # when the agent was killed between two of them (the server counts one sighting).
    "CREATE TABLE IF NOT EXISTS sightings (path TEXT NOT NULL, ino INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (path, ino, mtime_ns))",
)


class Spool:
    """Reports waiting for the server's acknowledgement."""

    def __init__(self, home: Path) -> None:
        self.path = agent_dir(home) / SPOOL_FILE
        self._db = sqlite3.connect(
            self.path, timeout=60, isolation_level=None, check_same_thread=False
        )
        sqlite_wal(self._db)
        self._db.execute("PRAGMA synchronous=FULL")
        for create in _SCHEMA:
            self._db.execute(create)

    def add(self, reports: list[dict[str, Any]]) -> int:
        """Keep these reports (committed before return); returns how many were new."""
        added = 0
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for r in reports:
                if self._db.execute("SELECT 1 FROM delivered WHERE id=?", (r["id"],)).fetchone():
                    continue
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO outbox (id, body, created) VALUES (?, ?, ?)",
                    (r["id"], json.dumps(r, separators=(",", ":")), now),
                )
                added += cur.rowcount
        return added

    def seen_at(self, path: str, ino: int, mtime_ns: int, now: float) -> float:
        """When this version of this file was first seen (now, if it was not before)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR IGNORE INTO sightings VALUES (?, ?, ?, ?)", (path, ino, mtime_ns, now)
            )
            row = self._db.execute(
                "SELECT at FROM sightings WHERE path=? AND ino=? AND mtime_ns=?",
                (path, ino, mtime_ns),
            ).fetchone()
        return float(row[0])

    def batch(self, limit: int) -> list[dict[str, Any]]:
        """The oldest reports not yet acknowledged."""
        rows = self._db.execute(
            "SELECT body FROM outbox ORDER BY created, id LIMIT ?", (limit,)
        ).fetchall()
        return [json.loads(body) for (body,) in rows]

    def acknowledged(self, ids: list[str]) -> None:
        """The server has these: forget them (and remember they were delivered)."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for i in ids:
                self._db.execute("DELETE FROM outbox WHERE id=?", (i,))
                self._db.execute("INSERT OR REPLACE INTO delivered VALUES (?, ?)", (i, now))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('last_delivery', ?)", (str(now),))
            old = now - DELIVERED_DAYS * 86400
            self._db.execute("DELETE FROM delivered WHERE at < ?", (old,))
            self._db.execute("DELETE FROM sightings WHERE at < ?", (old,))

    def reject(self, report: dict[str, Any], reason: str) -> None:
        """The server refuses this report as malformed: kept aside (never resent), not lost."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM outbox WHERE id=?", (report["id"],))
            self._db.execute(
                "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?)",
                (report["id"], json.dumps(report), reason[:2000], time.time()),
            )

    def attempted(self, ids: list[str]) -> None:
        """Count a failed delivery of these reports."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for i in ids:
                self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id=?", (i,))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def rejected_count(self) -> int:
        """Reports the server refused as malformed."""
        return int(self._db.execute("SELECT count(*) FROM rejected").fetchone()[0])

    def last_delivery(self) -> float | None:
        """When the server last acknowledged a batch (seconds since the epoch), or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key='last_delivery'").fetchone()
        return float(row[0]) if row else None

    def close(self) -> None:
        """Close this process's connection."""
        self._db.close()
