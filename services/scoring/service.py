"""Scoring's read side and sweeps: the lead and account representations, explanations, reports,
timelines and traces, and the stage-regression re-score. Touches are scored by `batch.py`."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing import public as routing_public
from services.scoring import repository as repo
from services.scoring.accounts_rollup import refresh_account
from services.scoring.domain.explain import explain
from services.scoring.domain.qualification import assess
from services.scoring.domain.scoring_model import ModelError, ScoringModel, parse_model
from services.scoring.handlers import rescore_leads
from services.scoring.shapes import (
    account_of,
    iso,
    lead_representation,
    persona_of,
    touch_of,
)
from shared.config import Settings, read_toml_setting
from shared.db import as_utc
from shared.domain import FunnelStage, JourneyStage

BUNDLED_MODELS = Path(__file__).resolve().parent / "models"


@lru_cache(maxsize=8)
def load_model(spec: str) -> ScoringModel:
    """The scoring model named by a setting: a bundled name (b2b_saas, b2c_ecommerce) or a path
    to a TOML file. Raises ModelError naming the file, the place and the reason."""
    try:
        path, text = read_toml_setting(spec, bundled=BUNDLED_MODELS)
    except OSError as exc:
        raise ModelError(spec, "file", str(exc)) from None
    return parse_model(text, source=str(path))


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
    return rescore_leads(
        session, lead_ids=list(candidates), settings=settings, model=model, now=now
    )


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
        owner = routing_public.current_owners(session, lead_ids=[row.id]).get(row.id)
    account = repo.get_account(session, domain=row.account_domain) if row.account_domain else None
    values = row._mapping
    return lead_representation(
        values,
        identities=[(i.kind, i.value) for i in identities],
        owner=owner,
        account=account_of(values, account._mapping if account is not None else None),
    )


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
        "updated_at": iso(account.updated_at),
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
    history = [touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
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
    owners = routing_public.current_owners(session, lead_ids=ids)
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
    owners = routing_public.current_owners(session, lead_ids=[r.id for r in cohort])
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
    for act in routing_public.actions_of_lead(session, lead_id=lead_id):
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
                "due_at": iso(act.due_at),
                "sent_at": iso(act.sent_at),
            },
        )
    for fb in routing_public.feedback_of(session, lead_id=lead_id):
        add(
            fb.at,
            5,
            str(fb.id),
            {"kind": "feedback", "type": fb.kind, "reason": fb.reason, "by": fb.by},
        )
    for a in routing_public.assignments_of(session, lead_id=lead_id):
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
