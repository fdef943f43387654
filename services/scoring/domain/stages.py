"""Stage inference: the seller's funnel stage and the buyer's journey stage, as two tracks.

Both are replayed over the lead's whole history in time order, so a late event lands in its
place. The funnel moves forward to the furthest stage a touch signals and moves back when a
rejection says so (`regress_on`) or when nothing has supported the stage for `after_days`
(`regress`). The journey follows the buyer: the newest touch with a journey signal sets it,
forwards or back. Every move is a Transition with its cause and the time in the previous
stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scoring.domain.model import Touch, Transition
from services.scoring.domain.scoring_model import Track
from shared.domain import FUNNEL_ORDER, JOURNEY_ORDER

_FUNNEL_INDEX = {s.value: i for i, s in enumerate(FUNNEL_ORDER)}
_JOURNEY_INDEX = {s.value: i for i, s in enumerate(JOURNEY_ORDER)}


def signal(track: Track, touch: Touch, *, index: dict[str, int]) -> str | None:
    """The stage a touch points at on a track: its topic, URL or type, the furthest wins."""
    found: list[str] = []
    if (stage := track.signals.get(touch.type)) is not None:
        found.append(stage)
    url = str(touch.properties.get("url") or "").lower()
    if url:
        found += [stage for needle, stage in track.url_signals.items() if needle.lower() in url]
    topic = str(touch.properties.get("topic") or "").strip().lower()
    if topic and (stage := track.topic_signals.get(topic)) is not None:
        found.append(stage)
    return max(found, key=index.__getitem__) if found else None


@dataclass
class TrackState:
    """Where a track stands after the touches folded so far: the stage, when it was entered and
    when a touch last supported it."""

    stage: str | None = None
    entered_at: datetime | None = None
    supported_at: datetime | None = None


class _Replay:
    """One track's state while the history is replayed, and the moves it made."""

    def __init__(self, name: str, track: Track, state: TrackState) -> None:
        self.name, self.track, self.state = name, track, state
        self.index = _FUNNEL_INDEX if name == "funnel" else _JOURNEY_INDEX
        self.transitions: list[Transition] = []

    def move(self, to: str, *, at: datetime, cause: str | None, rule: str) -> None:
        state = self.state
        if to == state.stage:
            return
        spent = (at - state.entered_at).total_seconds() if state.entered_at else None
        self.transitions.append(Transition(self.name, state.stage, to, at, cause, rule, spent))
        state.stage, state.entered_at, state.supported_at = to, at, at

    def regress_until(self, when: datetime) -> None:
        """Apply time-based fall-backs that came due before `when` (they may chain)."""
        state = self.state
        for _ in range(len(self.index)):
            rule = next((r for r in self.track.regress if r.stage == state.stage), None)
            if rule is None or state.supported_at is None:
                return
            due = state.supported_at + timedelta(days=rule.after_days)
            if due > when:
                return
            self.move(
                rule.to,
                at=due,
                cause=None,
                rule=f"no_{rule.stage}_signal_for_{rule.after_days:g}d",
            )

    def step(self, t: Touch) -> None:
        """Fold the next touch (no older than the ones before it)."""
        index, track, state = self.index, self.track, self.state
        self.regress_until(t.occurred_at)
        back_to = track.regress_on.get(t.type)
        if back_to is not None:
            if state.stage is not None and index[back_to] < index[state.stage]:
                self.move(back_to, at=t.occurred_at, cause=t.event_id, rule=f"regress_on_{t.type}")
            return
        stage = signal(track, t, index=index)
        if stage is None:
            return
        forward_only = self.name == "funnel"
        if state.stage is None or (index[stage] > index[state.stage] if forward_only else True):
            self.move(stage, at=t.occurred_at, cause=t.event_id, rule=f"signal_{t.type}")
        if state.stage is not None and index[stage] >= index[state.stage]:
            state.supported_at = t.occurred_at


def step_track(name: str, track: Track, state: TrackState, touch: Touch) -> list[Transition]:
    """Fold the next touch of the history into a track's state; returns the moves it made (the
    funnel moves only forward on signals, the journey both ways)."""
    replay = _Replay(name, track, state)
    replay.step(touch)
    return replay.transitions


def settle_track(
    name: str, track: Track, state: TrackState, *, now: datetime
) -> tuple[str | None, list[Transition]]:
    """The stage at `now` (after the fall-backs due by then) and those fall-backs; `state` is
    left as it was, since a touch older than `now` may still come."""
    replay = _Replay(name, track, TrackState(state.stage, state.entered_at, state.supported_at))
    replay.regress_until(now)
    return replay.state.stage, replay.transitions


def _replay(
    name: str, track: Track, touches: Sequence[Touch], now: datetime
) -> tuple[str | None, list[Transition]]:
    replay = _Replay(name, track, TrackState())
    for t in sorted(touches, key=lambda t: (t.occurred_at, t.event_id)):
        replay.step(t)
    replay.regress_until(now)
    return replay.state.stage, replay.transitions


def replay_funnel(
    track: Track, touches: Sequence[Touch], *, now: datetime
) -> tuple[str | None, list[Transition]]:
    """The funnel stage at `now` and every move that led there."""
    return _replay("funnel", track, touches, now)


def replay_journey(
    track: Track, touches: Sequence[Touch], *, now: datetime
) -> tuple[str | None, list[Transition]]:
    """The journey stage at `now` and every move that led there."""
    return _replay("journey", track, touches, now)
