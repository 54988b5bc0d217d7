"""Where Vigil keeps its state: `$VIGIL_HOME`, else the platform's user data directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import platformdirs


def vigil_home(override: str | os.PathLike[str] | None = None) -> Path:
    """The state directory (created if missing)."""
    raw = override or os.environ.get("VIGIL_HOME") or platformdirs.user_data_dir("vigil")
    home = Path(raw).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


# Where a home records the database it lives in when that is not the SQLite files under it
# (`vigil server init --db URL`). State, not configuration: the operator's *.toml files are
# only ever read.
DATABASE_URL_FILE = Path("state") / "database.url"


def sqlalchemy_url(url: str) -> str:
    """A database URL in SQLAlchemy's form; a plain `postgresql://` means psycopg 3."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def database_url(home: Path) -> str | None:
    """The database URL recorded for `home`, or None when its state is SQLite files under it."""
    path = home / DATABASE_URL_FILE
    try:
        recorded = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return sqlalchemy_url(recorded) if recorded else None


def record_database_url(home: Path, url: str) -> None:
    """Write where `home`'s database is (readable by its owner only: a URL may hold a password)."""
    path = home / DATABASE_URL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(sqlalchemy_url(url) + "\n")
    os.replace(tmp, path)


def sqlite_wal(cursor: Any, seconds: float = 30.0) -> None:
    """Put an SQLite database in WAL mode, waiting while another connection holds it.

    Switching a database's journal mode needs it to itself, and SQLite answers "database is
    locked" at once rather than through the busy handler when another process is opening or
    upgrading the same file at that moment; that is retried here.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
