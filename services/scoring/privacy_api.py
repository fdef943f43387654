"""Scoring's privacy routes: erase a person everywhere leadflow stores them, and export
everything held about them (scope `privacy`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from services.scoring import privacy, service
from shared.auth import PrivacyOfficer
from shared.events import utcnow
from shared.http import ApiError, SessionDep, SettingsDep
from shared.schemas import KEYED, STORABLE_TEXT, error_responses

router = APIRouter(tags=["privacy"])

LeadId = Annotated[str, Path(pattern=STORABLE_TEXT)]


class Erasure(BaseModel):
    """The record of an erasure: what went, by table; no personal data."""

    id: str
    lead_id: str
    requested_by: str
    reason: str | None = None
    removed: dict[str, int] = Field(description="rows deleted, by table")
    at: datetime


class PersonExport(BaseModel):
    """Everything leadflow holds about a person, by service and table."""

    lead_id: str
    exported_at: datetime
    scoring: dict[str, list[dict[str, Any]]]
    routing: dict[str, list[dict[str, Any]]]


@router.delete(
    "/v1/leads/{lead_id}",
    summary="Erase a person everywhere leadflow stores them",
    response_model=Erasure,
    responses=error_responses(*KEYED, 404, 422),
)
def erase_lead(
    lead_id: LeadId,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrivacyOfficer,
    reason: Annotated[
        str | None, Query(max_length=200, pattern=STORABLE_TEXT, description="why, kept")
    ] = None,
) -> dict[str, Any]:
    """Delete the lead, its identities, touches, history, actions and deliveries, publish a
    tombstone; keeps only identity hashes and a record of the erasure (privacy)."""
    with session.begin():
        erased = privacy.erase_lead(
            session,
            lead_id=lead_id,
            requested_by=f"api key {principal.name}",
            reason=reason,
            settings=settings,
            models=service.load_models(settings.scoring_model),
            now=utcnow(),
        )
    if erased is None:
        raise ApiError(404, "not_found", f"no lead with id {lead_id!r}")
    return erased


@router.get(
    "/v1/leads/{lead_id}/export",
    summary="Everything held about a person",
    response_model=PersonExport,
    responses=error_responses(*KEYED, 404, 422),
)
def export_lead(lead_id: LeadId, session: SessionDep, _principal: PrivacyOfficer) -> dict[str, Any]:
    """The lead's rows in every table that holds them, scoring's and routing's (privacy)."""
    exported = privacy.export_lead(session, lead_id=lead_id)
    if exported is None:
        raise ApiError(404, "not_found", f"no lead with id {lead_id!r}")
    return {**exported, "exported_at": utcnow()}
