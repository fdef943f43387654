"""A lead's scoring state folded one touch at a time, so an in-order touch costs O(1).

`LeadState` keeps what the rules need of the history (`RuleMemory`), where both stage tracks
stand, the newest settling touch, the sales rejection that recycles the lead (if no hand-raise
came after it) and sales' last verdict. `fold` adds the next touch; `settle` gives the assessment
at `now`. Folding a whole history from an empty state is the replay a late touch needs, so the
in-order and the replayed results are the same by construction. `to_json`/`from_json` give the
stored shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.scoring.domain.bant import RuleMemory, Seen, bant_at, remember
from services.scoring.domain.model import Assessment, Persona, Touch, Transition
from services.scoring.domain.personas import match_persona
from services.scoring.domain.qualification import (
    fit_and_engagement,
    in_history_order,
    overall_score,
    qualify,
)
from services.scoring.domain.scoring_model import ScoringModel
from services.scoring.domain.stages import TrackState, settle_track, step_track
from shared.domain import FunnelStage, JourneyStage

TRACKS = ("funnel", "journey")


@dataclass
class LeadState:
    """What scoring keeps of a lead's history between touches."""

    model_version: str
    newest: Seen | None = None
    memory: RuleMemory = field(default_factory=RuleMemory)
    funnel: TrackState = field(default_factory=TrackState)
    journey: TrackState = field(default_factory=TrackState)
    settling: Seen | None = None
    # The sales rejection the lead is recycled by (None once a requalify event follows), and
    # the reason sales gave.
    recycled: Seen | None = None
    recycle_reason: str | None = None
    # Sales' newest verdict on the "sales" track (accepted, rejected).
    sales: Seen | None = None

    def is_late(self, touch: Touch) -> bool:
        """True if the touch sorts before the newest one folded (it needs a replay)."""
        return self.newest is not None and (touch.occurred_at, touch.event_id) < self.newest.key

    def copy(self) -> LeadState:
        """An independent copy."""
        return LeadState(
            model_version=self.model_version,
            newest=self.newest,
            memory=self.memory.copy(),
            funnel=TrackState(self.funnel.stage, self.funnel.entered_at, self.funnel.supported_at),
            journey=TrackState(
                self.journey.stage, self.journey.entered_at, self.journey.supported_at
            ),
            settling=self.settling,
            recycled=self.recycled,
            recycle_reason=self.recycle_reason,
            sales=self.sales,
        )


def _reason(touch: Touch) -> str | None:
    reason = touch.properties.get("reason")
    return str(reason).strip()[:200] or None if reason else None


def _sales_step(state: LeadState, *, model: ScoringModel, touch: Touch) -> list[Transition]:
    """Record sales' verdict (accepted, rejected) on the "sales" track."""
    step = model.qualification.sales_steps.get(touch.type)
    if step is None:
        return []
    previous = state.sales
    state.sales = Seen(touch.event_id, step, touch.occurred_at)
    return [
        Transition(
            track="sales",
            from_stage=previous.type if previous else None,
            to_stage=step,
            at=touch.occurred_at,
            cause_event_id=touch.event_id,
            rule=touch.type,
            seconds_in_previous=(
                (touch.occurred_at - previous.at).total_seconds() if previous else None
            ),
        )
    ]


def fold(state: LeadState, *, model: ScoringModel, touch: Touch) -> list[Transition]:
    """Add the next touch (not late) to `state`; returns the stage moves it made."""
    remember(state.memory, model=model, touch=touch)
    q = model.qualification
    if touch.type in q.customer_events or touch.type in q.disqualify_events:
        state.settling = Seen(touch.event_id, touch.type, touch.occurred_at)
    if touch.type in q.recycle_events:
        state.recycled = Seen(touch.event_id, touch.type, touch.occurred_at)
        state.recycle_reason = _reason(touch)
    elif touch.type in q.requalify_events:
        state.recycled, state.recycle_reason = None, None
    moves = _sales_step(state, model=model, touch=touch)
    moves += step_track("funnel", model.stages.funnel, state.funnel, touch)
    moves += step_track("journey", model.stages.journey, state.journey, touch)
    state.newest = Seen(touch.event_id, touch.type, touch.occurred_at)
    return moves


def replay(*, model: ScoringModel, touches: Sequence[Touch]) -> tuple[LeadState, list[Transition]]:
    """The state of a whole history (any order) and every stage move it made."""
    state = LeadState(model_version=model.version)
    moves: list[Transition] = []
    for touch in sorted(touches, key=lambda t: (t.occurred_at, t.event_id)):
        moves += fold(state, model=model, touch=touch)
    return state, moves


@dataclass(frozen=True)
class Settled:
    """The assessment at `now`, and the fall-backs that came due after the newest touch."""

    assessment: Assessment
    pending: tuple[Transition, ...]


def settle(state: LeadState, *, model: ScoringModel, persona: Persona, now: datetime) -> Settled:
    """Score, qualification and stages at `now` (the state itself is not changed)."""
    bant = bant_at(model=model, persona=persona, memory=state.memory, now=now)
    score = overall_score(bant, model=model)
    settling = (
        [Touch(state.settling.event_id, state.settling.type, state.settling.at)]
        if state.settling
        else []
    )
    recycled = state.recycled
    qualification, reason = qualify(
        model=model,
        bant=bant,
        score=score,
        persona=persona,
        touches=settling,
        recycled=(
            Touch(recycled.event_id, recycled.type, recycled.at, properties=_reason_of(state))
            if recycled
            else None
        ),
        now=now,
    )
    funnel, funnel_moves = settle_track("funnel", model.stages.funnel, state.funnel, now=now)
    journey, journey_moves = settle_track("journey", model.stages.journey, state.journey, now=now)
    pending = in_history_order(funnel_moves + journey_moves)
    fit, engagement = fit_and_engagement(bant, model=model)
    assessment = Assessment(
        score=score,
        qualification=qualification,
        bant=bant,
        funnel_stage=FunnelStage(funnel) if funnel else None,
        journey_stage=JourneyStage(journey) if journey else None,
        model_version=model.version,
        qualification_reason=reason,
        fit=fit,
        engagement=engagement,
        persona=match_persona(persona, model=model),
        transitions=pending,
    )
    return Settled(assessment=assessment, pending=pending)


def _reason_of(state: LeadState) -> dict[str, Any]:
    return {"reason": state.recycle_reason} if state.recycle_reason else {}


# --- stored shape ------------------------------------------------------------------------------


def _seen_json(seen: Seen | None) -> list[Any] | None:
    return [seen.event_id, seen.type, seen.at] if seen else None


def _seen(raw: list[Any] | None) -> Seen | None:
    return Seen(raw[0], raw[1], datetime.fromisoformat(raw[2])) if raw else None


def _track_json(state: TrackState) -> list[Any]:
    return [state.stage, state.entered_at, state.supported_at]


def _track(raw: list[Any]) -> TrackState:
    stage, entered, supported = raw
    return TrackState(
        stage,
        datetime.fromisoformat(entered) if entered else None,
        datetime.fromisoformat(supported) if supported else None,
    )


def to_json(state: LeadState) -> dict[str, Any]:
    """The state as JSON-ready data for a serializer that writes datetimes in ISO 8601 (the
    engine's orjson does so in C, which is most of what writing a state costs)."""
    return {
        "v": 2,
        "model": state.model_version,
        "newest": _seen_json(state.newest),
        "matches": {k: [_seen_json(s) for s in v] for k, v in state.memory.matches.items()},
        "answers": {k: [_seen_json(s), text] for k, (s, text) in state.memory.answers.items()},
        "funnel": _track_json(state.funnel),
        "journey": _track_json(state.journey),
        "settling": _seen_json(state.settling),
        "recycled": _seen_json(state.recycled),
        "recycle_reason": state.recycle_reason,
        "sales": _seen_json(state.sales),
    }


def from_json(data: dict[str, Any] | None, *, model: ScoringModel) -> LeadState | None:
    """The state back from its stored shape; None when there is none, or it was kept for
    another model (or shape), so the history must be replayed."""
    if not data or data.get("v") != 2 or data.get("model") != model.version:
        return None
    # The ignores: _seen is None only for a null, and to_json never stores a null Seen here.
    memory = RuleMemory(
        matches={k: [_seen(s) for s in v] for k, v in data["matches"].items()},  # type: ignore[misc]
        answers={k: (_seen(s), text) for k, (s, text) in data["answers"].items()},  # type: ignore[misc]
    )
    return LeadState(
        model_version=data["model"],
        newest=_seen(data["newest"]),
        memory=memory,
        funnel=_track(data["funnel"]),
        journey=_track(data["journey"]),
        settling=_seen(data["settling"]),
        recycled=_seen(data["recycled"]),
        recycle_reason=data["recycle_reason"],
        sales=_seen(data["sales"]),
    )
