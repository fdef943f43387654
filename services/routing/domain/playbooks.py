"""Playbooks: which follow-up actions a lead change calls for, and whether a due action still
should go out. Pure decisions; the service stores, schedules and delivers them.

Every action has an idempotency key derived from what caused it (the cart, the touch, the
lead change), so planning the same change twice schedules nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.routing.domain.actions import ActionStatus
from services.routing.domain.config import PlaybooksConfig, TeamConfig
from services.routing.domain.rules import at_least, is_regression
from services.routing.domain.triggers import (
    ABANDONED_CART,
    CART_TYPES,
    EVENT_FOLLOWUP,
    ORDER_TYPE,
    SALES_ALERT,
    STAGE_REGRESSION,
    TRIAL_NUDGE,
    TRIAL_TYPES,
    WEBINAR_TYPES,
)

# The playbooks and the touches that fire them are in triggers.py (trace reads them there too).
CART_REMINDER, EVENT_TASK = "cart_reminder", "event_task"
# How far back carts left before the lead had an email are chased once it has one.
CART_CHASE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Touch:
    """The touch behind a change, or one of the lead's past touches."""

    event_id: str
    type: str
    occurred_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # where it came from: shopify, segment, hubspot, web, api

    def cart_id(self) -> str | None:
        """The id of the cart the touch is about, if any."""
        cart = self.properties.get("cart")
        if isinstance(cart, dict) and cart.get("id") not in (None, ""):
            return str(cart["id"])
        return None


@dataclass(frozen=True)
class LeadState:
    """What routing knows of the lead when it plans or delivers."""

    lead_id: str
    email: str | None
    first_name: str | None
    qualification: str
    funnel_stage: str | None
    owner_team: str | None
    owner_member: str | None
    unsubscribed: bool = False
    # The lead's consent per purpose (its newest statement of each); empty: none stated.
    consent: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """A lead change as playbooks see it."""

    event_id: str
    lead: LeadState
    touch: Touch | None
    qualification_move: tuple[str | None, str | None] | None = None
    funnel_move: tuple[str | None, str | None] | None = None


@dataclass(frozen=True)
class Action:
    """An action already stored for the lead."""

    id: str
    kind: str
    playbook: str
    idempotency_key: str
    status: str
    due_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class NewAction:
    """An action to schedule."""

    kind: str  # email | webhook | task
    playbook: str
    idempotency_key: str
    due_at: datetime
    payload: dict[str, Any]
    marketing: bool = False


@dataclass
class Plan:
    """What a change calls for: new actions, cancellations, and pending actions to update."""

    schedule: list[NewAction] = field(default_factory=list)
    cancel: list[tuple[str, str]] = field(default_factory=list)
    update: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    """At due time: send, cancel (with the reason) or defer (until when)."""

    decision: str  # send | cancel | defer
    reason: str = ""
    until: datetime | None = None


def _ordered(action: Action, orders: Sequence[Touch]) -> Touch | None:
    """An order that settles an abandoned-cart action: one for one of its carts, or any order
    placed at or after its first cart activity (the buyer came back)."""
    cart_ids = set(action.payload.get("cart_ids", []))
    since = datetime.fromisoformat(action.payload["first_cart_at"])
    return next((o for o in orders if o.cart_id() in cart_ids or o.occurred_at >= since), None)


def _carts_before_email(
    change: Change,
    history: Sequence[Action],
    orders: Sequence[Touch],
    carts: Sequence[Touch],
    cfg: PlaybooksConfig,
    now: datetime,
) -> Plan:
    """The email for carts left before the lead had an email address (Segment's "Product
    Added" before `identify`): planned once the lead is known, for the carts of the last
    CART_CHASE_WINDOW that no email covers and no order settled, due a delay after the newest
    of them (at once if that has passed)."""
    plan = Plan()
    lead = change.lead
    covered = {
        c for a in history if a.playbook == ABANDONED_CART for c in a.payload.get("cart_ids", [])
    }
    since = now - CART_CHASE_WINDOW
    left: dict[str, Touch] = {}
    for t in sorted(carts, key=lambda t: t.occurred_at):
        cart_id = t.cart_id()
        if cart_id is None or cart_id in covered or t.occurred_at < since:
            continue
        if any(o.cart_id() == cart_id or o.occurred_at >= t.occurred_at for o in orders):
            continue
        left[cart_id] = t
    if not left:
        return plan
    latest = max(left.values(), key=lambda t: t.occurred_at)
    newest, source = latest.occurred_at, latest.source
    first_id, first = min(left.items(), key=lambda kv: kv[1].occurred_at)
    plan.schedule.append(
        _cart_email(
            lead.lead_id,
            carts={c: dict(t.properties["cart"]) for c, t in left.items()},
            first=(first_id, first.occurred_at),
            due_at=max(newest + timedelta(seconds=cfg.abandoned_cart.delay_for(source)), now),
        )
    )
    return plan


def _cart_email(
    lead_id: str, *, carts: dict[str, Any], first: tuple[str, datetime], due_at: datetime
) -> NewAction:
    """The abandoned-cart email for `carts`, keyed by the first cart (id, when it was left)."""
    first_id, first_at = first
    return NewAction(
        kind="email",
        playbook=ABANDONED_CART,
        idempotency_key=f"{ABANDONED_CART}:{lead_id}:{first_id}",
        due_at=due_at,
        payload={
            "template": ABANDONED_CART,
            "carts": carts,
            "cart_ids": sorted(carts),
            "first_cart_at": first_at.isoformat(),
        },
        marketing=True,
    )


def _abandoned_cart(
    change: Change,
    history: Sequence[Action],
    orders: Sequence[Touch],
    cfg: PlaybooksConfig,
    cart_touches: Sequence[Touch],
    now: datetime,
) -> Plan:
    plan = Plan()
    touch, lead = change.touch, change.lead
    carts = [a for a in history if a.playbook == ABANDONED_CART]
    if touch is not None and touch.type == ORDER_TYPE:
        for a in carts:
            if a.status == ActionStatus.SCHEDULED:
                plan.cancel.append((a.id, f"ordered: {touch.event_id}"))
        for a in history:
            if a.playbook == CART_REMINDER and a.status == ActionStatus.SCHEDULED:
                plan.cancel.append((a.id, f"ordered: {touch.event_id}"))
        return plan
    if not cfg.abandoned_cart.enabled or not lead.email:
        return plan
    if touch is None or touch.type not in CART_TYPES:
        return _carts_before_email(change, history, orders, cart_touches, cfg, now)
    cart_id = touch.cart_id()
    if cart_id is None:
        return plan
    # The order may have been processed before this cart event: then there is nothing to chase.
    if any(o.cart_id() == cart_id or o.occurred_at >= touch.occurred_at for o in orders):
        return plan
    if any(
        cart_id in a.payload.get("cart_ids", []) and a.status != ActionStatus.SCHEDULED
        for a in carts
    ):
        return plan  # one email per cart
    cart = dict(touch.properties["cart"])
    due = touch.occurred_at + timedelta(seconds=cfg.abandoned_cart.delay_for(touch.source))
    pending = next((a for a in carts if a.status == ActionStatus.SCHEDULED), None)
    if pending is not None:
        # Carts of one lead merge into the pending email; its clock restarts with this one.
        payload = dict(pending.payload)
        payload["carts"] = {**payload.get("carts", {}), cart_id: cart}
        payload["cart_ids"] = sorted({*payload.get("cart_ids", []), cart_id})
        plan.update.append((pending.id, max(pending.due_at, due), payload))
        return plan
    plan.schedule.append(
        _cart_email(
            lead.lead_id, carts={cart_id: cart}, first=(cart_id, touch.occurred_at), due_at=due
        )
    )
    return plan


def plan_change(
    *,
    change: Change,
    history: Sequence[Action],
    orders: Sequence[Touch],
    config: PlaybooksConfig,
    team: TeamConfig,
    now: datetime,
    cart_touches: Sequence[Touch] = (),
) -> Plan:
    """The actions a lead change calls for under the playbooks; `cart_touches` are the lead's past
    cart touches (the ones from before it had an email are chased once it has one)."""
    plan = _abandoned_cart(change, history, orders, config, cart_touches, now)
    touch, lead = change.touch, change.lead
    if touch is not None and touch.type in WEBINAR_TYPES and config.event_followup.enabled:
        if lead.email:
            plan.schedule.append(
                NewAction(
                    kind="email",
                    playbook=EVENT_FOLLOWUP,
                    idempotency_key=f"{EVENT_FOLLOWUP}:{touch.event_id}",
                    due_at=touch.occurred_at + timedelta(seconds=config.event_followup.delay_s),
                    payload={"template": EVENT_FOLLOWUP, "webinar": touch.properties},
                    marketing=True,
                )
            )
        if at_least(lead.qualification, config.event_followup.task_min_qualification):
            plan.schedule.append(
                NewAction(
                    kind="task",
                    playbook=EVENT_TASK,
                    idempotency_key=f"{EVENT_TASK}:{touch.event_id}",
                    due_at=now,
                    payload={
                        "title": "Follow up with a webinar attendee",
                        "webinar": touch.properties,
                    },
                )
            )
    if touch is not None and config.trial_nudge.enabled:
        if touch.type in TRIAL_TYPES and lead.email:
            plan.schedule.append(
                NewAction(
                    kind="email",
                    playbook=TRIAL_NUDGE,
                    idempotency_key=f"{TRIAL_NUDGE}:{touch.event_id}",
                    due_at=touch.occurred_at + timedelta(seconds=config.trial_nudge.delay_s),
                    payload={
                        "template": TRIAL_NUDGE,
                        "trial_started_at": touch.occurred_at.isoformat(),
                    },
                    marketing=True,
                )
            )
        if touch.type == "trial_activated":
            plan.cancel += [
                (a.id, f"trial activated: {touch.event_id}")
                for a in history
                if a.playbook == TRIAL_NUDGE and a.status == ActionStatus.SCHEDULED
            ]
    move = change.qualification_move
    if config.sales_alert.enabled and move is not None and move[1] == "sql" and move[0] != "sql":
        plan.schedule.append(
            NewAction(
                kind="webhook" if team.webhook_url else "task",
                playbook=SALES_ALERT,
                idempotency_key=f"{SALES_ALERT}:{change.event_id}",
                due_at=now,
                payload={
                    "title": "A lead became sales-qualified",
                    "url": team.webhook_url,
                    "event": "lead.sql",
                    "qualification": move,
                },
            )
        )
    funnel = change.funnel_move
    if (
        config.stage_regression_alert.enabled
        and funnel is not None
        and is_regression(funnel[0], funnel[1])
    ):
        plan.schedule.append(
            NewAction(
                kind="task",
                playbook=STAGE_REGRESSION,
                idempotency_key=f"{STAGE_REGRESSION}:{change.event_id}",
                due_at=now,
                payload={
                    "title": f"Lead fell back from {funnel[0]} to {funnel[1]}",
                    "funnel": funnel,
                },
            )
        )
    return plan


def consent_refusal(consent: Mapping[str, bool], *, config: PlaybooksConfig) -> str | None:
    """Why the lead's consent forbids marketing email, or None when it allows it."""
    refused = sorted(p for p in config.consent_purposes if consent.get(p) is False)
    if refused:
        return f"no consent: {refused[0]} refused"
    if config.require_consent and not any(consent.get(p) for p in config.consent_purposes):
        return f"no consent: none of {', '.join(config.consent_purposes)} granted"
    return None


def check_due(
    *,
    action: Action,
    lead: LeadState,
    orders: Sequence[Touch],
    activations: Sequence[Touch],
    last_marketing_sent_at: datetime | None,
    config: PlaybooksConfig,
    marketing: bool,
    now: datetime,
) -> Verdict:
    """Whether a due action still should go out now."""
    if action.kind == "email":
        if not lead.email:
            return Verdict("cancel", "the lead has no email address")
        if marketing and lead.unsubscribed:
            return Verdict("cancel", "unsubscribed")
        if marketing and (refusal := consent_refusal(lead.consent, config=config)):
            return Verdict("cancel", refusal)
    if action.playbook in (ABANDONED_CART, CART_REMINDER):
        order = _ordered(action, orders)
        if order is not None:
            return Verdict("cancel", f"ordered: {order.event_id}")
    if action.playbook == TRIAL_NUDGE:
        started = datetime.fromisoformat(action.payload["trial_started_at"])
        if any(t.occurred_at >= started for t in activations):
            return Verdict("cancel", "trial activated")
    if marketing and last_marketing_sent_at is not None:
        # The cap defers rather than drops: the email still matters, just not this minute.
        allowed = last_marketing_sent_at + timedelta(seconds=config.marketing_cap_s)
        if now < allowed:
            return Verdict("defer", "frequency cap", until=allowed)
    return Verdict("send")
