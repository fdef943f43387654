"""Routing: the durable action scheduler, member state, feedback, suppressions and SLAs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Owner: routing (actions, team_state, member_availability, lead_feedback, suppressions,
assignments.sla_due_at/contacted_at/sla_breached_at).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Time = sa.DateTime(timezone=True)
AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the routing tables and the SLA columns of assignments."""
    op.create_table(
        "actions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("playbook", sa.String(50), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("due_at", Time, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("deferrals", sa.Integer(), nullable=False),
        sa.Column("marketing", sa.Boolean(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("team", sa.String(100)),
        sa.Column("member", sa.String(320)),
        sa.Column("last_error", sa.String(1000)),
        sa.Column("cancel_reason", sa.String(200)),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("claimed_at", Time),
        sa.Column("sent_at", Time),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_actions_idempotency_key")),
    )
    op.create_index(op.f("ix_actions_status_due_at"), "actions", ["status", "due_at"])
    op.create_index(op.f("ix_actions_lead_id"), "actions", ["lead_id"])
    op.create_table(
        "team_state",
        sa.Column("team", sa.String(100), nullable=False),
        sa.Column("last_assigned", sa.String(320)),
        sa.PrimaryKeyConstraint("team", name=op.f("pk_team_state")),
    )
    op.create_table(
        "member_availability",
        sa.Column("team", sa.String(100), nullable=False),
        sa.Column("member", sa.String(320), nullable=False),
        sa.Column("away", sa.Boolean(), nullable=False),
        sa.Column("away_until", Time),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("team", "member", name=op.f("pk_member_availability")),
    )
    op.create_table(
        "lead_feedback",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("by", sa.String(100)),
        sa.Column("at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_feedback")),
    )
    op.create_index(op.f("ix_lead_feedback_lead_id"), "lead_feedback", ["lead_id"])
    op.create_table(
        "suppressions",
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("reason", sa.String(100), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_suppressions")),
    )
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("sla_due_at", Time))
        batch.add_column(sa.Column("contacted_at", Time))
        batch.add_column(sa.Column("sla_breached_at", Time))


def downgrade() -> None:
    """Drop what upgrade created."""
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("sla_breached_at")
        batch.drop_column("contacted_at")
        batch.drop_column("sla_due_at")
    op.drop_table("suppressions")
    op.drop_index(op.f("ix_lead_feedback_lead_id"), table_name="lead_feedback")
    op.drop_table("lead_feedback")
    op.drop_table("member_availability")
    op.drop_table("team_state")
    op.drop_index(op.f("ix_actions_lead_id"), table_name="actions")
    op.drop_index(op.f("ix_actions_status_due_at"), table_name="actions")
    op.drop_table("actions")
