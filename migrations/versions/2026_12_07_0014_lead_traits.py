"""Each lead keeps the custom traits its sources report.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

Owner: scoring. A touch's `lead.traits` (Segment's custom identify traits, for one: a plan, a
count of logins) are merged into `leads.traits`, the newer value of a trait winning, so the lead
view shows them and `/v1/leads?trait=key:value` filters on them. Existing leads start without
any (NULL, shown as `{}`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add `leads.traits`."""
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("traits", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop `leads.traits`."""
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("traits")
