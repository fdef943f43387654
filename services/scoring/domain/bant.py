"""BANT qualification: how budget, authority, need and timing are scored from a lead's history.

Every rule comes from the scoring model (`scoring_model.py`, a TOML file): behaviour rules
give points per kind of touch, declared rules per form answer, firmographic rules per company
fact, and the title's seniority gives authority. Points from touches halve every
`half_life_days`, so old evidence fades while declared facts (long half-lives) persist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.scoring.domain.model import Bant, Dimension, Evidence, Persona, Touch
from services.scoring.domain.scoring_model import (
    DIMENSIONS,
    BehaviourRule,
    DeclaredRule,
    FirmographicRule,
    ScoringModel,
)
from services.scoring.domain.titles import normalize_title


def decayed(points: float, *, at: datetime | None, now: datetime, half_life_days: float) -> int:
    """Points left after halving every `half_life_days` since `at` (none lost for the future)."""
    if at is None:
        return round(points)
    age_days = max(0.0, (now - at).total_seconds() / 86_400)
    kept: float = 0.5 ** (age_days / half_life_days)  # typeshed: float ** float is Any
    return round(points * kept)


def _answer(value: Any) -> str:
    """A form answer as the lower-case text the model's `values` table is keyed by."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def _cart_value(touch: Touch) -> float | None:
    cart = touch.properties.get("cart")
    if not isinstance(cart, dict):
        return None
    try:
        return float(cart.get("value"))  # type: ignore[arg-type]  # None: TypeError, caught
    except (TypeError, ValueError):
        return None


def rule_matches(rule: BehaviourRule, touch: Touch) -> bool:
    """True if the touch is one the behaviour rule scores."""
    if touch.type not in rule.events:
        return False
    if rule.url_contains:
        url = str(touch.properties.get("url") or "").lower()
        if not any(needle.lower() in url for needle in rule.url_contains):
            return False
    if rule.topics:
        topic = str(touch.properties.get("topic") or "").strip().lower()
        if topic not in {t.lower() for t in rule.topics}:
            return False
    if rule.min_cart_value is not None:
        value = _cart_value(touch)
        if value is None or value < rule.min_cart_value:
            return False
    return True


@dataclass(frozen=True)
class Seen:
    """A touch as the rules remember it: which event, what kind, when."""

    event_id: str
    type: str
    at: datetime

    @property
    def key(self) -> tuple[datetime, str]:
        """The order of touches in a history: time, then event id."""
        return (self.at, self.event_id)


@dataclass
class RuleMemory:
    """What the behaviour and declared rules need of a lead's history, folded one touch at a
    time (in history order): per behaviour rule its matching touches, newest first (only the
    newest for `count = "latest"`; for `"each"` those that can still add points), and per
    declared rule the newest answer."""

    matches: dict[str, list[Seen]] = field(default_factory=dict)
    answers: dict[str, tuple[Seen, str]] = field(default_factory=dict)

    def copy(self) -> RuleMemory:
        """An independent copy (the lists are not shared)."""
        return RuleMemory(
            matches={k: list(v) for k, v in self.matches.items()}, answers=dict(self.answers)
        )


def _kept(rule: BehaviourRule) -> int | None:
    """How many of a rule's matches can ever add points (None: all of them).

    Every match of a rule decays at the same rate, so a newer one is always worth at least as
    much as an older one. With positive points capped at `max_points`, the match at place k
    (newest first) comes after k matches worth at least 1 each whenever it is worth anything,
    so from place `max_points` on a match adds nothing, now or later.
    """
    if rule.count == "latest":
        return 1
    if rule.max_points is not None and rule.points > 0:
        return max(0, rule.max_points)
    return None


def remember(memory: RuleMemory, *, model: ScoringModel, touch: Touch) -> None:
    """Fold the next touch of the history (no older than any folded before) into `memory`."""
    seen = Seen(touch.event_id, touch.type, touch.occurred_at)
    for rule in model.rules:
        if rule_matches(rule, touch):
            found = memory.matches.setdefault(rule.name, [])
            found.insert(0, seen)
            keep = _kept(rule)
            if keep is not None:
                del found[keep:]
    for declared in model.declared:
        value = touch.properties.get(declared.field)
        if value not in (None, ""):
            memory.answers[declared.name] = (seen, _answer(value))


def remember_all(*, model: ScoringModel, touches: Sequence[Touch]) -> RuleMemory:
    """The memory of a whole history (any order)."""
    memory = RuleMemory()
    for touch in sorted(touches, key=lambda t: (t.occurred_at, t.event_id)):
        remember(memory, model=model, touch=touch)
    return memory


def _behaviour(rule: BehaviourRule, matching: Sequence[Seen], now: datetime) -> list[Evidence]:
    """The evidence of a rule's matches (newest first) at `now`."""
    found: list[Evidence] = []
    total = 0
    for t in matching:
        points = decayed(rule.points, at=t.at, now=now, half_life_days=rule.half_life_days)
        if rule.max_points is not None:
            points = max(0, min(points, rule.max_points - total))
        if points == 0:
            continue
        total += points
        found.append(
            Evidence(
                t.event_id,
                t.type,
                t.at,
                rule.name,
                points,
                original_points=rule.points,
                half_life_days=rule.half_life_days,
            )
        )
    return found


def _declared(rule: DeclaredRule, answer: tuple[Seen, str] | None, now: datetime) -> list[Evidence]:
    if answer is None:
        return []
    # The newest answer counts: a form may be answered again later, differently.
    t, text = answer
    base = rule.values.get(text, rule.default_points)
    points = decayed(base, at=t.at, now=now, half_life_days=rule.half_life_days)
    evidence = Evidence(
        t.event_id,
        t.type,
        t.at,
        rule.name,
        points,
        original_points=base,
        half_life_days=rule.half_life_days,
    )
    return [evidence] if points else []


def firmographic_matches(rule: FirmographicRule, persona: Persona) -> bool:
    """True if the persona has the company fact the rule names."""
    value = getattr(persona, rule.field, None)
    if value is None:
        return False
    if rule.values:
        return str(value).strip().lower() in {v.lower() for v in rule.values}
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return (rule.min is None or number >= rule.min) and (rule.max is None or number <= rule.max)


def _dimension(evidence: Iterable[Evidence], *, threshold: int) -> Dimension:
    kept = tuple(e for e in evidence if e.points != 0)
    score = max(0, min(100, sum(e.points for e in kept)))
    return Dimension(score=score, met=score >= threshold, evidence=kept)


def assess_bant(
    *, model: ScoringModel, persona: Persona, touches: Sequence[Touch], now: datetime
) -> Bant:
    """Score budget, authority, need and timing from persona and touch history at `now`."""
    return bant_at(
        model=model, persona=persona, memory=remember_all(model=model, touches=touches), now=now
    )


def bant_at(*, model: ScoringModel, persona: Persona, memory: RuleMemory, now: datetime) -> Bant:
    """Budget, authority, need and timing at `now`, from persona and the history's memory."""
    found: dict[str, list[Evidence]] = {d: [] for d in DIMENSIONS}
    title = normalize_title(persona.job_title)
    if title.seniority is not None:
        points = model.authority.seniority_points.get(title.seniority.value, 0)
        if points:
            found["authority"].append(
                Evidence(
                    None,
                    "persona",
                    None,
                    f"title_{title.seniority.value}",
                    points,
                    original_points=points,
                )
            )
    for rule in model.firmographics:
        if firmographic_matches(rule, persona):
            found[rule.dimension].append(
                Evidence(
                    None,
                    "firmographics",
                    None,
                    rule.name,
                    rule.points,
                    original_points=rule.points,
                )
            )
    for declared in model.declared:
        found[declared.dimension] += _declared(declared, memory.answers.get(declared.name), now)
    for behaviour in model.rules:
        found[behaviour.dimension] += _behaviour(
            behaviour, memory.matches.get(behaviour.name, ()), now
        )
    return Bant(
        **{
            name: _dimension(evidence, threshold=model.met_threshold(name))
            for name, evidence in found.items()
        }
    )
