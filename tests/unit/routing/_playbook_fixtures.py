"""Shared by the playbook tests: the lead, the config, touches, actions, and planning a change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.routing.domain.config import (
    AbandonedCartConfig,
    EventFollowupConfig,
    PlaybooksConfig,
    TeamConfig,
    TrialNudgeConfig,
)
from services.routing.domain.playbooks import (
    ABANDONED_CART,
    Action,
    Change,
    LeadState,
    Plan,
    Touch,
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


def _empty(plan: Plan) -> bool:
    return plan.schedule == [] and plan.cancel == [] and plan.update == []
