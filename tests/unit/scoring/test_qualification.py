"""Qualification: overall score, the qualification level and the assembled assessment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.domain.model import Bant, Dimension, Persona, Touch
from services.scoring.domain.qualification import (
    MODEL_VERSION,
    assess,
    overall_score,
    qualify,
)
from shared.domain import FunnelStage, JourneyStage, Qualification

NOW = datetime(2026, 11, 1, tzinfo=UTC)

# CTO (authority 90), big company (budget 60), demo + pricing (timing 50): three met, need 30.
SQL_PERSONA = Persona(job_title="CTO", employees=250, annual_revenue=20_000_000)


def _touch(event_id: str, type_: str, *, days_ago: float = 0, **properties: object) -> Touch:
    return Touch(
        event_id=event_id,
        type=type_,
        occurred_at=NOW - timedelta(days=days_ago),
        properties=properties,
    )


def _dim(score: int) -> Dimension:
    return Dimension(score=score, met=score >= 50)


def _bant(budget: int, authority: int, need: int, timing: int) -> Bant:
    return Bant(
        budget=_dim(budget), authority=_dim(authority), need=_dim(need), timing=_dim(timing)
    )


def test_order_completed_makes_a_customer() -> None:
    result = assess(persona=Persona(), touches=[_touch("o", "order_completed")], now=NOW)
    assert result.qualification == Qualification.CUSTOMER
    assert result.funnel_stage == FunnelStage.PURCHASE


def test_order_completed_wins_over_a_low_score() -> None:
    assert qualify(bant=_bant(0, 0, 0, 0), score=0, touches=[_touch("o", "order_completed")]) == (
        Qualification.CUSTOMER
    )


def test_three_bant_dimensions_met_make_an_sql() -> None:
    touches = [_touch("d", "demo_requested"), _touch("p", "pricing_viewed")]
    result = assess(persona=SQL_PERSONA, touches=touches, now=NOW)
    met = {name for name, d in result.bant.dimensions().items() if d.met}
    assert met == {"budget", "authority", "timing"}
    assert result.score < 70
    assert result.qualification == Qualification.SQL


def test_one_bant_dimension_met_makes_an_mql() -> None:
    result = assess(persona=Persona(job_title="CTO"), touches=[], now=NOW)
    assert [name for name, d in result.bant.dimensions().items() if d.met] == ["authority"]
    assert result.qualification == Qualification.MQL


def test_nothing_met_is_unqualified() -> None:
    result = assess(persona=Persona(), touches=[_touch("pv", "page_view")], now=NOW)
    assert result.qualification == Qualification.UNQUALIFIED


def test_no_history_at_all_is_unqualified_with_no_stages() -> None:
    result = assess(persona=Persona(), touches=[], now=NOW)
    assert result.score == 0
    assert result.qualification == Qualification.UNQUALIFIED
    assert result.funnel_stage is None
    assert result.journey_stage is None


@pytest.mark.parametrize(
    ("bant", "expected"),
    [
        (_bant(100, 100, 49, 49), Qualification.SQL),  # two met, but score 75 >= 70
        (_bant(49, 49, 49, 49), Qualification.MQL),  # none met, but score 49 >= 40
        (_bant(39, 39, 39, 39), Qualification.UNQUALIFIED),
        (_bant(60, 60, 0, 0), Qualification.MQL),  # two met, score 30
    ],
)
def test_qualify_also_uses_the_overall_score(bant: Bant, expected: Qualification) -> None:
    assert qualify(bant=bant, score=overall_score(bant), touches=[]) == expected


def test_overall_score_is_the_rounded_mean_of_the_four_dimensions() -> None:
    assert overall_score(_bant(100, 50, 30, 0)) == 45
    assert overall_score(_bant(100, 100, 100, 100)) == 100


def test_assess_sorts_out_of_order_touches_to_match_the_in_order_result() -> None:
    in_order = [
        _touch("a", "content_download", days_ago=10, budget="20k"),
        _touch("b", "pricing_viewed", days_ago=5),
        _touch("c", "demo_requested", days_ago=3, timeframe="Q1"),
        _touch("d", "webinar_attended", days_ago=1, budget="50k"),
    ]
    shuffled = [in_order[2], in_order[0], in_order[3], in_order[1]]

    expected = assess(persona=SQL_PERSONA, touches=in_order, now=NOW)
    actual = assess(persona=SQL_PERSONA, touches=shuffled, now=NOW)

    assert actual == expected
    assert actual.journey_stage == JourneyStage.SOLUTION_EXPLORATION
    assert [e.event_id for e in actual.bant.budget.evidence if e.rule == "declared_budget"] == ["d"]


def test_assessment_records_the_model_version() -> None:
    result = assess(persona=Persona(), touches=[], now=NOW)
    assert result.model_version == MODEL_VERSION == "foundation-1"
