"""Ingest's routes: the webhook edge marketing platforms post touch events to."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from services.ingest.service import accept_events
from shared.events import TouchEventIn, utcnow
from shared.http import ApiError, ProducerDep, SettingsDep, error_body
from shared.kafka import PublishError

router = APIRouter(tags=["ingest"])


class Rejected(BaseModel):
    """One event of a request that was not accepted, and why."""

    index: int
    field: str
    error: str


class AcceptedOut(BaseModel):
    """The 202 answer: what the broker now has."""

    accepted: int
    ids: list[str]
    duplicates: int = 0
    rejected: list[Rejected] = []


@router.post(
    "/v1/events",
    status_code=202,
    response_model=AcceptedOut,
    summary="Post one native touch event",
    responses={
        422: {
            "description": "The event does not match the schema; the message names the field",
            "content": {
                "application/json": {
                    "example": error_body(
                        "validation_error",
                        "lead: lead needs at least one of email or anonymous_id",
                        [
                            {
                                "field": "lead",
                                "error": "lead needs at least one of email or anonymous_id",
                            }
                        ],
                    )
                }
            },
        },
        503: {"description": "The broker did not acknowledge in time; retry after Retry-After"},
    },
)
async def post_event(
    event: TouchEventIn, producer: ProducerDep, settings: SettingsDep
) -> AcceptedOut:
    """Accept one touch event; 202 means the broker has it."""
    try:
        accepted = await accept_events(
            events=[event], producer=producer, settings=settings, received_at=utcnow()
        )
    except PublishError as exc:
        raise ApiError(
            503,
            "broker_unavailable",
            f"the event was not accepted: {exc}",
            headers={"Retry-After": "5"},
        ) from exc
    return AcceptedOut(accepted=len(accepted.ids), ids=accepted.ids, duplicates=accepted.duplicates)
