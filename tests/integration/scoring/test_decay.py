"""Decay reaches the stored score: the sweep re-derives stale leads, stores and publishes what
moved, and /explain explains the stored number with each item's points then and now."""

from __future__ import annotations

from datetime import timedelta

from kafka import KafkaConsumer

from services.scoring.service import load_models, rescore_stale
from shared import outbox
from shared.db import transaction
from shared.events import LeadChange, utcnow
from tests.integration.scoring.test_scenarios import at, lead_when, post


def _changes_of(settings, lead_id: str) -> list[LeadChange]:
    """Every lead change of `lead_id` on the lead-changes topic so far."""
    consumer = KafkaConsumer(
        settings.topic_lead_changes,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3_000,
    )
    try:
        found = [LeadChange.from_bytes(m.value) for m in consumer]
    finally:
        consumer.close()
    return [c for c in found if c.lead_id == lead_id]


async def test_a_stale_score_decays_on_the_sweep_is_published_and_explained(client, runtime):
    email = "dee@globex.example"
    await post(
        client,
        {"type": "pricing_viewed", "occurred_at": at(1), "lead": {"email": email}},
        {"type": "webinar_attended", "occurred_at": at(1), "lead": {"email": email}},
    )
    fresh = await lead_when(client, email, lambda x: x["score"] > 0 and x["owner"])
    settings, resources = runtime.settings, runtime.resources
    model = load_models(settings.scoring_model)
    later = utcnow() + timedelta(days=60)  # far past every behaviour rule's half-life

    with transaction(resources.sessions) as session:
        seen, moved = rescore_stale(session, settings=settings, models=model, now=later)
    assert (seen, moved) == (1, 1)
    outbox.flush(sessions=resources.sessions, producer=resources.producer)

    decayed = await lead_when(client, email, lambda x: x["score"] < fresh["score"])
    listed = await client.get("/v1/leads", params={"min_score": fresh["score"], "email": email})
    assert listed.json()["items"] == [], "filters read the decayed score"
    published = [c for c in _changes_of(settings, fresh["id"]) if c.changes.rescored]
    assert [c.lead.score for c in published] == [decayed["score"]]

    explained = (await client.get(f"/v1/leads/{fresh['id']}/explain")).json()
    assert explained["score"] == decayed["score"], "explains the stored number"
    assert explained["scored_at"][:10] == later.date().isoformat()
    items = [e for dim in explained["evidence"].values() for e in dim if e["type"] != "persona"]
    behaviour = [e for e in items if e["half_life_days"]]
    assert behaviour, explained["evidence"]
    for item in behaviour:
        assert item["original_points"] > item["points"]
    # Asked today, before the sweep's `later`: the evidence is worth more today than then.
    assert explained["score_now"] > explained["score"]
    assert all(e["points_now"] >= e["points"] for e in behaviour)

    # Just re-derived: not stale again until the refresh interval has passed.
    with transaction(resources.sessions) as session:
        assert rescore_stale(session, settings=settings, models=model, now=later) == (0, 0)
        later_still = later + timedelta(seconds=settings.scoring_decay_refresh_s + 1)
        seen, _ = rescore_stale(session, settings=settings, models=model, now=later_still)
    assert seen == 1


async def test_a_lead_scored_just_now_is_not_stale(client, runtime):
    email = "fresh@globex.example"
    await post(client, {"type": "pricing_viewed", "lead": {"email": email}})
    await lead_when(client, email, lambda x: x["score"] > 0 and x["owner"])
    model = load_models(runtime.settings.scoring_model)
    with transaction(runtime.resources.sessions) as session:
        assert rescore_stale(session, settings=runtime.settings, models=model, now=utcnow()) == (
            0,
            0,
        )
