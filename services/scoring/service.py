"""Scoring's handlers: load a lead and its history, let the domain decide, store, publish."""

from __future__ import annotations

import itertools
import statistics
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing import repository as routing_repository
from services.routing.domain.config import RoutingConfig
from services.routing.domain.rules import LeadFacts, explain_rules, route
from services.scoring import repository as repo
from services.scoring.domain import accounts as committee
from services.scoring.domain.backtest import BacktestReport, LeadOutcome
from services.scoring.domain.explain import explain
from services.scoring.domain.model import Assessment, Bant, Dimension, Evidence, Persona, Touch
from services.scoring.domain.qualification import assess
from services.scoring.domain.scoring_model import ModelError, ScoringModel, parse_model
from services.scoring.domain.titles import normalize_title
from services.scoring.domain.trace import trace_scoring
from shared import outbox
from shared.config import Settings, read_toml_setting
from shared.db import as_utc, mark_processed
from shared.domain import FunnelStage, JourneyStage
from shared.events import LeadChange, TouchEnvelope

CONSUMER = "scoring"
BUNDLED_MODELS = Path(__file__).resolve().parent / "models"
# A committee member counts as engaged with a touch within this many days.
ENGAGED_DAYS = 30.0


@lru_cache(maxsize=8)
def load_model(spec: str) -> ScoringModel:
    """The scoring model named by a setting: a bundled name (b2b_saas, b2c_ecommerce) or a path
    to a TOML file. Raises ModelError naming the file, the place and the reason."""
    try:
        path, text = read_toml_setting(spec, bundled=BUNDLED_MODELS)
    except OSError as exc:
        raise ModelError(spec, "file", str(exc)) from None
    return parse_model(text, source=str(path))


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


def persona_of(values: Any) -> Persona:
    """The persona of a lead row (or a mapping with the same keys)."""
    get = values.get if isinstance(values, dict) else lambda k: getattr(values, k, None)
    return Persona(
        job_title=get("job_title"),
        employees=get("employees"),
        annual_revenue=get("annual_revenue"),
        industry=get("industry"),
        country=get("country"),
        company_domain=get("company_domain"),
    )


def bant_from_json(data: dict[str, Any]) -> Bant:
    """BANT back from its stored shape (for account assessment without re-scoring members)."""

    def dimension(raw: dict[str, Any] | None) -> Dimension:
        raw = raw or {}
        evidence = tuple(
            Evidence(
                e.get("event_id"),
                e.get("type", ""),
                as_utc(datetime.fromisoformat(e["at"])) if e.get("at") else None,
                e.get("rule", ""),
                int(e.get("points", 0)),
            )
            for e in raw.get("evidence", [])
        )
        return Dimension(
            score=int(raw.get("score", 0)), met=bool(raw.get("met", False)), evidence=evidence
        )

    return Bant(**{d: dimension(data.get(d)) for d in ("budget", "authority", "need", "timing")})


def bant_json(bant: Bant | Assessment) -> dict[str, Any]:
    """BANT in the lead representation's shape (design.md)."""
    if isinstance(bant, Assessment):
        bant = bant.bant
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
        for name, dim in bant.dimensions().items()
    }


def _record_transitions(
    session: Session,
    *,
    before: Row,
    assessment: Assessment,
    cause_event_id: str,
    cause_at: datetime,
) -> dict[str, Any]:
    """Store the stage history the whole history implies, and the qualification move; returns
    what changed."""
    repo.replace_stage_history(
        session,
        lead_id=before.id,
        tracks=("funnel", "journey"),
        rows=[
            {
                "track": m.track,
                "from_stage": m.from_stage,
                "to_stage": m.to_stage,
                "at": m.at,
                "cause_event_id": m.cause_event_id,
                "rule": m.rule,
                "seconds_in_previous": m.seconds_in_previous,
            }
            for m in assessment.transitions
        ],
    )
    moved: dict[str, Any] = {}
    new_funnel = assessment.funnel_stage and assessment.funnel_stage.value
    new_journey = assessment.journey_stage and assessment.journey_stage.value
    if before.funnel_stage != new_funnel:
        moved["funnel"] = [before.funnel_stage, new_funnel]
    if before.journey_stage != new_journey:
        moved["journey"] = [before.journey_stage, new_journey]
    caused = [
        {"track": m.track, "from": m.from_stage, "to": m.to_stage, "rule": m.rule}
        for m in assessment.transitions
        if m.cause_event_id == cause_event_id
    ]
    if caused:
        moved["transitions"] = caused
    if before.qualification != assessment.qualification.value:
        previous_at = as_utc(
            repo.last_transition_at(session, lead_id=before.id, track="qualification")
        )
        repo.add_transition(
            session,
            values={
                "lead_id": before.id,
                "track": "qualification",
                "from_stage": before.qualification,
                "to_stage": assessment.qualification.value,
                "at": cause_at,
                "cause_event_id": cause_event_id,
                "rule": assessment.qualification_reason[:100],
                "seconds_in_previous": (
                    (cause_at - previous_at).total_seconds() if previous_at else None
                ),
            },
        )
        moved["qualification"] = [before.qualification, assessment.qualification.value]
    return moved


def refresh_account(session: Session, *, domain: str, now: datetime) -> dict[str, Any] | None:
    """Re-assess an account's buying committee and BANT from its members; returns its view."""
    members = repo.account_members(session, domain=domain)
    if not members:
        repo.delete_account(session, domain=domain)
        return None
    ids = [m.id for m in members]
    since = now - timedelta(days=ENGAGED_DAYS)
    recent: dict[str, list[Touch]] = {i: [] for i in ids}
    for row in repo.recent_touches_of(session, lead_ids=ids, since=since):
        recent[row.lead_id].append(_touch_of(row))
    overrides = repo.overrides_of(session, lead_ids=ids)
    inputs = []
    for m in members:
        override = overrides.get(m.id)
        declared_dm = any(
            str(t.properties.get("is_decision_maker", "")).lower() in ("true", "yes", "1")
            for t in recent[m.id]
        )
        inputs.append(
            committee.Member(
                lead_id=m.id,
                title=normalize_title(m.job_title),
                bant=bant_from_json(m.bant or {}),
                funnel_stage=FunnelStage(m.funnel_stage) if m.funnel_stage else None,
                journey_stage=JourneyStage(m.journey_stage) if m.journey_stage else None,
                touches=tuple(recent[m.id]),
                declared_decision_maker=declared_dm,
                involvement_override=(
                    committee.Involvement(override.involvement)
                    if override is not None and override.involvement
                    else None
                ),
                function_override=(
                    committee.CommitteeFunction(override.function)
                    if override is not None and override.function
                    else None
                ),
            )
        )
    result = committee.assess_account(
        domain=domain, members=inputs, now=now, engaged_days=ENGAGED_DAYS
    )
    names = [m.company_name for m in members if m.company_name]
    roles = [
        {
            "lead_id": r.lead_id,
            "involvement": r.involvement.value,
            "function": r.function.value,
            "reviewer_area": r.reviewer_area,
            "decision_maker": r.decision_maker,
            "overridden": r.overridden,
            "reasons": list(r.reasons),
        }
        for r in result.members
    ]
    values = {
        "domain": domain,
        "name": max(set(names), key=names.count) if names else None,
        "member_count": len(members),
        "members": roles,
        "bant": bant_json(result.bant),
        "funnel_stage": result.funnel_stage and result.funnel_stage.value,
        "journey_stage": result.journey_stage and result.journey_stage.value,
        "decision_maker_engaged": result.decision_maker_engaged,
        "updated_at": now,
    }
    repo.upsert_account(session, values=values)
    return values


def handle_touch(
    session: Session,
    *,
    envelope: TouchEnvelope,
    settings: Settings,
    model: ScoringModel,
    now: datetime,
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
    return _rescore(
        session,
        lead_id=lead_id,
        persona=_persona_values(envelope),
        cause_event_id=envelope.event_id,
        cause_at=envelope.occurred_at,
        change_id=lead_change_id(envelope.event_id),
        touch={
            "event_id": envelope.event_id,
            "type": envelope.type,
            "occurred_at": envelope.occurred_at.isoformat(),
            "properties": envelope.properties,
        },
        extra_changes={
            **({"created": True} if resolved.created else {}),
            **({"merged_from": resolved.merged_from} if resolved.merged_from else {}),
        },
        settings=settings,
        model=model,
        now=now,
    )


def _rescore(
    session: Session,
    *,
    lead_id: str,
    persona: dict[str, Any],
    cause_event_id: str,
    cause_at: datetime,
    change_id: str,
    extra_changes: dict[str, Any],
    settings: Settings,
    model: ScoringModel,
    now: datetime,
    only_if_moved: bool = False,
    touch: dict[str, Any] | None = None,
) -> LeadChange | None:
    """Re-assess a lead from its whole history, store the result, queue the lead change.

    With `only_if_moved`, a lead whose qualification and stages stay put is left untouched
    (decay alone changes the score a little every hour; that is not worth an event).
    """
    before = repo.get_lead(session, lead_id=lead_id, for_update=True)
    assert before is not None
    history = [_touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
    merged_persona = {**before._asdict(), **persona}
    assessment = assess(model=model, persona=persona_of(merged_persona), touches=history, now=now)
    if only_if_moved and (
        before.qualification == assessment.qualification.value
        and before.funnel_stage == (assessment.funnel_stage and assessment.funnel_stage.value)
        and before.journey_stage == (assessment.journey_stage and assessment.journey_stage.value)
    ):
        return None
    domain = committee.account_domain(
        email=merged_persona.get("email"), company_domain=merged_persona.get("company_domain")
    )
    moved = _record_transitions(
        session,
        before=before,
        assessment=assessment,
        cause_event_id=cause_event_id,
        cause_at=cause_at,
    )
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
            "qualification_reason": assessment.qualification_reason[:500],
            "account_domain": domain,
            "last_touch_at": max((t.occurred_at for t in history), default=None),
            "updated_at": now,
        },
    )
    for affected in {domain, before.account_domain} - {None}:
        refresh_account(session, domain=affected, now=now)  # type: ignore[arg-type]
    changes: dict[str, Any] = {
        "score_delta": assessment.score - before.score,
        **moved,
        **extra_changes,
    }
    after = repo.get_lead(session, lead_id=lead_id)
    change = LeadChange(
        event_id=change_id,
        lead_id=lead_id,
        cause_event_id=cause_event_id,
        occurred_at=cause_at,
        changes=changes,
        lead=lead_view(session, row=after, with_owner=False),
        touch=touch,
    )
    outbox.enqueue(
        session,
        topic=settings.topic_lead_changes,
        key=lead_id.encode(),
        value=change.to_bytes(),
        headers=[("event_id", change.event_id.encode())],
    )
    return change


def rescore_due(
    session: Session, *, settings: Settings, model: ScoringModel, now: datetime, limit: int = 500
) -> int:
    """Re-assess leads whose stage may have fallen back for want of signals (no event will come
    to trigger it); returns how many moved. Each move is published like any lead change."""
    regressions = [*model.stages.funnel.regress, *model.stages.journey.regress]
    if not regressions:
        return 0
    quiet_since = now - timedelta(days=min(r.after_days for r in regressions))
    candidates = repo.leads_quiet_in_stages(
        session,
        funnel_stages=[r.stage for r in model.stages.funnel.regress],
        journey_stages=[r.stage for r in model.stages.journey.regress],
        quiet_since=quiet_since,
        limit=limit,
    )
    moved = 0
    for lead_id in candidates:
        cause = f"rescore:{lead_id}:{now.isoformat()}"
        change = _rescore(
            session,
            lead_id=lead_id,
            persona={},
            cause_event_id=cause,
            cause_at=now,
            change_id=lead_change_id(cause),
            extra_changes={"rescored": True},
            settings=settings,
            model=model,
            now=now,
            only_if_moved=True,
        )
        moved += change is not None
    return moved


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
        "account": _account_of(session, row),
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
        "qualification_reason": row.qualification_reason,
        "owner": {"team": owner.team, "member": owner.member} if owner else None,
        "last_touch_at": _iso(row.last_touch_at),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _account_of(session: Session, row: Row) -> dict[str, Any] | None:
    """The lead's account and its place in the buying committee, if it has one."""
    if not row.account_domain:
        return None
    account = repo.get_account(session, domain=row.account_domain)
    role = next((m for m in (account.members if account else []) if m["lead_id"] == row.id), None)
    return {
        "domain": row.account_domain,
        "name": account.name if account else row.company_name,
        "role": role["involvement"] if role else None,
        "function": role["function"] if role else None,
    }


def account_view(session: Session, *, domain: str) -> dict[str, Any] | None:
    """An account with its members' involvement and function, BANT and stages, or None."""
    account = repo.get_account(session, domain=domain)
    if account is None:
        return None
    members = {m.id: m for m in repo.account_members(session, domain=domain)}
    return {
        "domain": account.domain,
        "name": account.name,
        "member_count": account.member_count,
        "members": [
            {
                **role,
                "email": members[role["lead_id"]].email if role["lead_id"] in members else None,
                "job_title": (
                    members[role["lead_id"]].job_title if role["lead_id"] in members else None
                ),
            }
            for role in account.members
        ],
        "bant": account.bant,
        "funnel_stage": account.funnel_stage,
        "journey_stage": account.journey_stage,
        "decision_maker_engaged": account.decision_maker_engaged,
        "updated_at": _iso(account.updated_at),
    }


def override_member(
    session: Session,
    *,
    domain: str,
    lead_id: str,
    involvement: str | None,
    function: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    """Set a member's involvement and/or function by hand; returns the account, or None if the
    lead is not a member of that account."""
    lead = repo.get_lead(session, lead_id=lead_id)
    if lead is None or lead.account_domain != domain:
        return None
    repo.set_override(session, lead_id=lead_id, involvement=involvement, function=function, at=now)
    refresh_account(session, domain=domain, now=now)
    return account_view(session, domain=domain)


def explain_lead(
    session: Session, *, lead_id: str, model: ScoringModel, now: datetime
) -> dict[str, Any] | None:
    """Why the lead has its score, qualification and stages, re-derived at `now`."""
    row = repo.get_lead(session, lead_id=lead_id)
    if row is None:
        return None
    history = [_touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
    assessment = assess(model=model, persona=persona_of(row), touches=history, now=now)
    return {
        "lead_id": lead_id,
        "model_version": assessment.model_version,
        "score": assessment.score,
        "qualification": assessment.qualification.value,
        "funnel_stage": assessment.funnel_stage and assessment.funnel_stage.value,
        "journey_stage": assessment.journey_stage and assessment.journey_stage.value,
        "sentences": explain(assessment, model=model, now=now),
    }


def get_lead(session: Session, *, lead_id: str) -> dict[str, Any] | None:
    """One lead as sales tools see it, or None."""
    row = repo.get_lead(session, lead_id=lead_id)
    return lead_view(session, row=row) if row else None


def list_leads(
    session: Session,
    *,
    filters: repo.LeadFilter,
    sort: str = "id",
    descending: bool = False,
    after: tuple[Any, str] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], tuple[Any, str] | None]:
    """A page of leads and the position to continue after (None on the last page)."""
    rows = repo.list_leads(
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
    owners = routing_repository.current_owners(session, lead_ids=ids)
    return [
        lead_view(
            session, row=r, owner=owners.get(r.id), identities=identities[r.id], with_owner=False
        )
        for r in rows
    ]


def funnel_report(
    session: Session, *, since: datetime, until: datetime, team: str | None
) -> dict[str, Any]:
    """Leads created in [since, until): how many are at each funnel and journey stage, how many
    of those that reached each funnel step went on to the next, the median time spent in each
    step, the same per owning team, and the journey x funnel matrix."""
    cohort = repo.leads_created_between(session, since=since, until=until)
    owners = routing_repository.current_owners(session, lead_ids=[r.id for r in cohort])
    if team is not None:
        cohort = [r for r in cohort if owners.get(r.id) is not None and owners[r.id].team == team]
    history = repo.funnel_history_of(session, lead_ids=[r.id for r in cohort])
    by_team: dict[str, list[Row]] = {}
    for r in cohort:
        owner = owners.get(r.id)
        by_team.setdefault(owner.team if owner else "(unassigned)", []).append(r)
    return {
        "from": since.isoformat(),
        "to": until.isoformat(),
        "team": team,
        **funnel_figures(cohort, history),
        "teams": {
            name: funnel_figures(rows, {r.id: history.get(r.id, []) for r in rows})
            for name, rows in sorted(by_team.items())
        },
    }


def funnel_figures(rows: Sequence[Row], history: dict[str, list[Row]]) -> dict[str, Any]:
    """Stage counts, step conversion, median time in stage and the journey x funnel matrix."""
    order = [s.value for s in FunnelStage]
    journeys = [s.value for s in JourneyStage]
    funnel_counts = {s: 0 for s in order}
    journey_counts = {s: 0 for s in journeys}
    matrix = {j: {f: 0 for f in order} for j in journeys}
    reached = {s: 0 for s in order}
    spent: dict[str, list[float]] = {s: [] for s in order}
    for r in rows:
        if r.funnel_stage in funnel_counts:
            funnel_counts[r.funnel_stage] += 1
        if r.journey_stage in journey_counts:
            journey_counts[r.journey_stage] += 1
        if r.funnel_stage in funnel_counts and r.journey_stage in journey_counts:
            matrix[r.journey_stage][r.funnel_stage] += 1
        moves = history.get(r.id, [])
        # The furthest step a lead ever reached counts it as having passed every earlier step
        # (stages can be skipped: a demo request jumps straight to intent).
        furthest = max((order.index(m.to_stage) for m in moves if m.to_stage in order), default=-1)
        for i in range(furthest + 1):
            reached[order[i]] += 1
        for m in moves:
            if m.from_stage in spent and m.seconds_in_previous is not None:
                spent[m.from_stage].append(m.seconds_in_previous)
    conversion = [
        {
            "from": a,
            "to": b,
            "reached_from": reached[a],
            "reached_to": reached[b],
            "rate": round(reached[b] / reached[a], 4) if reached[a] else None,
        }
        for a, b in itertools.pairwise(order)
    ]
    return {
        "leads": len(rows),
        "funnel": funnel_counts,
        "journey": journey_counts,
        "conversion": conversion,
        "median_seconds_in_stage": {
            s: statistics.median(v) if v else None for s, v in spent.items()
        },
        "journey_by_funnel": matrix,
    }


def backtest(
    session: Session,
    *,
    model: ScoringModel,
    routing: RoutingConfig,
    since: datetime | None,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestReport:
    """Re-score stored histories with `model` and compare with the stored state; writes nothing.

    `since` limits it to leads with a touch at or after that time; `progress(done, total)` is
    called as leads are processed.
    """
    ids = repo.lead_ids_active_since(session, since=since)
    owners = routing_repository.current_owners(session, lead_ids=ids)
    report = BacktestReport(model_version=model.version)
    for done, lead_id in enumerate(ids, start=1):
        row = repo.get_lead(session, lead_id=lead_id)
        if row is None:
            continue
        history = [_touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
        result = assess(model=model, persona=persona_of(row), touches=history, now=now)
        funnel = result.funnel_stage and result.funnel_stage.value
        owner = owners.get(lead_id)
        candidate_team = route(
            LeadFacts(
                qualification=result.qualification.value,
                funnel_stage=funnel,
                score=result.score,
                segment="b2b" if row.account_domain else "b2c",
                country=row.country,
                industry=row.industry,
                employees=row.employees,
            ),
            routing,
        ).team
        report.add(
            LeadOutcome(
                lead_id=lead_id,
                email=row.email,
                current={
                    "score": row.score,
                    "qualification": row.qualification,
                    "funnel_stage": row.funnel_stage,
                    "journey_stage": row.journey_stage,
                    "owner_team": owner.team if owner else None,
                },
                candidate={
                    "score": result.score,
                    "qualification": result.qualification.value,
                    "funnel_stage": funnel,
                    "journey_stage": result.journey_stage and result.journey_stage.value,
                    "owner_team": candidate_team if owner else None,
                },
            )
        )
        if progress is not None:
            progress(done, len(ids))
    return report


def timeline(
    session: Session, *, lead_id: str, after: tuple[str, int, str] | None, limit: int
) -> tuple[list[dict[str, Any]], tuple[str, int, str] | None] | None:
    """A lead's touches, stage and qualification moves, merges and assignments in time order,
    one page after the position `after`; None if there is no such lead.

    Positions are (time, kind rank, id): stable while new entries arrive, so a page never
    repeats or skips an entry that was already there.
    """
    if repo.get_lead(session, lead_id=lead_id) is None:
        return None
    entries: list[tuple[tuple[str, int, str], dict[str, Any]]] = []

    def add(at: datetime | None, rank: int, key: str, entry: dict[str, Any]) -> None:
        when = as_utc(at)
        iso = when.isoformat() if when else ""
        entries.append(((iso, rank, key), {"at": iso, **entry}))

    for t in repo.touches_of(session, lead_id=lead_id):
        add(
            t.occurred_at,
            0,
            t.event_id,
            {
                "kind": "touch",
                "event_id": t.event_id,
                "type": t.type,
                "source": t.source,
                "properties": t.properties or {},
            },
        )
    for m in repo.merges_into(session, lead_id=lead_id):
        add(
            m.at,
            1,
            str(m.id),
            {
                "kind": "identity_merge",
                "from_lead_id": m.from_lead_id,
                "cause_event_id": m.cause_event_id,
                "identities": m.identities,
            },
        )
    for h in repo.stage_history_of(session, lead_id=lead_id):
        kind = "qualification_change" if h.track == "qualification" else "stage_transition"
        add(
            h.at,
            2,
            f"{h.track}:{h.id}",
            {
                "kind": kind,
                "track": h.track,
                "from": h.from_stage,
                "to": h.to_stage,
                "cause_event_id": h.cause_event_id,
                "rule": h.rule,
                "seconds_in_previous": h.seconds_in_previous,
            },
        )
    for act in routing_repository.actions_of_lead(session, lead_id=lead_id):
        add(
            act.created_at,
            4,
            act.id,
            {
                "kind": "action",
                "action_id": act.id,
                "action_kind": act.kind,
                "playbook": act.playbook,
                "status": act.status,
                "due_at": _iso(act.due_at),
                "sent_at": _iso(act.sent_at),
            },
        )
    for fb in routing_repository.feedback_of(session, lead_id=lead_id):
        add(
            fb.at,
            5,
            str(fb.id),
            {"kind": "feedback", "type": fb.kind, "reason": fb.reason, "by": fb.by},
        )
    for a in routing_repository.assignments_of(session, lead_id=lead_id):
        add(
            a.assigned_at,
            3,
            str(a.id),
            {
                "kind": "assignment",
                "team": a.team,
                "member": a.member,
                "rule": a.rule,
                "cause_event_id": a.cause_event_id,
            },
        )
    entries.sort(key=lambda e: e[0])
    if after is not None:
        entries = [e for e in entries if e[0] > after]
    page = entries[:limit]
    more = len(entries) > limit
    return [e[1] for e in page], (page[-1][0] if more and page else None)


def trace_lead(
    session: Session,
    *,
    lead_id: str,
    model: ScoringModel,
    routing: RoutingConfig,
    now: datetime,
) -> dict[str, Any] | None:
    """Which scoring, routing and playbook rules matched a lead, which did not, and why."""
    row = repo.get_lead(session, lead_id=lead_id)
    if row is None:
        return None
    history = [_touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
    view = lead_view(session, row=row)
    from services.routing.service import facts_of

    routing_rules = [
        {"rule": name, "matched": matched, "reason": reason}
        for name, matched, reason in explain_rules(facts_of(view), routing)
    ]
    first = next((r["rule"] for r in routing_rules if r["matched"]), None)
    return {
        "lead_id": lead_id,
        "model_version": model.version,
        "scoring": trace_scoring(model=model, persona=persona_of(row), touches=history, now=now),
        "routing": {
            "rules": routing_rules,
            "decision": first or f"default ({routing.default_team})",
            "owner": view["owner"],
        },
        "playbooks": _trace_playbooks(session, row=row, history=history, routing=routing),
    }


def _trace_playbooks(
    session: Session, *, row: Row, history: Sequence[Touch], routing: RoutingConfig
) -> list[dict[str, Any]]:
    """What each playbook did for the lead, and for one that did nothing, why not."""
    actions = routing_repository.actions_of_lead(session, lead_id=row.id)
    suppressed = routing_repository.is_suppressed(session, lead_id=row.id)
    playbooks = routing.playbooks
    triggers = {
        "abandoned_cart": ({"cart_add", "checkout_started"}, playbooks.abandoned_cart.enabled),
        "event_followup": ({"webinar_attended"}, playbooks.event_followup.enabled),
        "trial_nudge": ({"trial_started"}, playbooks.trial_nudge.enabled),
        "sales_alert": (set(), playbooks.sales_alert.enabled),
        "stage_regression": (set(), playbooks.stage_regression_alert.enabled),
    }
    result = []
    for name, (types, enabled) in triggers.items():
        mine = [a for a in actions if a.playbook == name]
        if mine:
            for a in mine:
                result.append(
                    {
                        "playbook": name,
                        "fired": True,
                        "action_id": a.id,
                        "status": a.status,
                        "reason": a.cancel_reason or a.last_error or f"action {a.status}",
                    }
                )
            continue
        if not enabled:
            why = "the playbook is disabled in the routing config"
        elif name == "sales_alert":
            why = (
                "the lead has not become sql"
                if row.qualification != "sql"
                else ("the lead was sql before its last change")
            )
        elif name == "stage_regression":
            why = "the lead's funnel stage has not moved back"
        elif not any(t.type in types for t in history):
            why = f"no {' or '.join(sorted(types))} touch"
        elif not row.email:
            why = "the lead has no email address"
        elif name == "abandoned_cart" and not any(
            isinstance(t.properties.get("cart"), dict) and t.properties["cart"].get("id")
            for t in history
            if t.type in types
        ):
            why = "the cart touches carry no cart id"
        elif name == "abandoned_cart" and any(t.type == "order_completed" for t in history):
            why = "the lead ordered before the cart email was planned"
        else:
            why = "not planned (see the lead's timeline)"
        if suppressed and name != "sales_alert":
            why += "; the lead is unsubscribed from marketing email"
        result.append({"playbook": name, "fired": False, "reason": why})
    return result
