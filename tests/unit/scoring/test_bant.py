"""BANT scoring driven by the model: decay, behaviour, declared, firmographic and title rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from services.scoring.domain.bant import (
    assess_bant,
    decayed,
    firmographic_matches,
    rule_matches,
)
from services.scoring.domain.model import Bant, Persona, Touch
from services.scoring.domain.scoring_model import ScoringModel, parse_model

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MODELS = Path(__file__).resolve().parents[3] / "services/scoring/models"


def _bundled(name: str) -> ScoringModel:
    path = MODELS / name
    return parse_model(path.read_text(), source=str(path))


def _model(body: str = "") -> ScoringModel:
    """A tiny model: thresholds, no stage signals, and only the rules in `body`."""
    text = dedent(
        """\
        version = "test-1"

        [qualification]
        mql_score = 30
        sql_score = 60

        [stages.funnel.signals]

        [stages.journey.signals]

        """
    )
    return parse_model(text + dedent(body), source="test.toml")


def _touch(event_id: str, type_: str, *, days_ago: float = 0, **properties: Any) -> Touch:
    return Touch(
        event_id=event_id,
        type=type_,
        occurred_at=NOW - timedelta(days=days_ago),
        properties=properties,
    )


def _bant(model: ScoringModel, *touches: Touch, persona: Persona | None = None) -> Bant:
    return assess_bant(model=model, persona=persona or Persona(), touches=touches, now=NOW)


def _rule(
    *,
    name: str = "r",
    dimension: str = "need",
    events: str = '["page_view"]',
    points: int = 20,
    half_life: float = 10,
    extra: str = "",
) -> str:
    return (
        f'[[rules]]\nname = "{name}"\ndimension = "{dimension}"\nevents = {events}\n'
        f"points = {points}\nhalf_life_days = {half_life}\n{extra}\n"
    )


# --- decay --------------------------------------------------------------------------------


def test_decay_halves_points_at_one_half_life() -> None:
    assert decayed(40, at=NOW - timedelta(days=14), now=NOW, half_life_days=14) == 20


def test_decay_quarters_points_at_two_half_lives() -> None:
    assert decayed(40, at=NOW - timedelta(days=28), now=NOW, half_life_days=14) == 10


def test_decay_loses_nothing_for_a_touch_at_now() -> None:
    assert decayed(35, at=NOW, now=NOW, half_life_days=7) == 35


def test_decay_loses_nothing_for_a_future_touch() -> None:
    assert decayed(40, at=NOW + timedelta(days=30), now=NOW, half_life_days=14) == 40


def test_decay_keeps_points_without_a_timestamp() -> None:
    assert decayed(30, at=None, now=NOW, half_life_days=1) == 30


def test_decay_fades_to_zero_after_many_half_lives() -> None:
    assert decayed(3, at=NOW - timedelta(days=70), now=NOW, half_life_days=7) == 0


# --- behaviour rules ----------------------------------------------------------------------


def test_latest_rule_counts_only_the_newest_matching_touch() -> None:
    model = _model(_rule(points=20, half_life=10))
    bant = _bant(
        model,
        _touch("old", "page_view", days_ago=10),
        _touch("new", "page_view", days_ago=0),
        _touch("mid", "page_view", days_ago=5),
    )
    assert [e.event_id for e in bant.need.evidence] == ["new"]
    assert bant.need.score == 20


def test_latest_rule_scores_the_newest_touch_even_when_listed_first() -> None:
    model = _model(_rule(points=20, half_life=10))
    bant = _bant(
        model, _touch("new", "page_view", days_ago=1), _touch("old", "page_view", days_ago=9)
    )
    [evidence] = bant.need.evidence
    assert evidence.event_id == "new"


def test_each_rule_sums_every_matching_touch() -> None:
    model = _model(_rule(points=10, extra='count = "each"'))
    bant = _bant(model, *(_touch(f"e{i}", "page_view") for i in range(3)))
    assert bant.need.score == 30
    assert len(bant.need.evidence) == 3


def test_each_rule_stops_at_max_points_and_clips_the_last_touch() -> None:
    model = _model(_rule(points=10, extra='count = "each"\nmax_points = 25'))
    bant = _bant(model, *(_touch(f"e{i}", "page_view", days_ago=i / 24) for i in range(5)))
    assert bant.need.score == 25
    # Newest first: 10 + 10 + 5 (clipped), and touches beyond the cap give no evidence.
    assert [e.points for e in bant.need.evidence] == [10, 10, 5]
    assert [e.event_id for e in bant.need.evidence] == ["e0", "e1", "e2"]


def test_each_rule_decays_every_touch_by_its_own_age() -> None:
    model = _model(_rule(points=40, half_life=7, extra='count = "each"'))
    bant = _bant(model, _touch("a", "page_view"), _touch("b", "page_view", days_ago=7))
    assert sorted(e.points for e in bant.need.evidence) == [20, 40]


def test_rule_ignores_touches_of_other_types() -> None:
    model = _model(_rule(events='["demo_requested"]'))
    assert _bant(model, _touch("e", "page_view")).need.score == 0


def test_url_contains_matches_case_insensitively_and_skips_other_urls() -> None:
    model = _model(_rule(extra='url_contains = ["/Pricing"]'))
    rule = model.rules[0]
    assert rule_matches(rule, _touch("a", "page_view", url="https://x.io/pricing/team"))
    assert not rule_matches(rule, _touch("b", "page_view", url="https://x.io/blog"))
    assert not rule_matches(rule, _touch("c", "page_view"))


def test_topics_filter_matches_the_touch_topic_case_insensitively() -> None:
    model = _model(_rule(events='["content_download"]', extra='topics = ["problem", "pain"]'))
    rule = model.rules[0]
    assert rule_matches(rule, _touch("a", "content_download", topic=" Problem "))
    assert not rule_matches(rule, _touch("b", "content_download", topic="pricing"))
    assert not rule_matches(rule, _touch("c", "content_download"))


def test_min_cart_value_filter_needs_a_cart_at_or_above_the_value() -> None:
    model = _model(_rule(events='["cart_add"]', extra="min_cart_value = 100"))
    rule = model.rules[0]
    assert rule_matches(rule, _touch("a", "cart_add", cart={"value": 100}))
    assert rule_matches(rule, _touch("b", "cart_add", cart={"value": "250.5"}))
    assert not rule_matches(rule, _touch("c", "cart_add", cart={"value": 99.99}))
    assert not rule_matches(rule, _touch("d", "cart_add", cart={"value": "lots"}))
    assert not rule_matches(rule, _touch("e", "cart_add"))


def test_filtered_rule_scores_only_matching_touches() -> None:
    model = _model(_rule(dimension="timing", extra='url_contains = ["/pricing"]'))
    bant = _bant(
        model,
        _touch("blog", "page_view", url="/blog"),
        _touch("price", "page_view", days_ago=1, url="/pricing"),
    )
    assert [e.event_id for e in bant.timing.evidence] == ["price"]


# --- declared rules -----------------------------------------------------------------------

DECLARED_TIMEFRAME = """
[[declared]]
name = "timeframe"
dimension = "timing"
field = "timeframe"
half_life_days = 30
default_points = 7
values = { "this quarter" = 45, "next year" = 5 }
"""


def test_declared_rule_uses_the_newest_answer() -> None:
    model = _model(DECLARED_TIMEFRAME)
    bant = _bant(
        model,
        _touch("new", "form_submit", timeframe="next year"),
        _touch("old", "form_submit", days_ago=1, timeframe="this quarter"),
    )
    [evidence] = bant.timing.evidence
    assert evidence.event_id == "new"
    assert bant.timing.score == 5


def test_declared_rule_ignores_touches_without_the_field_or_with_an_empty_answer() -> None:
    model = _model(DECLARED_TIMEFRAME)
    bant = _bant(
        model,
        _touch("empty", "form_submit", timeframe=""),
        _touch("other", "form_submit", budget="100k"),
        _touch("answered", "form_submit", days_ago=2, timeframe="this quarter"),
    )
    assert [e.event_id for e in bant.timing.evidence] == ["answered"]


def test_declared_answer_matches_the_values_table_case_insensitively() -> None:
    model = _model(DECLARED_TIMEFRAME)
    assert _bant(model, _touch("e", "form_submit", timeframe="  This Quarter ")).timing.score == 45


def test_declared_values_table_keys_match_regardless_of_their_case() -> None:
    model = _model(DECLARED_TIMEFRAME.replace('"this quarter"', '"This Quarter"'))
    assert _bant(model, _touch("e", "form_submit", timeframe="this quarter")).timing.score == 45


def test_declared_answer_not_in_the_values_table_gives_default_points() -> None:
    model = _model(DECLARED_TIMEFRAME)
    assert _bant(model, _touch("e", "form_submit", timeframe="someday")).timing.score == 7


@pytest.mark.parametrize(("answer", "points"), [(True, 50), (False, 0), ("TRUE", 50)])
def test_declared_boolean_answers_are_read_as_true_and_false(answer: object, points: int) -> None:
    model = _model(
        """
        [[declared]]
        name = "decision_maker"
        dimension = "authority"
        field = "is_decision_maker"
        half_life_days = 365
        default_points = 20
        values = { "true" = 50, "false" = 0 }
        """
    )
    bant = _bant(model, _touch("e", "form_submit", is_decision_maker=answer))
    assert bant.authority.score == points
    assert len(bant.authority.evidence) == (1 if points else 0)


def test_declared_points_decay_with_the_rule_half_life() -> None:
    model = _model(DECLARED_TIMEFRAME)
    bant = _bant(model, _touch("e", "form_submit", days_ago=30, timeframe="this quarter"))
    assert bant.timing.score == round(45 / 2)


# --- firmographic rules -------------------------------------------------------------------

SIZE_RULE = """
[[firmographics]]
name = "mid_size"
dimension = "budget"
field = "employees"
min = 200
max = 999
points = 25
"""


@pytest.mark.parametrize(
    ("employees", "matches"),
    [(199, False), (200, True), (500, True), (999, True), (1000, False), (None, False)],
)
def test_firmographic_min_and_max_are_inclusive_boundaries(
    employees: int | None, matches: bool
) -> None:
    rule = _model(SIZE_RULE).firmographics[0]
    assert firmographic_matches(rule, Persona(employees=employees)) is matches


def test_firmographic_rule_with_values_matches_listed_text_case_insensitively() -> None:
    model = _model(
        """
        [[firmographics]]
        name = "target_industry"
        dimension = "need"
        field = "industry"
        values = ["SaaS", "fintech"]
        points = 30
        """
    )
    rule = model.firmographics[0]
    assert firmographic_matches(rule, Persona(industry="saas"))
    assert firmographic_matches(rule, Persona(industry="FinTech "))
    assert not firmographic_matches(rule, Persona(industry="retail"))
    assert not firmographic_matches(rule, Persona())


def test_firmographic_evidence_is_not_tied_to_an_event_and_does_not_decay() -> None:
    bant = _bant(_model(SIZE_RULE), persona=Persona(employees=300))
    [evidence] = bant.budget.evidence
    assert (evidence.event_id, evidence.type, evidence.at) == (None, "firmographics", None)
    assert (evidence.rule, evidence.points) == ("mid_size", 25)


# --- authority from the title -------------------------------------------------------------

SENIORITY = """
[authority.seniority_points]
c_level = 90
vp = 75
manager = 40
"""


@pytest.mark.parametrize(
    ("title", "points", "rule"),
    [
        ("Chief Technology Officer", 90, "title_c_level"),
        ("CTO", 90, "title_c_level"),
        ("VP of Sales", 75, "title_vp"),
        ("Sales Manager", 40, "title_manager"),
    ],
)
def test_title_seniority_gives_authority_points_via_the_normaliser(
    title: str, points: int, rule: str
) -> None:
    bant = _bant(_model(SENIORITY), persona=Persona(job_title=title))
    assert bant.authority.score == points
    [evidence] = bant.authority.evidence
    assert (evidence.type, evidence.rule, evidence.points) == ("persona", rule, points)


def test_seniority_without_points_in_the_model_gives_no_authority() -> None:
    # "director" is not in SENIORITY: no points and no evidence.
    bant = _bant(_model(SENIORITY), persona=Persona(job_title="Director of Marketing"))
    assert bant.authority.score == 0
    assert bant.authority.evidence == ()


def test_missing_title_gives_no_authority() -> None:
    assert _bant(_model(SENIORITY), persona=Persona(job_title=None)).authority.evidence == ()


# --- thresholds, caps and evidence --------------------------------------------------------


THRESHOLD = """
[dimensions.need]
met_threshold = 50
"""


def test_dimension_is_met_exactly_at_its_threshold() -> None:
    bant = _bant(_model(THRESHOLD + _rule(points=50)), _touch("e", "page_view"))
    assert bant.need.score == 50
    assert bant.need.met is True


def test_dimension_is_not_met_one_point_below_its_threshold() -> None:
    bant = _bant(_model(THRESHOLD + _rule(points=49)), _touch("e", "page_view"))
    assert bant.need.score == 49
    assert bant.need.met is False


def test_dimension_threshold_comes_from_the_model() -> None:
    model = _model(THRESHOLD.replace("50", "20") + _rule(points=25))
    assert _bant(model, _touch("e", "page_view")).need.met is True


def test_score_is_capped_at_100() -> None:
    model = _model(
        _rule(name="a", points=80) + _rule(name="b", events='["demo_requested"]', points=80)
    )
    bant = _bant(model, _touch("p", "page_view"), _touch("d", "demo_requested"))
    assert bant.need.score == 100
    assert sum(e.points for e in bant.need.evidence) == 160


def test_score_is_floored_at_0_for_negative_points() -> None:
    model = _model(
        _rule(name="a", points=10) + _rule(name="b", events='["unsubscribed"]', points=-60)
    )
    bant = _bant(model, _touch("p", "page_view"), _touch("u", "unsubscribed"))
    assert bant.need.score == 0
    assert {e.rule: e.points for e in bant.need.evidence} == {"a": 10, "b": -60}


def test_evidence_carries_event_id_type_time_rule_and_decayed_points() -> None:
    model = _model(_rule(name="demo", events='["demo_requested"]', points=40, half_life=14))
    touch = _touch("evt-42", "demo_requested", days_ago=14)
    [evidence] = _bant(model, touch).need.evidence
    assert evidence.event_id == "evt-42"
    assert evidence.type == "demo_requested"
    assert evidence.at == touch.occurred_at
    assert evidence.rule == "demo"
    assert evidence.points == 20


def test_fully_decayed_touch_leaves_no_evidence() -> None:
    model = _model(_rule(points=3, half_life=1))
    bant = _bant(model, _touch("e", "page_view", days_ago=30))
    assert bant.need.evidence == ()
    assert bant.need.score == 0


def test_no_history_and_no_persona_scores_zero_everywhere() -> None:
    bant = _bant(_bundled("b2b_saas.toml"))
    assert {n: (d.score, d.met) for n, d in bant.dimensions().items()} == {
        n: (0, False) for n in ("budget", "authority", "need", "timing")
    }


# --- the bundled B2B model ----------------------------------------------------------------


def test_b2b_old_behaviour_fades_while_declared_facts_persist() -> None:
    model = _bundled("b2b_saas.toml")
    touches = [
        _touch("form", "form_submit", days_ago=90, budget="100k+"),
        _touch("price", "pricing_viewed", days_ago=90),
    ]
    fresh = assess_bant(
        model=model, persona=Persona(), touches=touches, now=NOW - timedelta(days=90)
    )
    aged = assess_bant(model=model, persona=Persona(), touches=touches, now=NOW)
    assert fresh.timing.score > 0
    assert aged.timing.score == 0
    assert "pricing_page" not in {e.rule for e in aged.timing.evidence}
    # 90 days is half the declared budget's 180-day half-life: about 70% remains.
    assert aged.budget.score > fresh.budget.score / 2
    assert "declared_budget" in {e.rule for e in aged.budget.evidence}


def test_b2b_cto_at_a_large_company_requesting_a_demo() -> None:
    model = _bundled("b2b_saas.toml")
    bant = _bant(
        model,
        _touch("demo", "demo_requested"),
        persona=Persona(job_title="Chief Technology Officer", employees=1500),
    )
    assert bant.authority.score == model.authority.seniority_points["c_level"]
    assert bant.authority.met
    assert {e.rule for e in bant.budget.evidence} == {"company_size_large"}
    assert {e.rule for e in bant.timing.evidence} == {"demo_request"}
    assert {e.rule for e in bant.need.evidence} == {"demo_need"}
