"""Foundation: leads with identities, touches, stage history, merges, assignments, dedupe, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Owners: scoring (leads, lead_identities, touches, stage_history, lead_merges), routing
(assignments), shared consumer plumbing (processed_events, outbox).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the foundation tables."""
    op.create_table(
        "leads",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("first_name", sa.String(200)),
        sa.Column("last_name", sa.String(200)),
        sa.Column("job_title", sa.String(300)),
        sa.Column("phone", sa.String(64)),
        sa.Column("company_name", sa.String(300)),
        sa.Column("company_domain", sa.String(255)),
        sa.Column("industry", sa.String(200)),
        sa.Column("employees", sa.Integer()),
        sa.Column("annual_revenue", sa.Float()),
        sa.Column("country", sa.String(64)),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("qualification", sa.String(20), nullable=False),
        sa.Column("funnel_stage", sa.String(32)),
        sa.Column("journey_stage", sa.String(32)),
        sa.Column("bant", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=False),
        sa.Column("last_touch_at", Time),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint("email", name=op.f("uq_leads_email")),
    )
    op.create_index(op.f("ix_leads_company_domain"), "leads", ["company_domain"])
    op.create_index(op.f("ix_leads_funnel_stage"), "leads", ["funnel_stage"])
    op.create_index(op.f("ix_leads_qualification"), "leads", ["qualification"])
    op.create_index(op.f("ix_leads_updated_at"), "leads", ["updated_at"])

    op.create_table(
        "lead_identities",
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            ondelete="CASCADE",
            name=op.f("fk_lead_identities_lead_id_leads"),
        ),
        sa.PrimaryKeyConstraint("kind", "value", name=op.f("pk_lead_identities")),
    )
    op.create_index(op.f("ix_lead_identities_lead_id"), "lead_identities", ["lead_id"])

    op.create_table(
        "touches",
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("occurred_at", Time, nullable=False),
        sa.Column("received_at", Time, nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], ondelete="CASCADE", name=op.f("fk_touches_lead_id_leads")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_touches")),
    )
    op.create_index("ix_touches_lead_id_occurred_at", "touches", ["lead_id", "occurred_at"])

    op.create_table(
        "stage_history",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("track", sa.String(20), nullable=False),
        sa.Column("from_stage", sa.String(32)),
        sa.Column("to_stage", sa.String(32)),
        sa.Column("at", Time, nullable=False),
        sa.Column("cause_event_id", sa.String(200)),
        sa.Column("rule", sa.String(100)),
        sa.Column("seconds_in_previous", sa.Float()),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            ondelete="CASCADE",
            name=op.f("fk_stage_history_lead_id_leads"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage_history")),
    )
    op.create_index("ix_stage_history_lead_id_at", "stage_history", ["lead_id", "at"])

    op.create_table(
        "lead_merges",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("into_lead_id", sa.String(36), nullable=False),
        sa.Column("from_lead_id", sa.String(36), nullable=False),
        sa.Column("cause_event_id", sa.String(200), nullable=False),
        sa.Column("identities", sa.JSON(), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.ForeignKeyConstraint(
            ["into_lead_id"],
            ["leads.id"],
            ondelete="CASCADE",
            name=op.f("fk_lead_merges_into_lead_id_leads"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_merges")),
    )
    op.create_index(op.f("ix_lead_merges_into_lead_id"), "lead_merges", ["into_lead_id"])

    op.create_table(
        "assignments",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("team", sa.String(100), nullable=False),
        sa.Column("member", sa.String(320)),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("funnel_stage", sa.String(32)),
        sa.Column("qualification", sa.String(20)),
        sa.Column("cause_event_id", sa.String(200), nullable=False),
        sa.Column("assigned_at", Time, nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
    )
    op.create_index("ix_assignments_lead_id_current", "assignments", ["lead_id", "current"])
    op.create_index("ix_assignments_team_current", "assignments", ["team", "current"])

    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("processed_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
    )

    op.create_table(
        "outbox",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.LargeBinary()),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )


def downgrade() -> None:
    """Drop the foundation tables, dependants first."""
    for table in (
        "outbox",
        "processed_events",
        "assignments",
        "lead_merges",
        "stage_history",
        "touches",
        "lead_identities",
        "leads",
    ):
        op.drop_table(table)
