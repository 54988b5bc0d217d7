"""Schema 3: no (kind, value) index on hashes.

Nothing queries it (matching uses the compiled matcher) and keeping it up to date dominated
imports of tens of millions of hashes. if_exists: Vigil of schema 3 dropped it the same way.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Drop ix_hashes_kind_value."""
    op.drop_index("ix_hashes_kind_value", table_name="hashes", if_exists=True)
    op.execute("UPDATE state SET value = 3 WHERE key = 'schema_version'")


def downgrade() -> None:
    """Bring the index back (slow on a large catalog: it indexes every hash)."""
    op.create_index("ix_hashes_kind_value", "hashes", ["kind", "value"])
    op.execute("UPDATE state SET value = 2 WHERE key = 'schema_version'")
