"""What scoring's explain route answers, as the OpenAPI documents it. The evidence per BANT
dimension is open-ended (its fields follow the model's rules): a JSON object per item. The
model changes nothing in the JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.pages import Timestamp


class Explanation(BaseModel):
    """Why a lead has its stored score, qualification and stages, and what they are now."""

    lead_id: str
    model_version: str
    score: int
    qualification: str
    funnel_stage: str | None
    journey_stage: str | None
    scored_at: Timestamp | None
    score_now: int
    qualification_now: str
    fit: int
    engagement: int
    engagement_now: int
    model_reason: str
    sentences: list[str]
    evidence: dict[str, list[dict[str, Any]]] = Field(
        description="per BANT dimension: each item's rule, points then and now, half-life"
    )
