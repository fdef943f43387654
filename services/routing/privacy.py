"""Routing's part of erasing a person: everything it holds about a lead (assignments, actions
with their payloads, sales feedback, the suppression, webhook delivery attempts), to export or
to delete; and following an erasure's tombstone, which CRM subscriptions hear of as
`lead.erased`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.routing.domain import lead_events as le
from services.routing.repository import (
    actions,
    assignments,
    lead_feedback,
    suppressions,
    webhook_attempts,
)
from services.routing.service import store_action
from services.routing.webhooks import planning_subscriptions

_TABLES = (assignments, actions, lead_feedback, suppressions, webhook_attempts)


def held_about(session: Session, *, lead_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row routing holds about the lead, by table."""
    return {
        table.name: [
            dict(r._mapping)
            for r in session.execute(select(table).where(table.c.lead_id == lead_id))
        ]
        for table in _TABLES
    }


def erase_lead(session: Session, *, lead_id: str) -> dict[str, int]:
    """Delete every row routing holds about the lead (due actions never go out); returns how
    many went, by table. Safe to repeat."""
    return {
        table.name: session.execute(delete(table).where(table.c.lead_id == lead_id)).rowcount
        for table in _TABLES
    }


def follow_tombstone(session: Session, *, lead_id: str, erasure_id: str, now: datetime) -> int:
    """Erase what routing holds of an erased lead (whatever was still in flight), then plan a
    `lead.erased` delivery to each subscription that wants it; returns how many."""
    erase_lead(session, lead_id=lead_id)
    planned = le.deliveries(
        [le.erased(lead_id=lead_id, erasure_id=erasure_id, at=now)],
        subscriptions=planning_subscriptions(session),
        source_id=erasure_id,
        now=now,
    )
    for action in planned:
        store_action(session, lead_id=lead_id, action=action, team=None, member=None, now=now)
    return len(planned)
