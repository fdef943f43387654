"""Routing's set-based SQL for a poll batch: everything the batch's leads and teams need, loaded
in a few queries, and the batch's decisions written back in a few bulk statements.

On PostgreSQL a set of values travels as one parameter (an array, or a JSON array of rows), so
each statement's text is short and the same every batch: psycopg parses it once and caches it,
where a statement with a placeholder per value is parsed anew, in Python, every time. SQLite
takes the portable forms (IN lists, executemany).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Result, Row
from sqlalchemy.orm import Session

from services.routing.domain.actions import ActionStatus
from services.routing.domain.lead_events import ACTION_KIND as LEAD_WEBHOOK
from services.routing.repository import (
    actions,
    assignments,
    lead_feedback,
    member_availability,
    suppressions,
    team_state,
)
from shared.db import among, insert_ignoring_conflicts

# What playbooks read of a stored action (services.routing.service.as_action).
ACTION_COLUMNS = (
    actions.c.id,
    actions.c.lead_id,
    actions.c.kind,
    actions.c.playbook,
    actions.c.idempotency_key,
    actions.c.status,
    actions.c.due_at,
    actions.c.payload,
)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _insert_rows(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: Sequence[str],
    conflict: str | None = None,
) -> Result[Any]:
    """Insert rows (all with the same keys), skipping those whose `conflict` column exists; the
    result has the `returning` columns of the rows stored."""
    if not _postgres(session):
        statement: Any = (
            insert(table)
            if conflict is None
            else insert_ignoring_conflicts(session, table, index=[table.c[conflict]])
        )
        statement = statement.returning(*(table.c[name] for name in returning))
        return session.execute(statement, list(rows))  # executemany, as multi-row INSERTs
    quote = session.get_bind().dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in rows[0])
    sql = (
        f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} "
        f"FROM json_populate_recordset(NULL::{quote(table.name)}, CAST(:rows AS json))"
    )
    if conflict is not None:
        sql += f" ON CONFLICT ({quote(conflict)}) DO NOTHING"
    sql += f" RETURNING {', '.join(quote(name) for name in returning)}"
    # Datetimes become ISO 8601 with their offset (naive ones taken as UTC, as TZDateTime
    # takes them), which PostgreSQL reads exactly.
    data = orjson.dumps(list(rows), option=orjson.OPT_NAIVE_UTC).decode()
    return session.execute(text(sql), {"rows": data})


# --- loads -----------------------------------------------------------------------------------


def current_owners(session: Session, *, lead_ids: Sequence[str]) -> dict[str, Row]:
    """The current team and member of each lead that has an owner."""
    rows = session.execute(
        select(assignments.c.lead_id, assignments.c.team, assignments.c.member).where(
            among(session, assignments.c.lead_id, lead_ids), assignments.c.current
        )
    )
    return {row.lead_id: row for row in rows}


def actions_of_leads(
    session: Session, *, lead_ids: Sequence[str], playbooks: Sequence[str]
) -> dict[str, list[Row]]:
    """Each lead's actions of these playbooks (what playbooks read of them), oldest first."""
    rows = session.execute(
        select(*ACTION_COLUMNS)
        .where(among(session, actions.c.lead_id, lead_ids), actions.c.playbook.in_(playbooks))
        .order_by(actions.c.created_at, actions.c.id)
    )
    by_lead: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_lead[row.lead_id].append(row)
    return by_lead


def suppressed_among(session: Session, *, lead_ids: Sequence[str]) -> set[str]:
    """The leads among these that unsubscribed."""
    query = select(suppressions.c.lead_id).where(among(session, suppressions.c.lead_id, lead_ids))
    return set(session.execute(query).scalars())


def member_loads(session: Session, *, teams: Sequence[str]) -> dict[str, dict[str, int]]:
    """How many leads count against each member's capacity (owned, not contacted yet), by
    team."""
    rows = session.execute(
        select(assignments.c.team, assignments.c.member, func.count())
        .where(
            assignments.c.current,
            assignments.c.team.in_(teams),
            assignments.c.member.isnot(None),
            assignments.c.contacted_at.is_(None),
        )
        .group_by(assignments.c.team, assignments.c.member)
    )
    loads: dict[str, dict[str, int]] = {team: {} for team in teams}
    for team, member, count in rows:
        loads[team][member] = count
    return loads


def away_of_teams(session: Session, *, teams: Sequence[str], now: datetime) -> dict[str, set[str]]:
    """The members of these teams who are away now, by team."""
    rows = session.execute(
        select(member_availability.c.team, member_availability.c.member).where(
            member_availability.c.team.in_(teams),
            member_availability.c.away,
            or_(member_availability.c.away_until.is_(None), member_availability.c.away_until > now),
        )
    )
    away: dict[str, set[str]] = {team: set() for team in teams}
    for team, member in rows:
        away[team].add(member)
    return away


def last_assigned_of_teams(session: Session, *, teams: Sequence[str]) -> dict[str, str | None]:
    """Where each team's round-robin stands (None where it never assigned)."""
    rows = session.execute(
        select(team_state.c.team, team_state.c.last_assigned).where(team_state.c.team.in_(teams))
    )
    return {team: last for team, last in rows}


def existing_action_keys(session: Session, *, keys: Iterable[str]) -> set[str]:
    """The idempotency keys among these that some stored action has."""
    wanted = list(keys)
    if not wanted:
        return set()
    query = select(actions.c.idempotency_key).where(
        among(session, actions.c.idempotency_key, wanted)
    )
    return set(session.execute(query).scalars())


# --- writes ----------------------------------------------------------------------------------


def suppress_many(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Stop marketing email to these leads (idempotent: a lead suppressed already stays so)."""
    if rows:
        _insert_rows(session, suppressions, rows, returning=["lead_id"], conflict="lead_id")


def replace_assignments(
    session: Session, *, rows: Sequence[dict[str, Any]]
) -> dict[tuple[str, str], int]:
    """Close the current assignment of every lead in `rows`, then store `rows` (each says
    whether it is `current`); returns the new ids by (lead_id, cause_event_id)."""
    if not rows:
        return {}
    session.execute(
        update(assignments)
        .where(among(session, assignments.c.lead_id, {r["lead_id"] for r in rows}))
        .where(assignments.c.current)
        .values(current=False)
    )
    result = _insert_rows(session, assignments, rows, returning=["id", "lead_id", "cause_event_id"])
    return {(r.lead_id, r.cause_event_id): int(r.id) for r in result}


def set_last_assigned_many(session: Session, *, last: Mapping[str, str]) -> None:
    """Remember where each of these teams' round-robin stands."""
    if last:
        builder = postgresql.insert if _postgres(session) else sqlite.insert
        statement = builder(team_state)
        statement = statement.on_conflict_do_update(
            index_elements=[team_state.c.team],
            set_={"last_assigned": statement.excluded.last_assigned},
        )
        # In team order, so two instances upserting the same teams lock them in the same order.
        rows = [{"team": team, "last_assigned": last[team]} for team in sorted(last)]
        session.execute(statement, rows)


def insert_actions(session: Session, *, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Store new actions, skipping any whose idempotency key exists; returns the keys stored."""
    if not rows:
        return set()
    result = _insert_rows(
        session, actions, rows, returning=["idempotency_key"], conflict="idempotency_key"
    )
    return set(result.scalars())


def update_actions(session: Session, *, changes: Mapping[str, dict[str, Any]]) -> None:
    """Change action rows by id, one executemany per set of columns changed."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for action_id, values in changes.items():
        by_columns[tuple(sorted(values))].append({"action_id": action_id, **values})
    for params in by_columns.values():
        session.execute(update(actions).where(actions.c.id == bindparam("action_id")), params)


def latest_followups(session: Session, *, lead_ids: Sequence[str]) -> dict[str, datetime]:
    """When each lead's newest follow-up was planned: any action but an SLA check or an
    outbound lead webhook (a CRM's copy of the lead, not a next step) that was not cancelled
    or failed."""
    rows = session.execute(
        select(actions.c.lead_id, func.max(actions.c.created_at))
        .where(
            among(session, actions.c.lead_id, lead_ids),
            actions.c.kind.notin_(["sla", LEAD_WEBHOOK]),
            actions.c.status.notin_([ActionStatus.CANCELLED, ActionStatus.FAILED]),
        )
        .group_by(actions.c.lead_id)
    )
    return {lead: at for lead, at in rows if at is not None}


def latest_feedback(session: Session, *, lead_ids: Sequence[str]) -> dict[str, datetime]:
    """When sales last reported back on each lead (any feedback is a contact)."""
    rows = session.execute(
        select(lead_feedback.c.lead_id, func.max(lead_feedback.c.at))
        .where(among(session, lead_feedback.c.lead_id, lead_ids))
        .group_by(lead_feedback.c.lead_id)
    )
    return {lead: at for lead, at in rows if at is not None}
