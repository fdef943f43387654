"""Sales feedback that moves the lead: a rejection recycles it to nurture with its reason until
it raises its hand again, and accepted/rejected are steps on its "sales" track."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.scoring.domain import folding
from services.scoring.domain.model import Persona, Touch
from services.scoring.domain.qualification import assess
from services.scoring.domain.scoring_model import ScoringModel, parse_model
from shared.domain import Qualification

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

# Only timing counts, so a demo request (70 points, no fading) makes an SQL on its own.
MODEL = parse_model(
    """
version = "recycle-test-1"
[dimensions.budget]
weight = 0
[dimensions.authority]
weight = 0
[dimensions.need]
weight = 0
[dimensions.timing]
weight = 1
[qualification]
mql_score = 30
mql_dimensions_met = 0
sql_score = 60
sql_dimensions_met = 0
[[rules]]
name = "demo"
dimension = "timing"
events = ["demo_requested"]
points = 70
half_life_days = 3650
[stages.funnel.signals]
demo_requested = "intent"
[stages.journey.signals]
""",
    source="recycle.toml",
)


def _touch(event_id: str, type_: str, *, days_ago: float, **properties: Any) -> Touch:
    return Touch(event_id, type_, NOW - timedelta(days=days_ago), properties=properties)


def _assess(touches: list[Touch], *, now: datetime = NOW, model: ScoringModel = MODEL):
    return assess(model=model, persona=Persona(), touches=touches, now=now)


def test_a_lead_sales_rejects_is_recycled_to_nurture_with_the_reason_given() -> None:
    demo = _touch("e1", "demo_requested", days_ago=5)
    assert _assess([demo]).qualification is Qualification.SQL
    rejected = _touch("e2", "sales_rejected", days_ago=2, reason="no budget this year")
    assessment = _assess([demo, rejected])
    assert assessment.qualification is Qualification.RECYCLED
    assert assessment.qualification_reason == (
        "recycled to nurture: sales_rejected on 2026-12-01 (no budget this year)"
    )
    assert assessment.score == 70  # the evidence stays: only the qualification moves


def test_a_hand_raise_after_the_rejection_brings_the_lead_back() -> None:
    touches = [
        _touch("e1", "demo_requested", days_ago=20),
        _touch("e2", "sales_rejected", days_ago=10, reason="bad timing"),
        _touch("e3", "demo_requested", days_ago=1),
    ]
    assert _assess(touches).qualification is Qualification.SQL
    # A hand-raise before the rejection does not.
    earlier = [touches[0], touches[2], _touch("e4", "sales_rejected", days_ago=0.5, reason="x")]
    assert _assess(earlier).qualification is Qualification.RECYCLED


def test_sales_accepting_the_lead_again_ends_the_recycling() -> None:
    touches = [
        _touch("e1", "demo_requested", days_ago=20),
        _touch("e2", "sales_rejected", days_ago=10, reason="wrong region"),
        _touch("e3", "sales_accepted", days_ago=3),
    ]
    assert _assess(touches).qualification is Qualification.SQL


def test_the_recycling_runs_out_after_recycle_days() -> None:
    touches = [
        _touch("e1", "demo_requested", days_ago=100),
        _touch("e2", "sales_rejected", days_ago=95, reason="not now"),
    ]
    assert MODEL.qualification.recycle_days == 90
    assert _assess(touches, now=NOW - timedelta(days=6)).qualification is Qualification.RECYCLED
    assert _assess(touches).qualification is Qualification.SQL  # 95 days on


def test_a_rejection_does_not_undo_a_customer_or_a_disqualification() -> None:
    for settling, expected in (
        ("order_completed", Qualification.CUSTOMER),
        ("disqualified", Qualification.DISQUALIFIED),
    ):
        touches = [
            _touch("e1", settling, days_ago=5),
            _touch("e2", "sales_rejected", days_ago=1, reason="upsell declined"),
        ]
        assert _assess(touches).qualification is expected


def test_accepted_and_rejected_are_steps_on_the_sales_track_with_their_times() -> None:
    accepted = _touch("e2", "sales_accepted", days_ago=6)
    rejected = _touch("e3", "sales_rejected", days_ago=2, reason="went dark")
    touches = [_touch("e1", "demo_requested", days_ago=7), accepted, rejected]
    sales = [t for t in _assess(touches).transitions if t.track == "sales"]
    assert [(t.from_stage, t.to_stage, t.at, t.cause_event_id) for t in sales] == [
        (None, "accepted", accepted.occurred_at, "e2"),
        ("accepted", "rejected", rejected.occurred_at, "e3"),
    ]
    assert sales[1].seconds_in_previous == 4 * 86400


def test_the_recycling_survives_the_stored_state() -> None:
    touches = [
        _touch("e1", "demo_requested", days_ago=7),
        _touch("e2", "sales_rejected", days_ago=2, reason="no budget"),
    ]
    state = folding.LeadState(model_version=MODEL.version)
    for touch in touches:
        folding.fold(state, model=MODEL, touch=touch)
    stored = folding.from_json(orjson.loads(orjson.dumps(folding.to_json(state))), model=MODEL)
    assert stored is not None
    settled = folding.settle(stored, model=MODEL, persona=Persona(), now=NOW).assessment
    assert settled.qualification is Qualification.RECYCLED
    assert settled.qualification_reason.endswith("(no budget)")


def test_a_state_stored_before_recycling_existed_is_replayed() -> None:
    shape = folding.to_json(folding.LeadState(model_version=MODEL.version))
    assert folding.from_json({**shape, "v": 1}, model=MODEL) is None
