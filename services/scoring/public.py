"""What other services may use of scoring: reads of the leads, identities and touches it owns.
Routing imports scoring only through this module (an import-linter contract in `make lint`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.scoring.cursors import bad_cursor, decode_cursor, encode_cursor
from services.scoring.privacy_repository import consents_of
from services.scoring.repository import get_lead, identities_of, leads, touches, touches_of_types
from shared.db import among

__all__ = [
    "bad_cursor",
    "consents_of",
    "decode_cursor",
    "encode_cursor",
    "get_lead",
    "identities_of",
    "latest_touches",
    "lead_rows",
    "touch_type_counts",
    "touches_of_leads",
    "touches_of_types",
]


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


def touch_type_counts(session: Session, *, since: datetime) -> dict[str, int]:
    """How many touches of each type happened since `since`."""
    rows = session.execute(
        select(touches.c.type, func.count())
        .where(touches.c.occurred_at >= since)
        .group_by(touches.c.type)
    )
    return {t: count for t, count in rows}


def latest_touches(
    session: Session, *, types: Sequence[str], since: datetime
) -> dict[str, tuple[str, datetime]]:
    """Each lead's newest touch of these types since `since`: (type, when)."""
    rows = session.execute(
        select(touches.c.lead_id, touches.c.type, func.max(touches.c.occurred_at))
        .where(touches.c.type.in_(list(types)), touches.c.occurred_at >= since)
        .group_by(touches.c.lead_id, touches.c.type)
    )
    found: dict[str, tuple[str, datetime]] = {}
    for lead_id, type_, at in rows:
        if lead_id not in found or at > found[lead_id][1]:
            found[lead_id] = (type_, at)
    return found
