"""Stage inference: the funnel and the journey replayed as two tracks, with every transition."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

from services.scoring.domain.model import Touch, Transition
from services.scoring.domain.scoring_model import ScoringModel, parse_model
from services.scoring.domain.stages import replay_funnel, replay_journey

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
DAY = 86_400
MODELS = Path(__file__).resolve().parents[3] / "services/scoring/models"

FUNNEL = """
[stages.funnel.signals]
page_view = "awareness"
email_click = "interest"
review_viewed = "consideration"
pricing_viewed = "intent"
trial_started = "evaluation"
order_completed = "purchase"

[stages.funnel.url_signals]
"/Pricing" = "intent"
"/compare" = "consideration"

[stages.funnel.regress_on]
committee_rejected = "consideration"
"""

JOURNEY = """
[stages.journey.signals]
content_download = "problem_identification"
webinar_attended = "solution_exploration"
demo_requested = "requirements_building"
review_viewed = "supplier_selection"
committee_review = "consensus_creation"

[stages.journey.topic_signals]
security = "validation"
problem = "problem_identification"

[stages.journey.url_signals]
"/security" = "validation"

[stages.journey.regress_on]
committee_rejected = "requirements_building"
"""


def _model(funnel: str = FUNNEL, journey: str = JOURNEY, extra: str = "") -> ScoringModel:
    text = dedent(
        """\
        version = "stages-test"

        [qualification]
        mql_score = 30
        sql_score = 60
        """
    )
    return parse_model(text + dedent(funnel) + dedent(extra) + dedent(journey), source="t.toml")


def _bundled_b2b() -> ScoringModel:
    path = MODELS / "b2b_saas.toml"
    return parse_model(path.read_text(), source=str(path))


def _touch(event_id: str, type_: str, *, day: float, **properties: Any) -> Touch:
    return Touch(
        event_id=event_id,
        type=type_,
        occurred_at=T0 + timedelta(days=day),
        properties=properties,
    )


def _funnel(
    model: ScoringModel, *touches: Touch, now_day: float = 1000
) -> tuple[str | None, list[Transition]]:
    return replay_funnel(model.stages.funnel, touches, now=T0 + timedelta(days=now_day))


def _journey(
    model: ScoringModel, *touches: Touch, now_day: float = 1000
) -> tuple[str | None, list[Transition]]:
    return replay_journey(model.stages.journey, touches, now=T0 + timedelta(days=now_day))


def _path(transitions: list[Transition]) -> list[tuple[str | None, str]]:
    return [(t.from_stage, t.to_stage) for t in transitions]


# --- the funnel moves forward -------------------------------------------------------------


def test_funnel_has_no_stage_without_a_signal() -> None:
    stage, moves = _funnel(_model(), _touch("x", "unknown_event", day=0))
    assert stage is None
    assert moves == []


def test_funnel_moves_forward_to_the_furthest_signal() -> None:
    stage, moves = _funnel(
        _model(),
        _touch("a", "page_view", day=0),
        _touch("b", "trial_started", day=2),
        _touch("c", "email_click", day=1),
    )
    assert stage == "evaluation"
    assert _path(moves) == [
        (None, "awareness"),
        ("awareness", "interest"),
        ("interest", "evaluation"),
    ]


def test_funnel_never_moves_back_on_a_weaker_signal() -> None:
    stage, moves = _funnel(
        _model(),
        _touch("a", "review_viewed", day=0),
        _touch("b", "page_view", day=1),
        _touch("c", "email_click", day=2),
    )
    assert stage == "consideration"
    assert _path(moves) == [(None, "consideration")]


def test_funnel_transition_records_its_cause_and_signal_rule() -> None:
    _, moves = _funnel(_model(), _touch("evt-7", "pricing_viewed", day=3))
    [move] = moves
    assert move.track == "funnel"
    assert move.cause_event_id == "evt-7"
    assert move.rule == "signal_pricing_viewed"
    assert move.at == T0 + timedelta(days=3)
    assert move.seconds_in_previous is None


def test_funnel_url_signal_matches_case_insensitively_inside_the_url() -> None:
    stage, _ = _funnel(_model(), _touch("a", "page_view", day=0, url="https://x.io/pricing?p=1"))
    assert stage == "intent"


def test_funnel_takes_the_furthest_of_type_and_url_signals() -> None:
    # page_view says awareness, "/compare" says consideration: the furthest wins.
    stage, _ = _funnel(_model(), _touch("a", "page_view", day=0, url="/compare/us-vs-them"))
    assert stage == "consideration"


def test_funnel_url_signal_needs_a_matching_url() -> None:
    stage, _ = _funnel(_model(), _touch("a", "page_view", day=0, url="/blog/post"))
    assert stage == "awareness"


# --- the funnel moves back ----------------------------------------------------------------


def test_regress_on_sends_the_funnel_back_with_that_event_as_cause() -> None:
    stage, moves = _funnel(
        _model(),
        _touch("trial", "trial_started", day=0),
        _touch("no", "committee_rejected", day=4),
    )
    assert stage == "consideration"
    last = moves[-1]
    assert (last.from_stage, last.to_stage) == ("evaluation", "consideration")
    assert last.cause_event_id == "no"
    assert last.rule == "regress_on_committee_rejected"
    assert last.seconds_in_previous == 4 * DAY


def test_regress_on_never_moves_the_funnel_forward() -> None:
    stage, moves = _funnel(
        _model(), _touch("a", "page_view", day=0), _touch("no", "committee_rejected", day=1)
    )
    assert stage == "awareness"
    assert _path(moves) == [(None, "awareness")]


def test_regress_on_before_any_stage_sets_no_stage() -> None:
    stage, moves = _funnel(_model(), _touch("no", "committee_rejected", day=0))
    assert stage is None
    assert moves == []


TIME_REGRESS = """
[[stages.funnel.regress]]
stage = "intent"
to = "consideration"
after_days = 30
"""


def test_intent_falls_back_to_consideration_after_days_without_intent_signals() -> None:
    model = _model(extra=TIME_REGRESS)
    stage, moves = _funnel(model, _touch("p", "pricing_viewed", day=0), now_day=45)
    assert stage == "consideration"
    last = moves[-1]
    assert (last.from_stage, last.to_stage) == ("intent", "consideration")
    assert last.at == T0 + timedelta(days=30)
    assert last.cause_event_id is None
    assert "30" in last.rule
    assert "intent" in last.rule
    assert last.seconds_in_previous == 30 * DAY


def test_time_regression_is_due_exactly_at_last_support_plus_after_days() -> None:
    model = _model(extra=TIME_REGRESS)
    touch = _touch("p", "pricing_viewed", day=0)
    at_due = replay_funnel(model.stages.funnel, [touch], now=T0 + timedelta(days=30))
    before = replay_funnel(
        model.stages.funnel, [touch], now=T0 + timedelta(days=30) - timedelta(seconds=1)
    )
    assert at_due[0] == "consideration"
    assert before[0] == "intent"


def test_a_new_intent_signal_renews_support_and_delays_regression() -> None:
    model = _model(extra=TIME_REGRESS)
    touches = (_touch("p1", "pricing_viewed", day=0), _touch("p2", "pricing_viewed", day=20))
    stage, moves = _funnel(model, *touches, now_day=45)
    assert stage == "intent"
    assert _path(moves) == [(None, "intent")]
    stage, moves = _funnel(model, *touches, now_day=60)
    assert stage == "consideration"
    assert moves[-1].at == T0 + timedelta(days=50)


def test_an_intent_signal_by_url_also_renews_support() -> None:
    model = _model(extra=TIME_REGRESS)
    stage, _ = _funnel(
        model,
        _touch("p", "pricing_viewed", day=0),
        _touch("u", "page_view", day=25, url="/pricing"),
        now_day=45,
    )
    assert stage == "intent"


def test_a_weaker_signal_does_not_renew_support() -> None:
    model = _model(extra=TIME_REGRESS)
    stage, moves = _funnel(
        model,
        _touch("p", "pricing_viewed", day=0),
        _touch("v", "page_view", day=20),
        now_day=45,
    )
    assert stage == "consideration"
    assert moves[-1].at == T0 + timedelta(days=30)


def test_time_regression_lands_between_touches_and_the_funnel_can_climb_again() -> None:
    model = _model(extra=TIME_REGRESS)
    stage, moves = _funnel(
        model,
        _touch("p1", "pricing_viewed", day=0),
        _touch("p2", "pricing_viewed", day=40),
        now_day=41,
    )
    assert stage == "intent"
    assert _path(moves) == [
        (None, "intent"),
        ("intent", "consideration"),
        ("consideration", "intent"),
    ]
    assert [m.at for m in moves] == [T0, T0 + timedelta(days=30), T0 + timedelta(days=40)]
    assert [m.cause_event_id for m in moves] == ["p1", None, "p2"]


def test_time_regressions_chain() -> None:
    chained = """
    [[stages.funnel.regress]]
    stage = "evaluation"
    to = "intent"
    after_days = 10

    [[stages.funnel.regress]]
    stage = "intent"
    to = "consideration"
    after_days = 5
    """
    stage, moves = _funnel(_model(extra=chained), _touch("t", "trial_started", day=0), now_day=30)
    assert stage == "consideration"
    assert _path(moves) == [
        (None, "evaluation"),
        ("evaluation", "intent"),
        ("intent", "consideration"),
    ]
    assert moves[1].at == T0 + timedelta(days=10)
    assert moves[2].at == T0 + timedelta(days=15)
    assert moves[2].seconds_in_previous == 5 * DAY
    assert "10" in moves[1].rule and "5" in moves[2].rule


def test_chained_regression_stops_where_the_next_is_not_yet_due() -> None:
    chained = """
    [[stages.funnel.regress]]
    stage = "evaluation"
    to = "intent"
    after_days = 10

    [[stages.funnel.regress]]
    stage = "intent"
    to = "consideration"
    after_days = 5
    """
    stage, _ = _funnel(_model(extra=chained), _touch("t", "trial_started", day=0), now_day=12)
    assert stage == "intent"


# --- the journey follows the buyer --------------------------------------------------------


def test_journey_follows_the_newest_signal_forwards_and_back() -> None:
    stage, moves = _journey(
        _model(),
        _touch("a", "content_download", day=0),
        _touch("b", "review_viewed", day=1),
        _touch("c", "webinar_attended", day=2),
    )
    assert stage == "solution_exploration"
    assert _path(moves) == [
        (None, "problem_identification"),
        ("problem_identification", "supplier_selection"),
        ("supplier_selection", "solution_exploration"),
    ]
    assert all(m.track == "journey" for m in moves)


def test_journey_uses_time_not_list_position() -> None:
    stage, _ = _journey(
        _model(),
        _touch("newest", "review_viewed", day=9),
        _touch("older", "content_download", day=1),
    )
    assert stage == "supplier_selection"


def test_journey_topic_signal_sets_the_stage() -> None:
    stage, moves = _journey(_model(), _touch("a", "webinar_attended", day=0, topic="Security"))
    assert stage == "validation"
    assert moves[-1].cause_event_id == "a"


def test_journey_url_signal_sets_the_stage() -> None:
    stage, _ = _journey(_model(), _touch("a", "page_view", day=0, url="/security/soc2"))
    assert stage == "validation"


def test_journey_regress_on_sends_it_back() -> None:
    stage, moves = _journey(
        _model(),
        _touch("c", "committee_review", day=0),
        _touch("no", "committee_rejected", day=1),
    )
    assert stage == "requirements_building"
    assert moves[-1].cause_event_id == "no"
    assert moves[-1].rule == "regress_on_committee_rejected"


def test_repeated_signal_for_the_same_stage_is_not_a_transition() -> None:
    _, moves = _journey(
        _model(),
        _touch("a", "content_download", day=0),
        _touch("b", "content_download", day=1),
    )
    assert len(moves) == 1


# --- time in stage and late touches -------------------------------------------------------


def test_transitions_record_seconds_in_the_previous_stage() -> None:
    _, moves = _journey(
        _model(),
        _touch("a", "content_download", day=0),
        _touch("b", "webinar_attended", day=2.5),
        _touch("c", "demo_requested", day=3),
    )
    assert [m.seconds_in_previous for m in moves] == [None, 2.5 * DAY, 0.5 * DAY]


def _history() -> list[Touch]:
    return [
        _touch("e01", "page_view", day=0, url="/blog/why"),
        _touch("e02", "content_download", day=1, topic="problem"),
        _touch("e03", "webinar_attended", day=3),
        _touch("e04", "pricing_viewed", day=5),
        _touch("e05", "review_viewed", day=6, url="/compare"),
        _touch("e06", "demo_requested", day=50),
        _touch("e07", "trial_started", day=52),
        _touch("e08", "committee_review", day=60),
        _touch("e09", "committee_rejected", day=61),
        _touch("e10", "pricing_viewed", day=70),
    ]


def test_late_touches_give_the_same_stages_and_transitions_as_in_order_input() -> None:
    model = _bundled_b2b()
    in_order = _history()
    late = [*in_order[:3], *in_order[6:], *in_order[3:6]]
    shuffled = in_order[:]
    random.Random(7).shuffle(shuffled)
    now = T0 + timedelta(days=120)
    for replay, track in (
        (replay_funnel, model.stages.funnel),
        (replay_journey, model.stages.journey),
    ):
        expected = replay(track, in_order, now=now)
        assert replay(track, late, now=now) == expected
        assert replay(track, shuffled, now=now) == expected


def test_late_touch_lands_in_its_place_in_the_history() -> None:
    # pricing at day 0 regresses at day 30 in order; a late pricing at day 25 delays that.
    model = _model(extra=TIME_REGRESS)
    first = _touch("p1", "pricing_viewed", day=0)
    late = _touch("p2", "pricing_viewed", day=25)
    before, _ = _funnel(model, first, now_day=40)
    after, _ = _funnel(model, first, late, now_day=40)
    assert before == "consideration"
    assert after == "intent"


def test_bundled_b2b_history_regresses_after_rejection_and_time() -> None:
    model = _bundled_b2b()
    stage, moves = _funnel(model, *_history(), now_day=120)
    # Rejection at day 61 sends evaluation back; pricing at day 70 is intent; 30 days later
    # with no intent signal it falls back again.
    assert stage == "consideration"
    assert ("evaluation", "consideration") in _path(moves)
    assert moves[-1].at == T0 + timedelta(days=100)
    assert moves[-1].cause_event_id is None
