"""What fires each playbook, and why one did not fire for a lead, side by side: the planner
(`playbooks.plan_change`) and `/trace` read the same table, so a trigger changed here changes
both."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from services.routing.domain.config import PlaybooksConfig

ABANDONED_CART, EVENT_FOLLOWUP, TRIAL_NUDGE = "abandoned_cart", "event_followup", "trial_nudge"
SALES_ALERT, STAGE_REGRESSION = "sales_alert", "stage_regression"

CART_TYPES = frozenset({"cart_add", "checkout_started"})
ORDER_TYPE = "order_completed"
WEBINAR_TYPES = frozenset({"webinar_attended"})
TRIAL_TYPES = frozenset({"trial_started"})


class TouchLike(Protocol):
    """A past touch as trace and the planner see it."""

    @property
    def type(self) -> str:
        """The touch's type, e.g. cart_add."""

    @property
    def properties(self) -> dict[str, Any]:
        """What the touch carried."""


@dataclass(frozen=True)
class Trigger:
    """A playbook and what fires it: touches of `touch_types`, or (when empty) a move of the
    lead that `fired_by` describes."""

    playbook: str
    touch_types: frozenset[str]
    needs_email: bool
    fired_by: str = ""

    def enabled(self, config: PlaybooksConfig) -> bool:
        """Whether the routing config switches this playbook on."""
        return {
            ABANDONED_CART: config.abandoned_cart.enabled,
            EVENT_FOLLOWUP: config.event_followup.enabled,
            TRIAL_NUDGE: config.trial_nudge.enabled,
            SALES_ALERT: config.sales_alert.enabled,
            STAGE_REGRESSION: config.stage_regression_alert.enabled,
        }[self.playbook]


TRIGGERS = (
    Trigger(ABANDONED_CART, CART_TYPES, needs_email=True),
    Trigger(EVENT_FOLLOWUP, WEBINAR_TYPES, needs_email=True),
    Trigger(TRIAL_NUDGE, TRIAL_TYPES, needs_email=True),
    Trigger(SALES_ALERT, frozenset(), needs_email=False, fired_by="the lead becoming sql"),
    Trigger(
        STAGE_REGRESSION,
        frozenset(),
        needs_email=False,
        fired_by="the lead's funnel stage moving back",
    ),
)


def _has_cart_id(touch: TouchLike) -> bool:
    cart = touch.properties.get("cart")
    return isinstance(cart, dict) and cart.get("id") not in (None, "")


def why_not_fired(
    trigger: Trigger,
    *,
    config: PlaybooksConfig,
    qualification: str | None,
    email: str | None,
    history: Sequence[TouchLike],
    suppressed: bool,
) -> str:
    """Why `trigger`'s playbook planned nothing for a lead with this history."""
    if not trigger.enabled(config):
        why = "the playbook is disabled in the routing config"
    elif trigger.playbook == SALES_ALERT:
        why = (
            "the lead has not become sql"
            if qualification != "sql"
            else "the lead was sql before its last change"
        )
    elif trigger.playbook == STAGE_REGRESSION:
        why = "the lead's funnel stage has not moved back"
    elif not any(t.type in trigger.touch_types for t in history):
        why = f"no {' or '.join(sorted(trigger.touch_types))} touch"
    elif trigger.needs_email and not email:
        why = "the lead has no email address"
    elif trigger.playbook == ABANDONED_CART and not any(
        _has_cart_id(t) for t in history if t.type in trigger.touch_types
    ):
        why = "the cart touches carry no cart id"
    elif trigger.playbook == ABANDONED_CART and any(t.type == ORDER_TYPE for t in history):
        why = "the lead ordered before the cart email was planned"
    else:
        why = "not planned (see the lead's timeline)"
    if suppressed and trigger.playbook != SALES_ALERT:
        why += "; the lead is unsubscribed from marketing email"
    return why


def playbooks_fired(
    *,
    config: PlaybooksConfig,
    touch_types: Collection[str],
    has_email: bool,
    sql: bool,
    regressed: bool,
) -> set[str]:
    """The playbooks a lead's history fires under `config` (what a backtest simulates): touch
    playbooks by the touches (those that email need an address), the sales alert when the
    lead is sql, the stage-regression alert when its funnel stage fell back."""
    fired = set()
    for trigger in TRIGGERS:
        if not trigger.enabled(config):
            continue
        if trigger.playbook == SALES_ALERT:
            hit = sql
        elif trigger.playbook == STAGE_REGRESSION:
            hit = regressed
        else:
            hit = bool(trigger.touch_types & set(touch_types)) and (
                has_email or not trigger.needs_email
            )
        if hit:
            fired.add(trigger.playbook)
    return fired
