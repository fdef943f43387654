"""Scoring's handlers: load a lead and its history, let the domain decide, store, publish."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing import repository as routing_repository
from services.scoring import repository as repo
from services.scoring.domain.model import Assessment, Persona, Touch
from services.scoring.domain.qualification import assess
from shared import outbox
from shared.config import Settings
from shared.db import as_utc, mark_processed
from shared.events import LeadChange, TouchEnvelope

CONSUMER = "scoring"

_PERSONA_FIELDS = ("first_name", "last_name", "job_title", "phone")
_COMPANY_FIELDS = {
    "name": "company_name",
    "domain": "company_domain",
    "industry": "industry",
    "employees": "employees",
    "annual_revenue": "annual_revenue",
    "country": "country",
}


@dataclass(frozen=True)
class Resolved:
    """The lead a touch belongs to, and what identity work it took to find it."""

    lead_id: str
    created: bool
    merged_from: str | None = None


def lead_change_id(cause_event_id: str) -> str:
    """A deterministic id for the lead change a touch causes, so a re-publish deduplicates."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadflow:lead-change:{cause_event_id}"))


def _persona_values(envelope: TouchEnvelope) -> dict[str, Any]:
    """Persona columns the event states (it never blanks what an earlier event said)."""
    lead = envelope.lead
    values = {f: getattr(lead, f) for f in _PERSONA_FIELDS if getattr(lead, f)}
    if lead.company is not None:
        for field, column in _COMPANY_FIELDS.items():
            value = getattr(lead.company, field)
            if value is not None:
                values[column] = value
    return values


def _insert_new_lead(session: Session, *, email: str | None, now: datetime) -> str:
    """Create an empty lead and return its id."""
    lead_id = str(uuid.uuid4())
    repo.insert_lead(
        session,
        values={
            "id": lead_id,
            "email": email,
            "score": 0,
            "qualification": "unqualified",
            "bant": {},
            "model_version": "",
            "created_at": now,
            "updated_at": now,
        },
    )
    if email:
        repo.add_identity(session, lead_id=lead_id, kind="email", value=email, at=now)
    return lead_id


def _merge_into(
    session: Session, *, into: str, other: str, envelope: TouchEnvelope, now: datetime
) -> None:
    """Move an email-less lead's identities and history into `into`, and record the merge."""
    moved = repo.move_lead_history(session, from_lead_id=other, into_lead_id=into)
    routing_repository.reassign_lead(session, from_lead_id=other, into_lead_id=into)
    repo.record_merge(
        session,
        into_lead_id=into,
        from_lead_id=other,
        cause_event_id=envelope.event_id,
        identities=[{"kind": r.kind, "value": r.value} for r in moved],
        at=now,
    )
    repo.delete_lead(session, lead_id=other)


def _resolve_lead(session: Session, *, envelope: TouchEnvelope, now: datetime) -> Resolved:
    """Find or create the lead for a touch, stitching anonymous and platform ids to the person.

    A lead without an email is a stand-in for someone not yet known, so it merges into the
    person an event ties it to; two leads with different emails are never merged (a shared
    browser is two people).
    """
    email = envelope.lead.email
    others = [
        (kind, value)
        for kind, value in (
            ("user_id", envelope.lead.user_id),
            ("anonymous_id", envelope.lead.anonymous_id),
        )
        if value
    ]
    by_email = repo.lead_id_by_identity(session, kind="email", value=email) if email else None
    found: dict[tuple[str, str], str] = {}
    for kind, value in others:
        owner = repo.lead_id_by_identity(session, kind=kind, value=value)
        if owner is not None:
            found[(kind, value)] = owner
    candidates = list(dict.fromkeys(found.values()))
    emails = {
        lead_id: row.email
        for lead_id in candidates
        if (row := repo.get_lead(session, lead_id=lead_id, for_update=True)) is not None
    }

    created = False
    if by_email is not None:
        target = by_email
    elif email:
        anonymous = [lead_id for lead_id in candidates if emails.get(lead_id) is None]
        if anonymous:
            target = anonymous[0]
            repo.add_identity(session, lead_id=target, kind="email", value=email, at=now)
            repo.update_lead(session, lead_id=target, values={"email": email})
            emails[target] = email
        else:
            target, created = _insert_new_lead(session, email=email, now=now), True
    elif candidates:
        known = [lead_id for lead_id in candidates if emails.get(lead_id) is not None]
        target = known[0] if known else candidates[0]
    else:
        target, created = _insert_new_lead(session, email=None, now=now), True

    merged_from = None
    for lead_id in candidates:
        if lead_id != target and lead_id in emails and emails[lead_id] is None:
            _merge_into(session, into=target, other=lead_id, envelope=envelope, now=now)
            merged_from = lead_id
    for kind, value in others:
        if (kind, value) not in found:
            repo.add_identity(session, lead_id=target, kind=kind, value=value, at=now)
    return Resolved(lead_id=target, created=created, merged_from=merged_from)


def _touch_of(row: Row) -> Touch:
    return Touch(
        event_id=row.event_id,
        type=row.type,
        occurred_at=as_utc(row.occurred_at),  # type: ignore[arg-type]
        source=row.source,
        properties=row.properties or {},
    )


def _persona_of(row: Row) -> Persona:
    return Persona(
        job_title=row.job_title,
        employees=row.employees,
        annual_revenue=row.annual_revenue,
        industry=row.industry,
        country=row.country,
    )


def bant_json(assessment: Assessment) -> dict[str, Any]:
    """BANT in the lead representation's shape (design.md)."""
    return {
        name: {
            "score": dim.score,
            "met": dim.met,
            "evidence": [
                {
                    "event_id": e.event_id,
                    "type": e.type,
                    "at": e.at.isoformat() if e.at else None,
                    "rule": e.rule,
                    "points": e.points,
                }
                for e in dim.evidence
            ],
        }
        for name, dim in assessment.bant.dimensions().items()
    }


def _record_transitions(
    session: Session,
    *,
    before: Row,
    assessment: Assessment,
    cause: TouchEnvelope,
) -> dict[str, list[str | None]]:
    """Store each track that moved, with the time spent in the previous stage."""
    moved: dict[str, list[str | None]] = {}
    tracks = {
        "qualification": (before.qualification, assessment.qualification.value),
        "funnel": (before.funnel_stage, assessment.funnel_stage and assessment.funnel_stage.value),
        "journey": (
            before.journey_stage,
            assessment.journey_stage and assessment.journey_stage.value,
        ),
    }
    for track, (old, new) in tracks.items():
        if old == new:
            continue
        previous_at = as_utc(repo.last_transition_at(session, lead_id=before.id, track=track))
        repo.add_transition(
            session,
            values={
                "lead_id": before.id,
                "track": track,
                "from_stage": old,
                "to_stage": new,
                "at": cause.occurred_at,
                "cause_event_id": cause.event_id,
                "rule": assessment.model_version,
                "seconds_in_previous": (
                    (cause.occurred_at - previous_at).total_seconds() if previous_at else None
                ),
            },
        )
        moved[track] = [old, new]
    return moved


def handle_touch(
    session: Session, *, envelope: TouchEnvelope, settings: Settings, now: datetime
) -> LeadChange | None:
    """Store a touch, re-score its lead from the whole history, and queue the lead change.

    Returns None for a duplicate event. Re-scoring from the full, time-ordered history means a
    late event gives the state it would have given had it come in order.
    """
    if not mark_processed(session, consumer=CONSUMER, event_id=envelope.event_id, at=now):
        return None
    resolved = _resolve_lead(session, envelope=envelope, now=now)
    lead_id = resolved.lead_id
    repo.insert_touch(
        session,
        values={
            "event_id": envelope.event_id,
            "lead_id": lead_id,
            "type": envelope.type,
            "source": envelope.source,
            "occurred_at": envelope.occurred_at,
            "received_at": envelope.received_at,
            "properties": envelope.properties,
        },
    )
    before = repo.get_lead(session, lead_id=lead_id, for_update=True)
    assert before is not None
    persona = _persona_values(envelope)
    history = [_touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
    merged_persona = {**before._asdict(), **persona}
    assessment = assess(
        persona=Persona(
            job_title=merged_persona.get("job_title"),
            employees=merged_persona.get("employees"),
            annual_revenue=merged_persona.get("annual_revenue"),
            industry=merged_persona.get("industry"),
            country=merged_persona.get("country"),
        ),
        touches=history,
        now=now,
    )
    moved = _record_transitions(session, before=before, assessment=assessment, cause=envelope)
    last_touch_at = max(t.occurred_at for t in history)
    repo.update_lead(
        session,
        lead_id=lead_id,
        values={
            **persona,
            "score": assessment.score,
            "qualification": assessment.qualification.value,
            "funnel_stage": assessment.funnel_stage and assessment.funnel_stage.value,
            "journey_stage": assessment.journey_stage and assessment.journey_stage.value,
            "bant": bant_json(assessment),
            "model_version": assessment.model_version,
            "last_touch_at": last_touch_at,
            "updated_at": now,
        },
    )
    changes: dict[str, Any] = {"score_delta": assessment.score - before.score, **moved}
    if resolved.created:
        changes["created"] = True
    if resolved.merged_from:
        changes["merged_from"] = resolved.merged_from
    after = repo.get_lead(session, lead_id=lead_id)
    change = LeadChange(
        event_id=lead_change_id(envelope.event_id),
        lead_id=lead_id,
        cause_event_id=envelope.event_id,
        occurred_at=envelope.occurred_at,
        changes=changes,
        lead=lead_view(session, row=after, with_owner=False),
    )
    outbox.enqueue(
        session,
        topic=settings.topic_lead_changes,
        key=lead_id.encode(),
        value=change.to_bytes(),
        headers=[("event_id", change.event_id.encode())],
    )
    return change


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat() if value else None


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
        owner = routing_repository.current_owners(session, lead_ids=[row.id]).get(row.id)
    return {
        "id": row.id,
        "email": row.email,
        "anonymous_ids": [i.value for i in identities if i.kind == "anonymous_id"],
        "user_ids": [i.value for i in identities if i.kind == "user_id"],
        "first_name": row.first_name,
        "last_name": row.last_name,
        "job_title": row.job_title,
        "phone": row.phone,
        "account": (
            {"domain": row.company_domain, "name": row.company_name, "role": None}
            if row.company_domain or row.company_name
            else None
        ),
        "company": {
            "name": row.company_name,
            "domain": row.company_domain,
            "industry": row.industry,
            "employees": row.employees,
            "annual_revenue": row.annual_revenue,
            "country": row.country,
        },
        "score": row.score,
        "qualification": row.qualification,
        "funnel_stage": row.funnel_stage,
        "journey_stage": row.journey_stage,
        "bant": row.bant,
        "model_version": row.model_version,
        "owner": {"team": owner.team, "member": owner.member} if owner else None,
        "last_touch_at": _iso(row.last_touch_at),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def get_lead(session: Session, *, lead_id: str) -> dict[str, Any] | None:
    """One lead as sales tools see it, or None."""
    row = repo.get_lead(session, lead_id=lead_id)
    return lead_view(session, row=row) if row else None


def list_leads(
    session: Session, *, email: str | None, after_id: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of leads and the id to continue after (None on the last page)."""
    rows = repo.list_leads(session, email=email, after_id=after_id, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    ids = [r.id for r in page]
    identities = repo.identities_of(session, lead_ids=ids)
    owners = routing_repository.current_owners(session, lead_ids=ids)
    items = [
        lead_view(
            session, row=r, owner=owners.get(r.id), identities=identities[r.id], with_owner=False
        )
        for r in page
    ]
    return items, (page[-1].id if more and page else None)
