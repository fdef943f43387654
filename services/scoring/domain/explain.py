"""Plain sentences that say why a lead has its score, qualification and stages."""

from __future__ import annotations

from datetime import datetime

from services.scoring.domain.model import Assessment, Evidence, Transition
from services.scoring.domain.scoring_model import ScoringModel

# How a touch reads in a sentence; other types are spelled out from their name.
PHRASES = {
    "page_view": "viewed a page",
    "email_open": "opened an email",
    "email_click": "clicked an email",
    "content_download": "downloaded content",
    "form_submit": "submitted a form",
    "webinar_registered": "registered for a webinar",
    "webinar_attended": "attended a webinar",
    "demo_requested": "requested a demo",
    "trial_started": "started a trial",
    "trial_activated": "activated the trial",
    "pricing_viewed": "viewed pricing",
    "review_viewed": "read reviews",
    "cart_add": "added to the cart",
    "checkout_started": "started checkout",
    "order_completed": "completed an order",
    "meeting_booked": "booked a meeting",
}


def ago(at: datetime, now: datetime) -> str:
    """'today', '1 day ago', '12 days ago' (or 'in the future' for clock skew)."""
    days = (now - at).total_seconds() / 86_400
    if days < 0:
        return "in the future"
    if days < 1:
        return "today"
    whole = int(days)
    return f"{whole} day ago" if whole == 1 else f"{whole} days ago"


def _evidence(e: Evidence, now: datetime) -> str:
    points = f"{e.points:+d}"
    if e.type == "persona":
        return f"job title is {e.rule.removeprefix('title_').replace('_', '-')} level ({points})"
    if e.type == "firmographics":
        return f"company matches {e.rule.replace('_', ' ')} ({points})"
    what = PHRASES.get(e.type, e.type.replace("_", " "))
    when = ago(e.at, now) if e.at else ""
    if e.original_points is not None and e.original_points != e.points and e.half_life_days:
        points += f" of {e.original_points:+d}, half-life {e.half_life_days:g} days"
    return f"{what} {when} ({points}, {e.rule})".replace("  ", " ")


def _stage(track: str, stage: str | None, moves: list[Transition]) -> str:
    if stage is None:
        return f"{track.capitalize()} stage: no {track} signal yet."
    last = next((m for m in reversed(moves) if m.track == track), None)
    if last is None:
        return f"{track.capitalize()} stage {stage}."
    cause = f"event {last.cause_event_id}" if last.cause_event_id else "no event"
    return (
        f"{track.capitalize()} stage {stage} since {last.at:%Y-%m-%d %H:%M} UTC "
        f"({last.rule.replace('_', ' ')}, {cause}); {len([m for m in moves if m.track == track])}"
        f" {track} transition(s) in all."
    )


def explain(assessment: Assessment, *, model: ScoringModel, now: datetime) -> list[str]:
    """Sentences for the score, the qualification, each BANT dimension and both stages."""
    dims = assessment.bant.dimensions()
    sentences = [
        f"Score {assessment.score}/100 under model {assessment.model_version}: the weighted "
        "mean of " + ", ".join(f"{n} {d.score}" for n, d in dims.items()) + ".",
        assessment.qualification_reason[:1].upper() + assessment.qualification_reason[1:] + ".",
    ]
    for name, dim in dims.items():
        verdict = "met" if dim.met else "not met"
        threshold = model.met_threshold(name)
        reasons = "; ".join(_evidence(e, now) for e in dim.evidence) or "no evidence"
        sentences.append(
            f"{name.capitalize()} {verdict} ({dim.score}, threshold {threshold}): {reasons}."
        )
    sentences.append(
        f"Fit {assessment.fit}/100 (who the lead is: title, company facts, form answers) and "
        f"engagement {assessment.engagement}/100 (what the lead did, fading with each rule's "
        "half-life), from the same evidence."
    )
    sentences.append(
        f"Persona {assessment.persona}: the model's first persona whose conditions the lead meets."
        if assessment.persona
        else "Persona: none of the model's personas matches the lead."
    )
    moves = list(assessment.transitions)
    funnel = assessment.funnel_stage.value if assessment.funnel_stage else None
    journey = assessment.journey_stage.value if assessment.journey_stage else None
    sentences.append(_stage("funnel", funnel, moves))
    sentences.append(_stage("journey", journey, moves))
    return sentences
