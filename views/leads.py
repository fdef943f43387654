"""The lead as sales tools read it: scoring's lead with its identities, account and current
owner (routing's), one at a time, a page at a time or every matching one. The read side: it
queries both services' tables and decides nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing.public import assignments, current_owners
from services.scoring import repository as repo
from services.scoring.repository import lead_identities, leads
from services.scoring.shapes import account_of, lead_representation
from shared.events import MAX_TRAIT_CHARS, TRAIT_KEY

# How many `trait` filters one query may hold.
MAX_TRAIT_FILTERS = 10


@dataclass(frozen=True)
class LeadFilter:
    """What a lead list may be narrowed by (every field optional; all given ones must hold)."""

    email: str | None = None
    qualification: str | None = None
    funnel_stage: str | None = None
    journey_stage: str | None = None
    team: str | None = None
    owner: str | None = None
    min_score: int | None = None
    max_score: int | None = None
    min_fit: int | None = None
    min_engagement: int | None = None
    persona: str | None = None
    model: str | None = None
    account: str | None = None
    updated_since: datetime | None = None
    q: str | None = None
    # (trait, value as text) pairs the lead's custom traits must all hold.
    traits: tuple[tuple[str, str], ...] = ()


def _trait_problem(raw: str) -> str | None:
    key, sep, value = raw.partition(":")
    if not sep or not TRAIT_KEY.match(key.strip()):
        return "must be key:value with a trait name as key, e.g. plan:enterprise"
    if len(value) > MAX_TRAIT_CHARS:
        return f"the value is over {MAX_TRAIT_CHARS} characters"
    return "holds a NUL character" if "\x00" in raw else None


def trait_filters(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`trait=key:value` query values as (key, value) pairs; ValueError saying what is wrong."""
    problem = next((p for raw in values if (p := _trait_problem(raw))), None)
    if problem is None and len(values) > MAX_TRAIT_FILTERS:
        problem = f"at most {MAX_TRAIT_FILTERS} trait filters"
    if problem is not None:
        raise ValueError(problem)
    return tuple((key.strip(), value) for key, _, value in (v.partition(":") for v in values))


def trait_text(key: str, *, dialect: str) -> Any:
    """A lead's trait as text, alike on every database: a text as it is, a number as written, a
    boolean as true or false (PostgreSQL's `->>`; SQLite's json_extract gives 1 and 0 for
    booleans and numbers as numbers, so there it is spelled out)."""
    if dialect != "sqlite":
        return leads.c.traits[key].as_string()
    path = "$." + json.dumps(key)  # trait names hold no quote or backslash
    kind = func.json_type(leads.c.traits, path)
    return case(
        (kind.in_(("true", "false")), kind),
        else_=cast(func.json_extract(leads.c.traits, path), String),
    )


SORT_COLUMNS = {"id": leads.c.id, "score": leads.c.score, "updated_at": leads.c.updated_at}


def _where(query: Any, f: LeadFilter, *, dialect: str) -> Any:
    for key, value in f.traits:
        query = query.where(trait_text(key, dialect=dialect) == value)
    if f.email is not None:
        query = query.where(
            leads.c.id.in_(
                select(lead_identities.c.lead_id).where(
                    lead_identities.c.kind == "email", lead_identities.c.value == f.email
                )
            )
        )
    for column, value in (
        (leads.c.qualification, f.qualification),
        (leads.c.funnel_stage, f.funnel_stage),
        (leads.c.journey_stage, f.journey_stage),
        (leads.c.account_domain, f.account),
        (leads.c.persona, f.persona),
        (leads.c.model_version, f.model),
    ):
        if value is not None:
            query = query.where(column == value)
    if f.min_score is not None:
        query = query.where(leads.c.score >= f.min_score)
    if f.max_score is not None:
        query = query.where(leads.c.score <= f.max_score)
    if f.min_fit is not None:
        query = query.where(leads.c.fit_score >= f.min_fit)
    if f.min_engagement is not None:
        query = query.where(leads.c.engagement_score >= f.min_engagement)
    if f.updated_since is not None:
        query = query.where(leads.c.updated_at >= f.updated_since)
    if f.team is not None or f.owner is not None:
        owned = select(assignments.c.lead_id).where(assignments.c.current)
        if f.team is not None:
            owned = owned.where(assignments.c.team == f.team)
        if f.owner is not None:
            owned = owned.where(assignments.c.member == f.owner)
        query = query.where(leads.c.id.in_(owned))
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        leads.c.email,
                        leads.c.first_name,
                        leads.c.last_name,
                        leads.c.company_name,
                    )
                )
            )
        )
    return query


def lead_rows(
    session: Session,
    *,
    filters: LeadFilter,
    sort: str = "id",
    descending: bool = False,
    after: tuple[Any, str] | None = None,
    limit: int,
) -> list[Row]:
    """A page of leads matching the filters, in keyset order (sort key, then id), after the
    position `after` = (sort key value, id)."""
    key = SORT_COLUMNS[sort]
    query = _where(select(leads), filters, dialect=session.get_bind().dialect.name)
    if after is not None:
        value, last_id = after
        if sort == "id":
            query = query.where(leads.c.id < last_id if descending else leads.c.id > last_id)
        elif descending:
            query = query.where(or_(key < value, and_(key == value, leads.c.id < last_id)))
        else:
            query = query.where(or_(key > value, and_(key == value, leads.c.id > last_id)))
    if sort == "id":
        order = [leads.c.id.desc() if descending else leads.c.id]
    else:
        order = [key.desc(), leads.c.id.desc()] if descending else [key, leads.c.id]
    return list(session.execute(query.order_by(*order).limit(limit)))


def count_leads(session: Session, *, filters: LeadFilter) -> int:
    """How many leads match the filters (an export's total)."""
    matching = _where(select(leads.c.id), filters, dialect=session.get_bind().dialect.name)
    return int(session.execute(select(func.count()).select_from(matching.subquery())).scalar_one())


def iter_lead_rows(
    session: Session, *, filters: LeadFilter, batch: int = 1000
) -> Iterator[list[Row]]:
    """Every matching lead in id order, a batch at a time (for exports)."""
    after: tuple[Any, str] | None = None
    while True:
        rows = lead_rows(session, filters=filters, after=after, limit=batch)
        if not rows:
            return
        yield rows
        after = (rows[-1].id, rows[-1].id)


def lead_view(
    session: Session,
    *,
    row: Row,
    with_owner: bool = True,
    owner: Row | None = None,
    identities: list[Row] | None = None,
) -> dict[str, Any]:
    """The lead representation sales tools read (design.md)."""
    if identities is None:
        identities = repo.identities_of(session, lead_ids=[row.id])[row.id]
    if with_owner and owner is None:
        owner = current_owners(session, lead_ids=[row.id]).get(row.id)
    account = repo.get_account(session, domain=row.account_domain) if row.account_domain else None
    values = row._mapping
    return lead_representation(
        values,
        identities=[(i.kind, i.value) for i in identities],
        owner=owner,
        account=account_of(values, account._mapping if account is not None else None),
    )


def get_lead(session: Session, *, lead_id: str) -> dict[str, Any] | None:
    """One lead as sales tools see it, or None."""
    row = repo.get_lead(session, lead_id=lead_id)
    return lead_view(session, row=row) if row else None


def list_leads(
    session: Session,
    *,
    filters: LeadFilter,
    sort: str = "id",
    descending: bool = False,
    after: tuple[Any, str] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], tuple[Any, str] | None]:
    """A page of leads and the position to continue after (None on the last page)."""
    rows = lead_rows(
        session, filters=filters, sort=sort, descending=descending, after=after, limit=limit + 1
    )
    page, more = rows[:limit], len(rows) > limit
    items = lead_views(session, rows=page)
    if not (more and page):
        return items, None
    last = page[-1]
    value = getattr(last, sort)
    return items, (value.isoformat() if isinstance(value, datetime) else value, last.id)


def lead_views(session: Session, *, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The lead representation of many rows with two queries for identities and owners."""
    ids = [r.id for r in rows]
    identities = repo.identities_of(session, lead_ids=ids)
    owners = current_owners(session, lead_ids=ids)
    return [
        lead_view(
            session, row=r, owner=owners.get(r.id), identities=identities[r.id], with_owner=False
        )
        for r in rows
    ]
