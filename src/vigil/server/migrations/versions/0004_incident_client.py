"""An incident's client: the network address of the machine that fetched or sent the content
(a gateway's proxy client), with an index for the API's `client` filter. Existing incidents
keep a null client (gateways before this one sent it as `owner`, which is left as it was).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column with no default: on PostgreSQL a catalogue change only (no table
    # rewrite), on SQLite an ALTER TABLE ADD COLUMN.
    op.add_column("incidents", sa.Column("client", sa.String(length=255), nullable=True))
    op.create_index("ix_incidents_client_id", "incidents", ["client", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_incidents_client_id", table_name="incidents")
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("client")
