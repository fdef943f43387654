"""Rule traces: for every rule of the scoring model, whether it fired for a lead and why not."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.scoring.domain.bant import decayed, firmographic_matches, rule_matches
from services.scoring.domain.model import Persona, Touch
from services.scoring.domain.scoring_model import ScoringModel
from services.scoring.domain.titles import normalize_title


def trace_scoring(
    *, model: ScoringModel, persona: Persona, touches: Sequence[Touch], now: datetime
) -> list[dict[str, object]]:
    """One entry per rule: `{rule, kind, dimension, matched, reason}`, in model order."""
    entries: list[dict[str, object]] = []

    def add(rule: str, kind: str, dimension: str, matched: bool, reason: str) -> None:
        entries.append(
            {
                "rule": rule,
                "kind": kind,
                "dimension": dimension,
                "matched": matched,
                "reason": reason,
            }
        )

    title = normalize_title(persona.job_title)
    if title.seniority is None:
        add("title_seniority", "persona", "authority", False, "the lead has no job title")
    else:
        points = model.authority.seniority_points.get(title.seniority.value, 0)
        add(
            "title_seniority",
            "persona",
            "authority",
            points > 0,
            f"title {persona.job_title!r} reads as {title.seniority.value} ({points:+d})",
        )
    for rule in model.firmographics:
        value = getattr(persona, rule.field, None)
        matched = firmographic_matches(rule, persona)
        if value is None:
            reason = f"the lead's {rule.field} is not known"
        elif rule.values:
            reason = (
                f"{rule.field} {value!r} {'is' if matched else 'is not'} in {list(rule.values)}"
            )
        else:
            reason = (
                f"{rule.field} {value} {'is' if matched else 'is not'} within "
                f"[{rule.min if rule.min is not None else '-inf'}, "
                f"{rule.max if rule.max is not None else 'inf'}]"
            )
        add(rule.name, "firmographic", rule.dimension, matched, reason)
    for declared in model.declared:
        answered = [t for t in touches if t.properties.get(declared.field) not in (None, "")]
        if not answered:
            add(
                declared.name,
                "declared",
                declared.dimension,
                False,
                f"no touch answered {declared.field!r}",
            )
            continue
        newest = max(answered, key=lambda t: (t.occurred_at, t.event_id))
        add(
            declared.name,
            "declared",
            declared.dimension,
            True,
            f"answered {declared.field!r} = {newest.properties[declared.field]!r} in "
            f"{newest.event_id}",
        )
    for behaviour in model.rules:
        typed = [t for t in touches if t.type in behaviour.events]
        matching = [t for t in typed if rule_matches(behaviour, t)]
        if not typed:
            reason, matched = f"no touch of type {', '.join(behaviour.events)}", False
        elif not matching:
            filters = [
                name
                for name, on in (
                    ("url_contains", behaviour.url_contains),
                    ("topics", behaviour.topics),
                    ("min_cart_value", behaviour.min_cart_value),
                )
                if on
            ]
            reason, matched = (
                (f"{len(typed)} touch(es) of the type, none passing {', '.join(filters)}"),
                False,
            )
        else:
            newest = max(matching, key=lambda t: (t.occurred_at, t.event_id))
            left = decayed(
                behaviour.points,
                at=newest.occurred_at,
                now=now,
                half_life_days=behaviour.half_life_days,
            )
            matched = left > 0
            reason = (
                f"{len(matching)} matching touch(es), newest {newest.event_id} worth "
                f"{left:+d} now" + ("" if matched else " (decayed away)")
            )
        add(behaviour.name, "behaviour", behaviour.dimension, matched, reason)
    return entries
