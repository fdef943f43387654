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


class _Replay:
    """One track's state while the history is replayed."""

    def __init__(self, name: str, track: Track, index: dict[str, int]) -> None:
        self.name, self.track, self.index = name, track, index
        self.stage: str | None = None
        self.entered_at: datetime | None = None
        self.supported_at: datetime | None = None
        self.transitions: list[Transition] = []

    def move(self, to: str, *, at: datetime, cause: str | None, rule: str) -> None:
        if to == self.stage:
            return
        spent = (at - self.entered_at).total_seconds() if self.entered_at else None
        self.transitions.append(Transition(self.name, self.stage, to, at, cause, rule, spent))
        self.stage, self.entered_at, self.supported_at = to, at, at

    def regress_until(self, when: datetime) -> None:
        """Apply time-based fall-backs that came due before `when` (they may chain)."""
        for _ in range(len(self.index)):
            rule = next((r for r in self.track.regress if r.stage == self.stage), None)
            if rule is None or self.supported_at is None:
                return
            due = self.supported_at + timedelta(days=rule.after_days)
            if due > when:
                return
            self.move(
                rule.to,
                at=due,
                cause=None,
                rule=f"no_{rule.stage}_signal_for_{rule.after_days:g}d",
            )


def _replay(
    name: str, track: Track, touches: Sequence[Touch], now: datetime, *, forward_only: bool
) -> tuple[str | None, list[Transition]]:
    index = _FUNNEL_INDEX if name == "funnel" else _JOURNEY_INDEX
    state = _Replay(name, track, index)
    for t in sorted(touches, key=lambda t: (t.occurred_at, t.event_id)):
        state.regress_until(t.occurred_at)
        back_to = track.regress_on.get(t.type)
        if back_to is not None:
            if state.stage is not None and index[back_to] < index[state.stage]:
                state.move(back_to, at=t.occurred_at, cause=t.event_id, rule=f"regress_on_{t.type}")
            continue
        stage = signal(track, t, index=index)
        if stage is None:
            continue
        if state.stage is None or (index[stage] > index[state.stage] if forward_only else True):
            state.move(stage, at=t.occurred_at, cause=t.event_id, rule=f"signal_{t.type}")
        if state.stage is not None and index[stage] >= index[state.stage]:
            state.supported_at = t.occurred_at
    state.regress_until(now)
    return state.stage, state.transitions


def replay_funnel(
    track: Track, touches: Sequence[Touch], *, now: datetime
) -> tuple[str | None, list[Transition]]:
    """The funnel stage at `now` and every move that led there."""
    return _replay("funnel", track, touches, now, forward_only=True)


def replay_journey(
    track: Track, touches: Sequence[Touch], *, now: datetime
) -> tuple[str | None, list[Transition]]:
    """The journey stage at `now` and every move that led there."""
    return _replay("journey", track, touches, now, forward_only=False)
