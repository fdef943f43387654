"""Playbooks: what a lead change plans besides cart emails (event follow-up, trial nudge, sales
and stage-regression alerts) and whether a due action still goes out (address, unsubscribe,
orders, activations, the marketing cap)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.routing.domain.config import (
    AlertConfig,
    EventFollowupConfig,
    TeamConfig,
    TrialNudgeConfig,
)
from services.routing.domain.playbooks import (
    CART_REMINDER,
    EVENT_FOLLOWUP,
    EVENT_TASK,
    SALES_ALERT,
    STAGE_REGRESSION,
    TRIAL_NUDGE,
    Action,
    LeadState,
    NewAction,
    Touch,
    Verdict,
    check_due,
)
from tests.unit.routing._playbook_fixtures import (
    CAP,
    CONFIG,
    EVENT_DELAY,
    LEAD,
    NOW,
    T0,
    TEAM,
    TRIAL_DELAY,
    _action,
    _cart_action,
    _empty,
    _order,
    _plan,
    _s,
    _touch,
)

HOOK_TEAM = TeamConfig(webhook_url="https://hooks.example/sales")


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
