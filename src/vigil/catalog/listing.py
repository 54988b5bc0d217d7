"""The catalog's list of sets: what `vigil hashset list` shows, and reading it straight from the
SQLite file with the standard library.

Importing SQLAlchemy costs several times what listing a few sets does, so a listing reads the
file with sqlite3 when the catalog is at this Vigil's revision, and leaves everything else (no
catalog yet, one to upgrade, a newer one) to Catalog, which makes, upgrades or refuses it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vigil.catalog.revision import HEAD, VERSION_TABLE
from vigil.config import database_url

# The catalog's file under a Vigil home.
CATALOG_FILE = "catalog.sqlite"


@dataclass
class HashSetInfo:
    """One imported hash set as `vigil hashset list` shows it."""

    id: int
    name: str
    format: str
    source: str
    version: str
    imported_at: str
    known_good: bool
    content_sha256: str
    entries: int
    counts: dict[str, Any]
    info: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dict(self.__dict__)


_COLUMNS = [f.name for f in fields(HashSetInfo)]


def read_sets(home: Path) -> list[HashSetInfo] | None:
    """The sets of the catalog under `home`, by name, or None if only Catalog can answer."""
    path = home / CATALOG_FILE
    # A home whose catalog lives in another database (`vigil server init --db`): Catalog reads it.
    if not path.is_file() or database_url(home) is not None:
        return None
    conn = sqlite3.connect(path)
    try:
        try:
            found = [r[0] for r in conn.execute(f"SELECT version_num FROM {VERSION_TABLE}")]
        except sqlite3.DatabaseError:
            return None
        if found != [HEAD]:
            return None
        rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM hashsets ORDER BY name").fetchall()
    finally:
        conn.close()
    sets = []
    for row in rows:
        values = dict(zip(_COLUMNS, row, strict=True))
        # As SQLAlchemy's Boolean and JSON types give them back.
        values["known_good"] = bool(values["known_good"])
        values["counts"] = json.loads(values["counts"])
        values["info"] = json.loads(values["info"])
        sets.append(HashSetInfo(**values))
    return sets
