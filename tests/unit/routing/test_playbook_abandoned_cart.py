"""Abandoned-cart playbook: what cart activity and orders plan, including carts left before the
lead had an email."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from services.routing.domain.config import AbandonedCartConfig, PlaybooksConfig
from services.routing.domain.playbooks import (
    ABANDONED_CART,
    CART_REMINDER,
    TRIAL_NUDGE,
    NewAction,
    Touch,
)
from tests.unit.routing._playbook_fixtures import (
    CART_DELAY,
    CONFIG,
    LEAD,
    NOW,
    T0,
    _action,
    _cart,
    _cart_action,
    _empty,
    _order,
    _plan,
    _s,
    _touch,
)

# --- abandoned cart: planning -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cart_add", "checkout_started"])
def test_cart_activity_schedules_one_marketing_email_after_the_delay(kind: str) -> None:
    plan = _plan(_cart("c1", kind=kind))
    assert plan.cancel == [] and plan.update == []
    assert plan.schedule == [
        NewAction(
            kind="email",
            playbook=ABANDONED_CART,
            idempotency_key="abandoned_cart:lead-1:c1",
            due_at=_s(CART_DELAY),
            payload={
                "template": ABANDONED_CART,
                "carts": {"c1": {"id": "c1", "total": 10}},
                "cart_ids": ["c1"],
                "first_cart_at": T0.isoformat(),
            },
            marketing=True,
        )
    ]


def test_cart_key_is_stable_when_the_same_cart_event_is_planned_twice() -> None:
    first, second = _plan(_cart("c1")), _plan(_cart("c1"))
    assert first.schedule[0].idempotency_key == second.schedule[0].idempotency_key


def test_cart_activity_of_a_lead_without_email_plans_nothing() -> None:
    assert _empty(_plan(_cart("c1"), lead=replace(LEAD, email=None)))


def test_cart_activity_with_a_blank_email_plans_nothing() -> None:
    assert _empty(_plan(_cart("c1"), lead=replace(LEAD, email="")))


@pytest.mark.parametrize("props", [{}, {"cart": {}}, {"cart": {"id": ""}}, {"cart": "c1"}])
def test_cart_activity_without_a_cart_id_plans_nothing(props: dict[str, Any]) -> None:
    touch = Touch(event_id="e", type="cart_add", occurred_at=T0, properties=props)
    assert _empty(_plan(touch))


def test_numeric_cart_id_is_used_as_text_in_the_key() -> None:
    touch = Touch(event_id="e", type="cart_add", occurred_at=T0, properties={"cart": {"id": 7}})
    plan = _plan(touch)
    assert plan.schedule[0].idempotency_key == "abandoned_cart:lead-1:7"
    assert plan.schedule[0].payload["cart_ids"] == ["7"]


def test_cart_activity_plans_nothing_when_the_playbook_is_disabled() -> None:
    config = CONFIG.model_copy(update={"abandoned_cart": AbandonedCartConfig(enabled=False)})
    assert _empty(_plan(_cart("c1"), config=config))


def test_cart_activity_plans_nothing_when_that_cart_was_already_ordered() -> None:
    # The order for this cart was processed first (it even carries an earlier timestamp).
    plan = _plan(_cart("c1"), orders=[_order("c1", at=_s(-3600))])
    assert _empty(plan)


@pytest.mark.parametrize("offset", [0, 30])
def test_cart_activity_plans_nothing_when_an_order_was_placed_at_or_after_it(offset: int) -> None:
    plan = _plan(_cart("c1"), orders=[_order("other", at=_s(offset))])
    assert _empty(plan)


def test_an_older_order_for_another_cart_does_not_stop_the_cart_email() -> None:
    plan = _plan(_cart("c1"), orders=[_order("c0", at=_s(-3600))])
    assert [a.idempotency_key for a in plan.schedule] == ["abandoned_cart:lead-1:c1"]


@pytest.mark.parametrize("status", ["sent", "cancelled", "failed"])
def test_a_cart_already_emailed_is_not_emailed_again(status: str) -> None:
    history = [_cart_action(["c0", "c1"], status=status, first=_s(-7200))]
    assert _empty(_plan(_cart("c1"), history=history))


def test_an_emailed_other_cart_does_not_stop_a_new_cart_email() -> None:
    history = [_cart_action(["c0"], status="sent", first=_s(-7200))]
    plan = _plan(_cart("c1"), history=history)
    assert [a.idempotency_key for a in plan.schedule] == ["abandoned_cart:lead-1:c1"]
    assert plan.update == []


def test_a_pending_cart_email_is_updated_with_the_new_cart_instead_of_a_second_email() -> None:
    pending = _cart_action(["c9"], first=_s(-30), due_at=_s(-30 + CART_DELAY))
    plan = _plan(_cart("c1"), history=[pending])
    assert plan.schedule == [] and plan.cancel == []
    assert len(plan.update) == 1
    aid, due, payload = plan.update[0]
    assert aid == "a-cart"
    # The clock restarts with the newer cart: the later of the two due times wins.
    assert due == _s(CART_DELAY)
    assert payload["cart_ids"] == ["c1", "c9"]
    assert payload["carts"] == {"c9": {"id": "c9"}, "c1": {"id": "c1", "total": 10}}
    assert payload["first_cart_at"] == _s(-30).isoformat()
    assert payload["template"] == ABANDONED_CART


def test_a_pending_cart_email_keeps_its_later_due_time() -> None:
    later = _s(CART_DELAY + 900)
    pending = _cart_action(["c9"], due_at=later)
    plan = _plan(_cart("c1"), history=[pending])
    assert plan.update[0][1] == later


def test_merging_a_cart_does_not_mutate_the_pending_actions_payload() -> None:
    pending = _cart_action(["c9"])
    _plan(_cart("c1"), history=[pending])
    assert pending.payload["cart_ids"] == ["c9"]
    assert set(pending.payload["carts"]) == {"c9"}


def test_the_same_cart_again_keeps_a_single_cart_id_in_the_pending_email() -> None:
    plan = _plan(_cart("c1", at=_s(10)), history=[_cart_action(["c1"])])
    assert plan.schedule == []
    assert plan.update[0][2]["cart_ids"] == ["c1"]
    assert plan.update[0][1] == _s(10 + CART_DELAY)


def test_an_order_cancels_scheduled_cart_emails_and_reminders() -> None:
    history = [
        _cart_action(["c1"], aid="a-cart"),
        _cart_action(["c1"], aid="a-rem", playbook=CART_REMINDER),
        _action(aid="a-trial", playbook=TRIAL_NUDGE, trial_started_at=T0.isoformat()),
    ]
    plan = _plan(_order("c1", eid="ord-7"), history=history)
    assert sorted(plan.cancel) == [("a-cart", "ordered: ord-7"), ("a-rem", "ordered: ord-7")]
    assert all(reason.startswith("ordered") for _, reason in plan.cancel)
    assert plan.schedule == [] and plan.update == []


def test_an_order_does_not_cancel_cart_emails_already_sent() -> None:
    history = [
        _cart_action(["c1"], aid="a-sent", status="sent"),
        _cart_action(["c1"], aid="a-rem-sent", status="sent", playbook=CART_REMINDER),
        _cart_action(["c2"], aid="a-pending"),
    ]
    plan = _plan(_order("c2", eid="ord-8"), history=history)
    assert plan.cancel == [("a-pending", "ordered: ord-8")]


# --- carts left before the lead had an email ------------------------------------------------


def test_a_cart_left_before_identify_is_emailed_once_the_lead_has_an_email() -> None:
    identified = _touch("page_view", at=T0 + timedelta(minutes=10), eid="e-identify")
    plan = _plan(identified, cart_touches=[_cart("c1")])
    [email] = plan.schedule
    assert email.playbook == ABANDONED_CART and email.marketing
    assert email.idempotency_key == "abandoned_cart:lead-1:c1"
    assert email.payload["cart_ids"] == ["c1"]
    assert email.due_at == _s(CART_DELAY), "the delay runs from the cart, not the identify"


def test_a_cart_whose_delay_has_passed_when_the_lead_is_identified_is_emailed_at_once() -> None:
    later = T0 + timedelta(days=2)
    plan = _plan(_touch("page_view", at=later), cart_touches=[_cart("c1")], now=later)
    assert [a.due_at for a in plan.schedule] == [later]


def test_carts_left_before_identify_share_one_email_due_after_the_newest() -> None:
    carts = [_cart("c1"), _cart("c2", at=T0 + timedelta(minutes=30), eid="e-2")]
    [email] = _plan(_touch("page_view"), cart_touches=carts).schedule
    assert email.payload["cart_ids"] == ["c1", "c2"]
    assert email.due_at == T0 + timedelta(minutes=30, seconds=CART_DELAY)


def test_a_cart_already_emailed_or_ordered_or_too_old_is_not_chased_again() -> None:
    emailed = _plan(
        _touch("page_view"),
        cart_touches=[_cart("c1")],
        history=[_cart_action(["c1"], status="sent")],
    )
    ordered = _plan(_touch("page_view"), cart_touches=[_cart("c1")], orders=[_order("c1")])
    old = _plan(
        _touch("page_view"),
        cart_touches=[_cart("c1", at=NOW - timedelta(days=8))],
    )
    assert _empty(emailed) and _empty(ordered) and _empty(old)


def test_carts_of_a_lead_still_without_email_wait() -> None:
    assert _empty(
        _plan(_touch("page_view"), lead=replace(LEAD, email=None), cart_touches=[_cart()])
    )


def test_a_cart_from_a_source_with_its_own_delay_waits_that_long() -> None:
    config = PlaybooksConfig(
        abandoned_cart=AbandonedCartConfig(delay_s=CART_DELAY, delay_by_source={"shopify": 36_000})
    )
    shopify = replace(_cart("c1"), source="shopify")
    web = replace(_cart("c2", eid="e-2"), source="web")
    assert [a.due_at for a in _plan(shopify, config=config).schedule] == [_s(36_000)]
    assert [a.due_at for a in _plan(web, config=config).schedule] == [_s(CART_DELAY)]
    later = _plan(_touch("page_view"), config=config, cart_touches=[shopify])
    assert [a.due_at for a in later.schedule] == [_s(36_000)]
