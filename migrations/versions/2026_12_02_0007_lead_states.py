"""Scoring's folded state per lead.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Owner: scoring. One row per lead: what the rules need of its history (services/scoring/domain/
folding.py), so an in-order touch is folded in without reading the history back; when the last
qualification move was; whether the stored stage history ends in fall-backs that came due after
the newest touch (they are re-derived on the next touch). A lead without a row (or with one kept
for another model version) is replayed from its touches once, so no backfill is needed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import TZDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the lead_states table."""
    op.create_table(
        "lead_states",
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("qualified_at", TZDateTime()),
        sa.Column("pending_after", TZDateTime()),
        sa.Column("updated_at", TZDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_lead_states_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_lead_states")),
    )


def downgrade() -> None:
    """Drop the lead_states table."""
    op.drop_table("lead_states")
