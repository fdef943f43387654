"""BANT qualification: how budget, authority, need and timing are scored from a lead's history.

This is the foundation's first model (the scoring issue replaces it with a versioned config
file). Each rule gives points that halve every `half_life_days`, so old evidence fades.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.scoring.domain.model import Bant, Dimension, Evidence, Persona, Touch

MET_THRESHOLD = 50

# Declared answers decay slowly; behaviour fades within weeks.
SLOW_DAYS = 180.0
FAST_DAYS = 14.0


@dataclass(frozen=True)
class BehaviourRule:
    """Points a touch type gives a dimension."""

    dimension: str
    event_type: str
    points: int
    half_life_days: float


BEHAVIOUR_RULES: tuple[BehaviourRule, ...] = (
    BehaviourRule("need", "content_download", 15, FAST_DAYS),
    BehaviourRule("need", "webinar_attended", 20, FAST_DAYS * 2),
    BehaviourRule("need", "form_submit", 10, FAST_DAYS * 2),
    BehaviourRule("need", "demo_requested", 30, FAST_DAYS * 2),
    BehaviourRule("need", "trial_started", 25, FAST_DAYS * 2),
    BehaviourRule("need", "review_viewed", 10, FAST_DAYS),
    BehaviourRule("need", "page_view", 3, FAST_DAYS / 2),
    BehaviourRule("timing", "demo_requested", 35, FAST_DAYS),
    BehaviourRule("timing", "pricing_viewed", 15, FAST_DAYS / 2),
    BehaviourRule("timing", "cart_add", 25, FAST_DAYS / 2),
    BehaviourRule("timing", "checkout_started", 35, FAST_DAYS / 2),
    BehaviourRule("timing", "trial_started", 20, FAST_DAYS),
    BehaviourRule("timing", "meeting_booked", 30, FAST_DAYS),
)

# Highest level first, matched on whole words; "vice president" is read as "vp" beforehand so
# that it does not count as the C-level "president".
_TITLE_LEVELS: tuple[tuple[tuple[str, ...], int, str], ...] = (
    (
        (
            "chief",
            "ceo",
            "cto",
            "cfo",
            "coo",
            "cio",
            "cmo",
            "founder",
            "co founder",
            "president",
            "business owner",
        ),
        90,
        "c_level",
    ),
    (("vp", "svp", "evp", "head of"), 75, "vp"),
    (("director",), 60, "director"),
    (("manager", "team lead"), 40, "manager"),
)


def decayed(points: float, *, at: datetime | None, now: datetime, half_life_days: float) -> int:
    """Points left after halving every `half_life_days` since `at` (none lost for the future)."""
    if at is None:
        return round(points)
    age_days = max(0.0, (now - at).total_seconds() / 86_400)
    return round(points * 0.5 ** (age_days / half_life_days))


def seniority_points(job_title: str | None) -> tuple[int, str] | None:
    """Authority points and level a job title implies, or None for no signal."""
    if not job_title:
        return None
    words = " " + " ".join(re.findall(r"[a-z0-9]+", job_title.lower())) + " "
    words = words.replace(" vice president ", " vp ")
    for needles, points, level in _TITLE_LEVELS:
        if any(f" {needle} " in words for needle in needles):
            return points, level
    return None


def _dimension(evidence: Iterable[Evidence]) -> Dimension:
    kept = tuple(e for e in evidence if e.points > 0)
    score = min(100, sum(e.points for e in kept))
    return Dimension(score=score, met=score >= MET_THRESHOLD, evidence=kept)


def _declared(touches: Sequence[Touch], field: str) -> Touch | None:
    """The newest touch that declared `field` (forms may answer it again later)."""
    declared = [t for t in touches if t.properties.get(field) not in (None, "", False)]
    return max(declared, key=lambda t: t.occurred_at) if declared else None


def assess_bant(*, persona: Persona, touches: Sequence[Touch], now: datetime) -> Bant:
    """Score budget, authority, need and timing from persona and touch history at `now`."""
    found: dict[str, list[Evidence]] = {"budget": [], "authority": [], "need": [], "timing": []}

    if (t := _declared(touches, "budget")) is not None:
        found["budget"].append(
            Evidence(
                t.event_id,
                t.type,
                t.occurred_at,
                "declared_budget",
                decayed(40, at=t.occurred_at, now=now, half_life_days=SLOW_DAYS),
            )
        )
    if persona.employees is not None and persona.employees >= 200:
        found["budget"].append(Evidence(None, "firmographics", None, "company_size", 30))
    if persona.annual_revenue is not None and persona.annual_revenue >= 10_000_000:
        found["budget"].append(Evidence(None, "firmographics", None, "company_revenue", 30))
    cart_touches = [t for t in touches if isinstance(t.properties.get("cart"), dict)]
    if cart_touches:
        t = max(cart_touches, key=lambda t: t.occurred_at)
        found["budget"].append(
            Evidence(
                t.event_id,
                t.type,
                t.occurred_at,
                "cart_value",
                decayed(20, at=t.occurred_at, now=now, half_life_days=FAST_DAYS),
            )
        )

    if (level := seniority_points(persona.job_title)) is not None:
        points, name = level
        found["authority"].append(Evidence(None, "persona", None, f"title_{name}", points))
    if (t := _declared(touches, "is_decision_maker")) is not None:
        found["authority"].append(
            Evidence(
                t.event_id,
                t.type,
                t.occurred_at,
                "declared_decision_maker",
                decayed(40, at=t.occurred_at, now=now, half_life_days=SLOW_DAYS),
            )
        )

    if (t := _declared(touches, "timeframe")) is not None:
        found["timing"].append(
            Evidence(
                t.event_id,
                t.type,
                t.occurred_at,
                "declared_timeframe",
                decayed(40, at=t.occurred_at, now=now, half_life_days=SLOW_DAYS / 2),
            )
        )

    for rule in BEHAVIOUR_RULES:
        for t in touches:
            if t.type == rule.event_type:
                found[rule.dimension].append(
                    Evidence(
                        t.event_id,
                        t.type,
                        t.occurred_at,
                        f"{rule.event_type}",
                        decayed(
                            rule.points,
                            at=t.occurred_at,
                            now=now,
                            half_life_days=rule.half_life_days,
                        ),
                    )
                )

    return Bant(**{name: _dimension(evidence) for name, evidence in found.items()})
