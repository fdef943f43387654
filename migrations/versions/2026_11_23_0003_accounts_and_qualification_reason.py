"""Accounts and buying committees; each lead's account domain and qualification reason.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Owner: scoring (accounts, account_member_overrides, leads.account_domain,
leads.qualification_reason).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add account columns to leads and the account tables."""
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("account_domain", sa.String(255), nullable=True))
        batch.add_column(sa.Column("qualification_reason", sa.String(500), nullable=True))
        batch.create_index(op.f("ix_leads_account_domain"), ["account_domain"])
    op.create_table(
        "accounts",
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("name", sa.String(300)),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("bant", sa.JSON(), nullable=False),
        sa.Column("funnel_stage", sa.String(32)),
        sa.Column("journey_stage", sa.String(32)),
        sa.Column("decision_maker_engaged", sa.Boolean(), nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_accounts")),
    )
    op.create_table(
        "account_member_overrides",
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("involvement", sa.String(20)),
        sa.Column("function", sa.String(20)),
        sa.Column("updated_at", Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            ondelete="CASCADE",
            name=op.f("fk_account_member_overrides_lead_id_leads"),
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_account_member_overrides")),
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("account_member_overrides")
    op.drop_table("accounts")
    with op.batch_alter_table("leads") as batch:
        batch.drop_index(op.f("ix_leads_account_domain"))
        batch.drop_column("qualification_reason")
        batch.drop_column("account_domain")
