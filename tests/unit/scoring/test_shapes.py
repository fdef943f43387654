"""Scoring's data shapes: the traits a touch adds to its lead, and the lead's view of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.scoring.shapes import merge_traits, persona_values
from shared.events import MAX_TRAITS, LeadIn, TouchEnvelope, lead_key_for

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _touch(**lead: object) -> TouchEnvelope:
    person = LeadIn.model_validate({"email": "ana@acme.example", **lead})
    return TouchEnvelope(
        event_id="e1",
        type="identify",
        occurred_at=AT,
        received_at=AT,
        source="segment",
        lead_key=lead_key_for(email=person.email, anonymous_id=None),
        lead=person,
    )


def test_a_trait_the_touch_states_replaces_the_stored_one_and_others_stay() -> None:
    stored = {"plan": "starter", "logins": 3}
    assert merge_traits(stored, {"plan": "enterprise", "region": "emea"}) == {
        "plan": "enterprise",
        "logins": 3,
        "region": "emea",
    }
    assert stored == {"plan": "starter", "logins": 3}  # not changed in place


def test_a_lead_with_max_traits_takes_new_values_but_no_new_trait() -> None:
    stored = {f"t{i}": i for i in range(MAX_TRAITS)}
    merged = merge_traits(stored, {"t0": "new", "one_too_many": 1})
    assert merged["t0"] == "new"
    assert "one_too_many" not in merged
    assert len(merged) == MAX_TRAITS


def test_persona_values_merge_the_touch_s_traits_into_the_lead_s() -> None:
    row = {"traits": {"logins": 3, "plan": "starter"}, "last_touch_at": AT - timedelta(hours=1)}
    values = persona_values(_touch(traits={"plan": "pro"}), row=row)
    assert values["traits"] == {"logins": 3, "plan": "pro"}


def test_a_touch_older_than_the_lead_s_newest_adds_traits_but_replaces_none() -> None:
    row = {"traits": {"plan": "starter"}, "last_touch_at": AT + timedelta(hours=1)}
    values = persona_values(_touch(traits={"plan": "pro", "region": "emea"}), row=row)
    assert values["traits"] == {"plan": "starter", "region": "emea"}


def test_a_new_lead_takes_the_touch_s_traits() -> None:
    values = persona_values(_touch(traits={"plan": "pro"}), row={"traits": None})
    assert values["traits"] == {"plan": "pro"}


def test_a_touch_without_traits_leaves_the_stored_ones_alone() -> None:
    row = {"traits": {"plan": "pro"}, "last_touch_at": None}
    assert "traits" not in persona_values(_touch(first_name="Ana"), row=row)
