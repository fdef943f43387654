"""Replays of dead-lettered messages.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Owner: operations. One row per parked message (its DLQ topic, partition and offset), claimed
before the message is re-published and marked after, so a message is replayed at most once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import TZDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the dlq_replays table."""
    op.create_table(
        "dlq_replays",
        sa.Column("dlq_topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("offset", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("source_topic", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("claimed_at", TZDateTime(), nullable=False),
        sa.Column("replayed_at", TZDateTime()),
        sa.PrimaryKeyConstraint("dlq_topic", "partition", "offset", name=op.f("pk_dlq_replays")),
    )


def downgrade() -> None:
    """Drop the dlq_replays table."""
    op.drop_table("dlq_replays")
