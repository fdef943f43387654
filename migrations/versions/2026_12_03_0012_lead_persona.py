"""Each lead records the scoring model's persona it matches.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Owner: scoring. The scoring model names personas (conditions on title function, seniority,
industry, company size and segment); the first one a lead matches is stored on the lead, for
filters, routing rules and the funnel report. Existing leads start without one; their
`scored_at` is cleared so the re-score sweep derives it (with fit and engagement) first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `leads.persona` and its index."""
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("persona", sa.String(64), nullable=True))
    op.create_index("ix_leads_persona", "leads", ["persona"])
    op.execute("UPDATE leads SET scored_at = NULL WHERE score > 0")


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index("ix_leads_persona", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("persona")
