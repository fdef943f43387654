"""Stage inference: the furthest funnel stage and the newest journey stage, as two tracks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.scoring.domain.model import Touch
from services.scoring.domain.stages import infer_funnel_stage, infer_journey_stage
from shared.domain import FunnelStage, JourneyStage

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _touch(event_id: str, type_: str, *, day: int) -> Touch:
    return Touch(event_id=event_id, type=type_, occurred_at=T0 + timedelta(days=day))


def test_funnel_stage_is_the_furthest_stage_signalled() -> None:
    touches = [
        _touch("a", "page_view", day=0),
        _touch("b", "content_download", day=1),
        _touch("c", "trial_started", day=2),
    ]
    assert infer_funnel_stage(touches) == FunnelStage.EVALUATION


def test_funnel_stage_does_not_regress_when_a_later_touch_signals_less() -> None:
    touches = [
        _touch("a", "pricing_viewed", day=0),
        _touch("b", "page_view", day=5),
        _touch("c", "email_open", day=6),
    ]
    assert infer_funnel_stage(touches) == FunnelStage.INTENT


def test_funnel_stage_ignores_the_order_of_the_touches() -> None:
    touches = [
        _touch("a", "page_view", day=0),
        _touch("b", "order_completed", day=3),
        _touch("c", "webinar_attended", day=1),
    ]
    assert infer_funnel_stage(touches) == FunnelStage.PURCHASE
    assert infer_funnel_stage(list(reversed(touches))) == FunnelStage.PURCHASE


def test_journey_stage_follows_the_newest_signalling_touch_so_it_can_move_back() -> None:
    touches = [
        _touch("a", "review_viewed", day=0),
        _touch("b", "demo_requested", day=1),
        _touch("c", "pricing_viewed", day=2),
        _touch("d", "webinar_attended", day=3),
    ]
    assert infer_journey_stage(touches) == JourneyStage.SOLUTION_EXPLORATION


def test_journey_stage_uses_time_not_list_position() -> None:
    touches = [
        _touch("newest", "pricing_viewed", day=9),
        _touch("older", "content_download", day=1),
    ]
    assert infer_journey_stage(touches) == JourneyStage.SUPPLIER_SELECTION


def test_journey_stage_skips_newer_touches_without_a_journey_signal() -> None:
    touches = [
        _touch("a", "demo_requested", day=0),
        _touch("b", "page_view", day=1),
        _touch("c", "email_open", day=2),
    ]
    assert infer_journey_stage(touches) == JourneyStage.REQUIREMENTS_BUILDING


def test_journey_tie_on_time_is_broken_by_the_larger_event_id() -> None:
    touches = [_touch("evt-b", "pricing_viewed", day=0), _touch("evt-a", "review_viewed", day=0)]
    assert infer_journey_stage(touches) == JourneyStage.SUPPLIER_SELECTION
    assert infer_journey_stage(list(reversed(touches))) == JourneyStage.SUPPLIER_SELECTION


def test_unknown_types_signal_no_stage() -> None:
    touches = [_touch("a", "partner.referral", day=0), _touch("b", "identify", day=1)]
    assert infer_funnel_stage(touches) is None
    assert infer_journey_stage(touches) is None


def test_no_touches_means_no_stage() -> None:
    assert infer_funnel_stage([]) is None
    assert infer_journey_stage([]) is None


def test_page_view_signals_funnel_awareness_but_no_journey_stage() -> None:
    touches = [_touch("a", "page_view", day=0)]
    assert infer_funnel_stage(touches) == FunnelStage.AWARENESS
    assert infer_journey_stage(touches) is None


def test_buyer_at_funnel_intent_while_journey_is_still_problem_identification() -> None:
    # domain.md: "A buyer can be at funnel D (intent) while still at journey 1".
    touches = [
        _touch("pricing", "pricing_viewed", day=0),
        _touch("ebook", "content_download", day=1),
    ]
    assert infer_funnel_stage(touches) == FunnelStage.INTENT
    assert infer_journey_stage(touches) == JourneyStage.PROBLEM_IDENTIFICATION
