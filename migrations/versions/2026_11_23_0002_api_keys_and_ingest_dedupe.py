"""API keys (shared auth) and ingest's idempotency window.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Owners: shared auth (api_keys), ingest (ingest_event_ids).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create api_keys and ingest_event_ids."""
    op.create_table(
        "api_keys",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("revoked_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "ingest_event_ids",
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("received_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_ingest_event_ids")),
    )
    op.create_index(op.f("ix_ingest_event_ids_received_at"), "ingest_event_ids", ["received_at"])


def downgrade() -> None:
    """Drop what upgrade created."""
    op.drop_index(op.f("ix_ingest_event_ids_received_at"), table_name="ingest_event_ids")
    op.drop_table("ingest_event_ids")
    op.drop_table("api_keys")
