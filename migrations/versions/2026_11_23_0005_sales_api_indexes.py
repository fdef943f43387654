"""Indexes for the sales API's filters and keyset sorts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Owners: scoring (leads), routing (assignments). Each list query is "filter, then order by
(key, id) after a cursor": a composite (key, id) index serves both the order and the seek.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the indexes."""
    op.create_index(op.f("ix_leads_score_id"), "leads", ["score", "id"])
    op.create_index(op.f("ix_leads_updated_at_id"), "leads", ["updated_at", "id"])
    op.create_index(op.f("ix_leads_created_at"), "leads", ["created_at"])
    op.create_index(op.f("ix_leads_journey_stage"), "leads", ["journey_stage"])
    op.create_index(op.f("ix_leads_qualification_id"), "leads", ["qualification", "id"])
    op.create_index(op.f("ix_assignments_member_current"), "assignments", ["member", "current"])
    op.create_index(op.f("ix_stage_history_lead_id_track"), "stage_history", ["lead_id", "track"])


def downgrade() -> None:
    """Drop the indexes."""
    op.drop_index(op.f("ix_stage_history_lead_id_track"), table_name="stage_history")
    op.drop_index(op.f("ix_assignments_member_current"), table_name="assignments")
    op.drop_index(op.f("ix_leads_qualification_id"), table_name="leads")
    op.drop_index(op.f("ix_leads_journey_stage"), table_name="leads")
    op.drop_index(op.f("ix_leads_created_at"), table_name="leads")
    op.drop_index(op.f("ix_leads_updated_at_id"), table_name="leads")
    op.drop_index(op.f("ix_leads_score_id"), table_name="leads")
