"""Scoring's service: the scoring model, the stage-regression re-score, a hand override of a
buying-committee member, and why a lead has its score. Touches are scored by `batch.py`; the
lead, account, timeline and funnel views that join routing's data are in `views/`."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from services.scoring import repository as repo
from services.scoring.accounts_rollup import refresh_account
from services.scoring.domain.explain import explain
from services.scoring.domain.model_set import ModelSet, ModelSetError
from services.scoring.domain.qualification import assess
from services.scoring.domain.scoring_model import ModelError, ScoringModel, parse_model
from services.scoring.handlers import rescore_leads
from services.scoring.shapes import evidence_then_and_now, iso, persona_of, touch_of
from shared.config import Settings, read_toml_setting
from shared.db import as_utc

BUNDLED_MODELS = Path(__file__).resolve().parent / "models"


@lru_cache(maxsize=8)
def load_model(spec: str) -> ScoringModel:
    """The scoring model named by a setting: a bundled name (b2b_saas, b2c_ecommerce) or a path
    to a TOML file. Raises ModelError naming the file, the place and the reason."""
    try:
        path, text = read_toml_setting(spec, bundled=BUNDLED_MODELS)
    except OSError as exc:
        raise ModelError(spec, "file", str(exc)) from None
    return parse_model(text, source=str(path))


@lru_cache(maxsize=8)
def load_models(spec: str) -> ModelSet:
    """The deployment's scoring models named by a setting: one name or path, or several joined
    by commas (`b2b_saas,b2c_ecommerce`), the default first. Raises ModelError naming the file,
    the place and the reason."""
    names = [part.strip() for part in spec.split(",") if part.strip()]
    try:
        return ModelSet(tuple(load_model(name) for name in names))
    except ModelSetError as exc:
        raise ModelError(spec, "models", str(exc)) from None


def rescore_due(
    session: Session, *, settings: Settings, models: ModelSet, now: datetime, limit: int = 500
) -> int:
    """Re-assess leads whose stage may have fallen back for want of signals (no event will come
    to trigger it), under any of the models; returns how many moved. Each move is published
    like any lead change."""
    funnel, journey = models.regressions("funnel"), models.regressions("journey")
    if not funnel and not journey:
        return 0
    quiet_since = now - timedelta(days=min(r.after_days for r in [*funnel, *journey]))
    candidates = repo.leads_quiet_in_stages(
        session,
        funnel_stages=sorted({r.stage for r in funnel}),
        journey_stages=sorted({r.stage for r in journey}),
        quiet_since=quiet_since,
        limit=limit,
    )
    return rescore_leads(
        session, lead_ids=list(candidates), settings=settings, models=models, now=now
    )


def rescore_stale(
    session: Session, *, settings: Settings, models: ModelSet, now: datetime, limit: int = 500
) -> tuple[int, int]:
    """Re-derive up to `limit` leads whose stored score is older than
    `scoring_decay_refresh_s` (stalest first), so decay reaches the stored score, qualification
    and stages; returns (leads re-derived, leads that moved). Moves are published."""
    before = now - timedelta(seconds=settings.scoring_decay_refresh_s)
    stale = repo.leads_scored_before(session, before=before, limit=limit)
    moved = rescore_leads(session, lead_ids=stale, settings=settings, models=models, now=now)
    return len(stale), moved


def override_member(
    session: Session,
    *,
    domain: str,
    lead_id: str,
    involvement: str | None,
    function: str | None,
    model: ScoringModel,
    now: datetime,
) -> bool:
    """Set a member's involvement and/or function by hand and re-assess the account; False
    (nothing changed) if the lead is not a member of that account."""
    lead = repo.get_lead(session, lead_id=lead_id)
    if lead is None or lead.account_domain != domain:
        return False
    repo.set_override(session, lead_id=lead_id, involvement=involvement, function=function, at=now)
    refresh_account(session, domain=domain, model=model, now=now)
    return True


def explain_lead(
    session: Session, *, lead_id: str, models: ModelSet, now: datetime
) -> dict[str, Any] | None:
    """Why the lead has its stored score, qualification and stages: the history re-derived at
    the moment they were stored (`scored_at`) under the model that stored them, each evidence
    item with the points its rule gave, its half-life, its points then and now, and the score
    it has decayed to by `now`."""
    row = repo.get_lead(session, lead_id=lead_id)
    if row is None:
        return None
    history = [touch_of(r) for r in repo.touches_of(session, lead_id=lead_id)]
    persona = persona_of(row)
    chosen, why = models.choose(persona)
    model = models.by_version(row.model_version) or chosen
    if model is not chosen:
        why = f"Model {model.version} stored this score. As the lead is now: {why}"
    scored_at = as_utc(row.scored_at) or now
    stored = assess(model=model, persona=persona, touches=history, now=scored_at)
    current = assess(model=model, persona=persona, touches=history, now=now)
    return {
        "lead_id": lead_id,
        "model_version": stored.model_version,
        "score": stored.score,
        "qualification": stored.qualification.value,
        "funnel_stage": stored.funnel_stage and stored.funnel_stage.value,
        "journey_stage": stored.journey_stage and stored.journey_stage.value,
        "scored_at": iso(scored_at),
        "score_now": current.score,
        "qualification_now": current.qualification.value,
        "fit": stored.fit,
        "engagement": stored.engagement,
        "engagement_now": current.engagement,
        "model_reason": why,
        "sentences": explain(stored, model=model, now=scored_at),
        "evidence": evidence_then_and_now(stored, current),
    }
