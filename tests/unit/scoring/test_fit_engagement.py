"""Fit (who the lead is) and engagement (what the lead did, fading) next to BANT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.scoring.domain.model import Persona, Touch
from services.scoring.domain.qualification import assess
from services.scoring.domain.scoring_model import ScoringModel, parse_model

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
MODELS = Path(__file__).resolve().parents[3] / "services/scoring/models"
B2B = parse_model((MODELS / "b2b_saas.toml").read_text(), source="b2b_saas.toml")
CTO = Persona(job_title="CTO", employees=5000, annual_revenue=50_000_000)


def _assess(persona: Persona, touches: list[Touch], *, now: datetime = NOW, model=B2B):
    return assess(model=model, persona=persona, touches=touches, now=now)


def _touch(event_id: str, type_: str, *, days_ago: float, **properties: object) -> Touch:
    return Touch(event_id, type_, NOW - timedelta(days=days_ago), properties=properties)


def test_a_senior_buyer_at_a_large_company_fits_without_having_done_anything() -> None:
    assessment = _assess(CTO, [])
    # c_level 90 + company_size_large 35 + company_revenue_10m 25 = 150 of 200.
    assert assessment.fit == 75
    assert assessment.engagement == 0


def test_an_anonymous_visitor_who_is_busy_on_the_site_is_engaged_but_not_a_fit() -> None:
    touches = [
        _touch("e1", "demo_requested", days_ago=1),
        _touch("e2", "page_view", days_ago=1, url="https://seller.example/pricing"),
    ]
    assessment = _assess(Persona(), touches)
    assert assessment.fit == 0
    assert assessment.engagement > 0


def test_engagement_fades_with_time_and_fit_does_not() -> None:
    touches = [
        _touch("e1", "demo_requested", days_ago=1),
        _touch("e2", "webinar_attended", days_ago=2),
    ]
    fresh = _assess(CTO, touches)
    later = _assess(CTO, touches, now=NOW + timedelta(days=60))
    assert later.engagement < fresh.engagement
    assert later.fit == fresh.fit == 75


def test_a_declared_answer_counts_as_fit() -> None:
    touches = [_touch("e1", "form_submit", days_ago=0, budget="100k+")]
    with_answer, without = _assess(Persona(), touches), _assess(Persona(), [])
    budget_rule = next(
        e
        for e in with_answer.bant.budget.evidence
        if e.rule == "declared_budget"  # the form answer, not the form submission
    )
    assert with_answer.fit == round(100 * budget_rule.points / 200)
    assert without.fit == 0


def test_full_points_set_the_scale() -> None:
    narrow = B2B.model_copy(update={"fit": B2B.fit.model_copy(update={"full_points": 300})})
    assert _assess(CTO, [], model=narrow).fit == 50
    wide = B2B.model_copy(update={"fit": B2B.fit.model_copy(update={"full_points": 100})})
    assert _assess(CTO, [], model=wide).fit == 100  # capped


def test_the_models_say_how_many_points_make_full_marks() -> None:
    assert (B2B.fit.full_points, B2B.engagement.full_points) == (200, 120)
    text = (
        'version = "x"\n[qualification]\nmql_score = 1\nsql_score = 2\n'
        "[stages.funnel.signals]\n[stages.journey.signals]\n"
    )
    plain: ScoringModel = parse_model(text, source="x.toml")
    assert (plain.fit.full_points, plain.engagement.full_points) == (100, 100)
