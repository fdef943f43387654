"""Routing's tables and SQL: who owns each lead, and the history of assignments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Boolean, Column, Index, String, Table, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from shared.db import AutoId, TZDateTime, metadata

assignments = Table(
    "assignments",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    # No foreign key to scoring's leads: routing owns this table and only ever learns of a
    # lead through its lead-change events.
    Column("lead_id", String(36), nullable=False),
    Column("team", String(100), nullable=False),
    Column("member", String(320)),
    Column("rule", String(100), nullable=False),
    Column("funnel_stage", String(32)),
    Column("qualification", String(20)),
    Column("cause_event_id", String(200), nullable=False),
    Column("assigned_at", TZDateTime, nullable=False),
    Column("current", Boolean, nullable=False, default=True),
    Index("ix_assignments_lead_id_current", "lead_id", "current"),
    Index("ix_assignments_team_current", "team", "current"),
)


def current_assignment(session: Session, *, lead_id: str) -> Row | None:
    """The lead's current assignment, or None if it has none."""
    return session.execute(
        select(assignments).where(assignments.c.lead_id == lead_id, assignments.c.current)
    ).first()


def assign(
    session: Session,
    *,
    lead_id: str,
    team: str,
    member: str | None,
    rule: str,
    funnel_stage: str | None,
    qualification: str | None,
    cause_event_id: str,
    at: datetime,
) -> None:
    """Make this the lead's current assignment, closing the previous one."""
    session.execute(
        update(assignments)
        .where(assignments.c.lead_id == lead_id, assignments.c.current)
        .values(current=False)
    )
    session.execute(
        insert(assignments).values(
            lead_id=lead_id,
            team=team,
            member=member,
            rule=rule,
            funnel_stage=funnel_stage,
            qualification=qualification,
            cause_event_id=cause_event_id,
            assigned_at=at,
            current=True,
        )
    )


def current_owners(session: Session, *, lead_ids: Sequence[str]) -> dict[str, Row]:
    """The current assignment of each lead that has one."""
    if not lead_ids:
        return {}
    rows = session.execute(
        select(assignments).where(assignments.c.lead_id.in_(lead_ids), assignments.c.current)
    ).all()
    return {row.lead_id: row for row in rows}


def reassign_lead(session: Session, *, from_lead_id: str, into_lead_id: str) -> None:
    """Carry assignment history over when two leads were merged."""
    session.execute(
        update(assignments)
        .where(assignments.c.lead_id == from_lead_id)
        .values(lead_id=into_lead_id, current=False)
    )


def open_lead_counts(session: Session) -> dict[str, int]:
    """How many leads each team currently owns."""
    from sqlalchemy import func

    rows = session.execute(
        select(assignments.c.team, func.count())
        .where(assignments.c.current)
        .group_by(assignments.c.team)
    ).all()
    return {team: count for team, count in rows}


def assignments_of(session: Session, *, lead_id: str) -> list[Row]:
    """Every assignment a lead had, oldest first."""
    return list(
        session.execute(
            select(assignments)
            .where(assignments.c.lead_id == lead_id)
            .order_by(assignments.c.assigned_at, assignments.c.id)
        )
    )
