"""Routing's queries about team queues and capacity: what counts against a member's capacity,
which leads wait in a team's queue, taking one out of it, and missed SLAs by funnel step (the
`assignments` table)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing.bulk import member_loads
from services.routing.repository import assignments
from shared.db import among


def capacity_loads(session: Session, *, team: str) -> dict[str, int]:
    """How many leads count against each member's capacity: those they own and have not
    contacted yet (contacted, accepted and closed leads free the slot)."""
    return member_loads(session, teams=[team])[team]


def queued_counts(session: Session) -> dict[str, int]:
    """How many leads wait in each team's queue (no member yet)."""
    rows = session.execute(
        select(assignments.c.team, func.count())
        .where(assignments.c.current, assignments.c.member.is_(None))
        .group_by(assignments.c.team)
    ).all()
    return {team: count for team, count in rows}


def teams_with_queue(session: Session, *, teams: Sequence[str]) -> list[str]:
    """Which of these teams have leads waiting in their queue (no member yet)."""
    rows = session.execute(
        select(assignments.c.team)
        .where(
            assignments.c.current,
            assignments.c.member.is_(None),
            assignments.c.team.in_(list(teams)),
        )
        .distinct()
    )
    return sorted(rows.scalars())


def queued(session: Session, *, team: str, limit: int) -> list[Row]:
    """The team's queued assignments (no member yet), the longest waiting first."""
    return list(
        session.execute(
            select(assignments)
            .where(
                assignments.c.current, assignments.c.team == team, assignments.c.member.is_(None)
            )
            .order_by(assignments.c.assigned_at, assignments.c.id)
            .limit(limit)
        )
    )


def close_queued(session: Session, *, assignment_id: int) -> bool:
    """End a queued assignment so its lead can be handed out; False if another worker did (or
    it is no longer queued)."""
    result = session.execute(
        update(assignments)
        .where(
            assignments.c.id == assignment_id,
            assignments.c.current,
            assignments.c.member.is_(None),
        )
        .values(current=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def sla_breaches_by_stage(session: Session, *, lead_ids: Sequence[str]) -> dict[str, int]:
    """Breached assignments of these leads, by the funnel stage recorded on the assignment."""
    rows = session.execute(
        select(assignments.c.funnel_stage, func.count())
        .where(
            among(session, assignments.c.lead_id, lead_ids),
            assignments.c.sla_breached_at.isnot(None),
            assignments.c.funnel_stage.isnot(None),
        )
        .group_by(assignments.c.funnel_stage)
    )
    return {stage: count for stage, count in rows}
