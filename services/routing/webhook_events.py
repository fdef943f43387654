"""The lead events a webhook subscription receives, as the OpenAPI's `webhooks` section
documents them: each event's body (`{"type", "timestamp", "data"}`) and headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field

from services.routing.domain import lead_events as le


class OwnerOut(BaseModel):
    """A lead's owning team, and its member (null while it waits in the team's queue)."""

    team: str
    member: str | None


class MoveOut(BaseModel):
    """A move from one value to another."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str | None = Field(alias="from")
    to: str | None


class BantOut(BaseModel):
    """One BANT dimension's score and whether it is met."""

    score: int | None
    met: bool | None


class LeadOut(BaseModel):
    """The lead as every event carries it, as of the event."""

    id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    job_title: str | None
    phone: str | None
    company: dict[str, Any]
    account: dict[str, Any] | None
    score: int
    fit_score: int
    engagement_score: int
    persona: str | None
    qualification: str
    qualification_reason: str | None
    funnel_stage: str | None
    journey_stage: str | None
    bant: dict[str, BantOut]
    owner: OwnerOut | None


class EventData(BaseModel):
    """What every event's `data` holds."""

    lead: LeadOut
    cause_event_id: str = Field(description="the touch (or other cause) behind the event")


class QualifiedData(EventData):
    """`lead.qualified`: the lead reached mql or sql from lower."""

    qualification: MoveOut


class StageChangedData(EventData):
    """`lead.stage_changed`: the tracks that moved (funnel, journey or both)."""

    stages: dict[Literal["funnel", "journey"], MoveOut]


class OwnerAssignedData(EventData):
    """`lead.owner_assigned`: the new owner, the one before, and the routing rule."""

    owner: OwnerOut
    previous_owner: OwnerOut | None
    rule: str


class MergedData(EventData):
    """`lead.merged`: another lead (`merged_from`, gone now) was merged into this one."""

    merged_from: str


class ErasedData(BaseModel):
    """`lead.erased`: the person was erased in leadflow; erase your copy too. Nothing personal
    is sent: the lead id (as earlier events carried it) and the erasure's id."""

    lead_id: str
    erasure_id: str


def _event_model(event_type: str, data: type[BaseModel]) -> type[BaseModel]:
    """The body of one event type: `{"type", "timestamp", "data"}` (Standard Webhooks)."""
    name = "".join(p.title() for p in event_type.replace(".", "_").split("_")) + "Event"
    return type(
        name,
        (BaseModel,),
        {
            "__annotations__": {
                "type": Literal[event_type],  # type: ignore[valid-type]
                "timestamp": datetime,
                "data": data,
            },
            "__doc__": f"The body of a `{event_type}` delivery.",
        },
    )


EVENTS: dict[str, tuple[type[BaseModel], str]] = {
    le.CREATED: (EventData, "A lead was created (its first touch was scored)."),
    le.QUALIFIED: (QualifiedData, "A lead reached mql or sql from a lower qualification."),
    le.STAGE_CHANGED: (StageChangedData, "A lead's funnel or journey stage moved."),
    le.OWNER_ASSIGNED: (
        OwnerAssignedData,
        "Routing gave a lead a new owner (a team change, a queue hand-out, an SLA reassign).",
    ),
    le.MERGED: (MergedData, "Another lead was merged into this one."),
    le.ERASED: (ErasedData, "A person was erased (a privacy request): erase your copy too."),
}
HEADERS_DOC = (
    " Sent as a signed POST (Standard Webhooks): `webhook-id` (the same on every attempt of "
    "the message; deduplicate by it), `webhook-timestamp` (Unix seconds of the attempt) and "
    "`webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret, "
    "space-separated, while a rotated secret is in its grace period). Answer 2xx to "
    "acknowledge; anything else is retried with backoff."
)


def _receiver(event_type: str, model: type[BaseModel]) -> Callable[..., None]:
    """A stand-in operation documenting what a subscriber's endpoint receives."""

    def receive(
        body: BaseModel,
        webhook_id: Annotated[str, Header(alias="webhook-id")],
        webhook_timestamp: Annotated[int, Header(alias="webhook-timestamp")],
        webhook_signature: Annotated[str, Header(alias="webhook-signature")],
    ) -> None:
        """Never called: documents a delivery."""

    receive.__name__ = event_type.replace(".", "_")
    receive.__annotations__ = {**receive.__annotations__, "body": model}
    return receive


def declare_events(webhooks: APIRouter) -> None:
    """Declare each lead event on the app's `webhooks` router, so the OpenAPI's `webhooks`
    section documents its body and headers."""
    for event_type, (data, summary) in EVENTS.items():
        model = _event_model(event_type, data)
        webhooks.add_api_route(
            event_type,
            _receiver(event_type, model),
            methods=["POST"],
            summary=summary,
            description=summary + HEADERS_DOC,
            tags=["webhooks"],
            status_code=204,
            response_description="acknowledged: any 2xx",
        )
