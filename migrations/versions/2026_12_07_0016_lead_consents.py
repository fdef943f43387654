"""Each lead's consent per purpose.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Owner: scoring. A touch may state what the person agreed to per purpose (the native event's
`lead.consent`, Segment's `context.consent.categoryPreferences`); the newest statement per
purpose is kept with its source, event and time. Marketing email reads it. Erasing a lead
deletes its rows; a merge hands them to the surviving lead.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import TZDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create `lead_consents`."""
    op.create_table(
        "lead_consents",
        sa.Column(
            "lead_id",
            sa.String(36),
            sa.ForeignKey("leads.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("purpose", sa.String(64), primary_key=True),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("at", TZDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop `lead_consents`."""
    op.drop_table("lead_consents")
