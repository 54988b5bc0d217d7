"""Tables of the catalog (SQLAlchemy Core: bulk imports of millions of rows need no ORM)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
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
)

from vigil.kinds import SINGLE

# The schema's revision and its history: vigil.catalog.revision, vigil/catalog/migrations.

metadata = MetaData()

hashsets = Table(
    "hashsets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("format", String(32), nullable=False),
    Column("source", Text, nullable=False),
    Column("version", String(200), nullable=False),
    Column("imported_at", String(40), nullable=False),
    Column("known_good", Boolean, nullable=False, default=False),
    Column("content_sha256", String(64), nullable=False),
    Column("entries", Integer, nullable=False),
    # {"by_kind": {...}, "by_category": {...}, "malformed": n, "withdrawn": n}
    Column("counts", JSON, nullable=False),
    Column("info", JSON, nullable=False),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("set_id", Integer, ForeignKey("hashsets.id"), nullable=False, index=True),
    Column("ext_id", String(200)),
    Column("category", String(64)),
    Column("meta", JSON, nullable=False),
    # The entry's content digest (vigil.catalog.digest) and the catalog generation that added it:
    # what a re-import, a published delta and an agent applying one look entries up by.
    Column("digest", LargeBinary),
    Column("added", Integer, nullable=False, server_default="0"),
    Index("ix_entries_set_digest", "set_id", "digest"),
    Index("ix_entries_set_added", "set_id", "added"),
)

# Entries a change removed from a set that stays (a re-import, a withdrawal): with `added`, what
# the server's publisher builds the delta of a version from without reading whole sets. Rows up
# to the generation it published are dropped by it (Catalog.forget_removed).
removed_entries = Table(
    "removed_entries",
    metadata,
    Column("set_id", Integer, nullable=False),
    Column("digest", LargeBinary, nullable=False),
    Column("added", Integer, nullable=False),
    Column("removed", Integer, nullable=False),
    Index("ix_removed_entries_removed", "removed"),
)

# Hash kinds as small integers (each kind's declared code): the table holds tens of millions of rows.
KIND_CODES: dict[str, int] = {k.name: k.code for k in SINGLE if k.code is not None}
KIND_NAMES: dict[int, str] = {v: k for k, v in KIND_CODES.items()}

hashes = Table(
    "hashes",
    metadata,
    Column("set_id", Integer, ForeignKey("hashsets.id"), nullable=False),
    Column("entry_id", Integer, ForeignKey("entries.id"), nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("value", LargeBinary, nullable=False),
    # By set, then entry: a set's rows, and the rows of given entries of a set (a delta's).
    Index("ix_hashes_set_entry", "set_id", "entry_id"),
)

# The frames of known videos (vPDQ), one row per frame: a video's list is its entry's rows in
# frame order. Kept apart from `hashes` because a frame has a time and a quality as well.
video_frames = Table(
    "video_frames",
    metadata,
    Column("set_id", Integer, ForeignKey("hashsets.id"), nullable=False),
    Column("entry_id", Integer, ForeignKey("entries.id"), nullable=False),
    Column("frame", Integer, nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("quality", SmallInteger, nullable=False),
    Column("pdq", LargeBinary, nullable=False),
    Index("ix_video_frames_set", "set_id"),
    Index("ix_video_frames_entry", "entry_id"),
)

state = Table(
    "state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
)
