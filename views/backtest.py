"""The backtest: re-score stored histories with a candidate model, route the result with a
candidate routing file (the live one by default) and simulate which playbooks the histories
fire, to see what would change. Writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from services.routing.public import (
    RoutingConfig,
    current_owners,
    facts_of,
    is_regression,
    playbooks_fired,
    route,
)
from services.scoring import repository as repo
from services.scoring.domain.backtest import BacktestReport, LeadOutcome
from services.scoring.domain.model_set import ModelSet
from services.scoring.domain.qualification import assess
from services.scoring.shapes import account_of, lead_snapshot, persona_of, touch_of
from shared.db import as_utc


def backtest(
    session: Session,
    *,
    models: ModelSet,
    routing: RoutingConfig,
    since: datetime | None,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
    candidate_routing: RoutingConfig | None = None,
) -> BacktestReport:
    """Re-score stored histories with `models` (each lead with the one that claims it), each at
    the time its stored state was derived (`scored_at`; `now` for a lead without one), and
    compare with that state; writes nothing.

    Owners: the stored owner now, and the team `candidate_routing` (default: `routing`, the
    live file) gives the re-scored lead. Playbooks: which ones each history fires under
    `routing` with the stored state, and under `candidate_routing` with the candidate's.
    `since` limits it to leads with a touch at or after that time; `progress(done, total)` is
    called as leads are processed.
    """
    candidate_routing = candidate_routing or routing
    ids = repo.lead_ids_active_since(session, since=since)
    owners = current_owners(session, lead_ids=ids)
    report = BacktestReport(
        model_version=",".join(m.version for m in models),
        routing_version=candidate_routing.version if candidate_routing is not routing else None,
    )
    for done, lead_id in enumerate(ids, start=1):
        row = repo.get_lead(session, lead_id=lead_id)
        if row is None:
            continue
        history = [touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
        # At the moment the stored state was derived: like with like, so the live model over
        # the same history shows no change, however much the evidence has decayed since.
        at = as_utc(row.scored_at) or now
        persona = persona_of(row)
        model = models.for_lead(persona)
        result = assess(model=model, persona=persona, touches=history, now=at)
        funnel = result.funnel_stage and result.funnel_stage.value
        owner = owners.get(lead_id)
        account = (
            repo.get_account(session, domain=row.account_domain) if row.account_domain else None
        )
        candidate = lead_snapshot(
            {
                **row._mapping,
                "score": result.score,
                "qualification": result.qualification.value,
                "funnel_stage": funnel,
                "fit_score": result.fit,
                "engagement_score": result.engagement,
                "persona": result.persona,
            },
            account=account_of(row._mapping, account._mapping if account is not None else None),
        )
        candidate_team = route(facts_of(candidate), candidate_routing).team
        types = {t.type for t in history}
        stored_moves = [
            (h.from_stage, h.to_stage)
            for h in repo.stage_history_of(session, lead_id=lead_id)
            if h.track == "funnel"
        ]
        report.add_playbooks(
            current=playbooks_fired(
                config=routing.playbooks,
                touch_types=types,
                has_email=bool(row.email),
                sql=row.qualification == "sql",
                regressed=any(is_regression(a, b) for a, b in stored_moves),
            ),
            candidate=playbooks_fired(
                config=candidate_routing.playbooks,
                touch_types=types,
                has_email=bool(row.email),
                sql=result.qualification.value == "sql",
                regressed=any(
                    is_regression(m.from_stage, m.to_stage)
                    for m in result.transitions
                    if m.track == "funnel"
                ),
            ),
        )
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
