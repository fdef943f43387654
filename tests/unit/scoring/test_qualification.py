"""Qualification: the weighted score, the qualification level and reason, and whole assessments."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from services.scoring.domain.model import Bant, Dimension, Persona, Touch
from services.scoring.domain.qualification import assess, overall_score, qualify
from services.scoring.domain.scoring_model import ScoringModel, parse_model
from shared.domain import FunnelStage, JourneyStage, Qualification

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MODELS = Path(__file__).resolve().parents[3] / "services/scoring/models"


def _bundled(name: str) -> ScoringModel:
    path = MODELS / name
    return parse_model(path.read_text(), source=str(path))


B2B = _bundled("b2b_saas.toml")
B2C = _bundled("b2c_ecommerce.toml")


def _model(qualification: str = "", top: str = "", body: str = "") -> ScoringModel:
    text = (
        'version = "q-test-7"\n'
        + dedent(top)
        + "\n[qualification]\nmql_score = 30\nsql_score = 60\n"
        + dedent(qualification)
        + dedent(body)
        + "\n[stages.funnel.signals]\n\n[stages.journey.signals]\n"
    )
    return parse_model(text, source="q.toml")


def _touch(event_id: str, type_: str, *, days_ago: float = 0, **properties: Any) -> Touch:
    return Touch(
        event_id=event_id,
        type=type_,
        occurred_at=NOW - timedelta(days=days_ago),
        properties=properties,
    )


def _bant(budget: int, authority: int, need: int, timing: int, *, threshold: int = 50) -> Bant:
    def dim(score: int) -> Dimension:
        return Dimension(score=score, met=score >= threshold)

    return Bant(budget=dim(budget), authority=dim(authority), need=dim(need), timing=dim(timing))


def _qualify(
    model: ScoringModel,
    bant: Bant | None = None,
    *,
    score: int = 0,
    persona: Persona | None = None,
    touches: tuple[Touch, ...] = (),
) -> tuple[Qualification, str]:
    return qualify(
        model=model,
        bant=bant or _bant(0, 0, 0, 0),
        score=score,
        persona=persona or Persona(),
        touches=touches,
    )


# --- settling events ----------------------------------------------------------------------


@pytest.mark.parametrize("event", ["order_completed", "closed_won"])
def test_customer_event_makes_a_customer_whatever_the_score(event: str) -> None:
    level, reason = _qualify(B2B, touches=(_touch("o", event, days_ago=2),))
    assert level == Qualification.CUSTOMER
    assert reason.startswith("customer: ")
    assert event in reason
    assert (NOW - timedelta(days=2)).strftime("%Y-%m-%d") in reason


def test_customer_events_come_from_the_model() -> None:
    model = _model(qualification='customer_events = ["contract_signed"]\n')
    assert _qualify(model, touches=(_touch("c", "contract_signed"),))[0] == Qualification.CUSTOMER
    assert _qualify(model, touches=(_touch("o", "order_completed"),))[0] != (Qualification.CUSTOMER)


@pytest.mark.parametrize("event", ["disqualified", "sales_disqualified", "closed_lost"])
def test_disqualify_event_disqualifies_even_a_high_score(event: str) -> None:
    level, reason = _qualify(B2B, _bant(90, 90, 90, 90), score=90, touches=(_touch("d", event),))
    assert level == Qualification.DISQUALIFIED
    assert reason.startswith("disqualified: ")
    assert event in reason


def test_won_after_lost_is_a_customer() -> None:
    touches = (_touch("won", "closed_won", days_ago=1), _touch("lost", "closed_lost", days_ago=5))
    assert _qualify(B2B, touches=touches)[0] == Qualification.CUSTOMER


def test_lost_after_won_is_disqualified() -> None:
    touches = (_touch("won", "closed_won", days_ago=5), _touch("lost", "closed_lost", days_ago=1))
    assert _qualify(B2B, touches=touches)[0] == Qualification.DISQUALIFIED


COMPETITORS = """
[[qualification.disqualify_rules]]
name = "competitor"
dimension = "budget"
field = "company_domain"
values = ["rival.io"]
points = 0
"""


def test_disqualify_rule_matches_the_persona() -> None:
    model = _model(qualification=COMPETITORS)
    level, reason = _qualify(
        model, _bant(90, 90, 90, 90), score=90, persona=Persona(company_domain="Rival.io")
    )
    assert level == Qualification.DISQUALIFIED
    assert reason == "disqualified by rule competitor"


def test_disqualify_rule_leaves_other_personas_alone() -> None:
    model = _model(qualification=COMPETITORS)
    level, _ = _qualify(model, score=90, persona=Persona(company_domain="customer.io"))
    assert level == Qualification.SQL


def test_customer_event_outranks_a_disqualify_rule() -> None:
    model = _model(qualification=COMPETITORS)
    level, _ = _qualify(
        model, persona=Persona(company_domain="rival.io"), touches=(_touch("o", "closed_won"),)
    )
    assert level == Qualification.CUSTOMER


# --- sql, mql, unqualified ----------------------------------------------------------------


def test_sql_by_score_at_the_threshold_names_the_threshold() -> None:
    sql = B2B.qualification.sql_score
    level, reason = _qualify(B2B, score=sql)
    assert level == Qualification.SQL
    assert reason == f"sql: score {sql} >= {sql}"


def test_one_below_the_sql_score_is_not_sql_by_score() -> None:
    level, _ = _qualify(B2B, score=B2B.qualification.sql_score - 1)
    assert level == Qualification.MQL


def test_sql_by_dimensions_met_names_them() -> None:
    level, reason = _qualify(B2B, _bant(60, 90, 10, 50), score=20)
    assert level == Qualification.SQL
    assert reason == "sql: 3 of 4 BANT dimensions met (budget, authority, timing)"


def test_two_dimensions_met_is_not_sql_in_b2b() -> None:
    level, reason = _qualify(B2B, _bant(60, 90, 10, 10), score=20)
    assert level == Qualification.MQL
    assert "2 of 4 BANT dimensions met (budget, authority)" in reason


def test_mql_by_score_names_the_threshold() -> None:
    mql = B2B.qualification.mql_score
    level, reason = _qualify(B2B, score=mql)
    assert level == Qualification.MQL
    assert reason == f"mql: score {mql} >= {mql}"


def test_mql_by_one_dimension_met() -> None:
    level, reason = _qualify(B2B, _bant(0, 90, 0, 0), score=10)
    assert level == Qualification.MQL
    assert reason == "mql: 1 of 4 BANT dimensions met (authority)"


def test_unqualified_names_the_mql_threshold_and_no_dimensions() -> None:
    mql = B2B.qualification.mql_score
    level, reason = _qualify(B2B, _bant(10, 10, 10, 10), score=mql - 1)
    assert level == Qualification.UNQUALIFIED
    assert reason == f"unqualified: score {mql - 1} < {mql} and 0 of 4 BANT dimensions met (none)"


def test_mql_dimensions_met_zero_means_dimensions_never_make_an_mql() -> None:
    model = _model(qualification="mql_dimensions_met = 0\n")
    assert _qualify(model, _bant(0, 90, 0, 0), score=10)[0] == Qualification.UNQUALIFIED


def test_sql_dimensions_met_zero_means_dimensions_never_make_an_sql() -> None:
    # Like mql_dimensions_met = 0: a zero count switches the dimension route off, rather than
    # making every lead (even one with score 0 and nothing met) an SQL.
    model = _model(qualification="sql_dimensions_met = 0\nmql_dimensions_met = 0\n")
    assert _qualify(model, _bant(0, 0, 0, 0), score=0)[0] == Qualification.UNQUALIFIED


# --- the overall score --------------------------------------------------------------------


def _weights(budget: float, authority: float, need: float, timing: float) -> str:
    return "".join(
        f"\n[dimensions.{name}]\nweight = {w}\n"
        for name, w in (
            ("budget", budget),
            ("authority", authority),
            ("need", need),
            ("timing", timing),
        )
    )


def test_overall_score_is_the_plain_mean_with_equal_weights() -> None:
    assert overall_score(_bant(100, 50, 30, 0), model=B2B) == 45


def test_overall_score_uses_the_weights_from_the_model() -> None:
    model = _model(top=_weights(3, 1, 1, 0))
    assert overall_score(_bant(100, 0, 0, 100), model=model) == 60


def test_zero_weight_dimension_does_not_count() -> None:
    model = _model(top=_weights(1, 0, 1, 1))
    assert overall_score(_bant(60, 100, 60, 60), model=model) == 60


def test_all_zero_weights_give_score_zero() -> None:
    model = _model(top=_weights(0, 0, 0, 0))
    assert overall_score(_bant(100, 100, 100, 100), model=model) == 0


def test_overall_score_with_only_some_dimensions_declared_uses_default_weights() -> None:
    # Undeclared dimensions keep weight 1.0, as met_threshold keeps its default.
    model = _model(top="\n[dimensions.timing]\nweight = 2\n")
    assert overall_score(_bant(50, 50, 50, 100), model=model) == 70


def test_b2c_weights_favour_timing() -> None:
    # budget 1, authority 0.5, need 1, timing 1.5: timing-only 100 is 100*1.5/4.
    assert overall_score(_bant(0, 0, 0, 100), model=B2C) == round(150 / 4)


# --- whole assessments --------------------------------------------------------------------


def test_assessment_records_the_model_version() -> None:
    model = _model()
    assert assess(model=model, persona=Persona(), touches=[], now=NOW).model_version == "q-test-7"
    assert assess(model=B2B, persona=Persona(), touches=[], now=NOW).model_version == B2B.version


def test_assessment_with_no_history_is_unqualified_without_stages() -> None:
    result = assess(model=B2B, persona=Persona(), touches=[], now=NOW)
    assert result.score == 0
    assert result.qualification == Qualification.UNQUALIFIED
    assert result.funnel_stage is None and result.journey_stage is None
    assert result.transitions == ()


def test_assessment_score_and_reason_agree_with_its_bant() -> None:
    touches = [
        _touch("f", "form_submit", days_ago=2, budget="100k+", timeframe="this quarter"),
        _touch("d", "demo_requested", days_ago=1),
    ]
    persona = Persona(job_title="VP Engineering", employees=1200)
    result = assess(model=B2B, persona=persona, touches=touches, now=NOW)
    assert result.score == overall_score(result.bant, model=B2B)
    assert (result.qualification, result.qualification_reason) == qualify(
        model=B2B, bant=result.bant, score=result.score, persona=persona, touches=touches
    )
    assert result.qualification == Qualification.SQL
    assert result.funnel_stage == FunnelStage.INTENT


def test_assessment_transitions_are_in_time_order_across_both_tracks() -> None:
    touches = [
        _touch("a", "trial_started", days_ago=1),
        _touch("b", "content_download", days_ago=5),
        _touch("c", "pricing_viewed", days_ago=3),
    ]
    result = assess(model=B2B, persona=Persona(), touches=touches, now=NOW)
    times = [m.at for m in result.transitions]
    assert times == sorted(times)
    assert {m.track for m in result.transitions} == {"funnel", "journey"}


def test_assessment_is_the_same_whatever_order_the_touches_arrive_in() -> None:
    touches = [
        _touch("a", "content_download", days_ago=40, topic="problem"),
        _touch("b", "pricing_viewed", days_ago=35),
        _touch("c", "form_submit", days_ago=20, budget="50-100k"),
        _touch("d", "trial_started", days_ago=10),
        _touch("e", "committee_rejected", days_ago=2),
    ]
    shuffled = touches[:]
    random.Random(3).shuffle(shuffled)
    persona = Persona(job_title="Director of IT")
    in_order = assess(model=B2B, persona=persona, touches=touches, now=NOW)
    assert assess(model=B2B, persona=persona, touches=shuffled, now=NOW) == in_order
    assert assess(model=B2B, persona=persona, touches=touches[::-1], now=NOW) == in_order


# --- domain.md scenarios (bundled models) -------------------------------------------------


def test_scenario_buyer_with_intent_still_researching_the_problem() -> None:
    touches = [
        _touch("price", "pricing_viewed", days_ago=2),
        _touch("paper", "content_download", days_ago=1, topic="problem"),
    ]
    result = assess(model=B2B, persona=Persona(), touches=touches, now=NOW)
    assert result.funnel_stage == FunnelStage.INTENT
    assert result.journey_stage == JourneyStage.PROBLEM_IDENTIFICATION
    journey = [m for m in result.transitions if m.track == "journey"]
    assert journey[-1].cause_event_id == "paper"


def test_scenario_committee_member_evaluates_then_disqualifies_in_consensus() -> None:
    touches = [
        _touch("trial", "trial_started", days_ago=10),
        _touch("review", "committee_review", days_ago=5),
        _touch("reject", "committee_rejected", days_ago=1),
    ]
    result = assess(model=B2B, persona=Persona(), touches=touches, now=NOW)
    assert result.funnel_stage == FunnelStage.CONSIDERATION
    assert result.journey_stage == JourneyStage.REQUIREMENTS_BUILDING
    funnel = [m for m in result.transitions if m.track == "funnel"]
    journey = [m for m in result.transitions if m.track == "journey"]
    assert [(m.from_stage, m.to_stage) for m in funnel] == [
        (None, "evaluation"),
        ("evaluation", "consideration"),
    ]
    assert ("requirements_building", "consensus_creation") in [
        (m.from_stage, m.to_stage) for m in journey
    ]
    assert funnel[-1].cause_event_id == journey[-1].cause_event_id == "reject"


def test_scenario_cart_abandoner_has_timing_and_budget_met() -> None:
    touches = [
        _touch("cart", "cart_add", days_ago=0.2, cart={"value": 180.0}),
        _touch("checkout", "checkout_started", days_ago=0.1, cart={"value": 180.0}),
    ]
    result = assess(model=B2C, persona=Persona(), touches=touches, now=NOW)
    assert result.bant.timing.met
    assert result.bant.budget.met
    assert {e.rule for e in result.bant.budget.evidence} >= {"cart_value_high", "cart_value"}
    assert result.funnel_stage == FunnelStage.EVALUATION
    assert result.qualification in (Qualification.MQL, Qualification.SQL)
    assert result.model_version == B2C.version


def test_scenario_cart_abandoner_with_a_cart_add_only_is_at_intent() -> None:
    touches = [_touch("cart", "cart_add", days_ago=0.1, cart={"value": 180.0})]
    result = assess(model=B2C, persona=Persona(), touches=touches, now=NOW)
    assert result.funnel_stage == FunnelStage.INTENT
    assert result.bant.budget.met


def test_scenario_cart_abandoner_cools_off_after_two_weeks() -> None:
    touches = [_touch("cart", "cart_add", days_ago=20, cart={"value": 180.0})]
    result = assess(model=B2C, persona=Persona(), touches=touches, now=NOW)
    assert result.funnel_stage == FunnelStage.CONSIDERATION
    assert not result.bant.timing.met
