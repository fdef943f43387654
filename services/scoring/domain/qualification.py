"""Putting BANT and stages together: the overall score and the qualification level."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.scoring.domain.bant import assess_bant, firmographic_matches
from services.scoring.domain.model import Assessment, Bant, Persona, Touch
from services.scoring.domain.scoring_model import Dimension, ScoringModel
from services.scoring.domain.stages import replay_funnel, replay_journey
from shared.domain import FunnelStage, JourneyStage, Qualification


def overall_score(bant: Bant, *, model: ScoringModel) -> int:
    """The weighted mean of the four BANT scores, 0-100."""
    weights = {
        name: model.dimensions.get(name, Dimension()).weight  # type: ignore[call-overload]
        for name in bant.dimensions()
    }
    total = sum(weights.values())
    if total == 0:
        return 0
    return round(sum(d.score * weights[n] for n, d in bant.dimensions().items()) / total)


def qualify(
    *,
    model: ScoringModel,
    bant: Bant,
    score: int,
    persona: Persona,
    touches: Sequence[Touch],
) -> tuple[Qualification, str]:
    """The qualification and the reason for it, in one sentence."""
    q = model.qualification
    settling = [t for t in touches if t.type in (*q.customer_events, *q.disqualify_events)]
    if settling:
        # The newest settling event decides: a lost deal can be won later, and the reverse.
        last = max(settling, key=lambda t: (t.occurred_at, t.event_id))
        if last.type in q.customer_events:
            return Qualification.CUSTOMER, f"customer: {last.type} on {last.occurred_at:%Y-%m-%d}"
        return Qualification.DISQUALIFIED, (
            f"disqualified: {last.type} on {last.occurred_at:%Y-%m-%d}"
        )
    for rule in q.disqualify_rules:
        if firmographic_matches(rule, persona):
            return Qualification.DISQUALIFIED, f"disqualified by rule {rule.name}"
    met = [n for n, d in bant.dimensions().items() if d.met]
    met_text = f"{len(met)} of 4 BANT dimensions met ({', '.join(met) or 'none'})"
    # A dimension count of 0 switches that route off (only the score qualifies).
    if score >= q.sql_score or (q.sql_dimensions_met and len(met) >= q.sql_dimensions_met):
        why = f"score {score} >= {q.sql_score}" if score >= q.sql_score else met_text
        return Qualification.SQL, f"sql: {why}"
    if score >= q.mql_score or (q.mql_dimensions_met and len(met) >= q.mql_dimensions_met):
        why = f"score {score} >= {q.mql_score}" if score >= q.mql_score else met_text
        return Qualification.MQL, f"mql: {why}"
    return Qualification.UNQUALIFIED, (f"unqualified: score {score} < {q.mql_score} and {met_text}")


def assess(
    *, model: ScoringModel, persona: Persona, touches: Sequence[Touch], now: datetime
) -> Assessment:
    """Score a lead from its whole history, as it stands at `now`."""
    ordered = sorted(touches, key=lambda t: (t.occurred_at, t.event_id))
    bant = assess_bant(model=model, persona=persona, touches=ordered, now=now)
    score = overall_score(bant, model=model)
    qualification, reason = qualify(
        model=model, bant=bant, score=score, persona=persona, touches=ordered
    )
    funnel, funnel_moves = replay_funnel(model.stages.funnel, ordered, now=now)
    journey, journey_moves = replay_journey(model.stages.journey, ordered, now=now)
    return Assessment(
        score=score,
        qualification=qualification,
        bant=bant,
        funnel_stage=FunnelStage(funnel) if funnel else None,
        journey_stage=JourneyStage(journey) if journey else None,
        model_version=model.version,
        qualification_reason=reason,
        transitions=tuple(sorted(funnel_moves + journey_moves, key=lambda m: m.at)),
    )
