"""Routing takes a poll batch as one unit of work: what a batch stores is what handling its
changes one after the other stores (owners, round-robin, actions, suppressions), a repeated
change counts once, and a poison record is parked alone while the rest is routed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select

from leadflow.runtime import Runtime
from services.routing.batch import HISTORY_PLAYBOOKS
from services.routing.domain import playbooks as pb
from services.routing.repository import (
    actions,
    assignments,
    member_availability,
    suppressions,
    team_state,
)
from services.routing.service import load_config
from services.scoring.repository import leads, touches
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import make_engine, processed_events
from shared.events import LeadChange
from shared.kafka import AsyncProducer, ensure_topics
from tests.integration.routing.conftest import free_port, routing_settings
from tests.integration.shared.test_consumer_loop import read_all, wait_until

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
SALES = ["ana@seller.example", "ben@seller.example", "cai@seller.example"]
CART_1 = {"id": "cart-1", "value": 20.0, "items": [{"title": "Socks", "quantity": 2}]}
CART_2 = {"id": "cart-2", "value": 90.0, "items": [{"title": "Shoes", "quantity": 1}]}


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def change(
    event_id: str,
    lead_id: str,
    qualification: str,
    *,
    touch: str = "page_view",
    moved_from: str | None = None,
    minutes_ago: float = 10,
    **properties: Any,
) -> LeadChange:
    """A lead change as scoring publishes it, caused by a touch of `touch` type."""
    moves = {"qualification": [moved_from, qualification]} if moved_from else {}
    return LeadChange(
        event_id=event_id,
        lead_id=lead_id,
        cause_event_id=f"touch-{event_id}",
        occurred_at=at(minutes_ago),
        changes=moves,
        lead={"id": lead_id, "qualification": qualification, "score": 40},
        touch={
            "event_id": f"touch-{event_id}",
            "type": touch,
            "occurred_at": at(minutes_ago).isoformat(),
            "properties": properties,
        },
    )


def configured(settings: Settings, tmp_path: Path, **overrides: Any) -> Settings:
    """The test routing config (sales: three members, SLA on sql; sdr: one member), fresh
    topics and group, and no action delivery while the test looks at the stored rows."""
    tag = uuid.uuid4().hex[:8]
    return routing_settings(
        settings,
        tmp_path,
        smtp_port=free_port(),
        receiver_url="http://127.0.0.1:9",
        cart_delay="1h",
        actions_poll_interval_s=3600,
        topic_lead_changes=f"b{tag}.lead-changes",
        group_routing=f"b{tag}.routing",
        **overrides,
    )


def add_leads(settings: Settings, *lead_ids: str, qualification: str = "mql") -> None:
    """Lead rows as scoring stores them (routing plans with what they say)."""
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            for lead_id in lead_ids:
                conn.execute(
                    insert(leads).values(
                        id=lead_id,
                        email=f"{lead_id}@buyer.example",
                        first_name=lead_id.title(),
                        qualification=qualification,
                        score=0,
                        bant={},
                        model_version="test",
                        created_at=at(60),
                        updated_at=at(60),
                    )
                )
    finally:
        engine.dispose()


def add_order(settings: Settings, *, lead_id: str, minutes_ago: float) -> None:
    """An order touch scoring stored for the lead."""
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(touches).values(
                    event_id=f"order-{lead_id}",
                    lead_id=lead_id,
                    type="order_completed",
                    source="shop",
                    occurred_at=at(minutes_ago),
                    received_at=at(minutes_ago),
                    properties={},
                )
            )
    finally:
        engine.dispose()


def set_away(settings: Settings, *, team: str, member: str) -> None:
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(member_availability).values(
                    team=team, member=member, away=True, away_until=None, updated_at=at(60)
                )
            )
    finally:
        engine.dispose()


def route(settings: Settings, values: Sequence[bytes]) -> ConsumerLoop:
    """Put the values on the lead-change topic under one key (one partition, in this order),
    run routing until it has dealt with each, and return its consumer loop."""
    ensure_topics(settings=settings)
    producer = AsyncProducer(settings=settings)
    try:
        producer.publish_many_sync(
            [(settings.topic_lead_changes, b"one-key", v, []) for v in values]
        )
    finally:
        producer.close()
    runtime = Runtime(settings=settings, services=("routing",))
    runtime.start()
    try:
        assert runtime.resources is not None
        (loop,) = runtime.resources.consumers
        wait_until(lambda: loop.processed + loop.dead_lettered == len(values))
    finally:
        runtime.stop()
    return loop


def batched(settings: Settings, changes: Sequence[LeadChange]) -> ConsumerLoop:
    """Route the changes as one poll batch, and check that they went as one."""
    loop = route(settings, [c.to_bytes() for c in changes])
    assert (loop.batches, loop.batch_fallbacks) == (1, 0), "the batch was not handled whole"
    return loop


def one_by_one(settings: Settings, changes: Sequence[LeadChange]) -> None:
    """Route the changes again, on a topic and group of their own, one record per poll."""
    tag = uuid.uuid4().hex[:8]
    again = settings.model_copy(
        update={
            "topic_lead_changes": f"o{tag}.lead-changes",
            "group_routing": f"o{tag}.routing",
            "consumer_max_poll_records": 1,
        }
    )
    loop = route(again, [c.to_bytes() for c in changes])
    assert loop.batches == 0 and loop.processed == len(changes)


def outcome(settings: Settings) -> dict[str, Any]:
    """What routing stored, without what differs from run to run (ids, clocks)."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            owners = conn.execute(select(assignments).order_by(assignments.c.id)).all()
            number = {row.id: n for n, row in enumerate(owners)}
            stored = conn.execute(select(actions)).all()
            return {
                "assignments": [
                    (
                        r.lead_id,
                        r.team,
                        r.member,
                        r.rule,
                        r.cause_event_id,
                        r.current,
                        bool(r.sla_due_at),
                    )
                    for r in owners
                ],
                "actions": sorted(
                    (
                        r.lead_id,
                        r.kind,
                        r.playbook,
                        r.status,
                        r.team,
                        r.member,
                        r.cancel_reason,
                        str(number[r.payload["assignment_id"]])
                        if r.kind == "sla"
                        else r.idempotency_key,
                        str(sorted(r.payload.get("cart_ids", []))),
                    )
                    for r in stored
                ),
                "suppressed": sorted(r.lead_id for r in conn.execute(select(suppressions))),
                "round_robin": {r.team: r.last_assigned for r in conn.execute(select(team_state))},
                "processed": conn.execute(
                    select(func.count()).select_from(processed_events)
                ).scalar_one(),
            }
    finally:
        engine.dispose()


def forget_routing(settings: Settings) -> None:
    """Drop what routing stored, keeping the leads, so the same changes can be routed again."""
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            for table in (actions, assignments, suppressions, team_state, processed_events):
                conn.execute(delete(table))
    finally:
        engine.dispose()


def by_lead(result: dict[str, Any], lead_id: str) -> list[tuple[Any, ...]]:
    return [a for a in result["actions"] if a[0] == lead_id]


def test_a_change_repeated_in_a_batch_is_routed_once(settings: Settings, tmp_path: Path):
    own = configured(settings, tmp_path)
    add_leads(own, "ada", qualification="sql")
    add_leads(own, "bo")
    webinar = change("c-ada", "ada", "sql", touch="webinar_attended", moved_from="mql")
    batched(
        own,
        [webinar, change("c-bo", "bo", "mql"), webinar, change("c-bo", "bo", "mql")],
    )
    result = outcome(own)
    assert result["processed"] == 2
    assert result["assignments"] == [
        ("ada", "sales", SALES[0], "sql_to_sales", "c-ada", True, True),
        ("bo", "sdr", "jo@seller.example", "mql_to_sdr", "c-bo", True, False),
    ]
    assert sorted(a[2] for a in by_lead(result, "ada")) == [
        "event_followup",
        "event_task",
        "sales_alert",
        "sla",
    ]
    assert by_lead(result, "bo") == []
    assert result["round_robin"] == {"sales": SALES[0], "sdr": "jo@seller.example"}


def test_changes_of_one_lead_in_a_batch_end_as_they_would_one_after_the_other(
    settings: Settings, tmp_path: Path
):
    own = configured(settings, tmp_path)
    add_leads(own, "cy", "di", "eve")
    add_order(own, lead_id="eve", minutes_ago=5)  # after her cart: nothing to chase
    changes = [
        change("cy-1", "cy", "mql", touch="cart_add", minutes_ago=30, cart=CART_1),
        change(
            "cy-2", "cy", "sql", touch="cart_add", moved_from="mql", minutes_ago=20, cart=CART_2
        ),
        change("di-1", "di", "mql", touch="unsubscribe", minutes_ago=20),
        change("di-2", "di", "mql", touch="cart_add", minutes_ago=15, cart=CART_1),
        change("eve-1", "eve", "mql", touch="cart_add", minutes_ago=10, cart=CART_1),
        change("gone-1", "gone", "sql", minutes_ago=10),  # merged away: owned, no plan
        change("cy-3", "cy", "sql", touch="order_completed", minutes_ago=5, cart=CART_2),
        change("cy-4", "cy", "mql", moved_from="sql", minutes_ago=1),
    ]
    batched(own, changes)
    together = outcome(own)
    forget_routing(own)
    one_by_one(own, changes)
    assert outcome(own) == together

    # cy: sdr, then sales (a new owner with an SLA), then sdr again.
    cy = [a for a in together["assignments"] if a[0] == "cy"]
    assert [(a[1], a[2], a[5]) for a in cy] == [
        ("sdr", "jo@seller.example", False),
        ("sales", SALES[0], False),
        ("sdr", "jo@seller.example", True),
    ]
    [cart] = [a for a in by_lead(together, "cy") if a[2] == "abandoned_cart"]
    assert cart[3] == "cancelled" and cart[6] == "ordered: touch-cy-3"
    assert cart[8] == str(["cart-1", "cart-2"]), "the second cart merged into the pending email"
    assert {a[2] for a in by_lead(together, "cy")} == {"abandoned_cart", "sales_alert", "sla"}
    assert together["suppressed"] == ["di"]
    assert [a[2] for a in by_lead(together, "di")] == ["abandoned_cart"]
    assert by_lead(together, "eve") == []
    assert [a[2] for a in by_lead(together, "gone")] == ["sla"]


def test_round_robin_across_a_batch_matches_one_by_one(settings: Settings, tmp_path: Path):
    own = configured(settings, tmp_path)
    names = [f"lead{n}" for n in range(7)]
    add_leads(own, *names)
    set_away(own, team="sales", member=SALES[1])
    changes = [change(f"rr-{name}", name, "sql") for name in names]
    changes.insert(4, change("rr-lead1-out", "lead1", "mql"))  # moves on to sdr
    batched(own, changes)
    together = outcome(own)
    forget_routing(own)
    one_by_one(own, changes)
    assert outcome(own) == together

    current = {a[0]: a[2] for a in together["assignments"] if a[5] and a[1] == "sales"}
    assert [current.get(name) for name in names] == [
        SALES[0],
        None,  # moved on to sdr
        SALES[0],
        SALES[2],
        SALES[0],
        SALES[2],
        SALES[0],
    ]
    first = next(a for a in together["assignments"] if a[0] == "lead1")
    assert first[1:3] == ("sales", SALES[2]), "ben is away: ana, cai, ana, ..."
    assert together["round_robin"]["sales"] == SALES[0]


def test_capacity_counts_the_owners_a_batch_gives_and_takes(settings: Settings, tmp_path: Path):
    own = configured(settings, tmp_path)
    path = Path(own.routing_config)
    ana = '{ id = "ana@seller.example" }'
    path.write_text(path.read_text().replace(ana, ana.replace(" }", ", capacity = 1 }")))
    names = [f"cap{n}" for n in range(5)]
    add_leads(own, *names)
    changes = [change(f"cap-{name}", name, "sql") for name in names]
    # ana is full after cap0 until cap0 moves on to sdr; then she is next in turn again.
    changes.insert(3, change("cap-cap0-out", "cap0", "mql"))
    batched(own, changes)
    together = outcome(own)
    forget_routing(own)
    one_by_one(own, changes)
    assert outcome(own) == together
    assert [(a[0], a[2]) for a in together["assignments"]] == [
        ("cap0", SALES[0]),
        ("cap1", SALES[1]),
        ("cap2", SALES[2]),
        ("cap0", "jo@seller.example"),
        ("cap3", SALES[0]),
        ("cap4", SALES[1]),
    ]


def test_a_poison_record_in_a_batch_goes_to_the_dlq_alone_and_the_rest_is_routed(
    settings: Settings, tmp_path: Path
):
    own = configured(settings, tmp_path)
    add_leads(own, "fay", "gus")
    values = [
        change("fay-1", "fay", "sql", touch="trial_started").to_bytes(),
        b"{not json",
        change("gus-1", "gus", "mql", touch="webinar_attended").to_bytes(),
        change("fay-1", "fay", "sql", touch="trial_started").to_bytes(),
    ]
    loop = route(own, values)
    assert (loop.batches, loop.batch_fallbacks, loop.dead_lettered) == (0, 1, 1)
    parked = read_all(own, own.dlq_topic(own.topic_lead_changes), 1)
    assert [r.value for r in parked] == [b"{not json"]
    result = outcome(own)
    assert result["processed"] == 2
    assert [(a[0], a[1], a[2]) for a in result["assignments"]] == [
        ("fay", "sales", SALES[0]),
        ("gus", "sdr", "jo@seller.example"),
    ]
    assert sorted(a[2] for a in by_lead(result, "fay")) == ["sla", "trial_nudge"]
    assert sorted(a[2] for a in by_lead(result, "gus")) == ["event_followup", "event_task"]
    assert sum(loop.committed_offsets().values()) == len(values)


def test_planning_reads_no_history_but_that_of_the_playbooks_a_batch_loads():
    # The batch loads the history of HISTORY_PLAYBOOKS only: planning must come out the same
    # without every other playbook's actions, whatever their status.
    config = load_config("default")
    team = config.team(config.default_team)
    state = pb.LeadState("ivy", "ivy@buyer.example", "Ivy", "sql", "evaluation", "sales", None)
    playbooks = [
        pb.ABANDONED_CART,
        pb.CART_REMINDER,
        pb.TRIAL_NUDGE,
        pb.EVENT_FOLLOWUP,
        pb.EVENT_TASK,
        pb.SALES_ALERT,
        pb.STAGE_REGRESSION,
        "sla",
        "sla_breach",
    ]
    cart_payload = {"cart_ids": ["cart-1"], "carts": {}, "first_cart_at": at(60).isoformat()}
    history = [
        pb.Action(
            f"{playbook}-{status}",
            "email",
            playbook,
            f"{playbook}:{status}",
            status,
            at(-30),
            {**cart_payload, "trial_started_at": at(60).isoformat()},
        )
        for playbook in playbooks
        for status in ("scheduled", "sent", "cancelled", "open")
    ]
    loaded = [a for a in history if a.playbook in HISTORY_PLAYBOOKS]
    touches = [
        ("cart_add", {"cart": CART_1}),
        ("checkout_started", {"cart": CART_2}),
        ("order_completed", {"cart": CART_1}),
        ("trial_started", {}),
        ("trial_activated", {}),
        ("webinar_attended", {"title": "Intro"}),
        ("page_view", {}),
    ]
    for kind, properties in touches:
        touch = pb.Touch(f"t-{kind}", kind, at(5), properties)
        for moves in [(None, None), (("mql", "sql"), ("evaluation", "interest"))]:
            planned = [
                pb.plan_change(
                    change=pb.Change("c", state, touch, *moves),
                    history=seen,
                    orders=[],
                    config=config.playbooks,
                    team=team,
                    now=NOW,
                )
                for seen in (history, loaded)
            ]
            assert planned[0] == planned[1], (kind, moves)
