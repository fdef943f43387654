"""Explanations: plain sentences for the score, qualification, each BANT dimension and stages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.scoring.domain.bant import decayed
from services.scoring.domain.explain import ago, explain
from services.scoring.domain.model import Assessment, Persona, Touch
from services.scoring.domain.qualification import assess
from services.scoring.domain.scoring_model import ScoringModel, parse_model

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PATH = Path(__file__).resolve().parents[3] / "services/scoring/models/b2b_saas.toml"
B2B: ScoringModel = parse_model(PATH.read_text(), source=str(PATH))


def _touch(event_id: str, type_: str, *, days_ago: float = 0, **properties: Any) -> Touch:
    return Touch(
        event_id=event_id,
        type=type_,
        occurred_at=NOW - timedelta(days=days_ago),
        properties=properties,
    )


def _assess(*touches: Touch, persona: Persona | None = None) -> Assessment:
    return assess(model=B2B, persona=persona or Persona(), touches=touches, now=NOW)


def _sentence(sentences: list[str], start: str) -> str:
    [found] = [s for s in sentences if s.startswith(start)]
    return found


# --- ago ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "today"),
        (timedelta(hours=23, minutes=59), "today"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=1, hours=20), "1 day ago"),
        (timedelta(days=3), "3 days ago"),
        (timedelta(days=12, hours=5), "12 days ago"),
    ],
)
def test_ago_reads_whole_days(delta: timedelta, text: str) -> None:
    assert ago(NOW - delta, NOW) == text


def test_ago_for_a_future_time_says_so() -> None:
    assert ago(NOW + timedelta(hours=2), NOW) == "in the future"


# --- sentences ----------------------------------------------------------------------------


def test_first_sentence_gives_score_model_and_every_dimension_score() -> None:
    result = _assess(_touch("d", "demo_requested", days_ago=3))
    first = explain(result, model=B2B, now=NOW)[0]
    assert first.startswith(f"Score {result.score}/100 under model {B2B.version}")
    for name, dim in result.bant.dimensions().items():
        assert f"{name} {dim.score}" in first


def test_explanation_states_the_qualification_reason() -> None:
    result = _assess(_touch("d", "demo_requested", days_ago=3))
    sentences = explain(result, model=B2B, now=NOW)
    reason = result.qualification_reason
    assert reason
    assert sentences[1] == reason[0].upper() + reason[1:] + "."


def test_explanation_has_a_sentence_for_each_dimension() -> None:
    result = _assess(_touch("d", "demo_requested", days_ago=3))
    sentences = explain(result, model=B2B, now=NOW)
    for name in ("Budget", "Authority", "Need", "Timing"):
        sentence = _sentence(sentences, name + " ")
        assert f"threshold {B2B.met_threshold(name.lower())}" in sentence


def test_dimension_sentence_says_met_or_not_met() -> None:
    result = _assess(_touch("d", "demo_requested", days_ago=3), persona=Persona(job_title="CTO"))
    sentences = explain(result, model=B2B, now=NOW)
    assert result.bant.authority.met and not result.bant.budget.met
    assert _sentence(sentences, "Authority ").startswith("Authority met (")
    assert _sentence(sentences, "Budget ").startswith("Budget not met (0, ")


def test_dimension_without_evidence_says_so() -> None:
    sentences = explain(_assess(), model=B2B, now=NOW)
    assert _sentence(sentences, "Budget ").endswith(": no evidence.")


def test_evidence_reads_as_what_the_buyer_did_when_and_the_points() -> None:
    result = _assess(_touch("d", "demo_requested", days_ago=3))
    need = _sentence(explain(result, model=B2B, now=NOW), "Need ")
    points = decayed(30, at=NOW - timedelta(days=3), now=NOW, half_life_days=45)
    assert [e.points for e in result.bant.need.evidence] == [points]
    assert f"requested a demo 3 days ago (+{points} of +30, half-life 45 days, demo_need)" in need


def test_evidence_that_has_not_faded_yet_gives_its_points_alone() -> None:
    result = _assess(_touch("d", "demo_requested"))
    need = _sentence(explain(result, model=B2B, now=NOW), "Need ")
    assert "requested a demo today (+30, demo_need)" in need


def test_evidence_keeps_the_points_its_rule_gave_and_its_half_life() -> None:
    result = _assess(_touch("d", "demo_requested", days_ago=90))
    [evidence] = result.bant.need.evidence
    assert (evidence.original_points, evidence.half_life_days) == (30, 45)
    assert evidence.points == decayed(30, at=NOW - timedelta(days=90), now=NOW, half_life_days=45)


def test_evidence_of_an_unlisted_touch_type_is_spelled_out_from_its_name() -> None:
    model = parse_model(
        PATH.read_text().replace(
            'events = ["meeting_booked"]', 'events = ["meeting_booked", "call_scheduled"]'
        ),
        source="variant.toml",
    )
    result = assess(
        model=model, persona=Persona(), touches=[_touch("c", "call_scheduled")], now=NOW
    )
    timing = _sentence(explain(result, model=model, now=NOW), "Timing ")
    assert "call scheduled today (+30, meeting_booked)" in timing


def test_title_and_firmographic_evidence_read_as_sentences() -> None:
    result = _assess(persona=Persona(job_title="CTO", employees=1500))
    sentences = explain(result, model=B2B, now=NOW)
    authority = _sentence(sentences, "Authority ")
    budget = _sentence(sentences, "Budget ")
    assert f"job title is c-level level (+{B2B.authority.seniority_points['c_level']})" in (
        authority
    )
    assert "company matches company size large (+35)" in budget


def test_funnel_sentence_names_the_stage_its_rule_and_cause() -> None:
    result = _assess(
        _touch("v", "page_view", days_ago=5), _touch("d", "demo_requested", days_ago=3)
    )
    funnel = _sentence(explain(result, model=B2B, now=NOW), "Funnel ")
    assert result.funnel_stage is not None
    assert funnel.startswith(f"Funnel stage {result.funnel_stage.value} since ")
    assert (NOW - timedelta(days=3)).strftime("%Y-%m-%d %H:%M") in funnel
    assert "signal demo requested" in funnel
    assert "event d" in funnel
    assert "2 funnel transition(s)" in funnel


def test_funnel_sentence_for_a_time_regression_names_no_event() -> None:
    result = _assess(_touch("p", "pricing_viewed", days_ago=40))
    funnel = _sentence(explain(result, model=B2B, now=NOW), "Funnel ")
    assert funnel.startswith("Funnel stage consideration since ")
    assert "no intent signal for 30d" in funnel
    assert "no event" in funnel


def test_journey_sentence_names_its_own_stage_and_count() -> None:
    result = _assess(
        _touch("a", "content_download", days_ago=4), _touch("b", "webinar_attended", days_ago=2)
    )
    journey = _sentence(explain(result, model=B2B, now=NOW), "Journey ")
    assert journey.startswith("Journey stage solution_exploration since ")
    assert "event b" in journey
    assert "2 journey transition(s)" in journey


def test_stage_sentences_without_signals_say_so() -> None:
    sentences = explain(_assess(), model=B2B, now=NOW)
    assert "Funnel stage: no funnel signal yet." in sentences
    assert "Journey stage: no journey signal yet." in sentences


def test_explanation_has_score_reason_four_dimensions_fit_engagement_and_two_stages() -> None:
    sentences = explain(_assess(), model=B2B, now=NOW)
    assert len(sentences) == 2 + 4 + 1 + 1 + 2
    assert sentences[6].startswith("Fit 0/100 (who the lead is")
    assert sentences[7] == "Persona: none of the model's personas matches the lead."
