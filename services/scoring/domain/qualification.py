"""Putting BANT and stages together: the overall score and the qualification level."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.scoring.domain.bant import assess_bant
from services.scoring.domain.model import Assessment, Bant, Persona, Touch
from services.scoring.domain.stages import infer_funnel_stage, infer_journey_stage
from shared.domain import Qualification

MODEL_VERSION = "foundation-1"
MQL_SCORE = 40
SQL_SCORE = 70


def overall_score(bant: Bant) -> int:
    """The mean of the four BANT scores, 0-100."""
    return round(sum(d.score for d in bant.dimensions().values()) / 4)


def qualify(*, bant: Bant, score: int, touches: Sequence[Touch]) -> Qualification:
    """Customer after a purchase; sql when three BANT dimensions are met or the score is high."""
    if any(t.type == "order_completed" for t in touches):
        return Qualification.CUSTOMER
    met = sum(d.met for d in bant.dimensions().values())
    if met >= 3 or score >= SQL_SCORE:
        return Qualification.SQL
    if met >= 1 or score >= MQL_SCORE:
        return Qualification.MQL
    return Qualification.UNQUALIFIED


def assess(*, persona: Persona, touches: Sequence[Touch], now: datetime) -> Assessment:
    """Score a lead from its whole history, as it stands at `now`."""
    ordered = sorted(touches, key=lambda t: (t.occurred_at, t.event_id))
    bant = assess_bant(persona=persona, touches=ordered, now=now)
    score = overall_score(bant)
    return Assessment(
        score=score,
        qualification=qualify(bant=bant, score=score, touches=ordered),
        bant=bant,
        funnel_stage=infer_funnel_stage(ordered),
        journey_stage=infer_journey_stage(ordered),
        model_version=MODEL_VERSION,
    )
