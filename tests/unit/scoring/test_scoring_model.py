"""The scoring model file: bundled models parse, bad files are refused with where and why."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from services.scoring.domain.scoring_model import (
    DIMENSIONS,
    ModelError,
    ScoringModel,
    parse_model,
)
from shared.domain import FUNNEL_ORDER, JOURNEY_ORDER, FunnelStage, JourneyStage

MODELS = Path(__file__).resolve().parents[3] / "services/scoring/models"

MINIMAL = dedent(
    """\
    version = "test-1"

    [qualification]
    mql_score = 30
    sql_score = 60

    [stages.funnel.signals]
    page_view = "awareness"

    [stages.journey.signals]
    """
)

RULE = dedent(
    """\
    [[rules]]
    name = "{name}"
    dimension = "{dimension}"
    events = ["page_view"]
    points = 10
    half_life_days = {half_life}
    """
)


def _load(name: str) -> ScoringModel:
    path = MODELS / name
    return parse_model(path.read_text(), source=str(path))


def _refused(text: str, *, source: str = "bad.toml") -> ModelError:
    with pytest.raises(ModelError) as caught:
        parse_model(text, source=source)
    return caught.value


def _rule(name: str = "r", dimension: str = "need", half_life: float = 7) -> str:
    return RULE.format(name=name, dimension=dimension, half_life=half_life)


# --- the bundled models -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "version", "segment"),
    [
        ("b2b_saas.toml", "b2b-saas-2026.11", "b2b"),
        ("b2c_ecommerce.toml", "b2c-ecommerce-2026.11", "b2c"),
    ],
)
def test_bundled_model_parses_with_its_version_and_segment(
    file: str, version: str, segment: str
) -> None:
    model = _load(file)
    assert model.version == version
    assert model.segment == segment
    assert model.rules, "a bundled model scores behaviour"
    assert model.stages.funnel.signals, "a bundled model infers the funnel"
    assert model.stages.journey.signals, "a bundled model infers the journey"


@pytest.mark.parametrize("file", ["b2b_saas.toml", "b2c_ecommerce.toml"])
def test_bundled_model_declares_every_dimension(file: str) -> None:
    assert set(_load(file).dimensions) == set(DIMENSIONS)


@pytest.mark.parametrize("file", ["b2b_saas.toml", "b2c_ecommerce.toml"])
def test_bundled_model_names_only_real_stages(file: str) -> None:
    model = _load(file)
    funnel = {s.value for s in FUNNEL_ORDER}
    journey = {s.value for s in JOURNEY_ORDER}
    assert {stage for _, stage in model.stages.funnel.stages()} <= funnel
    assert {stage for _, stage in model.stages.journey.stages()} <= journey


def test_bundled_b2b_model_reads_thresholds_and_seniority_points() -> None:
    model = _load("b2b_saas.toml")
    assert model.qualification.mql_score < model.qualification.sql_score
    assert model.met_threshold("budget") == 50
    assert model.authority.seniority_points["c_level"] > model.authority.seniority_points["vp"]
    assert model.qualification.customer_events == ("order_completed", "closed_won")


def test_model_looks_up_stages_by_name() -> None:
    model = _load("b2b_saas.toml")
    assert model.funnel_stage("intent") is FunnelStage.INTENT
    assert model.journey_stage("validation") is JourneyStage.VALIDATION


# --- a minimal model and its defaults -----------------------------------------------------


def test_minimal_model_gets_default_dimensions_and_qualification_events() -> None:
    model = parse_model(MINIMAL, source="minimal.toml")
    assert set(model.dimensions) == set(DIMENSIONS)
    assert all(d.met_threshold == 50 and d.weight == 1.0 for d in model.dimensions.values())
    assert model.qualification.sql_dimensions_met == 3
    assert model.qualification.customer_events == ("order_completed", "closed_won")
    assert model.qualification.disqualify_events == ("disqualified",)
    assert model.rules == () and model.declared == () and model.firmographics == ()


def test_met_threshold_of_an_undeclared_dimension_is_the_default() -> None:
    text = MINIMAL.replace(
        "[qualification]", "[dimensions.need]\nmet_threshold = 70\n\n[qualification]"
    )
    model = parse_model(text, source="partial.toml")
    assert model.met_threshold("need") == 70
    assert model.met_threshold("budget") == 50


def test_behaviour_rule_defaults_to_counting_the_latest_touch() -> None:
    model = parse_model(MINIMAL + _rule(), source="m.toml")
    [rule] = model.rules
    assert rule.count == "latest"
    assert rule.max_points is None


# --- refused files ------------------------------------------------------------------------


def test_toml_syntax_error_is_refused_at_place_syntax() -> None:
    error = _refused('version = "unterminated\n', source="broken.toml")
    assert error.place == "syntax"
    assert error.source == "broken.toml"
    assert error.reason
    assert str(error).startswith("broken.toml: syntax: ")


def test_unknown_top_level_key_is_refused_naming_the_key() -> None:
    error = _refused("extra_field = 1\n" + MINIMAL)
    assert error.place == "extra_field"
    assert "extra" in error.reason.lower()


def test_unknown_key_inside_a_rule_is_refused_naming_the_rule_and_key() -> None:
    error = _refused(MINIMAL + _rule() + "weight = 3\n")
    assert error.place == "rules.0.weight"
    assert "extra" in error.reason.lower()


def test_unknown_dimension_name_in_a_rule_is_refused() -> None:
    error = _refused(MINIMAL + _rule(dimension="budgett"))
    assert error.place == "rules.0.dimension"
    assert "budget" in error.reason


def test_stage_that_is_not_a_stage_is_refused_naming_the_track() -> None:
    text = MINIMAL.replace('page_view = "awareness"', 'page_view = "nowhere"')
    error = _refused(text)
    assert "stages.funnel" in error.place
    assert "nowhere" in error.reason


def test_journey_stage_used_on_the_funnel_is_refused() -> None:
    text = MINIMAL.replace('page_view = "awareness"', 'page_view = "validation"')
    error = _refused(text)
    assert "stages.funnel.signals.page_view" in str(error)
    assert "not a funnel stage" in error.reason


def test_sql_score_below_mql_score_is_refused_at_qualification() -> None:
    text = MINIMAL.replace("sql_score = 60", "sql_score = 20")
    error = _refused(text)
    assert error.place == "qualification"
    assert "sql_score" in error.reason and "mql_score" in error.reason


def test_sql_score_equal_to_mql_score_is_accepted() -> None:
    text = MINIMAL.replace("sql_score = 60", "sql_score = 30")
    assert parse_model(text, source="m.toml").qualification.sql_score == 30


def test_duplicate_rule_names_are_refused_naming_the_name() -> None:
    error = _refused(MINIMAL + _rule(name="twice") + _rule(name="twice"))
    assert "unique" in error.reason
    assert "twice" in error.reason


def test_duplicate_names_across_rule_kinds_are_refused() -> None:
    declared = dedent(
        """\
        [[declared]]
        name = "shared_name"
        dimension = "budget"
        field = "budget"
        half_life_days = 30
        """
    )
    error = _refused(MINIMAL + _rule(name="shared_name") + declared)
    assert "shared_name" in error.reason


@pytest.mark.parametrize(
    "condition",
    ['min = 10\nvalues = ["saas"]\n', ""],
    ids=["both-min-and-values", "neither"],
)
def test_firmographic_rule_needs_exactly_one_of_range_or_values(condition: str) -> None:
    rule = dedent(
        """\
        [[firmographics]]
        name = "size"
        dimension = "budget"
        field = "employees"
        points = 10
        """
    )
    error = _refused(MINIMAL + rule + condition)
    assert error.place == "firmographics.0"
    assert "min/max or values" in error.reason


def test_firmographic_rule_with_only_max_is_accepted() -> None:
    rule = dedent(
        """\
        [[firmographics]]
        name = "small"
        dimension = "budget"
        field = "employees"
        points = 5
        max = 50
        """
    )
    [firmo] = parse_model(MINIMAL + rule, source="m.toml").firmographics
    assert firmo.max == 50 and firmo.min is None


@pytest.mark.parametrize("half_life", [-7, 0])
def test_non_positive_half_life_is_refused(half_life: float) -> None:
    error = _refused(MINIMAL + _rule(half_life=half_life))
    assert error.place == "rules.0.half_life_days"
    assert "greater than 0" in error.reason


def test_points_beyond_100_are_refused() -> None:
    error = _refused(MINIMAL + _rule().replace("points = 10", "points = 150"))
    assert error.place == "rules.0.points"


def test_missing_version_is_refused() -> None:
    error = _refused(MINIMAL.replace('version = "test-1"\n', ""))
    assert error.place == "version"


def test_model_error_is_a_value_error() -> None:
    assert issubclass(ModelError, ValueError)
