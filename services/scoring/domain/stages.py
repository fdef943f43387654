"""Stage inference: the seller's funnel stage and the buyer's journey stage, as two tracks.

Foundation rule (the scoring issue makes it non-linear with regression): the funnel stage is
the furthest stage any touch signals; the journey stage is the one the newest touch with a
journey signal points at, so it can move back as the buyer does.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.scoring.domain.model import Touch
from shared.domain import FUNNEL_ORDER, FunnelStage, JourneyStage

FUNNEL_SIGNALS: dict[str, FunnelStage] = {
    "page_view": FunnelStage.AWARENESS,
    "email_open": FunnelStage.AWARENESS,
    "email_click": FunnelStage.INTEREST,
    "content_download": FunnelStage.INTEREST,
    "webinar_registered": FunnelStage.INTEREST,
    "webinar_attended": FunnelStage.CONSIDERATION,
    "review_viewed": FunnelStage.CONSIDERATION,
    "form_submit": FunnelStage.CONSIDERATION,
    "pricing_viewed": FunnelStage.INTENT,
    "cart_add": FunnelStage.INTENT,
    "checkout_started": FunnelStage.INTENT,
    "demo_requested": FunnelStage.INTENT,
    "trial_started": FunnelStage.EVALUATION,
    "trial_activated": FunnelStage.EVALUATION,
    "meeting_booked": FunnelStage.EVALUATION,
    "order_completed": FunnelStage.PURCHASE,
}

JOURNEY_SIGNALS: dict[str, JourneyStage] = {
    "content_download": JourneyStage.PROBLEM_IDENTIFICATION,
    "webinar_registered": JourneyStage.SOLUTION_EXPLORATION,
    "webinar_attended": JourneyStage.SOLUTION_EXPLORATION,
    "review_viewed": JourneyStage.SOLUTION_EXPLORATION,
    "demo_requested": JourneyStage.REQUIREMENTS_BUILDING,
    "trial_started": JourneyStage.REQUIREMENTS_BUILDING,
    "pricing_viewed": JourneyStage.SUPPLIER_SELECTION,
    "meeting_booked": JourneyStage.SUPPLIER_SELECTION,
    "checkout_started": JourneyStage.SUPPLIER_SELECTION,
}


def infer_funnel_stage(touches: Sequence[Touch]) -> FunnelStage | None:
    """The furthest funnel stage the touches signal, or None if none does."""
    reached = [FUNNEL_SIGNALS[t.type] for t in touches if t.type in FUNNEL_SIGNALS]
    return max(reached, key=FUNNEL_ORDER.index) if reached else None


def infer_journey_stage(touches: Sequence[Touch]) -> JourneyStage | None:
    """The journey stage of the newest touch that signals one, or None."""
    signalled = [t for t in touches if t.type in JOURNEY_SIGNALS]
    if not signalled:
        return None
    newest = max(signalled, key=lambda t: (t.occurred_at, t.event_id))
    return JOURNEY_SIGNALS[newest.type]
