"""Outbound lead events for CRMs: which events a lead change (or a new owner) is, what each
carries, which subscriptions get it, and the ids that make a redelivery the same message.

Pure: the batch plans one delivery per (event, subscription) as an action, and the action
worker signs and sends it (Standard Webhooks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.routing.domain.playbooks import NewAction
from services.routing.domain.rules import QUALIFICATION_ORDER
from shared.events import LeadChange, LeadSnapshot

CREATED = "lead.created"
QUALIFIED = "lead.qualified"
STAGE_CHANGED = "lead.stage_changed"
OWNER_ASSIGNED = "lead.owner_assigned"
MERGED = "lead.merged"
ERASED = "lead.erased"
EVENT_TYPES: tuple[str, ...] = (CREATED, QUALIFIED, STAGE_CHANGED, OWNER_ASSIGNED, MERGED, ERASED)
# What a qualification move must reach to be `lead.qualified`.
QUALIFIED_LEVELS = frozenset({"mql", "sql"})
# The kind of the action that delivers one event to one subscription.
ACTION_KIND = "lead_webhook"


@dataclass(frozen=True)
class LeadEvent:
    """One outbound event: its type, when it happened, and what it carries."""

    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Subscription:
    """What planning needs of a subscription: who it is and which events it wants."""

    id: str
    url: str
    event_types: frozenset[str]


@dataclass(frozen=True)
class Owner:
    """A lead's owning team and member (None while it waits in the team's queue)."""

    team: str
    member: str | None

    def as_json(self) -> dict[str, Any]:
        """The owner as an event carries it."""
        return {"team": self.team, "member": self.member}


def _rank(qualification: str | None) -> int:
    """How far a qualification is along unqualified < mql < sql < customer; -1 for the rest
    (disqualified, recycled, none)."""
    return QUALIFICATION_ORDER.index(qualification) if qualification in QUALIFICATION_ORDER else -1


def is_qualifying(move: tuple[str | None, str | None] | None) -> bool:
    """True when a qualification move reaches mql or sql from something lower (unqualified,
    recycled, disqualified, none, or mql for sql); a fall back, or a win, is no qualification."""
    if move is None:
        return False
    before, after = move
    return after in QUALIFIED_LEVELS and _rank(after) > _rank(before)


def lead_data(lead: LeadSnapshot, owner: Owner | None) -> dict[str, Any]:
    """The lead as every event carries it: the person, company, account, assessment and owner
    (BANT as each dimension's score and whether it is met, without the evidence)."""
    bant = {
        name: {"score": value.get("score"), "met": value.get("met")}
        for name, value in (lead.bant or {}).items()
        if isinstance(value, dict)
    }
    return {
        "id": lead.id,
        "email": lead.email,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "job_title": lead.job_title,
        "phone": lead.phone,
        "company": lead.company.model_dump(mode="json"),
        "account": lead.account.model_dump(mode="json") if lead.account else None,
        "score": lead.score,
        "fit_score": lead.fit_score,
        "engagement_score": lead.engagement_score,
        "persona": lead.persona,
        "qualification": lead.qualification,
        "qualification_reason": lead.qualification_reason,
        "funnel_stage": lead.funnel_stage,
        "journey_stage": lead.journey_stage,
        "bant": bant,
        "owner": owner.as_json() if owner else None,
    }


def _move(move: tuple[str | None, str | None]) -> dict[str, str | None]:
    return {"from": move[0], "to": move[1]}


def events_of_change(change: LeadChange, *, owner: Owner | None) -> list[LeadEvent]:
    """The events a lead change is, in this order: `lead.created` (a new lead),
    `lead.merged` (another lead merged into this one), `lead.qualified` (reached mql or sql
    from lower), `lead.stage_changed` (the funnel or journey stage moved; one event for both,
    none for a new lead's first stages). `owner` is the lead's owner after the change."""
    moves = change.changes
    lead = lead_data(change.lead, owner)
    base = {"lead": lead, "cause_event_id": change.cause_event_id}
    at = change.occurred_at
    events: list[LeadEvent] = []
    if moves.created:
        events.append(LeadEvent(CREATED, at, dict(base)))
    if moves.merged_from:
        events.append(LeadEvent(MERGED, at, {**base, "merged_from": moves.merged_from}))
    if is_qualifying(moves.qualification):
        assert moves.qualification is not None
        events.append(
            LeadEvent(QUALIFIED, at, {**base, "qualification": _move(moves.qualification)})
        )
    stages = {
        track: _move(move)
        for track, move in (("funnel", moves.funnel), ("journey", moves.journey))
        if move is not None and move[0] != move[1] and not (moves.created and move[0] is None)
    }
    if stages:
        events.append(LeadEvent(STAGE_CHANGED, at, {**base, "stages": stages}))
    return events


def owner_assigned(
    *,
    lead: LeadSnapshot,
    owner: Owner,
    previous: Owner | None,
    rule: str,
    cause_event_id: str,
    at: datetime,
) -> LeadEvent:
    """`lead.owner_assigned`: the lead got a new owner (a team, and a member unless it waits
    in the team's queue), from the rule that chose the team."""
    return LeadEvent(
        OWNER_ASSIGNED,
        at,
        {
            "lead": lead_data(lead, owner),
            "cause_event_id": cause_event_id,
            "owner": owner.as_json(),
            "previous_owner": previous.as_json() if previous else None,
            "rule": rule,
        },
    )


def erased(*, lead_id: str, erasure_id: str, at: datetime) -> LeadEvent:
    """`lead.erased`: the person was erased (a privacy request), so the receiver should erase
    its copy; it carries the lead id and the erasure's, nothing personal."""
    return LeadEvent(ERASED, at, {"lead_id": lead_id, "erasure_id": erasure_id})


def message_id(*, subscription_id: str, event_type: str, source_id: str) -> str:
    """The Standard Webhooks `webhook-id` of one event for one subscription: the same for the
    same (subscription, type, cause) every time, so a redelivered lead change or a resent
    attempt is one message to the receiver."""
    digest = hashlib.sha256(f"{subscription_id}|{event_type}|{source_id}".encode()).hexdigest()
    return f"msg_{digest[:40]}"


def idempotency_key(msg_id: str) -> str:
    """The delivery action's idempotency key for a message."""
    return f"{ACTION_KIND}:{msg_id}"


def body(event: LeadEvent) -> dict[str, Any]:
    """The JSON body of an event, as Standard Webhooks recommends: type, timestamp, data."""
    return {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.data}


def deliveries(
    events: Iterable[LeadEvent],
    *,
    subscriptions: Sequence[Subscription],
    source_id: str,
    now: datetime,
) -> list[NewAction]:
    """One delivery action, due now, per event and enabled subscription that wants its type.
    `source_id` names what caused the events (the lead change's event id, or the cause of an
    assignment outside a lead change)."""
    planned: list[NewAction] = []
    for event in events:
        for sub in subscriptions:
            if event.type not in sub.event_types:
                continue
            msg_id = message_id(subscription_id=sub.id, event_type=event.type, source_id=source_id)
            planned.append(
                NewAction(
                    kind=ACTION_KIND,
                    playbook=event.type,
                    idempotency_key=idempotency_key(msg_id),
                    due_at=now,
                    payload={
                        "subscription_id": sub.id,
                        "url": sub.url,
                        "msg_id": msg_id,
                        "body": body(event),
                    },
                )
            )
    return planned
