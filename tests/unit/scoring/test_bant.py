"""BANT scoring: decay, seniority, declared answers, firmographics and behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.scoring.domain.bant import (
    FAST_DAYS,
    MET_THRESHOLD,
    SLOW_DAYS,
    assess_bant,
    decayed,
    seniority_points,
)
from services.scoring.domain.model import Bant, Persona, Touch

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _touch(event_id: str, type_: str, *, days_ago: float = 0, **properties: Any) -> Touch:
    return Touch(
        event_id=event_id,
        type=type_,
        occurred_at=NOW - timedelta(days=days_ago),
        properties=properties,
    )


def _bant(*touches: Touch, persona: Persona | None = None) -> Bant:
    return assess_bant(persona=persona or Persona(), touches=touches, now=NOW)


# --- decay ------------------------------------------------------------------------------


def test_decay_halves_points_at_one_half_life() -> None:
    assert decayed(40, at=NOW - timedelta(days=14), now=NOW, half_life_days=14) == 20


def test_decay_quarters_points_at_two_half_lives() -> None:
    assert decayed(40, at=NOW - timedelta(days=28), now=NOW, half_life_days=14) == 10


def test_decay_keeps_full_points_for_a_touch_at_now() -> None:
    assert decayed(35, at=NOW, now=NOW, half_life_days=7) == 35


def test_decay_never_grows_points_for_future_timestamps() -> None:
    assert decayed(40, at=NOW + timedelta(days=30), now=NOW, half_life_days=14) == 40


def test_decay_keeps_full_points_without_a_timestamp() -> None:
    assert decayed(30, at=None, now=NOW, half_life_days=1) == 30


def test_decay_fades_to_zero_after_many_half_lives() -> None:
    assert decayed(3, at=NOW - timedelta(days=70), now=NOW, half_life_days=7) == 0


# --- seniority --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("VP, Ops", (75, "vp")),
        ("Head of IT", (75, "vp")),
        ("CTO", (90, "c_level")),
        ("Chief Technology Officer", (90, "c_level")),
        ("co-founder & ceo", (90, "c_level")),
        ("Director of Marketing", (60, "director")),
        ("Sales Manager", (40, "manager")),
        ("Team Lead", (40, "manager")),
    ],
)
def test_seniority_points_for_titles(title: str, expected: tuple[int, str]) -> None:
    assert seniority_points(title) == expected


@pytest.mark.parametrize("title", ["Intern", "Software Engineer", "", None, "Overhead Analyst"])
def test_seniority_points_is_none_without_a_seniority_word(title: str | None) -> None:
    assert seniority_points(title) is None


def test_seniority_takes_the_highest_level_in_a_combined_title() -> None:
    assert seniority_points("Director and Chief Revenue Officer") == (90, "c_level")


def test_vice_president_is_vp_level_not_c_level() -> None:
    assert seniority_points("Vice President of Sales") == (75, "vp")


@pytest.mark.parametrize("title", ["CTO/Co-founder", "Vice-President Sales", "VP/Ops"])
def test_seniority_points_sees_levels_joined_by_slash_or_hyphen(title: str) -> None:
    assert seniority_points(title) is not None


# --- authority --------------------------------------------------------------------------


def test_senior_title_gives_authority_evidence_and_meets_it() -> None:
    bant = _bant(persona=Persona(job_title="CTO"))
    assert bant.authority.score == 90
    assert bant.authority.met is True
    assert [e.rule for e in bant.authority.evidence] == ["title_c_level"]


def test_declared_decision_maker_adds_authority() -> None:
    bant = _bant(
        _touch("e1", "form_submit", is_decision_maker=True),
        persona=Persona(job_title="Sales Manager"),
    )
    assert bant.authority.score == 80
    assert {e.rule for e in bant.authority.evidence} == {"title_manager", "declared_decision_maker"}


def test_declared_decision_maker_false_is_not_evidence() -> None:
    bant = _bant(_touch("e1", "form_submit", is_decision_maker=False))
    assert bant.authority.score == 0
    assert bant.authority.evidence == ()


# --- budget -----------------------------------------------------------------------------


def test_declared_budget_gives_budget_evidence_naming_the_rule_and_event() -> None:
    bant = _bant(_touch("evt-budget", "form_submit", budget="50k-100k"))
    assert bant.budget.score == 40
    [evidence] = bant.budget.evidence
    assert evidence.rule == "declared_budget"
    assert evidence.event_id == "evt-budget"
    assert evidence.type == "form_submit"
    assert evidence.at == NOW
    assert evidence.points == 40


def test_declared_budget_decays_slowly() -> None:
    bant = _bant(_touch("e1", "form_submit", days_ago=SLOW_DAYS, budget="50k"))
    assert bant.budget.score == 20


def test_newest_declared_budget_answer_is_the_one_used() -> None:
    newest = _touch("new", "form_submit", days_ago=1, budget="100k")
    oldest = _touch("old", "form_submit", days_ago=90, budget="10k")
    bant = _bant(newest, oldest)
    assert [e.event_id for e in bant.budget.evidence] == ["new"]
    assert [e.rule for e in bant.budget.evidence] == ["declared_budget"]


@pytest.mark.parametrize("blank", ["", None, False])
def test_blank_declared_budget_is_not_evidence(blank: object) -> None:
    bant = _bant(_touch("e1", "form_submit", budget=blank))
    assert bant.budget.evidence == ()


def test_company_with_200_employees_adds_budget_points() -> None:
    bant = _bant(persona=Persona(employees=200))
    assert bant.budget.score == 30
    assert [e.rule for e in bant.budget.evidence] == ["company_size"]


def test_company_with_199_employees_adds_no_budget_points() -> None:
    assert _bant(persona=Persona(employees=199)).budget.score == 0


def test_company_with_10m_revenue_adds_budget_points() -> None:
    bant = _bant(persona=Persona(annual_revenue=10_000_000))
    assert bant.budget.score == 30
    assert [e.rule for e in bant.budget.evidence] == ["company_revenue"]


def test_company_just_under_10m_revenue_adds_no_budget_points() -> None:
    assert _bant(persona=Persona(annual_revenue=9_999_999.99)).budget.score == 0


def test_large_company_with_large_revenue_meets_budget() -> None:
    bant = _bant(persona=Persona(employees=5_000, annual_revenue=2e9))
    assert bant.budget.score == 60
    assert bant.budget.met is True


def test_cart_contents_add_budget_evidence_from_the_newest_cart() -> None:
    bant = _bant(
        _touch("c1", "cart_add", days_ago=3, cart={"total": 10}),
        _touch("c2", "cart_add", days_ago=0, cart={"total": 90}),
    )
    [evidence] = bant.budget.evidence
    assert (evidence.rule, evidence.event_id, evidence.points) == ("cart_value", "c2", 20)


# --- need and timing --------------------------------------------------------------------


def test_demo_request_gives_timing_and_need_evidence() -> None:
    bant = _bant(_touch("demo-1", "demo_requested"))
    assert bant.timing.score == 35
    assert bant.need.score == 30
    assert [(e.rule, e.event_id) for e in bant.timing.evidence] == [("demo_requested", "demo-1")]
    assert [(e.rule, e.event_id) for e in bant.need.evidence] == [("demo_requested", "demo-1")]
    assert bant.budget.score == 0
    assert bant.authority.score == 0


def test_declared_timeframe_gives_timing_evidence() -> None:
    bant = _bant(_touch("e1", "form_submit", timeframe="this quarter"))
    assert bant.timing.score == 40
    assert "declared_timeframe" in [e.rule for e in bant.timing.evidence]


def test_unknown_touch_type_scores_nothing() -> None:
    bant = _bant(_touch("e1", "partner.referral"))
    assert all(d.score == 0 and d.evidence == () for d in bant.dimensions().values())


def test_dimension_is_met_exactly_at_the_threshold() -> None:
    # timing: demo_requested 35 + pricing_viewed 15 == 50
    bant = _bant(_touch("d", "demo_requested"), _touch("p", "pricing_viewed"))
    assert bant.timing.score == MET_THRESHOLD
    assert bant.timing.met is True


def test_dimension_is_not_met_one_point_below_the_threshold() -> None:
    # need: demo_requested 30 + form_submit 10 + three page views of 3 == 49
    bant = _bant(
        _touch("d", "demo_requested"),
        _touch("f", "form_submit"),
        *(_touch(f"pv{i}", "page_view") for i in range(3)),
    )
    assert bant.need.score == MET_THRESHOLD - 1
    assert bant.need.met is False


def test_scores_are_capped_at_100() -> None:
    bant = _bant(*(_touch(f"d{i}", "demo_requested") for i in range(5)))
    assert bant.need.score == 100
    assert bant.timing.score == 100
    assert len(bant.need.evidence) == 5


def test_old_page_views_decay_to_nothing_and_are_dropped_from_evidence() -> None:
    bant = _bant(
        _touch("old", "page_view", days_ago=FAST_DAYS * 3),
        _touch("fresh", "page_view", days_ago=0),
    )
    assert bant.need.score == 3
    assert [e.event_id for e in bant.need.evidence] == ["fresh"]


def test_behaviour_fades_while_declared_answers_persist() -> None:
    bant = _bant(
        _touch("d", "demo_requested", days_ago=60),
        _touch("f", "form_submit", days_ago=60, timeframe="next year"),
    )
    timing = {e.rule: e.points for e in bant.timing.evidence}
    assert timing["declared_timeframe"] > timing["demo_requested"]
    assert timing["demo_requested"] == decayed(
        35, at=NOW - timedelta(days=60), now=NOW, half_life_days=FAST_DAYS
    )


def test_no_persona_and_no_touches_scores_zero_everywhere() -> None:
    bant = _bant()
    for dimension in bant.dimensions().values():
        assert dimension.score == 0
        assert dimension.met is False
        assert dimension.evidence == ()


@pytest.mark.parametrize("title", ["Product Owner", "Lead Generation Specialist"])
def test_words_that_only_look_senior_give_no_authority(title: str) -> None:
    assert seniority_points(title) is None
