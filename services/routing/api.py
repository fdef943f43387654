"""Routing's routes: the teams that own funnel steps and how many leads each holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.routing import service
from shared.auth import LeadsReader
from shared.http import SessionDep

router = APIRouter(tags=["routing"])


@router.get("/v1/teams", summary="Teams that own funnel steps, with their open leads")
def list_teams(session: SessionDep, _principal: LeadsReader) -> dict[str, Any]:
    """Every team the rules can route to, with the rule names and current lead counts."""
    return {"items": service.list_teams(session)}
