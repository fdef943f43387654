"""Folding a lead's touches one at a time gives what replaying the whole history gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.scoring.domain import folding
from services.scoring.domain.model import Persona, Touch
from services.scoring.domain.qualification import assess, in_history_order
from services.scoring.domain.scoring_model import ScoringModel, parse_model

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MODELS = Path(__file__).resolve().parents[3] / "services/scoring/models"
B2B = parse_model((MODELS / "b2b_saas.toml").read_text(), source="b2b_saas.toml")
B2C = parse_model((MODELS / "b2c_ecommerce.toml").read_text(), source="b2c_ecommerce.toml")

KINDS: list[tuple[str, dict[str, Any]]] = [
    ("page_view", {"url": "https://seller.example/pricing"}),
    ("page_view", {"url": "https://seller.example/blog/x"}),
    ("page_view", {}),
    ("content_download", {"topic": "problem"}),
    ("webinar_attended", {}),
    ("pricing_viewed", {}),
    ("demo_requested", {}),
    ("trial_started", {}),
    ("form_submit", {"budget": "50-100k", "timeline": "this quarter"}),
    ("form_submit", {"budget": "under 10k"}),
    ("committee_rejected", {}),
    ("cart_updated", {"cart": {"value": 250}}),
    ("checkout_started", {"cart": {"value": 90}}),
    ("order_completed", {}),
    ("disqualified", {}),
    ("meeting_booked", {}),
    ("sales_rejected", {"reason": "no budget"}),
    ("sales_accepted", {}),
]


def _history(seed: int, size: int) -> list[Touch]:
    rng = random.Random(seed)
    touches = []
    for i in range(size):
        kind, properties = rng.choice(KINDS)
        at = NOW - timedelta(days=rng.uniform(0, 150), seconds=rng.randrange(3))
        touches.append(Touch(f"e{seed}-{i:03d}", kind, at, properties=properties))
    return touches


@pytest.mark.parametrize("model", [B2B, B2C], ids=["b2b", "b2c"])
@pytest.mark.parametrize("seed", range(40))
def test_folding_in_order_through_the_stored_shape_gives_the_replayed_assessment(
    model: ScoringModel, seed: int
) -> None:
    touches = sorted(_history(seed, 5 + seed * 3), key=lambda t: (t.occurred_at, t.event_id))
    persona = Persona(job_title="VP of Engineering", employees=250, company_domain="acme.example")
    state = folding.LeadState(model_version=model.version)
    moves = []
    for touch in touches:
        assert not state.is_late(touch)
        moves += folding.fold(state, model=model, touch=touch)
        stored = orjson.loads(orjson.dumps(folding.to_json(state)))  # as the store keeps it
        restored = folding.from_json(stored, model=model)
        assert restored == state
        state = restored
    settled = folding.settle(state, model=model, persona=persona, now=NOW)
    replayed = assess(model=model, persona=persona, touches=touches[::-1], now=NOW)
    assert settled.assessment.bant == replayed.bant
    assert settled.assessment.score == replayed.score
    assert settled.assessment.qualification == replayed.qualification
    assert settled.assessment.qualification_reason == replayed.qualification_reason
    assert settled.assessment.funnel_stage == replayed.funnel_stage
    assert settled.assessment.journey_stage == replayed.journey_stage
    assert in_history_order([*moves, *settled.pending]) == replayed.transitions


def test_a_touch_older_than_the_newest_folded_is_late() -> None:
    state = folding.LeadState(model_version=B2B.version)
    folding.fold(state, model=B2B, touch=Touch("b", "page_view", NOW))
    assert state.is_late(Touch("a", "page_view", NOW))  # same time, lower id: sorts before
    assert state.is_late(Touch("z", "page_view", NOW - timedelta(seconds=1)))
    assert not state.is_late(Touch("c", "page_view", NOW))


def test_a_capped_rule_keeps_only_the_matches_that_can_still_add_points() -> None:
    state = folding.LeadState(model_version=B2B.version)
    for i in range(300):
        folding.fold(state, model=B2B, touch=Touch(f"p{i:03d}", "page_view", NOW))
    page_views = next(r for r in B2B.rules if r.name == "page_views")
    assert page_views.max_points is not None
    assert len(state.memory.matches["page_views"]) == page_views.max_points
    assert state.memory.matches["page_views"][0].event_id == "p299"


def test_a_state_kept_for_another_model_version_is_not_used() -> None:
    state = folding.LeadState(model_version="older-model")
    assert folding.from_json(folding.to_json(state), model=B2B) is None
    assert folding.from_json(None, model=B2B) is None
