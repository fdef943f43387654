"""The trigger table drives both the planner and `/trace`'s explanations: a touch of a trigger's
type makes the planner schedule that playbook, and without one trace names the missing type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.routing.domain.config import PlaybooksConfig, TeamConfig
from services.routing.domain.playbooks import Change, Plan, Touch, plan_change
from services.routing.domain.triggers import TRIGGERS, Trigger, why_not_fired
from tests.unit.routing._playbook_fixtures import LEAD

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CONFIG = PlaybooksConfig()
TOUCH_TRIGGERED = [t for t in TRIGGERS if t.touch_types]


def _plan(touch: Touch) -> Plan:
    """What the planner makes of a change caused by `touch`, with no history."""
    return plan_change(
        change=Change("chg-1", LEAD, touch),
        history=[],
        orders=[],
        config=CONFIG,
        team=TeamConfig(),
        now=T0,
    )


@pytest.mark.parametrize("trigger", TOUCH_TRIGGERED, ids=lambda t: t.playbook)
def test_every_touch_type_of_a_trigger_makes_the_planner_schedule_its_playbook(
    trigger: Trigger,
) -> None:
    for kind in sorted(trigger.touch_types):
        plan = _plan(Touch("e-1", kind, T0, {"cart": {"id": "c1", "total": 10}}))
        assert trigger.playbook in {a.playbook for a in plan.schedule}, kind


@pytest.mark.parametrize("trigger", TOUCH_TRIGGERED, ids=lambda t: t.playbook)
def test_trace_names_the_touch_types_a_trigger_waits_for(trigger: Trigger) -> None:
    why = why_not_fired(
        trigger,
        config=CONFIG,
        qualification="mql",
        email="a@b.example",
        history=[],
        suppressed=False,
    )
    assert why == f"no {' or '.join(sorted(trigger.touch_types))} touch"


def test_a_touch_no_trigger_lists_schedules_no_touch_playbook() -> None:
    plan = _plan(Touch("e-1", "page_view", T0, {}))
    assert not {a.playbook for a in plan.schedule} & {t.playbook for t in TOUCH_TRIGGERED}


def test_trace_explains_a_disabled_playbook_and_an_unsubscribed_lead() -> None:
    config = PlaybooksConfig.model_validate({"trial_nudge": {"enabled": False}})
    (trial,) = [t for t in TRIGGERS if t.playbook == "trial_nudge"]
    (cart,) = [t for t in TRIGGERS if t.playbook == "abandoned_cart"]
    disabled = why_not_fired(
        trial, config=config, qualification="mql", email="a@b.example", history=[], suppressed=False
    )
    assert disabled == "the playbook is disabled in the routing config"
    history = [Touch("e-1", "cart_add", T0, {})]
    unsubscribed = why_not_fired(
        cart,
        config=CONFIG,
        qualification="mql",
        email="a@b.example",
        history=history,
        suppressed=True,
    )
    assert unsubscribed == (
        "the cart touches carry no cart id; the lead is unsubscribed from marketing email"
    )
