"""Schema 1: hash sets, entries, hashes (with a (kind, value) index), state.

The tables exactly as Vigil's first catalog made them (SQLAlchemy's create_all of that day), so a
catalog made then and one made now from nothing are the same at every later revision. Frozen
here: later changes to vigil.catalog.schema must not change what this revision does.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the schema-1 tables and the state rows."""
    op.create_table(
        "hashsets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("imported_at", sa.String(40), nullable=False),
        sa.Column("known_good", sa.Boolean, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("info", sa.JSON, nullable=False),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("set_id", sa.Integer, sa.ForeignKey("hashsets.id"), nullable=False),
        sa.Column("ext_id", sa.String(200)),
        sa.Column("category", sa.String(64)),
        sa.Column("meta", sa.JSON, nullable=False),
    )
    op.create_index("ix_entries_set_id", "entries", ["set_id"])
    op.create_table(
        "hashes",
        sa.Column("set_id", sa.Integer, sa.ForeignKey("hashsets.id"), nullable=False),
        sa.Column("entry_id", sa.Integer, sa.ForeignKey("entries.id"), nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_hashes_set", "hashes", ["set_id"])
    op.create_index("ix_hashes_kind_value", "hashes", ["kind", "value"])
    state = op.create_table(
        "state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Integer, nullable=False),
    )
    op.bulk_insert(
        state, [{"key": "schema_version", "value": 1}, {"key": "generation", "value": 0}]
    )


def downgrade() -> None:
    """Drop every catalog table."""
    for table in ("state", "hashes", "entries", "hashsets"):
        op.drop_table(table)
