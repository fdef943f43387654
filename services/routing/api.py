"""Routing's routes: teams and their queues, members' availability, actions, sales feedback and
the unsubscribe link."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from services.routing import service
from services.routing.cursors import decode_position, encode_position
from services.routing.domain.actions import ActionStatus
from services.routing.domain.webhooks import lead_of_unsubscribe_token
from services.routing.paging import split_page
from services.routing.schemas import Action, FeedbackRecorded, QueueItem, Team, Teams
from services.routing.webhooks_api import router as webhooks_router
from shared.auth import LeadsReader, LeadsWriter
from shared.config import Settings
from shared.events import utcnow
from shared.http import ApiError, SessionDep, SettingsDep
from shared.pages import Page
from shared.schemas import KEYED, STORABLE_TEXT, WITH_BODY, UtcDateTime, error_responses

router = APIRouter(tags=["routing"])
# Outbound lead webhooks: /v1/webhooks...
router.include_router(webhooks_router)

# Path parameters matched against stored text.
LeadId = Annotated[str, Path(pattern=STORABLE_TEXT)]
ActionId = Annotated[str, Path(pattern=STORABLE_TEXT)]
Cursor = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` of the previous page")
]


@router.get(
    "/v1/teams",
    response_model=Teams,
    summary="Teams that own funnel steps, their members, SLAs and load",
    responses=error_responses(*KEYED),
)
def list_teams(
    session: SessionDep, settings: SettingsDep, _principal: LeadsReader
) -> dict[str, Any]:
    """Every configured team with members (capacity, open leads, away), SLAs and breaches."""
    config = service.config_for(settings)
    return {"items": service.list_teams(session, config=config, now=utcnow())}


@router.get(
    "/v1/teams/{team}/queue",
    response_model=Page[QueueItem],
    summary="A team's leads, the soonest SLA first",
    responses=error_responses(*KEYED, 400, 404, 422),
)
def team_queue(
    team: str,
    session: SessionDep,
    settings: SettingsDep,
    _principal: LeadsReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """A page of the team's current leads ordered by SLA due time (none last), `{"items":
    [...], "next_cursor": ...}`; 404 for an unknown team."""
    if team not in service.config_for(settings).teams:
        raise ApiError(404, "not_found", f"no team named {team!r}")
    after = decode_position(cursor, listing="queue", id_type=int) if cursor else None
    items, last = service.team_queue(session, team=team, limit=limit, after=after)
    return {"items": items, "next_cursor": encode_position("queue", *last) if last else None}


@router.get(
    "/v1/teams/{team}/tasks",
    response_model=Page[Action],
    summary="A team's open tasks, the oldest first",
    responses=error_responses(*KEYED, 400, 404, 422),
)
def team_tasks(
    team: str,
    session: SessionDep,
    settings: SettingsDep,
    _principal: LeadsReader,
    member: Annotated[str | None, Query(max_length=320, pattern=STORABLE_TEXT)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """A page of the team's tasks (escalations, regression and sales alerts without a webhook,
    event follow-ups) that are open: due or waiting for someone to close them; `member` narrows
    to one owner's. Close one with `POST /v1/actions/{id}/cancel`. 404 for an unknown team."""
    if team not in service.config_for(settings).teams:
        raise ApiError(404, "not_found", f"no team named {team!r}")
    after = decode_position(cursor, listing="tasks", id_type=str) if cursor else None
    items, last = service.open_tasks(session, team=team, member=member, limit=limit, after=after)
    return {"items": items, "next_cursor": encode_position("tasks", *last) if last else None}


class Availability(BaseModel):
    """Mark a member away (optionally until a time) or back."""

    model_config = ConfigDict(extra="forbid")

    away: bool
    until: UtcDateTime | None = None


@router.patch(
    "/v1/teams/{team}/members/{member}",
    response_model=Team,
    summary="Mark a member away or back",
    responses=error_responses(*KEYED, *WITH_BODY, 404),
)
def set_member_availability(
    team: str,
    member: str,
    body: Availability,
    session: SessionDep,
    settings: SettingsDep,
    _principal: LeadsWriter,
) -> dict[str, Any]:
    """Away members get no new leads until they are back (or `until` passes)."""
    config = service.config_for(settings)
    with session.begin():
        found = service.set_availability(
            session,
            config=config,
            team=team,
            member=member,
            away=body.away,
            until=body.until,
            now=utcnow(),
        )
    if not found:
        raise ApiError(404, "not_found", f"no member {member!r} in team {team!r}")
    teams = service.list_teams(session, config=config, now=utcnow())
    return next(t for t in teams if t["team"] == team)


class Feedback(BaseModel):
    """What a sales tool reports about a lead."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["contacted", "accepted", "rejected", "disqualified", "won", "lost"]
    reason: str | None = Field(None, max_length=500, pattern=STORABLE_TEXT)

    @field_validator("reason")
    @classmethod
    def _blank(cls, value: str | None) -> str | None:
        """An empty reason is no reason."""
        return value.strip() or None if value else None


@router.post(
    "/v1/leads/{lead_id}/feedback",
    status_code=202,
    response_model=FeedbackRecorded,
    summary="Report back on a lead",
    responses=error_responses(*KEYED, *WITH_BODY, 404),
)
def post_feedback(
    lead_id: LeadId,
    body: Feedback,
    session: SessionDep,
    settings: SettingsDep,
    principal: LeadsWriter,
) -> dict[str, Any]:
    """Record the feedback (a contact stops the SLA clock) and pass it to scoring as a touch."""
    if body.type == "rejected" and not body.reason:
        raise ApiError(
            422,
            "validation_error",
            "reason: a rejection needs a reason",
            details=[{"field": "reason", "error": "a rejection needs a reason"}],
        )
    with session.begin():
        found = service.record_feedback(
            session,
            lead_id=lead_id,
            kind=body.type,
            reason=body.reason,
            by=principal.name,
            settings=settings,
            now=utcnow(),
        )
    if not found:
        raise ApiError(404, "not_found", f"no lead with id {lead_id!r}")
    return {"lead_id": lead_id, "type": body.type, "recorded": True}


@router.get(
    "/v1/actions",
    response_model=Page[Action],
    summary="Follow-up actions: emails, webhooks, tasks, SLA checks, lead webhook deliveries",
    responses=error_responses(*KEYED, 400, 422),
)
def list_actions(
    session: SessionDep,
    _principal: LeadsReader,
    lead_id: Annotated[str | None, Query(max_length=36, pattern=STORABLE_TEXT)] = None,
    status: Annotated[
        ActionStatus | None,
        Query(),
    ] = None,
    kind: Annotated[
        Literal["email", "webhook", "task", "sla", "lead_webhook"] | None, Query()
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """A page of the actions matching the filters, the soonest due first, `{"items": [...],
    "next_cursor": ...}`."""
    from services.routing import repository as repo

    after = decode_position(cursor, listing="actions", id_type=str) if cursor else None
    fetched = repo.list_actions(
        session, lead_id=lead_id, status=status, kind=kind, limit=limit + 1, after=after
    )
    rows, last = split_page(fetched, limit=limit, key="due_at")
    return {
        "items": [service.action_view(r) for r in rows],
        "next_cursor": encode_position("actions", *last) if last else None,
    }


@router.post(
    "/v1/actions/{action_id}/cancel",
    response_model=Action,
    summary="Cancel a scheduled action",
    responses=error_responses(*KEYED, 404, 409, 422),
)
def cancel_action(
    action_id: ActionId, session: SessionDep, _principal: LeadsWriter
) -> dict[str, Any]:
    """Cancel an action that has not gone out (or close an open task); 409 if it already went."""
    try:
        with session.begin():
            action = service.cancel_action(session, action_id=action_id, now=utcnow())
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    if action is None:
        raise ApiError(404, "not_found", f"no action with id {action_id!r}")
    return action


# Answered to a person who followed the link, so as a page, like the success.
INVALID_LINK = "<p>This unsubscribe link is not valid.</p>"
UNSUBSCRIBE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "The link is not valid: forged, damaged, or its lead is gone",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}


def _unsubscribe(token: str, session: Session, settings: Settings) -> HTMLResponse:
    """Unsubscribe the lead the token names; a page saying so, or that the link is not valid."""
    lead_id = lead_of_unsubscribe_token(secret=settings.secret_key.get_secret_value(), token=token)
    if lead_id is None:
        return HTMLResponse(INVALID_LINK, status_code=404)
    with session.begin():
        found = service.unsubscribe(session, lead_id=lead_id, now=utcnow())
    if not found:
        return HTMLResponse(INVALID_LINK, status_code=404)
    return HTMLResponse("<p>You are unsubscribed and will get no more marketing email.</p>")


@router.get(
    "/v1/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="The unsubscribe link in every marketing email",
    responses=UNSUBSCRIBE_RESPONSES,
)
def unsubscribe_link(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Stop marketing email to the lead the signed token names; no key needed."""
    return _unsubscribe(token, session, settings)


@router.post(
    "/v1/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="One-click unsubscribe (RFC 8058), as mail clients POST it",
    responses=UNSUBSCRIBE_RESPONSES,
)
def unsubscribe_one_click(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Stop marketing email to the lead the signed token names; no key needed."""
    return _unsubscribe(token, session, settings)
