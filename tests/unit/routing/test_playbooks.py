"""Playbooks: what a lead change plans (abandoned cart, event follow-up, trial nudge, sales and
stage-regression alerts) and whether a due action still goes out (address, unsubscribe,
orders, activations, the marketing cap)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.routing.domain.config import (
    AbandonedCartConfig,
    AlertConfig,
    EventFollowupConfig,
    PlaybooksConfig,
    TeamConfig,
    TrialNudgeConfig,
)
from services.routing.domain.playbooks import (
    ABANDONED_CART,
    CART_REMINDER,
    EVENT_FOLLOWUP,
    EVENT_TASK,
    SALES_ALERT,
    STAGE_REGRESSION,
    TRIAL_NUDGE,
    Action,
    Change,
    LeadState,
    NewAction,
    Plan,
    Touch,
    Verdict,
    check_due,
    plan_change,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=5)
CART_DELAY, EVENT_DELAY, TRIAL_DELAY, CAP = 60, 120, 300, 600

CONFIG = PlaybooksConfig(
    abandoned_cart=AbandonedCartConfig(delay_s=CART_DELAY),
    event_followup=EventFollowupConfig(delay_s=EVENT_DELAY),
    trial_nudge=TrialNudgeConfig(delay_s=TRIAL_DELAY),
    marketing_cap_s=CAP,
)
TEAM = TeamConfig()
HOOK_TEAM = TeamConfig(webhook_url="https://hooks.example/sales")

LEAD = LeadState(
    lead_id="lead-1",
    email="ana@buyer.example",
    first_name="Ana",
    qualification="unqualified",
    funnel_stage="interest",
    owner_team="sales",
    owner_member=None,
)


def _s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _cart(
    cart_id: str | None = "c1", *, at: datetime = T0, kind: str = "cart_add", eid: str = "e-cart"
) -> Touch:
    props: dict[str, Any] = {} if cart_id is None else {"cart": {"id": cart_id, "total": 10}}
    return Touch(event_id=eid, type=kind, occurred_at=at, properties=props)


def _order(cart_id: str | None = "c1", *, at: datetime = T0, eid: str = "e-order") -> Touch:
    props: dict[str, Any] = {} if cart_id is None else {"cart": {"id": cart_id}}
    return Touch(event_id=eid, type="order_completed", occurred_at=at, properties=props)


def _touch(kind: str, *, at: datetime = T0, eid: str = "e-1", **props: Any) -> Touch:
    return Touch(event_id=eid, type=kind, occurred_at=at, properties=props)


def _action(
    *,
    aid: str = "a-1",
    kind: str = "email",
    playbook: str = ABANDONED_CART,
    status: str = "scheduled",
    due_at: datetime = _s(CART_DELAY),
    key: str = "k",
    **payload: Any,
) -> Action:
    return Action(
        id=aid,
        kind=kind,
        playbook=playbook,
        idempotency_key=key,
        status=status,
        due_at=due_at,
        payload=payload,
    )


def _cart_action(
    cart_ids: list[str] | None = None,
    *,
    first: datetime = T0,
    status: str = "scheduled",
    aid: str = "a-cart",
    due_at: datetime = _s(CART_DELAY),
    playbook: str = ABANDONED_CART,
) -> Action:
    ids = cart_ids if cart_ids is not None else ["c1"]
    return _action(
        aid=aid,
        playbook=playbook,
        status=status,
        due_at=due_at,
        template=ABANDONED_CART,
        carts={c: {"id": c} for c in ids},
        cart_ids=ids,
        first_cart_at=first.isoformat(),
    )


def _plan(
    touch: Touch | None,
    *,
    lead: LeadState = LEAD,
    history: list[Action] | None = None,
    orders: list[Touch] | None = None,
    config: PlaybooksConfig = CONFIG,
    team: TeamConfig = TEAM,
    event_id: str = "chg-1",
    qualification_move: tuple[str | None, str | None] | None = None,
    funnel_move: tuple[str | None, str | None] | None = None,
    cart_touches: list[Touch] | None = None,
    now: datetime = NOW,
) -> Plan:
    change = Change(
        event_id=event_id,
        lead=lead,
        touch=touch,
        qualification_move=qualification_move,
        funnel_move=funnel_move,
    )
    return plan_change(
        change=change,
        history=history or [],
        orders=orders or [],
        config=config,
        team=team,
        now=now,
        cart_touches=cart_touches or [],
    )


def _check(
    action: Action,
    *,
    lead: LeadState = LEAD,
    orders: list[Touch] | None = None,
    activations: list[Touch] | None = None,
    last_sent: datetime | None = None,
    marketing: bool = True,
    now: datetime = NOW,
) -> Verdict:
    return check_due(
        action=action,
        lead=lead,
        orders=orders or [],
        activations=activations or [],
        last_marketing_sent_at=last_sent,
        config=CONFIG,
        marketing=marketing,
        now=now,
    )


def _empty(plan: Plan) -> bool:
    return plan.schedule == [] and plan.cancel == [] and plan.update == []


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


# --- event follow-up ----------------------------------------------------------------------


def test_webinar_attendance_schedules_a_follow_up_email_after_the_delay() -> None:
    touch = _touch("webinar_attended", eid="w-1", title="Pricing 101")
    plan = _plan(touch)
    assert plan.schedule == [
        NewAction(
            kind="email",
            playbook=EVENT_FOLLOWUP,
            idempotency_key="event_followup:w-1",
            due_at=_s(EVENT_DELAY),
            payload={"template": EVENT_FOLLOWUP, "webinar": {"title": "Pricing 101"}},
            marketing=True,
        )
    ]


def test_unqualified_attendee_gets_no_sales_task() -> None:
    plan = _plan(_touch("webinar_attended"), lead=replace(LEAD, qualification="unqualified"))
    assert [a.playbook for a in plan.schedule] == [EVENT_FOLLOWUP]


@pytest.mark.parametrize("qualification", ["mql", "sql"])
def test_qualified_attendee_also_gets_a_sales_task_due_now(qualification: str) -> None:
    plan = _plan(
        _touch("webinar_attended", eid="w-2"), lead=replace(LEAD, qualification=qualification)
    )
    tasks = [a for a in plan.schedule if a.playbook == EVENT_TASK]
    assert [a.playbook for a in plan.schedule] == [EVENT_FOLLOWUP, EVENT_TASK]
    assert tasks[0].kind == "task"
    assert tasks[0].idempotency_key == "event_task:w-2"
    assert tasks[0].due_at == NOW
    assert tasks[0].marketing is False


def test_disqualified_attendee_gets_no_sales_task() -> None:
    plan = _plan(_touch("webinar_attended"), lead=replace(LEAD, qualification="disqualified"))
    assert [a.playbook for a in plan.schedule] == [EVENT_FOLLOWUP]


def test_task_minimum_qualification_is_configurable() -> None:
    config = CONFIG.model_copy(
        update={"event_followup": EventFollowupConfig(task_min_qualification="sql")}
    )
    mql = _plan(_touch("webinar_attended"), lead=replace(LEAD, qualification="mql"), config=config)
    sql = _plan(_touch("webinar_attended"), lead=replace(LEAD, qualification="sql"), config=config)
    assert EVENT_TASK not in [a.playbook for a in mql.schedule]
    assert EVENT_TASK in [a.playbook for a in sql.schedule]


def test_attendee_without_email_gets_no_follow_up_email_but_still_a_task() -> None:
    lead = replace(LEAD, email=None, qualification="mql")
    plan = _plan(_touch("webinar_attended"), lead=lead)
    assert [a.playbook for a in plan.schedule] == [EVENT_TASK]


def test_disabled_event_follow_up_plans_nothing() -> None:
    config = CONFIG.model_copy(update={"event_followup": EventFollowupConfig(enabled=False)})
    lead = replace(LEAD, qualification="sql")
    assert _empty(_plan(_touch("webinar_attended"), lead=lead, config=config))


# --- trial nudge ---------------------------------------------------------------------------


def test_trial_start_schedules_a_nudge_after_the_delay() -> None:
    plan = _plan(_touch("trial_started", eid="t-1"))
    assert plan.schedule == [
        NewAction(
            kind="email",
            playbook=TRIAL_NUDGE,
            idempotency_key="trial_nudge:t-1",
            due_at=_s(TRIAL_DELAY),
            payload={"template": TRIAL_NUDGE, "trial_started_at": T0.isoformat()},
            marketing=True,
        )
    ]


def test_trial_start_without_email_schedules_no_nudge() -> None:
    assert _empty(_plan(_touch("trial_started"), lead=replace(LEAD, email=None)))


def test_trial_activation_cancels_a_scheduled_nudge_only() -> None:
    history = [
        _action(aid="n-1", playbook=TRIAL_NUDGE, trial_started_at=T0.isoformat()),
        _action(aid="n-2", playbook=TRIAL_NUDGE, status="sent"),
        _cart_action(["c1"], aid="a-cart"),
    ]
    plan = _plan(_touch("trial_activated", eid="act-1"), history=history)
    assert plan.cancel == [("n-1", "trial activated: act-1")]
    assert plan.schedule == []


def test_disabled_trial_nudge_plans_nothing() -> None:
    config = CONFIG.model_copy(update={"trial_nudge": TrialNudgeConfig(enabled=False)})
    assert _empty(_plan(_touch("trial_started"), config=config))


# --- sales alert ---------------------------------------------------------------------------


def test_becoming_sql_alerts_a_team_with_a_webhook_by_webhook() -> None:
    plan = _plan(None, team=HOOK_TEAM, event_id="chg-9", qualification_move=("mql", "sql"))
    assert len(plan.schedule) == 1
    alert = plan.schedule[0]
    assert (alert.kind, alert.playbook) == ("webhook", SALES_ALERT)
    assert alert.idempotency_key == "sales_alert:chg-9"
    assert alert.due_at == NOW
    assert alert.payload["url"] == "https://hooks.example/sales"
    assert alert.payload["event"] == "lead.sql"
    assert alert.payload["qualification"] == ("mql", "sql")


def test_becoming_sql_alerts_a_team_without_a_webhook_by_task() -> None:
    plan = _plan(None, team=TEAM, qualification_move=("mql", "sql"))
    assert [(a.kind, a.playbook) for a in plan.schedule] == [("task", SALES_ALERT)]
    assert plan.schedule[0].payload["url"] is None


@pytest.mark.parametrize("old", [None, "unqualified"])
def test_becoming_sql_from_any_other_state_alerts(old: str | None) -> None:
    plan = _plan(None, qualification_move=(old, "sql"))
    assert [a.playbook for a in plan.schedule] == [SALES_ALERT]


@pytest.mark.parametrize("move", [("sql", "sql"), ("unqualified", "mql"), ("sql", "customer")])
def test_no_sales_alert_without_a_move_into_sql(move: tuple[str, str]) -> None:
    assert _empty(_plan(None, team=HOOK_TEAM, qualification_move=move))


def test_disabled_sales_alert_plans_nothing() -> None:
    config = CONFIG.model_copy(update={"sales_alert": AlertConfig(enabled=False)})
    assert _empty(_plan(None, config=config, qualification_move=("mql", "sql")))


def test_planning_the_same_change_twice_gives_the_same_alert_key() -> None:
    first = _plan(None, event_id="chg-5", qualification_move=("mql", "sql"))
    second = _plan(None, event_id="chg-5", qualification_move=("mql", "sql"))
    other = _plan(None, event_id="chg-6", qualification_move=("mql", "sql"))
    assert first.schedule[0].idempotency_key == second.schedule[0].idempotency_key
    assert first.schedule[0].idempotency_key != other.schedule[0].idempotency_key


# --- stage regression ----------------------------------------------------------------------


def test_falling_back_a_funnel_stage_creates_a_task() -> None:
    plan = _plan(None, event_id="chg-3", funnel_move=("intent", "consideration"))
    assert len(plan.schedule) == 1
    task = plan.schedule[0]
    assert (task.kind, task.playbook) == ("task", STAGE_REGRESSION)
    assert task.idempotency_key == "stage_regression:chg-3"
    assert task.due_at == NOW
    assert task.payload["funnel"] == ("intent", "consideration")
    assert "intent" in task.payload["title"] and "consideration" in task.payload["title"]


@pytest.mark.parametrize(
    "move", [("awareness", "interest"), ("intent", "intent"), (None, "awareness")]
)
def test_moving_forward_or_nowhere_creates_no_regression_task(move: tuple[Any, Any]) -> None:
    assert _empty(_plan(None, funnel_move=move))


def test_disabled_stage_regression_alert_plans_nothing() -> None:
    config = CONFIG.model_copy(update={"stage_regression_alert": AlertConfig(enabled=False)})
    assert _empty(_plan(None, config=config, funnel_move=("intent", "consideration")))


# --- check_due -----------------------------------------------------------------------------


def test_email_to_a_lead_without_address_is_cancelled() -> None:
    verdict = _check(_cart_action(), lead=replace(LEAD, email=None))
    assert verdict.decision == "cancel"
    assert "email" in verdict.reason


def test_marketing_email_to_an_unsubscribed_lead_is_cancelled() -> None:
    verdict = _check(_cart_action(), lead=replace(LEAD, unsubscribed=True), marketing=True)
    assert verdict == Verdict("cancel", "unsubscribed")


def test_non_marketing_email_to_an_unsubscribed_lead_still_sends() -> None:
    action = _action(playbook="transactional", template="receipt")
    verdict = _check(action, lead=replace(LEAD, unsubscribed=True), marketing=False)
    assert verdict == Verdict("send")


def test_a_task_for_a_lead_without_email_still_sends() -> None:
    action = _action(kind="task", playbook=EVENT_TASK, title="x")
    assert _check(action, lead=replace(LEAD, email=None), marketing=False) == Verdict("send")


def test_abandoned_cart_with_an_order_for_one_of_its_carts_is_cancelled() -> None:
    action = _cart_action(["c1", "c2"])
    verdict = _check(action, orders=[_order("c2", at=_s(-3600), eid="ord-1")])
    assert verdict == Verdict("cancel", "ordered: ord-1")


@pytest.mark.parametrize("offset", [0, 30])
def test_abandoned_cart_with_an_order_placed_since_the_first_cart_is_cancelled(
    offset: int,
) -> None:
    verdict = _check(_cart_action(["c1"]), orders=[_order(None, at=_s(offset), eid="ord-2")])
    assert verdict == Verdict("cancel", "ordered: ord-2")


def test_cart_reminder_with_an_order_is_cancelled() -> None:
    action = _cart_action(["c1"], playbook=CART_REMINDER)
    assert _check(action, orders=[_order("c1", eid="ord-3")]) == Verdict("cancel", "ordered: ord-3")


def test_an_older_order_for_another_cart_does_not_cancel_the_cart_email() -> None:
    verdict = _check(_cart_action(["c1"]), orders=[_order("c0", at=_s(-1), eid="ord-4")])
    assert verdict == Verdict("send")


def test_trial_nudge_after_an_activation_since_the_start_is_cancelled() -> None:
    action = _action(playbook=TRIAL_NUDGE, trial_started_at=T0.isoformat())
    verdict = _check(action, activations=[_touch("trial_activated", at=_s(100))])
    assert verdict.decision == "cancel"
    assert verdict.reason == "trial activated"


def test_an_activation_before_the_trial_started_does_not_cancel_the_nudge() -> None:
    action = _action(playbook=TRIAL_NUDGE, trial_started_at=T0.isoformat())
    verdict = _check(action, activations=[_touch("trial_activated", at=_s(-100))])
    assert verdict == Verdict("send")


def test_marketing_email_within_the_cap_is_deferred_until_the_cap_ends() -> None:
    last = NOW - timedelta(seconds=CAP - 100)
    verdict = _check(_cart_action(), last_sent=last, marketing=True)
    assert verdict.decision == "defer"
    assert verdict.until == last + timedelta(seconds=CAP)


@pytest.mark.parametrize("ago", [CAP, CAP + 1])
def test_marketing_email_once_the_cap_has_passed_sends(ago: int) -> None:
    verdict = _check(_cart_action(), last_sent=NOW - timedelta(seconds=ago), marketing=True)
    assert verdict == Verdict("send")


def test_marketing_email_with_no_earlier_marketing_email_sends() -> None:
    assert _check(_cart_action(), last_sent=None, marketing=True) == Verdict("send")


def test_non_marketing_action_ignores_the_cap() -> None:
    action = _action(kind="task", playbook=SALES_ALERT, title="x")
    verdict = _check(action, last_sent=NOW - timedelta(seconds=1), marketing=False)
    assert verdict == Verdict("send")


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
