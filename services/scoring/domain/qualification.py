"""Putting BANT and stages together: the overall score and the qualification level."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

from services.scoring.domain.bant import firmographic_matches
from services.scoring.domain.model import (
    Assessment,
    Bant,
    Persona,
    Touch,
    Transition,
)
from services.scoring.domain.scoring_model import DEFAULT_DIMENSION, DimensionName, ScoringModel
from shared.domain import Qualification


def overall_score(bant: Bant, *, model: ScoringModel) -> int:
    """The weighted mean of the four BANT scores, 0-100."""
    weights = {
        name: model.dimensions.get(cast(DimensionName, name), DEFAULT_DIMENSION).weight
        for name in bant.dimensions()  # the four DimensionNames
    }
    total = sum(weights.values())
    if total == 0:
        return 0
    return round(sum(d.score * weights[n] for n, d in bant.dimensions().items()) / total)


# Evidence about who the lead is (the rest is behaviour): title, company facts, form answers.
FIT_EVIDENCE = frozenset({"persona", "firmographics"})


def fit_and_engagement(bant: Bant, *, model: ScoringModel) -> tuple[int, int]:
    """The fit and engagement scores, 0-100: each category's points over the whole BANT
    evidence (fit: title, firmographics, declared answers; engagement: the rest, behaviour),
    `full_points` making 100."""
    declared = {d.name for d in model.declared}
    fit = engagement = 0
    for dimension in bant.dimensions().values():
        for e in dimension.evidence:
            if e.type in FIT_EVIDENCE or e.rule in declared:
                fit += e.points
            else:
                engagement += e.points

    def scaled(points: int, full: int) -> int:
        return max(0, min(100, round(100 * points / full)))

    return (
        scaled(fit, model.fit.full_points),
        scaled(engagement, model.engagement.full_points),
    )


def qualify(
    *,
    model: ScoringModel,
    bant: Bant,
    score: int,
    persona: Persona,
    touches: Sequence[Touch],
    recycled: Touch | None = None,
    now: datetime | None = None,
) -> tuple[Qualification, str]:
    """The qualification and the reason for it, in one sentence. `touches` are the settling
    ones; `recycled` is the sales rejection no requalify event followed (its `reason` in its
    properties), which holds the lead at "recycled" for `recycle_days` after it (to `now`)."""
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
    if recycled is not None and (
        now is None or (now - recycled.occurred_at).total_seconds() < q.recycle_days * 86400
    ):
        reason = recycled.properties.get("reason")
        return Qualification.RECYCLED, (
            f"recycled to nurture: {recycled.type} on {recycled.occurred_at:%Y-%m-%d}"
            + (f" ({reason})" if reason else "")
        )
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


def in_history_order(moves: Iterable[Transition]) -> tuple[Transition, ...]:
    """Stage moves in time order, the funnel's before the journey's at the same time."""
    return tuple(sorted(moves, key=lambda m: (m.at, m.track != "funnel")))


def assess(
    *, model: ScoringModel, persona: Persona, touches: Sequence[Touch], now: datetime
) -> Assessment:
    """Score a lead from its whole history, as it stands at `now`: the touches folded in time
    order from an empty state, then settled at `now`."""
    from services.scoring.domain import folding  # it builds on this module's scoring

    state, moves = folding.replay(model=model, touches=touches)
    settled = folding.settle(state, model=model, persona=persona, now=now)
    return replace(settled.assessment, transitions=in_history_order([*moves, *settled.pending]))
