"""Schema 4: entries.digest and entries.added, the removed_entries table, hashes by set and entry.

Each entry's content digest (vigil.catalog.digest), indexed per set, lets a re-imported list
change only the entries that differ and a catalog bundle remove entries without reading the
whole set; `added` (the generation that added an entry) and removed_entries let the server's
publisher build a version's delta from what changed. The hashes' set index becomes (set_id,
entry_id), so the hashes of given entries of a set are found without a scan. Existing entries get their digests here
(`added` 0: older than anything published from now on).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the columns, their indexes and removed_entries; compute every entry's digest."""
    from vigil.catalog.digest import entry_digest
    from vigil.catalog.store import iter_packed

    op.add_column("entries", sa.Column("digest", sa.LargeBinary))
    op.add_column("entries", sa.Column("added", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "removed_entries",
        sa.Column("set_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("removed", sa.Integer, nullable=False),
    )
    op.create_index("ix_removed_entries_removed", "removed_entries", ["removed"])
    conn = op.get_bind()
    table = sa.table("entries", sa.column("id", sa.Integer), sa.column("digest", sa.LargeBinary))
    update = (
        sa.update(table).where(table.c.id == sa.bindparam("eid")).values(digest=sa.bindparam("d"))
    )
    # Read fully first: updating the table while a cursor walks it is not portable.
    digests = [{"eid": eid, "d": entry_digest(packed)} for _sid, eid, packed in iter_packed(conn)]
    for start in range(0, len(digests), 20_000):
        conn.execute(update, digests[start : start + 20_000])
    op.create_index("ix_entries_set_digest", "entries", ["set_id", "digest"])
    op.drop_index("ix_hashes_set", table_name="hashes")
    op.create_index("ix_hashes_set_entry", "hashes", ["set_id", "entry_id"])
    op.create_index("ix_entries_set_added", "entries", ["set_id", "added"])
    op.execute("UPDATE state SET value = 4 WHERE key = 'schema_version'")


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_entries_set_added", table_name="entries")
    op.drop_index("ix_entries_set_digest", table_name="entries")
    op.drop_index("ix_hashes_set_entry", table_name="hashes")
    op.create_index("ix_hashes_set", "hashes", ["set_id"])
    op.drop_table("removed_entries")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("added")
        batch.drop_column("digest")
    op.execute("UPDATE state SET value = 3 WHERE key = 'schema_version'")
