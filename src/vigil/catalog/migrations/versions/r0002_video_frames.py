"""Schema 2: video_frames, the frames of known videos (vPDQ).

if_not_exists: Vigil of schemas 2 and 3 made the table before it upgraded the version number, so
a catalog interrupted between the two has the table at schema 1.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add video_frames and its two indexes."""
    op.create_table(
        "video_frames",
        sa.Column("set_id", sa.Integer, sa.ForeignKey("hashsets.id"), nullable=False),
        sa.Column("entry_id", sa.Integer, sa.ForeignKey("entries.id"), nullable=False),
        sa.Column("frame", sa.Integer, nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("quality", sa.SmallInteger, nullable=False),
        sa.Column("pdq", sa.LargeBinary, nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_video_frames_set", "video_frames", ["set_id"], if_not_exists=True)
    op.create_index("ix_video_frames_entry", "video_frames", ["entry_id"], if_not_exists=True)
    op.execute("UPDATE state SET value = 2 WHERE key = 'schema_version'")


def downgrade() -> None:
    """Drop video_frames."""
    op.drop_table("video_frames")
    op.execute("UPDATE state SET value = 1 WHERE key = 'schema_version'")
