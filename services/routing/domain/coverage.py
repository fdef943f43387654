"""Every action has a next step: which touch types a playbook or a routing rule answers, and
whether a lead that acted got a follow-up or a contact in time (seed 004: leads gathered at an
event are lost when nobody follows up for days). Pure: the caller brings the facts."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from services.routing.domain.config import RoutingConfig
from services.routing.domain.triggers import TRIGGERS
from shared.domain import FunnelStage

# A touch that signals this funnel step or a later one is an action that wants a next step.
ACTION_FROM = FunnelStage.CONSIDERATION
_ORDER = [s.value for s in FunnelStage]


@dataclass(frozen=True)
class TouchCoverage:
    """What answers one touch type: the playbooks it fires, the rules that route the funnel
    step it signals; `answered` when either does."""

    type: str
    seen: int
    funnel_stage: str | None
    playbooks: tuple[str, ...]
    rules: tuple[str, ...]

    @property
    def answered(self) -> bool:
        """A playbook or a rule responds to this type."""
        return bool(self.playbooks or self.rules)


def action_types(funnel_signals: Mapping[str, str]) -> set[str]:
    """The touch types that are actions: they signal consideration or a later funnel step."""
    start = _ORDER.index(ACTION_FROM)
    return {t for t, stage in funnel_signals.items() if stage in _ORDER[start:]}


def touch_coverage(
    *,
    seen: Mapping[str, int],
    funnel_signals: Mapping[str, str],
    config: RoutingConfig,
    ignore: Collection[str] = (),
) -> list[TouchCoverage]:
    """Every touch type the model knows or the period saw (but `ignore`d ones, e.g. sales
    feedback), with what answers it; unanswered first, then the most seen."""
    playbook_types = {
        t: tuple(sorted(trigger.playbook for trigger in TRIGGERS if t in trigger.touch_types))
        for t in {t for trigger in TRIGGERS for t in trigger.touch_types}
    }
    enabled = {trigger.playbook for trigger in TRIGGERS if trigger.enabled(config.playbooks)}
    types = (set(seen) | set(funnel_signals) | set(playbook_types)) - set(ignore)
    found = []
    for t in types:
        stage = funnel_signals.get(t)
        rules = tuple(
            r.name for r in config.rules if stage is not None and stage in r.funnel_stages
        )
        playbooks = tuple(p for p in playbook_types.get(t, ()) if p in enabled)
        found.append(TouchCoverage(t, seen.get(t, 0), stage, playbooks, rules))
    return sorted(found, key=lambda c: (c.answered, -c.seen, c.type))


@dataclass(frozen=True)
class Acted:
    """A lead's newest action and what came after it, as the check sees it."""

    lead_id: str
    touch_type: str
    touched_at: datetime
    window_s: float  # the owner's SLA for the lead, else the default follow-up window
    followed_up_at: datetime | None  # the newest action planned at or after the touch
    contacted_at: datetime | None  # the newest owner contact (contact or sales feedback)


def unanswered(acted: Acted, *, now: datetime) -> str | None:
    """Why the lead's action went unanswered (nothing planned, nobody in touch, its window
    passed), or None when it was answered or its window is still open."""
    answered = [at for at in (acted.followed_up_at, acted.contacted_at) if at is not None]
    if any(at >= acted.touched_at for at in answered):
        return None
    waited = (now - acted.touched_at).total_seconds()
    if waited <= acted.window_s:
        return None
    return (
        f"{acted.touch_type} {waited / 3600:.0f} h ago: no follow-up planned and no contact "
        f"within {acted.window_s / 3600:.0f} h"
    )
