"""Scoring's set-based SQL for a batch of touches: a few reads for every lead a batch touches,
and multi-row writes (see repository.py for the tables)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    bindparam,
    case,
    cast,
    delete,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.scoring.domain.accounts import REJECTION_TYPES
from services.scoring.repository import (
    account_member_overrides,
    accounts,
    lead_identities,
    lead_states,
    leads,
    stage_history,
    touches,
)
from shared.db import CHUNK, insert_many, json_rows


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def owners_of(
    session: Session, *, identities: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The lead owning each (kind, value) identity that has one."""
    found: dict[tuple[str, str], str] = {}
    for part in _chunks(list(dict.fromkeys(identities))):
        rows = session.execute(
            select(
                lead_identities.c.kind, lead_identities.c.value, lead_identities.c.lead_id
            ).where(tuple_(lead_identities.c.kind, lead_identities.c.value).in_(list(part)))
        )
        found.update({(kind, value): lead_id for kind, value, lead_id in rows})
    return found


# Every column but the stored BANT, which scoring re-derives before it writes a lead back.
_LEAD_COLUMNS = [c for c in leads.columns if c.name != "bant"]


def leads_by_id(session: Session, *, lead_ids: Sequence[str]) -> dict[str, Row]:
    """Lead rows by id (without `bant`), locked for update where the database supports it."""
    found: dict[str, Row] = {}
    for part in _chunks(sorted(set(lead_ids))):
        query = select(*_LEAD_COLUMNS).where(leads.c.id.in_(list(part))).with_for_update()
        found.update({row.id: row for row in session.execute(query)})
    return found


def identities_by_lead(
    session: Session, *, lead_ids: Sequence[str]
) -> dict[str, list[tuple[str, str]]]:
    """Each lead's (kind, value) identities, oldest first."""
    found: dict[str, list[tuple[str, str]]] = {lead_id: [] for lead_id in lead_ids}
    for part in _chunks(list(lead_ids)):
        rows = session.execute(
            select(lead_identities.c.lead_id, lead_identities.c.kind, lead_identities.c.value)
            .where(lead_identities.c.lead_id.in_(list(part)))
            .order_by(lead_identities.c.created_at, lead_identities.c.value)
        )
        for lead_id, kind, value in rows:
            found[lead_id].append((kind, value))
    return found


def states_of(session: Session, *, lead_ids: Sequence[str]) -> dict[str, Row]:
    """The stored folded state of each lead that has one."""
    found: dict[str, Row] = {}
    for part in _chunks(list(lead_ids)):
        rows = session.execute(select(lead_states).where(lead_states.c.lead_id.in_(list(part))))
        found.update({row.lead_id: row for row in rows})
    return found


def last_qualified_at(session: Session, *, lead_ids: Sequence[str]) -> dict[str, datetime]:
    """When each lead's qualification last moved (leads that never moved are left out)."""
    found: dict[str, datetime] = {}
    for part in _chunks(list(lead_ids)):
        rows = session.execute(
            select(stage_history.c.lead_id, func.max(stage_history.c.at))
            .where(
                stage_history.c.lead_id.in_(list(part)),
                stage_history.c.track == "qualification",
            )
            .group_by(stage_history.c.lead_id)
        )
        found.update({lead_id: at for lead_id, at in rows if at is not None})
    return found


def update_leads(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Write lead rows back (each dict has `id` and the same other columns).

    On PostgreSQL one statement does it: the rows travel as one JSON array, which
    `json_populate_recordset` turns into rows of the table's own type (so every value gets its
    column's type) to update from. SQLite, in process, takes them one by one.
    """
    if not rows:
        return
    columns = [c for c in rows[0] if c != "id"]
    if session.get_bind().dialect.name == "postgresql":
        assignments = ", ".join(f'"{c}" = v."{c}"' for c in columns)
        statement = text(
            f"UPDATE leads SET {assignments} "
            "FROM json_populate_recordset(NULL::leads, CAST(:rows AS json)) AS v "
            "WHERE leads.id = v.id"
        )
        for payload in json_rows(rows):
            session.execute(statement, {"rows": payload})
        return
    statement = (
        update(leads)
        .where(leads.c.id == bindparam("lead_key"))
        .values({c: bindparam(c) for c in columns})
    )
    session.execute(statement, [{**{c: r[c] for c in columns}, "lead_key": r["id"]} for r in rows])


def delete_stage_moves(
    session: Session, *, whole: Sequence[str], after: dict[str, datetime]
) -> None:
    """Drop funnel and journey moves: all of them for the leads in `whole` (being re-derived),
    and for the leads in `after` those later than the given time (pending fall-backs)."""
    tracks = ["funnel", "journey"]
    for part in _chunks(list(whole)):
        session.execute(
            delete(stage_history).where(
                stage_history.c.lead_id.in_(list(part)), stage_history.c.track.in_(tracks)
            )
        )
    if after:
        session.execute(
            delete(stage_history).where(
                stage_history.c.lead_id == bindparam("lead_key"),
                stage_history.c.track.in_(tracks),
                stage_history.c.at > bindparam("after_at"),
            ),
            [{"lead_key": k, "after_at": v} for k, v in after.items()],
        )


def save_states(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    """Store (replace) the folded state of these leads, one upsert per chunk of rows."""
    insert_many(session, lead_states, rows, upsert_on=["lead_id"])


def members_of(session: Session, *, domains: Sequence[str]) -> list[Row]:
    """What the committee rules read of every member of these accounts (BANT aside: see
    `bant_of`), by domain then id."""
    found: list[Row] = []
    for part in _chunks(sorted(set(domains))):
        found += session.execute(
            select(
                leads.c.id,
                leads.c.account_domain,
                leads.c.email,
                leads.c.job_title,
                leads.c.company_name,
                leads.c.funnel_stage,
                leads.c.journey_stage,
                leads.c.updated_at,
            )
            .where(leads.c.account_domain.in_(list(part)))
            .order_by(leads.c.account_domain, leads.c.id)
        ).all()
    return found


def bant_of(session: Session, *, lead_ids: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """Each lead's stored BANT and the `updated_at` it goes with."""
    found: dict[str, tuple[Any, Any]] = {}
    for part in _chunks(list(lead_ids)):
        rows = session.execute(
            select(leads.c.id, leads.c.bant, leads.c.updated_at).where(leads.c.id.in_(list(part)))
        )
        found.update({lead_id: (bant, at) for lead_id, bant, at in rows})
    return found


def activity_of_members(
    session: Session, *, domains: Sequence[str], since: datetime, now: datetime
) -> dict[str, Row]:
    """Per member of these accounts, over touches from `since` to `now`: how many, the newest,
    the newest rejection, and whether one declared the member a decision maker."""
    declared = func.lower(cast(touches.c.properties["is_decision_maker"].as_string(), String))
    found: dict[str, Row] = {}
    for part in _chunks(sorted(set(domains))):
        members = select(leads.c.id).where(leads.c.account_domain.in_(list(part)))
        rows = session.execute(
            select(
                touches.c.lead_id,
                func.count().label("count"),
                func.max(touches.c.occurred_at).label("last_at"),
                func.max(
                    case(
                        (touches.c.type.in_(sorted(REJECTION_TYPES)), touches.c.occurred_at),
                        else_=None,
                    )
                ).label("last_rejection_at"),
                func.max(case((declared.in_(["true", "yes", "1"]), 1), else_=0)).label(
                    "declared_dm"
                ),
            )
            .where(
                touches.c.lead_id.in_(members),
                touches.c.occurred_at >= since,
                touches.c.occurred_at <= now,
            )
            .group_by(touches.c.lead_id)
        )
        found.update({row.lead_id: row for row in rows})
    return found


def overrides_in(session: Session, *, domains: Sequence[str]) -> dict[str, Row]:
    """Committee overrides of the members of these accounts, by lead id."""
    found: dict[str, Row] = {}
    for part in _chunks(sorted(set(domains))):
        members = select(leads.c.id).where(leads.c.account_domain.in_(list(part)))
        rows = session.execute(
            select(account_member_overrides).where(account_member_overrides.c.lead_id.in_(members))
        )
        found.update({row.lead_id: row for row in rows})
    return found


def stage_involvement_of(
    session: Session, *, domains: Sequence[str]
) -> dict[str, dict[str, dict[str, str]]]:
    """The involvement per journey stage stored for each member of these accounts: domain ->
    lead id -> stage -> involvement."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    for part in _chunks(sorted(set(domains))):
        rows = session.execute(
            select(accounts.c.domain, accounts.c.members).where(accounts.c.domain.in_(list(part)))
        )
        for domain, members in rows:
            found[domain] = {
                m["lead_id"]: dict(m.get("involvement_by_stage") or {})
                for m in members or []
                if isinstance(m, dict) and "lead_id" in m
            }
    return found


def replace_accounts(
    session: Session, *, rows: Sequence[dict[str, Any]], gone: Sequence[str]
) -> None:
    """Store these accounts' assessments (an upsert, so two scoring instances rolling up one
    account do not collide) and forget the `gone` ones."""
    for part in _chunks(list(gone)):
        session.execute(delete(accounts).where(accounts.c.domain.in_(list(part))))
    insert_many(session, accounts, rows, upsert_on=["domain"])
