"""Outbound lead webhooks: subscriptions and their delivery log.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Owner: routing. A subscription names a URL, the lead events it wants, its signing secret and
the secrets a rotation retired that still sign until they expire. Each event for a
subscription is delivered as an action (kind `lead_webhook`); every attempt is logged in
`webhook_attempts` (time, outcome, HTTP status or error, duration), listed newest first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import TZDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AutoId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the webhook_subscriptions and webhook_attempts tables."""
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(500)),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("retired_secrets", sa.JSON(), nullable=False),
        sa.Column("created_at", TZDateTime(), nullable=False),
        sa.Column("updated_at", TZDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", AutoId, autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("action_id", sa.String(36), nullable=False),
        sa.Column("msg_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("attempted_at", TZDateTime(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.String(1000)),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(
        "ix_webhook_attempts_subscription_id_id",
        "webhook_attempts",
        ["subscription_id", "id"],
    )


def downgrade() -> None:
    """Cancel the lead webhook deliveries not sent yet (the code before knows no such action)
    and drop the two tables; sent and failed deliveries stay listed in `actions`."""
    op.execute(
        "UPDATE actions SET status = 'cancelled', "
        "cancel_reason = 'outbound lead webhooks were removed (downgrade)' "
        "WHERE kind = 'lead_webhook' AND status IN ('scheduled', 'claimed', 'sending')"
    )
    op.drop_index("ix_webhook_attempts_subscription_id_id", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_subscriptions")
