"""A poll batch scored as one unit of work ends in the same stored state as the same touches
scored one by one (the record-by-record fallback): leads, stage history, accounts, folded states
and the lead changes, through duplicates, two events of one lead, a merge, a late event and an
account roll-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from services.scoring.handlers import score_touches
from services.scoring.repository import (
    accounts,
    lead_identities,
    lead_merges,
    lead_states,
    leads,
    stage_history,
    touches,
)
from services.scoring.service import load_models
from shared.config import Settings
from shared.db import make_engine, make_session_factory, metadata, outbox, transaction
from shared.events import LeadChange, TouchEnvelope, TouchEventIn

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def touch(event_id: str, kind: str, *, days_ago: float, lead: dict[str, Any], **props: Any):
    event = TouchEventIn.model_validate(
        {
            "type": kind,
            "event_id": event_id,
            "occurred_at": (NOW - timedelta(days=days_ago)).isoformat(),
            "lead": lead,
            "properties": props,
        }
    )
    return TouchEnvelope.from_native(event, received_at=NOW)


ANA = {
    "email": "ana@acme.example",
    "job_title": "VP of Engineering",
    "company": {"domain": "acme.example", "employees": 400},
}
BO = {"email": "bo@acme.example", "job_title": "Procurement Manager"}
TOUCHES = [
    touch("v-1", "pricing_viewed", days_ago=6, lead={"anonymous_id": "visitor-1"}),
    touch("ana-1", "page_view", days_ago=5, lead=ANA, url="https://seller.example/blog/a"),
    touch("ana-2", "content_download", days_ago=4, lead=ANA, topic="problem"),
    touch("bo-1", "demo_requested", days_ago=3, lead=BO),
    # Ties the visitor to Ana: the anonymous lead merges into her.
    touch(
        "ana-3",
        "form_submit",
        days_ago=2,
        lead={"email": "ana@acme.example", "anonymous_id": "visitor-1"},
        budget="50-100k",
        is_decision_maker="yes",
    ),
    touch("ana-2", "content_download", days_ago=4, lead=ANA, topic="problem"),  # repeat
    touch("ana-late", "webinar_attended", days_ago=10, lead=ANA),  # older than the rest
    touch("ana-4", "trial_started", days_ago=1, lead=ANA),
    touch("bo-2", "committee_rejected", days_ago=0.5, lead=BO),
    touch("u-1", "page_view", days_ago=3, lead={"user_id": "user-7"}),
    touch("u-2", "pricing_viewed", days_ago=2, lead={"user_id": "user-7"}),
    touch("cy-1", "order_completed", days_ago=1, lead={"user_id": "user-7", "email": "cy@gx.io"}),
    touch("bo-3", "meeting_booked", days_ago=0.2, lead=BO),
    # Intent 45 days ago falls back after 30 days: a pending fall-back, then a newer touch.
    touch("dee-1", "pricing_viewed", days_ago=45, lead={"email": "dee@initech.example"}),
    touch("dee-2", "page_view", days_ago=1, lead={"email": "dee@initech.example"}),
    touch("ana-5", "page_view", days_ago=0.1, lead=ANA, url="https://seller.example/pricing"),
]


def snapshot(database_url: str) -> dict[str, Any]:
    """The stored state with random lead ids replaced by the lead's email (or identities)."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        names: dict[str, str] = {}
        for row in conn.execute(select(lead_identities).order_by(lead_identities.c.value)):
            names.setdefault(row.lead_id, f"{row.kind}:{row.value}")
        for row in conn.execute(select(leads.c.id, leads.c.email)):
            if row.email:
                names[row.id] = row.email
        name: Callable[[str], str] = lambda lead_id: names.get(lead_id, "?")  # noqa: E731
        keep = [c.name for c in leads.columns if c.name not in ("id", "created_at", "updated_at")]
        found = {
            "leads": {
                name(r.id): {c: getattr(r, c) for c in keep} for r in conn.execute(select(leads))
            },
            "touches": sorted((r.event_id, name(r.lead_id)) for r in conn.execute(select(touches))),
            "stage_history": sorted(
                (
                    name(r.lead_id),
                    r.track,
                    r.from_stage or "",
                    r.to_stage or "",
                    r.at,
                    r.cause_event_id or "",
                    r.rule or "",
                    r.seconds_in_previous or -1.0,
                )
                for r in conn.execute(select(stage_history))
            ),
            "states": {
                name(r.lead_id): (r.state, r.qualified_at, r.pending_after)
                for r in conn.execute(select(lead_states))
            },
            "accounts": {
                r.domain: (
                    r.bant,
                    r.funnel_stage,
                    r.journey_stage,
                    r.decision_maker_engaged,
                    sorted(
                        (name(m["lead_id"]), m["involvement"], m["function"]) for m in r.members
                    ),
                )
                for r in conn.execute(select(accounts))
            },
            "merges": sorted(
                (name(r.into_lead_id), r.cause_event_id) for r in conn.execute(select(lead_merges))
            ),
        }
        changes = {}
        for row in conn.execute(select(outbox).order_by(outbox.c.id)):
            change = LeadChange.model_validate(orjson.loads(row.value))
            view = change.lead.model_dump(exclude={"id", "account"})
            moves = change.changes.model_dump(by_alias=True)
            changes[change.cause_event_id] = (
                name(change.lead_id),
                {**moves, **({"merged_from": "a lead"} if moves["merged_from"] else {})},
                view,
            )
        found["changes"] = changes
    engine.dispose()
    return found


def wipe(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


def test_one_batch_and_one_by_one_end_in_the_same_state(clean_db: str) -> None:
    settings = Settings(database_url=clean_db)
    model = load_models(settings.scoring_model)
    sessions = make_session_factory(make_engine(clean_db))

    with transaction(sessions) as session:
        batch_changes = score_touches(
            session, envelopes=TOUCHES, settings=settings, models=model, now=NOW
        )
    in_one_batch = snapshot(clean_db)

    wipe(clean_db)
    single_changes = []
    for envelope in TOUCHES:
        with transaction(sessions) as session:
            single_changes += score_touches(
                session, envelopes=[envelope], settings=settings, models=model, now=NOW
            )
    one_by_one = snapshot(clean_db)

    # The repeat of ana-2 makes no second change either way.
    assert len(batch_changes) == len(single_changes) == len(TOUCHES) - 1
    for part in ("leads", "touches", "stage_history", "states", "accounts", "merges"):
        assert in_one_batch[part] == one_by_one[part], part
    assert in_one_batch["changes"] == one_by_one["changes"]
    # And the scenario did what it says: a merge, a replayed late event, an account of two.
    assert in_one_batch["merges"] == [("ana@acme.example", "ana-3")]
    assert ("ana-late", "ana@acme.example") in in_one_batch["touches"]
    assert "anonymous_id:visitor-1" not in in_one_batch["leads"]
    assert {m[0] for m in in_one_batch["accounts"]["acme.example"][4]} == {
        "ana@acme.example",
        "bo@acme.example",
    }
    assert in_one_batch["leads"]["cy@gx.io"]["qualification"] == "customer"
    assert in_one_batch["changes"]["ana-3"][1]["merged_from"] == "a lead"
    fallbacks = [m for m in in_one_batch["stage_history"] if m[6].startswith("no_intent")]
    assert [m[0] for m in fallbacks] == ["dee@initech.example"]


def test_a_touch_older_than_the_stored_state_is_replayed_into_its_place(clean_db: str) -> None:
    settings = Settings(database_url=clean_db)
    model = load_models(settings.scoring_model)
    sessions = make_session_factory(make_engine(clean_db))
    newer = touch("n-1", "content_download", days_ago=1, lead=ANA, topic="problem")
    older = touch("o-1", "pricing_viewed", days_ago=3, lead=ANA)
    for envelope in (newer, older):
        with transaction(sessions) as session:
            score_touches(session, envelopes=[envelope], settings=settings, models=model, now=NOW)
    late_first = snapshot(clean_db)
    wipe(clean_db)
    with transaction(sessions) as session:
        score_touches(session, envelopes=[older, newer], settings=settings, models=model, now=NOW)
    in_order = snapshot(clean_db)
    for part in ("leads", "accounts"):
        assert late_first[part] == in_order[part], part
    # Stage moves and the folded state are re-derived in time order; a qualification move is
    # recorded when its touch was scored (as before batches), so it is left out.
    folded = [
        {k: (v[0], v[2]) for k, v in found["states"].items()} for found in (late_first, in_order)
    ]
    assert folded[0] == folded[1]
    stages = [
        [m for m in found["stage_history"] if m[1] != "qualification"]
        for found in (late_first, in_order)
    ]
    assert stages[0] == stages[1] and stages[0]
    # In time order the content download came last: its journey stage holds.
    assert in_order["leads"]["ana@acme.example"]["journey_stage"] == "problem_identification"
