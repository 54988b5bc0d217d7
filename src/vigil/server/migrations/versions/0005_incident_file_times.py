"""An incident's file times: when the matched file was last written, when its inode last
changed and, where the platform records it, when it was created (an agent's stat of the file;
null for the gateway's and for incidents stored before this revision).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 04:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from vigil.server.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = ("file_modified", "file_changed", "file_created")


def upgrade() -> None:
    # Nullable columns with no default: on PostgreSQL a catalogue change only (no table
    # rewrite), on SQLite an ALTER TABLE ADD COLUMN.
    for name in COLUMNS:
        op.add_column("incidents", sa.Column(name, UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
