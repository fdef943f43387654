"""The inputs and outputs of scoring, as plain data: touches and persona in, an assessment out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain import FunnelStage, JourneyStage, Qualification


@dataclass(frozen=True)
class Touch:
    """One thing the buyer did, as scoring sees it."""

    event_id: str
    type: str
    occurred_at: datetime
    source: str = "api"
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Persona:
    """Who the buyer is: title and firmographics."""

    job_title: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    industry: str | None = None
    country: str | None = None
    company_domain: str | None = None
    # The domain of the lead's email: in a deployment with several models, a free-mail or a work
    # domain picks the B2C or the B2B one (`model_set.ModelSet.segment_of`).
    email_domain: str | None = None


@dataclass(frozen=True)
class Evidence:
    """One rule's contribution to a BANT dimension, with its points after decay: the rule gave
    `original_points`, halving every `half_life_days` (None for facts that do not fade)."""

    event_id: str | None
    type: str
    at: datetime | None
    rule: str
    points: int
    original_points: int | None = None
    half_life_days: float | None = None


@dataclass(frozen=True)
class Dimension:
    """A BANT dimension: score 0-100, whether it is met, and why."""

    score: int
    met: bool
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Bant:
    """Budget, authority, need and timing for one lead."""

    budget: Dimension
    authority: Dimension
    need: Dimension
    timing: Dimension

    def dimensions(self) -> dict[str, Dimension]:
        """The four dimensions by name."""
        return {
            "budget": self.budget,
            "authority": self.authority,
            "need": self.need,
            "timing": self.timing,
        }


@dataclass(frozen=True)
class Transition:
    """A move on one stage track: when, from where to where, why, and after how long."""

    track: str
    from_stage: str | None
    to_stage: str
    at: datetime
    cause_event_id: str | None
    rule: str
    seconds_in_previous: float | None


@dataclass(frozen=True)
class Assessment:
    """Scoring's decision for a lead: score, qualification, BANT and both stages."""

    score: int
    qualification: Qualification
    bant: Bant
    funnel_stage: FunnelStage | None
    journey_stage: JourneyStage | None
    model_version: str
    qualification_reason: str = ""
    # Fit (who the lead is) and engagement (what they did, fading), 0-100 each.
    fit: int = 0
    engagement: int = 0
    # The model's persona the lead matches (None: none).
    persona: str | None = None
    # Every stage move the history implies, in time order (both tracks).
    transitions: tuple[Transition, ...] = ()
