"""Which outbound lead events a lead change is, what each carries, who gets it, and the ids
that make a redelivery the same message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.routing.domain import lead_events as le
from shared.events import LeadChange, LeadMoves, LeadSnapshot

AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 7, 10, 0, 2, tzinfo=UTC)
OWNER = le.Owner("sales", "ana@seller.example")
LEAD = LeadSnapshot(
    id="lead-1",
    email="ana@acme.example",
    first_name="Ana",
    score=72,
    qualification="sql",
    funnel_stage="intent",
    journey_stage="requirements_building",
    bant={
        "budget": {"score": 80, "met": True, "evidence": [{"event_id": "e1", "points": 40}]},
        "timing": {"score": 20, "met": False, "evidence": []},
    },
)


def change(**moves: Any) -> LeadChange:
    return LeadChange(
        event_id="change-1",
        lead_id="lead-1",
        cause_event_id="touch-1",
        occurred_at=AT,
        changes=LeadMoves(**moves),
        lead=LEAD,
    )


def types(events: list[le.LeadEvent]) -> list[str]:
    return [e.type for e in events]


def test_a_new_lead_that_qualifies_at_once_is_created_then_qualified_without_a_stage_change():
    events = le.events_of_change(
        change(
            created=True,
            qualification=("unqualified", "sql"),
            funnel=(None, "intent"),
            journey=(None, "requirements_building"),
        ),
        owner=OWNER,
    )
    assert types(events) == ["lead.created", "lead.qualified"]
    assert events[1].data["qualification"] == {"from": "unqualified", "to": "sql"}


@pytest.mark.parametrize(
    ("move", "qualifies"),
    [
        (("unqualified", "mql"), True),
        (("mql", "sql"), True),
        (("unqualified", "sql"), True),
        (("recycled", "mql"), True),
        (("disqualified", "sql"), True),
        ((None, "mql"), True),
        (("sql", "mql"), False),  # fell back
        (("sql", "customer"), False),  # won: not a qualification
        (("mql", "recycled"), False),
        (("mql", "disqualified"), False),
        (("unqualified", "unqualified"), False),
    ],
)
def test_only_a_move_up_to_mql_or_sql_is_lead_qualified(move, qualifies):
    assert le.is_qualifying(move) is qualifies
    assert (
        "lead.qualified" in types(le.events_of_change(change(qualification=move), owner=None))
    ) is qualifies


def test_a_stage_move_is_one_stage_changed_event_naming_each_track_that_moved():
    [event] = le.events_of_change(
        change(
            funnel=("consideration", "intent"),
            journey=("solution_exploration", "solution_exploration"),
        ),
        owner=OWNER,
    )
    assert event.type == "lead.stage_changed"
    assert event.data["stages"] == {"funnel": {"from": "consideration", "to": "intent"}}


def test_a_merge_names_the_lead_merged_away():
    [event] = le.events_of_change(change(merged_from="lead-0"), owner=OWNER)
    assert event.type == "lead.merged"
    assert event.data["merged_from"] == "lead-0"


def test_a_rescore_that_moved_nothing_is_no_event():
    assert le.events_of_change(change(rescored=True, score_delta=-3), owner=OWNER) == []


def test_every_event_carries_the_lead_with_owner_and_bant_without_evidence_and_its_cause():
    [event] = le.events_of_change(change(created=True), owner=OWNER)
    lead = event.data["lead"]
    assert event.occurred_at == AT
    assert event.data["cause_event_id"] == "touch-1"
    assert lead["id"] == "lead-1" and lead["email"] == "ana@acme.example"
    assert lead["qualification"] == "sql" and lead["funnel_stage"] == "intent"
    assert lead["owner"] == {"team": "sales", "member": "ana@seller.example"}
    assert lead["bant"] == {
        "budget": {"score": 80, "met": True},
        "timing": {"score": 20, "met": False},
    }


def test_owner_assigned_names_the_new_and_previous_owner_and_the_rule():
    event = le.owner_assigned(
        lead=LEAD,
        owner=OWNER,
        previous=le.Owner("sdr", None),
        rule="sql_to_sales",
        cause_event_id="touch-1",
        at=AT,
    )
    assert event.type == "lead.owner_assigned"
    assert event.data["owner"] == {"team": "sales", "member": "ana@seller.example"}
    assert event.data["previous_owner"] == {"team": "sdr", "member": None}
    assert event.data["rule"] == "sql_to_sales"
    assert event.data["lead"]["owner"] == event.data["owner"]


SUBSCRIPTIONS = [
    le.Subscription("sub-all", "https://crm.example/all", frozenset(le.EVENT_TYPES)),
    le.Subscription("sub-q", "https://crm.example/q", frozenset({"lead.qualified"})),
]


def test_each_subscription_gets_a_due_delivery_of_only_the_events_it_wants():
    events = le.events_of_change(
        change(created=True, qualification=("unqualified", "sql")), owner=OWNER
    )
    planned = le.deliveries(events, subscriptions=SUBSCRIPTIONS, source_id="change-1", now=NOW)
    assert [(a.payload["subscription_id"], a.playbook) for a in planned] == [
        ("sub-all", "lead.created"),
        ("sub-all", "lead.qualified"),
        ("sub-q", "lead.qualified"),
    ]
    action = planned[2]
    assert action.kind == "lead_webhook" and action.due_at == NOW
    assert action.payload["url"] == "https://crm.example/q"
    assert action.payload["body"] == {
        "type": "lead.qualified",
        "timestamp": AT.isoformat(),
        "data": events[1].data,
    }
    assert action.idempotency_key == f"lead_webhook:{action.payload['msg_id']}"


def test_message_ids_are_the_same_for_the_same_cause_and_differ_by_type_and_subscription():
    one = le.message_id(subscription_id="s", event_type="lead.created", source_id="c")
    assert one == le.message_id(subscription_id="s", event_type="lead.created", source_id="c")
    assert one.startswith("msg_") and len(one) <= 64
    assert one != le.message_id(subscription_id="s", event_type="lead.merged", source_id="c")
    assert one != le.message_id(subscription_id="t", event_type="lead.created", source_id="c")
    assert one != le.message_id(subscription_id="s", event_type="lead.created", source_id="d")
