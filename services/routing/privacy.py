"""Routing's part of erasing a person: everything it holds about a lead (assignments, actions
with their payloads, sales feedback, the suppression, webhook delivery attempts), to export or
to delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.routing.repository import (
    actions,
    assignments,
    lead_feedback,
    suppressions,
    webhook_attempts,
)

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
