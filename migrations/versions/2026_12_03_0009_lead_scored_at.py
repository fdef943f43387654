"""When each lead's stored score was derived, so the decay sweep can refresh the stalest.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Owner: scoring. A lead's score fades as its evidence ages, but the stored number only moved
when a touch arrived or a stage could regress. `scored_at` is the moment the stored score,
qualification and stages were derived for; the sweep re-derives leads whose `scored_at` is older
than `LEADFLOW_SCORING_DECAY_REFRESH_S`, oldest first. Existing leads start from `updated_at`,
the last time scoring wrote them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import TZDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `leads.scored_at`, filled from `updated_at`, and its index."""
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("scored_at", TZDateTime(), nullable=True))
    op.execute("UPDATE leads SET scored_at = updated_at")
    op.create_index("ix_leads_scored_at", "leads", ["scored_at"])


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index("ix_leads_scored_at", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("scored_at")
