"""What other services may use of scoring: reads of the leads, identities and touches it owns.
Routing imports scoring only through this module (an import-linter contract in `make lint`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.scoring.repository import get_lead, identities_of, leads, touches, touches_of_types
from shared.db import among

__all__ = ["get_lead", "identities_of", "lead_rows", "touches_of_leads", "touches_of_types"]


def lead_rows(session: Session, *, lead_ids: Sequence[str]) -> dict[str, Row]:
    """What routing reads of each lead that still exists."""
    rows = session.execute(
        select(
            leads.c.id,
            leads.c.email,
            leads.c.first_name,
            leads.c.qualification,
            leads.c.funnel_stage,
        ).where(among(session, leads.c.id, lead_ids))
    )
    return {row.id: row for row in rows}


def touches_of_leads(
    session: Session, *, lead_ids: Sequence[str], types: Sequence[str]
) -> dict[str, list[Row]]:
    """Each lead's touches of these types in the order they happened."""
    rows = session.execute(
        select(touches)
        .where(among(session, touches.c.lead_id, lead_ids), touches.c.type.in_(list(types)))
        .order_by(touches.c.occurred_at, touches.c.event_id)
    )
    by_lead: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_lead[row.lead_id].append(row)
    return by_lead
