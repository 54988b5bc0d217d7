"""What opening a catalog costs: upgrading a large schema-1 catalog, and opening one at head.

Writes (seeded) a SQLite catalog as Vigil's first schema made it (its DDL, WAL, the (kind, value)
index on hashes that schema 3 drops) holding `--entries` entries with an MD5 and a SHA-1 each,
then in fresh processes times `Catalog(url)` (after importing it): the first open upgrades it to head (Alembic: the
video_frames table, dropping the index), the second finds it at head (one query).

    python -m benchmarks.bench_migrate --entries 1000000
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Schema 1 exactly as SQLAlchemy's create_all wrote it on SQLite.
SCHEMA_1 = """
CREATE TABLE hashsets (id INTEGER NOT NULL, name VARCHAR(200) NOT NULL, format VARCHAR(32) NOT
  NULL, source TEXT NOT NULL, version VARCHAR(200) NOT NULL, imported_at VARCHAR(40) NOT NULL,
  known_good BOOLEAN NOT NULL, content_sha256 VARCHAR(64) NOT NULL, entries INTEGER NOT NULL,
  counts JSON NOT NULL, info JSON NOT NULL, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE state ("key" VARCHAR(64) NOT NULL, value INTEGER NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE entries (id INTEGER NOT NULL, set_id INTEGER NOT NULL, ext_id VARCHAR(200),
  category VARCHAR(64), meta JSON NOT NULL, PRIMARY KEY (id),
  FOREIGN KEY(set_id) REFERENCES hashsets (id));
CREATE INDEX ix_entries_set_id ON entries (set_id);
CREATE TABLE hashes (set_id INTEGER NOT NULL, entry_id INTEGER NOT NULL, kind SMALLINT NOT NULL,
  value BLOB NOT NULL, FOREIGN KEY(set_id) REFERENCES hashsets (id),
  FOREIGN KEY(entry_id) REFERENCES entries (id));
CREATE INDEX ix_hashes_set ON hashes (set_id);
CREATE INDEX ix_hashes_kind_value ON hashes (kind, value);
INSERT INTO state VALUES ('schema_version', 1), ('generation', 1);
INSERT INTO hashsets VALUES (1, 'generated', 'csv', 'generated', '1', '2026-11-21T00:00:00Z', 0,
  '', 0, '{}', '{}');
"""

OPEN = r"""
import sys, time
from vigil.catalog.store import Catalog
t = time.perf_counter()
Catalog(sys.argv[1]).close()
print(time.perf_counter() - t, "alembic" in sys.modules)
"""


def make_schema_1(path: Path, n: int) -> None:
    rng = random.Random(5)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA_1)
    step = 100_000
    for start in range(1, n + 1, step):
        ids = range(start, min(start + step, n + 1))
        conn.executemany(
            "INSERT INTO entries VALUES (?, 1, ?, '1', '{}')", [(i, str(i)) for i in ids]
        )
        conn.executemany(
            "INSERT INTO hashes VALUES (1, ?, ?, ?)",
            [(i, k, rng.randbytes(w)) for i in ids for k, w in ((1, 16), (2, 20))],
        )
    conn.commit()
    conn.close()


def timed_open(url: str) -> tuple[float, bool]:
    out = subprocess.run(
        [sys.executable, "-c", OPEN, url], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), out[1] == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries (2 hashes each)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite"
        t = time.perf_counter()
        make_schema_1(path, args.entries)
        mb = path.stat().st_size / 1e6
        print(
            f"schema-1 catalog: {args.entries:,} entries, {2 * args.entries:,} hashes, "
            f"{mb:.0f} MB, written in {time.perf_counter() - t:.1f} s"
        )
        url = f"sqlite:///{path}"
        for label in ("first open (upgrade to head)", "second open (at head)"):
            seconds, alembic = timed_open(url)
            print(f"{label}: {seconds:.2f} s (Alembic {'loaded' if alembic else 'not loaded'})")
        print(
            f"catalog after: {path.stat().st_size / 1e6:.0f} MB; load average "
            f"{os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
