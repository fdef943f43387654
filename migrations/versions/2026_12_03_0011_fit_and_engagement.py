"""Fit and engagement scores on each lead, filterable and routable.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Owner: scoring. Next to BANT, each lead gets a fit score (who they are: title, firmographics,
form answers) and an engagement score (what they did, fading), 0-100, derived from the same
evidence. Existing leads start at 0 and their `scored_at` is cleared, so the re-score sweep
derives both for them first (it re-derives leads whose stored score is stale, stalest and
never-derived first, and stores a moved fit or engagement like any other move).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `leads.fit_score` and `leads.engagement_score` (0) with their keyset indexes."""
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("fit_score", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("engagement_score", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_leads_fit_score_id", "leads", ["fit_score", "id"])
    op.create_index("ix_leads_engagement_score_id", "leads", ["engagement_score", "id"])
    op.execute("UPDATE leads SET scored_at = NULL WHERE score > 0")


def downgrade() -> None:
    """Drop the indexes and the columns."""
    op.drop_index("ix_leads_engagement_score_id", table_name="leads")
    op.drop_index("ix_leads_fit_score_id", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("engagement_score")
        batch.drop_column("fit_score")
