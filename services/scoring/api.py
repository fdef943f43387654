"""Scoring's route: why a lead has its score, qualification and stages. The lead, account,
timeline and funnel routes, which join routing's data, are the read side's (`views/`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.scoring import service
from services.scoring.privacy_api import router as privacy_router
from services.scoring.schemas import Explanation
from shared.auth import LeadsReader
from shared.events import utcnow
from shared.http import ApiError, SessionDep, SettingsDep
from shared.schemas import KEYED, STORABLE_TEXT, error_responses

router = APIRouter(tags=["leads"])
router.include_router(privacy_router)

# Path parameters matched against stored text.
LeadId = Annotated[str, Path(pattern=STORABLE_TEXT)]


@router.get(
    "/v1/leads/{lead_id}/explain",
    response_model=Explanation,
    summary="Why the lead has its score and stages",
    responses=error_responses(*KEYED, 404, 422),
)
def explain_lead(
    lead_id: LeadId, session: SessionDep, settings: SettingsDep, _principal: LeadsReader
) -> dict[str, Any]:
    """Plain sentences on the score, qualification, each BANT dimension and both stages."""
    explained = service.explain_lead(
        session, lead_id=lead_id, models=service.load_models(settings.scoring_model), now=utcnow()
    )
    if explained is None:
        raise ApiError(404, "not_found", f"no lead with id {lead_id!r}")
    return explained
