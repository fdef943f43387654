"""Routing's tables and SQL: who owns each lead, and the history of assignments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing import paging
from services.routing.domain.actions import IN_FLIGHT, ActionStatus
from services.routing.paging import Position

# Registers the outbound webhook tables with routing's others (migrations, test clean-up).
from services.routing.webhook_tables import webhook_attempts, webhook_subscriptions  # noqa: F401
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
    Column("sla_due_at", TZDateTime),
    Column("contacted_at", TZDateTime),
    Column("sla_breached_at", TZDateTime),
    Index("ix_assignments_lead_id_current", "lead_id", "current"),
    Index("ix_assignments_team_current", "team", "current"),
    Index("ix_assignments_member_current", "member", "current"),
)


actions = Table(
    "actions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("lead_id", String(36), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("playbook", String(50), nullable=False),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("due_at", TZDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("deferrals", Integer, nullable=False, default=0),
    Column("marketing", Boolean, nullable=False, default=False),
    Column("payload", JSON, nullable=False),
    Column("team", String(100)),
    Column("member", String(320)),
    Column("last_error", String(1000)),
    Column("cancel_reason", String(200)),
    Column("claimed_by", String(100)),
    Column("claimed_at", TZDateTime),
    Column("sent_at", TZDateTime),
    Column("created_at", TZDateTime, nullable=False),
    Column("updated_at", TZDateTime, nullable=False),
    Index("ix_actions_status_due_at", "status", "due_at"),
)

team_state = Table(
    "team_state",
    metadata,
    Column("team", String(100), primary_key=True),
    Column("last_assigned", String(320)),
)

member_availability = Table(
    "member_availability",
    metadata,
    Column("team", String(100), primary_key=True),
    Column("member", String(320), primary_key=True),
    Column("away", Boolean, nullable=False),
    Column("away_until", TZDateTime),
    Column("updated_at", TZDateTime, nullable=False),
)

lead_feedback = Table(
    "lead_feedback",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("lead_id", String(36), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("reason", String(500)),
    Column("by", String(100)),
    Column("at", TZDateTime, nullable=False),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("lead_id", String(36), primary_key=True),
    Column("reason", String(100), nullable=False),
    Column("at", TZDateTime, nullable=False),
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
    sla_due_at: datetime | None = None,
) -> int:
    """Make this the lead's current assignment, closing the previous one; returns its id."""
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
            sla_due_at=sla_due_at,
        )
    )
    row = current_assignment(session, lead_id=lead_id)
    assert row is not None
    return int(row.id)


def current_owners(session: Session, *, lead_ids: Sequence[str]) -> dict[str, Row]:
    """The current assignment of each lead that has one."""
    if not lead_ids:
        return {}
    rows = session.execute(
        select(assignments).where(assignments.c.lead_id.in_(lead_ids), assignments.c.current)
    ).all()
    return {row.lead_id: row for row in rows}


def reassign_lead(session: Session, *, from_lead_id: str, into_lead_id: str) -> None:
    """Carry assignment history, actions and suppressions over when two leads were merged."""
    session.execute(
        update(assignments)
        .where(assignments.c.lead_id == from_lead_id)
        .values(lead_id=into_lead_id, current=False)
    )
    session.execute(
        update(actions).where(actions.c.lead_id == from_lead_id).values(lead_id=into_lead_id)
    )
    suppressed = session.execute(
        select(suppressions).where(suppressions.c.lead_id == from_lead_id)
    ).first()
    if suppressed is not None:
        session.execute(delete(suppressions).where(suppressions.c.lead_id == from_lead_id))
        suppress(session, lead_id=into_lead_id, reason=suppressed.reason, at=suppressed.at)


def open_lead_counts(session: Session) -> dict[str, int]:
    """How many leads each team currently owns."""
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


def member_open_counts(session: Session, *, team: str) -> dict[str, int]:
    """How many leads each member of a team currently owns."""
    rows = session.execute(
        select(assignments.c.member, func.count())
        .where(assignments.c.current, assignments.c.team == team, assignments.c.member.isnot(None))
        .group_by(assignments.c.member)
    ).all()
    return {member: count for member, count in rows}


def sla_breach_counts(session: Session) -> dict[str, int]:
    """How many SLA breaches each team has had."""
    rows = session.execute(
        select(assignments.c.team, func.count())
        .where(assignments.c.sla_breached_at.isnot(None))
        .group_by(assignments.c.team)
    ).all()
    return {team: count for team, count in rows}


def team_queue(
    session: Session, *, team: str, limit: int, after: Position | None = None
) -> list[Row]:
    """A team's current leads, the soonest SLA first (no SLA last), after `after`."""
    query = (
        select(assignments)
        .where(assignments.c.current, assignments.c.team == team)
        .order_by(assignments.c.sla_due_at.is_(None), assignments.c.sla_due_at, assignments.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(paging.after(assignments.c.sla_due_at, assignments.c.id, after))
    return list(session.execute(query))


def get_assignment(session: Session, *, assignment_id: int) -> Row | None:
    """One assignment by id."""
    return session.execute(select(assignments).where(assignments.c.id == assignment_id)).first()


def update_assignment(session: Session, *, assignment_id: int, values: dict[str, Any]) -> None:
    """Change an assignment row."""
    session.execute(update(assignments).where(assignments.c.id == assignment_id).values(**values))


def last_assigned(session: Session, *, team: str) -> str | None:
    """The member the team's round-robin gave the last lead to."""
    return session.execute(
        select(team_state.c.last_assigned).where(team_state.c.team == team)
    ).scalar_one_or_none()


def set_last_assigned(session: Session, *, team: str, member: str) -> None:
    """Remember where the team's round-robin stands."""
    session.execute(delete(team_state).where(team_state.c.team == team))
    session.execute(insert(team_state).values(team=team, last_assigned=member))


def away_members(session: Session, *, team: str, now: datetime) -> set[str]:
    """Members of the team who are away now."""
    rows = session.execute(
        select(member_availability.c.member).where(
            member_availability.c.team == team,
            member_availability.c.away,
            or_(member_availability.c.away_until.is_(None), member_availability.c.away_until > now),
        )
    )
    return set(rows.scalars())


def availability(session: Session) -> dict[tuple[str, str], Row]:
    """Every recorded availability by (team, member)."""
    return {(r.team, r.member): r for r in session.execute(select(member_availability))}


def set_availability(
    session: Session, *, team: str, member: str, away: bool, until: datetime | None, at: datetime
) -> None:
    """Mark a member away (optionally until a time) or back."""
    session.execute(
        delete(member_availability).where(
            member_availability.c.team == team, member_availability.c.member == member
        )
    )
    session.execute(
        insert(member_availability).values(
            team=team, member=member, away=away, away_until=until, updated_at=at
        )
    )


def suppress(session: Session, *, lead_id: str, reason: str, at: datetime) -> None:
    """Stop marketing email to a lead (idempotent)."""
    if not is_suppressed(session, lead_id=lead_id):
        session.execute(insert(suppressions).values(lead_id=lead_id, reason=reason, at=at))


def is_suppressed(session: Session, *, lead_id: str) -> bool:
    """True if the lead unsubscribed."""
    return (
        session.execute(
            select(suppressions.c.lead_id).where(suppressions.c.lead_id == lead_id)
        ).first()
        is not None
    )


def add_feedback(
    session: Session, *, lead_id: str, kind: str, reason: str | None, by: str, at: datetime
) -> None:
    """Record what a sales tool reported about a lead."""
    session.execute(
        insert(lead_feedback).values(lead_id=lead_id, kind=kind, reason=reason, by=by, at=at)
    )


def insert_action(session: Session, *, values: dict[str, Any]) -> bool:
    """Store a new action; False if one with its idempotency key exists already."""
    exists = session.execute(
        select(actions.c.id).where(actions.c.idempotency_key == values["idempotency_key"])
    ).first()
    if exists is not None:
        return False
    session.execute(insert(actions).values(**values))
    return True


def actions_of_lead(session: Session, *, lead_id: str) -> list[Row]:
    """Every action of a lead, oldest first."""
    return list(
        session.execute(
            select(actions).where(actions.c.lead_id == lead_id).order_by(actions.c.created_at)
        )
    )


def get_action(session: Session, *, action_id: str) -> Row | None:
    """One action by id."""
    return session.execute(select(actions).where(actions.c.id == action_id)).first()


def update_action(session: Session, *, action_id: str, values: dict[str, Any]) -> None:
    """Change an action row."""
    session.execute(update(actions).where(actions.c.id == action_id).values(**values))


def list_actions(
    session: Session,
    *,
    lead_id: str | None,
    status: str | None,
    kind: str | None,
    limit: int,
    after: Position | None = None,
) -> list[Row]:
    """Actions matching the filters, the soonest due first, after `after`."""
    query = select(actions).order_by(actions.c.due_at, actions.c.id).limit(limit)
    if after is not None:
        query = query.where(paging.after(actions.c.due_at, actions.c.id, after))
    if lead_id is not None:
        query = query.where(actions.c.lead_id == lead_id)
    if status is not None:
        query = query.where(actions.c.status == status)
    if kind is not None:
        query = query.where(actions.c.kind == kind)
    return list(session.execute(query))


def open_tasks(
    session: Session, *, team: str, member: str | None, limit: int, after: Position | None = None
) -> list[Row]:
    """The team's tasks not closed yet (scheduled, being notified, open), the oldest first,
    after `after`."""
    query = (
        select(actions)
        .where(
            actions.c.kind == "task",
            actions.c.team == team,
            actions.c.status.in_([ActionStatus.SCHEDULED, *IN_FLIGHT, ActionStatus.OPEN]),
        )
        .order_by(actions.c.created_at, actions.c.id)
        .limit(limit)
    )
    if member is not None:
        query = query.where(actions.c.member == member)
    if after is not None:
        query = query.where(paging.after(actions.c.created_at, actions.c.id, after))
    return list(session.execute(query))


def claim_due(session: Session, *, now: datetime, worker: str, limit: int) -> list[Row]:
    """Claim up to `limit` due actions for this worker. On PostgreSQL the rows are locked with
    SKIP LOCKED so concurrent workers never claim the same one; SQLite serialises writers."""
    query = (
        select(actions.c.id)
        .where(actions.c.status == ActionStatus.SCHEDULED, actions.c.due_at <= now)
        .order_by(actions.c.due_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.execute(query).scalars())
    if not ids:
        return []
    session.execute(
        update(actions)
        .where(actions.c.id.in_(ids), actions.c.status == ActionStatus.SCHEDULED)
        .values(status=ActionStatus.CLAIMED, claimed_by=worker, claimed_at=now, updated_at=now)
    )
    return list(
        session.execute(
            select(actions).where(actions.c.id.in_(ids), actions.c.claimed_by == worker)
        )
    )


def claimed_by(session: Session, *, worker: str) -> list[Row]:
    """Actions this worker claimed and has not started sending (a pass it broke off)."""
    return list(
        session.execute(
            select(actions).where(
                actions.c.status == ActionStatus.CLAIMED, actions.c.claimed_by == worker
            )
        )
    )


def stale_claims(session: Session, *, before: datetime) -> list[Row]:
    """Actions claimed (or being sent) before `before` and never recorded: their worker died."""
    return list(
        session.execute(
            select(actions).where(actions.c.status.in_(IN_FLIGHT), actions.c.claimed_at < before)
        )
    )


def last_marketing_sent_at(session: Session, *, lead_id: str) -> datetime | None:
    """When the lead was last sent a marketing email."""
    return session.execute(
        select(func.max(actions.c.sent_at)).where(
            actions.c.lead_id == lead_id, actions.c.marketing, actions.c.status == ActionStatus.SENT
        )
    ).scalar_one_or_none()


def feedback_of(session: Session, *, lead_id: str) -> list[Row]:
    """What sales tools reported about a lead, oldest first."""
    return list(
        session.execute(
            select(lead_feedback)
            .where(lead_feedback.c.lead_id == lead_id)
            .order_by(lead_feedback.c.at, lead_feedback.c.id)
        )
    )
