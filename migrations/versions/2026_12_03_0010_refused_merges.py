"""Keep the merges identity resolution refused, next to the ones it made.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Owner: scoring. Two leads that each have their own email or platform user id are two people,
even when a touch ties them (a shared browser's anonymous id): they are left apart, and a
`lead_merges` row with `refused` (the reason) records it, once per pair, for the timeline.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `lead_merges.refused`."""
    with op.batch_alter_table("lead_merges") as batch:
        batch.add_column(sa.Column("refused", sa.String(200), nullable=True))


def downgrade() -> None:
    """Drop the refusals, then the column."""
    op.execute("DELETE FROM lead_merges WHERE refused IS NOT NULL")
    with op.batch_alter_table("lead_merges") as batch:
        batch.drop_column("refused")
