"""Scoring's data shapes: a stored touch as the domain sees it, persona and BANT to and from
their stored form, the lead representation sales tools read, and the deterministic id of the
lead change a touch causes. Pure: no queries here."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.scoring.domain.model import (
    Assessment,
    Bant,
    Dimension,
    Evidence,
    Persona,
    Touch,
    Transition,
)
from shared.db import as_utc
from shared.events import (
    MAX_TRAITS,
    AccountSnapshot,
    CompanySnapshot,
    LeadSnapshot,
    TouchEnvelope,
)

_PERSONA_FIELDS = ("first_name", "last_name", "job_title", "phone")
_COMPANY_FIELDS = {
    "name": "company_name",
    "domain": "company_domain",
    "industry": "industry",
    "employees": "employees",
    "annual_revenue": "annual_revenue",
    "country": "country",
}


def lead_change_id(cause_event_id: str) -> str:
    """A deterministic id for the lead change a touch causes, so a re-publish deduplicates."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"leadflow:lead-change:{cause_event_id}"))


def persona_values(
    envelope: TouchEnvelope, *, row: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Persona columns the event states (it never blanks what an earlier event said); its
    traits merged into those of the lead's `row` (`merge_traits`): a trait it states replaces
    the stored one, unless the event is older than the lead's newest touch."""
    lead = envelope.lead
    values = {f: getattr(lead, f) for f in _PERSONA_FIELDS if getattr(lead, f)}
    if lead.traits:
        newest = (row or {}).get("last_touch_at")
        late = newest is not None and envelope.occurred_at < newest
        stored = (row or {}).get("traits")
        values["traits"] = merge_traits(stored, lead.traits, keep_stored=late)
    if lead.company is not None:
        for field, column in _COMPANY_FIELDS.items():
            value = getattr(lead.company, field)
            if value is not None:
                values[column] = value
    return values


def merge_traits(
    stored: Mapping[str, Any] | None, new: Mapping[str, Any], *, keep_stored: bool = False
) -> dict[str, Any]:
    """The lead's traits after a touch: each trait the touch states replaces the stored one
    (unless `keep_stored`: a late touch's values are older than the stored ones); a trait the
    lead does not have yet is added while it has fewer than MAX_TRAITS."""
    merged = dict(stored or {})
    for key, value in new.items():
        if (key in merged and not keep_stored) or (key not in merged and len(merged) < MAX_TRAITS):
            merged[key] = value
    return merged


def touch_of(row: Any) -> Touch:
    """A stored touch row as the domain's Touch."""
    return Touch(
        event_id=row.event_id,
        type=row.type,
        occurred_at=as_utc(row.occurred_at),  # type: ignore[arg-type]
        source=row.source,
        properties=row.properties or {},
    )


def persona_of(values: Any) -> Persona:
    """The persona of a lead row (or a mapping with the same keys)."""
    get = values.get if isinstance(values, Mapping) else lambda k: getattr(values, k, None)
    return Persona(
        job_title=get("job_title"),
        employees=get("employees"),
        annual_revenue=get("annual_revenue"),
        industry=get("industry"),
        country=get("country"),
        company_domain=get("company_domain"),
        email_domain=_domain_of(get("email")),
    )


def _domain_of(email: Any) -> str | None:
    return email.rpartition("@")[2] or None if isinstance(email, str) and "@" in email else None


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


def iso(value: datetime | None) -> str | None:
    """A time as ISO 8601 in UTC, or None."""
    value = as_utc(value)
    return value.isoformat() if value else None


def account_of(
    values: Mapping[str, Any], account: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The lead's account and its place in the buying committee (`account`: the account's
    columns, or None), if the lead has one."""
    domain = values.get("account_domain")
    if not domain:
        return None
    members = account["members"] if account is not None else []
    role = next((m for m in members if m["lead_id"] == values["id"]), None)
    return {
        "domain": domain,
        "name": account["name"] if account is not None else values.get("company_name"),
        "role": role["involvement"] if role else None,
        "function": role["function"] if role else None,
    }


def lead_snapshot(values: Mapping[str, Any], *, account: dict[str, Any] | None) -> LeadSnapshot:
    """What scoring tells routing of a lead (shared.events.LeadSnapshot), from the lead's
    columns and `account_of`'s answer."""
    return LeadSnapshot(
        id=values["id"],
        email=values.get("email"),
        first_name=values.get("first_name"),
        last_name=values.get("last_name"),
        job_title=values.get("job_title"),
        phone=values.get("phone"),
        account=AccountSnapshot(**account) if account else None,
        company=CompanySnapshot(
            name=values.get("company_name"),
            domain=values.get("company_domain"),
            industry=values.get("industry"),
            employees=values.get("employees"),
            annual_revenue=values.get("annual_revenue"),
            country=values.get("country"),
        ),
        score=values["score"],
        fit_score=values.get("fit_score") or 0,
        engagement_score=values.get("engagement_score") or 0,
        persona=values.get("persona"),
        qualification=values["qualification"],
        funnel_stage=values.get("funnel_stage"),
        journey_stage=values.get("journey_stage"),
        bant=values["bant"],
        model_version=values["model_version"],
        qualification_reason=values.get("qualification_reason"),
    )


def lead_representation(
    values: Mapping[str, Any],
    *,
    identities: Sequence[tuple[str, str]],
    owner: Any,
    account: dict[str, Any] | None,
) -> dict[str, Any]:
    """The lead representation sales tools read (design.md): the lead's snapshot plus its
    (kind, value) identities, its owner row (or None) and its timestamps."""
    view = lead_snapshot(values, account=account).model_dump()
    return {
        "id": view.pop("id"),
        "email": view.pop("email"),
        "anonymous_ids": [v for k, v in identities if k == "anonymous_id"],
        "user_ids": [v for k, v in identities if k == "user_id"],
        **view,
        "traits": values.get("traits") or {},
        "owner": {"team": owner.team, "member": owner.member} if owner else None,
        "last_touch_at": iso(values.get("last_touch_at")),
        "created_at": iso(values.get("created_at")),
        "updated_at": iso(values.get("updated_at")),
    }


def stage_row(lead_id: str, move: Transition) -> dict[str, Any]:
    """A stage move as a `stage_transitions` row."""
    return {
        "lead_id": lead_id,
        "track": move.track,
        "from_stage": move.from_stage,
        "to_stage": move.to_stage,
        "at": move.at,
        "cause_event_id": move.cause_event_id,
        "rule": move.rule,
        "seconds_in_previous": move.seconds_in_previous,
    }


def evidence_then_and_now(stored: Assessment, current: Assessment) -> dict[str, list[Any]]:
    """Each BANT dimension's evidence as stored: the points its rule gave, its half-life, its
    points when the score was stored and now (0 once it has decayed away)."""
    now_points = {
        (name, e.rule, e.event_id): e.points
        for name, dim in current.bant.dimensions().items()
        for e in dim.evidence
    }
    return {
        name: [
            {
                "event_id": e.event_id,
                "type": e.type,
                "at": e.at.isoformat() if e.at else None,
                "rule": e.rule,
                "original_points": e.original_points,
                "half_life_days": e.half_life_days,
                "points": e.points,
                "points_now": now_points.get((name, e.rule, e.event_id), 0),
            }
            for e in dim.evidence
        ]
        for name, dim in stored.bant.dimensions().items()
    }
