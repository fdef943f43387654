"""The account roll-up: each changed account's buying committee and BANT re-assessed from its
members, once per batch, with three set-based reads (members, their recent activity summed up
by the database, overrides) for all the batch's accounts."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.scoring import bulk
from services.scoring.domain import accounts as committee
from services.scoring.domain.model import Bant
from services.scoring.domain.scoring_model import DIMENSIONS, ScoringModel
from services.scoring.domain.titles import normalize_title
from services.scoring.shapes import bant_from_json, bant_json
from shared.db import as_utc
from shared.domain import FunnelStage, JourneyStage

# Members' BANT, parsed, by lead id with the `updated_at` it was stored with: an account's
# roll-up reads every member, and most did not change since the last one.
_BANTS: OrderedDict[str, tuple[datetime, Bant]] = OrderedDict()
_BANTS_MAX = 200_000


def remember_bant(*, lead_id: str, updated_at: datetime, bant: Bant) -> None:
    """Keep a lead's BANT as just stored, for the next roll-ups of its account."""
    _BANTS[lead_id] = (updated_at, bant)
    _BANTS.move_to_end(lead_id)
    while len(_BANTS) > _BANTS_MAX:
        _BANTS.popitem(last=False)


def _bants(session: Session, members: Sequence[Row]) -> dict[str, Bant]:
    """Every member's BANT: from the cache when it is current, else read and parsed."""
    found: dict[str, Bant] = {}
    missing = []
    for row in members:
        cached = _BANTS.get(row.id)
        if cached is not None and cached[0] == as_utc(row.updated_at):
            found[row.id] = cached[1]
        else:
            missing.append(row.id)
    for lead_id, (raw, updated_at) in bulk.bant_of(session, lead_ids=missing).items():
        found[lead_id] = bant_from_json(raw or {})
        remember_bant(lead_id=lead_id, updated_at=as_utc(updated_at), bant=found[lead_id])  # type: ignore[arg-type]
    return found


def _member(row: Row, bant: Bant, activity: Row | None, override: Row | None) -> committee.Member:
    last = as_utc(activity.last_at) if activity is not None else None
    return committee.Member(
        lead_id=row.id,
        title=normalize_title(row.job_title),
        bant=bant,
        funnel_stage=FunnelStage(row.funnel_stage) if row.funnel_stage else None,
        journey_stage=JourneyStage(row.journey_stage) if row.journey_stage else None,
        declared_decision_maker=bool(activity is not None and activity.declared_dm),
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
        activity=committee.Activity(
            recent_count=activity.count if activity is not None else 0,
            recent_last_at=last,
            last_at=last,
            last_rejection_at=(
                as_utc(activity.last_rejection_at) if activity is not None else None
            ),
        ),
    )


def refresh_accounts(
    session: Session, *, domains: Sequence[str], model: ScoringModel, now: datetime
) -> dict[str, dict[str, Any]]:
    """Re-assess these accounts from their members with the model's account rules and store
    them (an account left without members is forgotten), each member's involvement kept per
    journey stage; returns the stored columns of each account that has members."""
    if not domains:
        return {}
    engaged_days = model.accounts.engaged_days
    thresholds = {name: model.met_threshold(name) for name in DIMENSIONS}
    since = now - timedelta(days=engaged_days)
    members: dict[str, list[Row]] = defaultdict(list)
    rows = bulk.members_of(session, domains=domains)
    for row in rows:
        members[row.account_domain].append(row)
    bants = _bants(session, rows)
    activity = bulk.activity_of_members(session, domains=domains, since=since, now=now)
    overrides = bulk.overrides_in(session, domains=domains)
    previous = bulk.stage_involvement_of(session, domains=domains)
    stored: list[dict[str, Any]] = []
    gone: list[str] = []
    for domain in domains:
        rows = members.get(domain, [])
        if not rows:
            gone.append(domain)
            continue
        result = committee.assess_account(
            domain=domain,
            members=[
                _member(r, bants[r.id], activity.get(r.id), overrides.get(r.id)) for r in rows
            ],
            now=now,
            engaged_days=engaged_days,
            met_thresholds=thresholds,
        )
        names = [r.company_name for r in rows if r.company_name]
        stored.append(
            {
                "domain": domain,
                "name": max(set(names), key=names.count) if names else None,
                "member_count": len(rows),
                "members": [
                    {
                        "lead_id": r.lead_id,
                        "involvement": r.involvement.value,
                        "function": r.function.value,
                        "reviewer_area": r.reviewer_area,
                        "decision_maker": r.decision_maker,
                        "overridden": r.overridden,
                        "reasons": list(r.reasons),
                        "involvement_by_stage": committee.involvement_by_stage(
                            previous.get(domain, {}).get(r.lead_id, {}),
                            stage=result.journey_stage,
                            role=r,
                        ),
                    }
                    for r in result.members
                ],
                "bant": bant_json(result.bant),
                "funnel_stage": result.funnel_stage and result.funnel_stage.value,
                "journey_stage": result.journey_stage and result.journey_stage.value,
                "decision_maker_engaged": result.decision_maker_engaged,
                "updated_at": now,
            }
        )
    bulk.replace_accounts(session, rows=stored, gone=gone)
    return {values["domain"]: values for values in stored}


def refresh_account(
    session: Session, *, domain: str, model: ScoringModel, now: datetime
) -> dict[str, Any] | None:
    """Re-assess one account's buying committee and BANT from its members; returns its view."""
    return refresh_accounts(session, domains=[domain], model=model, now=now).get(domain)
