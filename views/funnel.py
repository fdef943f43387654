"""Funnel and journey analytics over a cohort of leads, per owning team."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing.public import (
    RoutingConfig,
    current_owners,
    sla_breaches_by_stage,
    step_owners,
)
from services.scoring import repository as repo
from shared.db import as_utc
from shared.domain import FunnelStage, JourneyStage


def funnel_report(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    team: str | None,
    config: RoutingConfig,
) -> dict[str, Any]:
    """Leads created in [since, until): how many are at each funnel and journey stage, how many
    of those that reached each funnel step went on to the next, the median time spent in each
    step, sales' verdicts (accepted, rejected, recycled), the same per owning team, persona and
    scoring model, the journey x funnel matrix, and a scorecard of each funnel step's owner."""
    cohort = repo.leads_created_between(session, since=since, until=until)
    owners = current_owners(session, lead_ids=[r.id for r in cohort])
    if team is not None:
        cohort = [r for r in cohort if owners.get(r.id) is not None and owners[r.id].team == team]
    history = repo.funnel_history_of(
        session, lead_ids=[r.id for r in cohort], tracks=("funnel", "qualification", "sales")
    )
    by_team: dict[str, list[Row]] = {}
    by_persona: dict[str, list[Row]] = {}
    by_model: dict[str, list[Row]] = {}
    for r in cohort:
        owner = owners.get(r.id)
        by_team.setdefault(owner.team if owner else "(unassigned)", []).append(r)
        by_persona.setdefault(r.persona or "(none)", []).append(r)
        by_model.setdefault(r.model_version or "(none)", []).append(r)
    figures = funnel_figures(cohort, history)
    breaches = sla_breaches_by_stage(session, lead_ids=[r.id for r in cohort])
    return {
        "from": since.isoformat(),
        "to": until.isoformat(),
        "team": team,
        **figures,
        "steps": step_scorecard(figures, owners=step_owners(config=config), breaches=breaches),
        "teams": {
            name: funnel_figures(rows, {r.id: history.get(r.id, []) for r in rows})
            for name, rows in sorted(by_team.items())
        },
        "personas": {
            name: funnel_figures(rows, {r.id: history.get(r.id, []) for r in rows})
            for name, rows in sorted(by_persona.items())
        },
        "models": {
            name: funnel_figures(rows, {r.id: history.get(r.id, []) for r in rows})
            for name, rows in sorted(by_model.items())
        },
    }


def step_scorecard(
    figures: dict[str, Any], *, owners: dict[str, str], breaches: dict[str, int]
) -> list[dict[str, Any]]:
    """Per funnel step, in order: its owning team, the leads that reached it, the share that
    went on to the next step, the median time spent in it and the SLAs missed at it (seed: every
    step has an owner, measured on its conversion rate)."""
    onward = {c["from"]: c["rate"] for c in figures["conversion"]}
    reached = {c["from"]: c["reached_from"] for c in figures["conversion"]}
    last = figures["conversion"][-1] if figures["conversion"] else None
    if last is not None:
        reached[last["to"]] = last["reached_to"]
    return [
        {
            "step": step,
            "owner": owners.get(step),
            "reached": reached.get(step, 0),
            "conversion_to_next": onward.get(step),
            "median_seconds_in_step": figures["median_seconds_in_stage"].get(step),
            "sla_breaches": breaches.get(step, 0),
        }
        for step in (s.value for s in FunnelStage)
    ]


def sales_figures(rows: Sequence[Row], history: dict[str, list[Row]]) -> dict[str, Any]:
    """Sales' verdicts on the cohort: leads that reached mql or sql, were accepted (SAL) or
    rejected, are recycled now, the acceptance rate among leads with a verdict, and the median
    time from a lead's first mql/sql to its first acceptance."""
    qualified = accepted = rejected = judged = 0
    to_accept: list[float] = []
    for r in rows:
        moves = history.get(r.id, [])
        judged += any(m.track == "sales" for m in moves)
        first_qualified = next(
            (m.at for m in moves if m.track == "qualification" and m.to_stage in ("mql", "sql")),
            None,
        )
        first_accepted = next(
            (m.at for m in moves if m.track == "sales" and m.to_stage == "accepted"), None
        )
        qualified += first_qualified is not None
        accepted += first_accepted is not None
        rejected += any(m.track == "sales" and m.to_stage == "rejected" for m in moves)
        if first_qualified is not None and first_accepted is not None:
            waited = as_utc(first_accepted) - as_utc(first_qualified)  # type: ignore[operator]
            to_accept.append(max(0.0, waited.total_seconds()))
    return {
        "qualified": qualified,
        "accepted": accepted,
        "rejected": rejected,
        "recycled": sum(1 for r in rows if r.qualification == "recycled"),
        "acceptance_rate": round(accepted / judged, 4) if judged else None,
        "median_seconds_to_accept": statistics.median(to_accept) if to_accept else None,
    }


def funnel_figures(rows: Sequence[Row], history: dict[str, list[Row]]) -> dict[str, Any]:
    """Stage counts, step conversion, median time in stage, the journey x funnel matrix and
    sales' verdicts (`history` holds the funnel, qualification and sales tracks)."""
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
        moves = [m for m in history.get(r.id, []) if m.track == "funnel"]
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
        "sales": sales_figures(rows, history),
    }
