"""Lead-state routes sales tools read: one lead, and pages of leads."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.scoring import service
from shared.auth import LeadsReader
from shared.events import normalize_email
from shared.http import ApiError, SessionDep

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
