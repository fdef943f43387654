"""Drop the two lead indexes that a wider index already serves.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Owner: scoring. `ix_leads_qualification` is the prefix of `ix_leads_qualification_id`, and
`ix_leads_updated_at` the prefix of `ix_leads_updated_at_id`: PostgreSQL and SQLite answer any
query on the single column from the wider index. Every scoring write changes `updated_at`, so
each index is one more entry to write per lead update; twelve become ten.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Drop the prefix indexes."""
    op.drop_index("ix_leads_qualification", table_name="leads")
    op.drop_index("ix_leads_updated_at", table_name="leads")


def downgrade() -> None:
    """Put them back."""
    op.create_index("ix_leads_updated_at", "leads", ["updated_at"])
    op.create_index("ix_leads_qualification", "leads", ["qualification"])
