"""Lead-state routes sales tools read: one lead, and pages of leads."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from services.scoring import service
from services.scoring.domain.accounts import CommitteeFunction, Involvement
from shared.auth import LeadsReader, LeadsWriter
from shared.events import normalize_email, utcnow
from shared.http import ApiError, SessionDep, SettingsDep

router = APIRouter(tags=["leads"])


def encode_cursor(lead_id: str) -> str:
    """An opaque cursor for the page after `lead_id`."""
    return base64.urlsafe_b64encode(lead_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The lead id a cursor continues after; 400 for a cursor we did not issue."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not decoded:
        raise ApiError(
            400,
            "bad_cursor",
            "cursor: not a cursor this API issued",
            details=[{"field": "cursor", "error": "not a cursor this API issued"}],
        )
    return decoded


@router.get("/v1/leads", summary="List leads, optionally by email")
def list_leads(
    session: SessionDep,
    _principal: LeadsReader,
    email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """A page of leads, `{"items": [...], "next_cursor": ...}`."""
    items, last_id = service.list_leads(
        session,
        email=normalize_email(email) if email else None,
        after_id=decode_cursor(cursor) if cursor else None,
        limit=limit,
    )
    return {"items": items, "next_cursor": encode_cursor(last_id) if last_id else None}


@router.get("/v1/leads/{lead_id}", summary="One lead with BANT, stages and owner")
def get_lead(lead_id: str, session: SessionDep, _principal: LeadsReader) -> dict[str, Any]:
    """The lead as sales tools see it; 404 if there is no such lead."""
    lead = service.get_lead(session, lead_id=lead_id)
    if lead is None:
        raise ApiError(404, "not_found", f"lead {lead_id!r} not found")
    return lead


@router.get("/v1/leads/{lead_id}/explain", summary="Why the lead has its score and stages")
def explain_lead(
    lead_id: str, session: SessionDep, settings: SettingsDep, _principal: LeadsReader
) -> dict[str, Any]:
    """Plain sentences on the score, qualification, each BANT dimension and both stages."""
    explained = service.explain_lead(
        session, lead_id=lead_id, model=service.load_model(settings.scoring_model), now=utcnow()
    )
    if explained is None:
        raise ApiError(404, "not_found", f"no lead with id {lead_id!r}")
    return explained


def _encode_position(position: tuple[str, int, str]) -> str:
    raw = orjson.dumps(list(position))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_position(cursor: str) -> tuple[str, int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, rank, key = orjson.loads(raw)
        return str(at), int(rank), str(key)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ApiError(
            400,
            "bad_cursor",
            "cursor: not a cursor this API issued",
            details=[{"field": "cursor", "error": "not a cursor this API issued"}],
        ) from None


@router.get("/v1/leads/{lead_id}/timeline", summary="Everything that happened to a lead")
def lead_timeline(
    lead_id: str,
    session: SessionDep,
    _principal: LeadsReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Touches, stage and qualification moves, identity merges and assignments, oldest first."""
    result = service.timeline(
        session,
        lead_id=lead_id,
        after=_decode_position(cursor) if cursor else None,
        limit=limit,
    )
    if result is None:
        raise ApiError(404, "not_found", f"no lead with id {lead_id!r}")
    items, last = result
    return {"items": items, "next_cursor": _encode_position(last) if last else None}


accounts_router = APIRouter(tags=["accounts"])


class MemberOverride(BaseModel):
    """A hand-set place in the buying committee; null clears that part of the override."""

    model_config = ConfigDict(extra="forbid")

    involvement: Involvement | None = None
    function: CommitteeFunction | None = None


@accounts_router.get("/v1/accounts/{domain}", summary="An account and its buying committee")
def get_account(domain: str, session: SessionDep, _principal: LeadsReader) -> dict[str, Any]:
    """Members with involvement and function, account BANT and stages; 404 if unknown."""
    account = service.account_view(session, domain=domain.strip().lower())
    if account is None:
        raise ApiError(404, "not_found", f"no account with domain {domain!r}")
    return account


@accounts_router.patch(
    "/v1/accounts/{domain}/members/{lead_id}",
    summary="Override a member's involvement or function",
)
def override_member(
    domain: str,
    lead_id: str,
    body: MemberOverride,
    session: SessionDep,
    _principal: LeadsWriter,
) -> dict[str, Any]:
    """Set what inference got wrong; the account is re-assessed at once (leads:write)."""
    with session.begin():
        account = service.override_member(
            session,
            domain=domain.strip().lower(),
            lead_id=lead_id,
            involvement=body.involvement.value if body.involvement else None,
            function=body.function.value if body.function else None,
            now=utcnow(),
        )
    if account is None:
        raise ApiError(404, "not_found", f"lead {lead_id!r} is not a member of {domain!r}")
    return account
