"""Erasing a person: the hashes of erased identities, the record of each erasure, and outbox
messages without a value (tombstones).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Owner: scoring. `DELETE /v1/leads/{id}` deletes a lead everywhere; what is kept is the SHA-256 of
each erased identity with the time (touches received before it are dropped, so an erased person
does not come back from events in flight) and a record of the erasure without personal data.
The tombstone of an erased lead (its id as key, no value) goes through the outbox, whose
`value` becomes nullable.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db import TZDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create `erased_identities` and `erasures`; let an outbox message have no value."""
    op.create_table(
        "erased_identities",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("erased_at", TZDateTime(), nullable=False),
    )
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("lead_id", sa.String(36), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("removed", sa.JSON, nullable=False),
        sa.Column("at", TZDateTime(), nullable=False),
    )
    op.create_index("ix_erasures_lead_id", "erasures", ["lead_id"])
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("value", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    """Drop both tables; tombstones still waiting in the outbox are dropped with them."""
    op.execute("DELETE FROM outbox WHERE value IS NULL")
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("value", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_index("ix_erasures_lead_id", table_name="erasures")
    op.drop_table("erasures")
    op.drop_table("erased_identities")
