"""The read side's routes, served with scoring's (`leadflow scoring` and `leadflow up`): the
leads, their timelines and the funnel (`leads_api`), the accounts (`accounts_api`) and the
trace of a lead through every rule (here)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.routing.public import config_for
from services.scoring.service import load_models
from shared.auth import LeadsReader
from shared.events import utcnow
from shared.http import ApiError, SessionDep, SettingsDep
from shared.schemas import KEYED, STORABLE_TEXT, error_responses
from views import accounts_api, leads_api, trace
from views.schemas import Trace

trace_router = APIRouter(tags=["leads"])

LeadId = Annotated[str, Path(pattern=STORABLE_TEXT)]


@trace_router.get(
    "/v1/leads/{lead_id}/trace",
    response_model=Trace,
    summary="Which rules matched the lead, and why not",
    responses=error_responses(*KEYED, 404, 422),
)
def trace_lead(
    lead_id: LeadId, session: SessionDep, settings: SettingsDep, _principal: LeadsReader
) -> dict[str, Any]:
    """Scoring, routing and playbook rules: matched or not, and the reason for each."""
    traced = trace.trace_lead(
        session,
        lead_id=lead_id,
        models=load_models(settings.scoring_model),
        routing=config_for(settings),
        now=utcnow(),
    )
    if traced is None:
        raise ApiError(404, "not_found", f"no lead with id {lead_id!r}")
    return traced


router = APIRouter()
router.include_router(leads_api.router)
router.include_router(accounts_api.router)
router.include_router(trace_router)
