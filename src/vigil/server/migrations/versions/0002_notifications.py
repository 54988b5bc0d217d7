"""Notifications (outbox, channels made in the dashboard), agent health episodes, entry floods.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_index(
        "ix_incidents_entry", "incidents", ["hashset", "entry_id", "first_seen", "host"]
    )
    op.create_table(
        "notify_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_channels")),
        sa.UniqueConstraint("name", name=op.f("uq_notify_channels_name")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=40), nullable=False),
        sa.Column("incident_id", ID, nullable=True),
        sa.Column("event", sa.String(length=50), nullable=False),
        sa.Column("channel", sa.String(length=120), nullable=False),
        sa.Column("channel_type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("hold", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_notifications_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("uid", name=op.f("uq_notifications_uid")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_status_due", ["status", "due_at"], unique=False)
        batch_op.create_index("ix_notifications_incident", ["incident_id"], unique=False)
    op.create_table(
        "agent_conditions",
        sa.Column("agent_id", sa.String(length=36), nullable=False),
        sa.Column("condition", sa.String(length=30), nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_conditions_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_agent_conditions_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "condition", name=op.f("pk_agent_conditions")),
    )
    op.create_table(
        "entry_floods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hashset", sa.String(length=255), nullable=False),
        sa.Column("entry_id", sa.String(length=255), nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hosts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_entry_floods_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entry_floods")),
        sa.UniqueConstraint("hashset", "entry_id", name=op.f("uq_entry_floods_hashset")),
    )


def downgrade() -> None:
    op.drop_table("entry_floods")
    op.drop_table("agent_conditions")
    op.drop_table("notifications")
    op.drop_table("notify_channels")
    op.drop_index("ix_incidents_entry", table_name="incidents")
