"""The follow-up check for operators: every action has a next step (services/routing/followups.py)
run with the configured scoring model and routing file."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from services.routing.public import config_for, followup_report
from services.scoring.service import load_models
from shared.config import Settings


def followups(*, session: Session, settings: Settings, days: int, limit: int) -> dict[str, Any]:
    """Leads that acted and got no next step in time, and the touch types' coverage."""
    models = load_models(settings.scoring_model)
    # Every model's funnel signals: a touch type any of them answers is covered.
    signals = {k: v for m in reversed(models.models) for k, v in m.stages.funnel.signals.items()}
    return followup_report(
        session,
        config=config_for(settings),
        funnel_signals=signals,
        now=datetime.now(UTC),
        days=days,
        limit=limit,
    )
