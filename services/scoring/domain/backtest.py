"""Backtests: what a candidate model would change, lead by lead, compared with today's state."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

EXAMPLES_PER_CHANGE = 5
FIELDS = ("qualification", "funnel_stage", "journey_stage", "owner_team")


@dataclass(frozen=True)
class LeadOutcome:
    """One lead's state now and under the candidate model."""

    lead_id: str
    email: str | None
    current: dict[str, Any]
    candidate: dict[str, Any]

    def changed(self) -> dict[str, tuple[Any, Any]]:
        """The fields whose value would change, as (now, candidate)."""
        return {
            f: (self.current.get(f), self.candidate.get(f))
            for f in FIELDS
            if self.current.get(f) != self.candidate.get(f)
        }


@dataclass
class BacktestReport:
    """Counts of changes per field and per move, with a few example leads for each field."""

    model_version: str
    leads: int = 0
    changed_leads: int = 0
    changes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))
    moves: dict[str, Counter[str]] = field(default_factory=lambda: {f: Counter() for f in FIELDS})
    examples: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {f: [] for f in FIELDS}
    )
    score_delta_total: int = 0
    routing_version: str | None = None
    # Playbook -> how many leads' histories fire it now and under the candidates.
    playbooks: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_playbooks(self, *, current: set[str], candidate: set[str]) -> None:
        """Count the playbooks one lead's history fires now and under the candidates."""
        for name in current | candidate:
            counts = self.playbooks.setdefault(name, {"current": 0, "candidate": 0})
            counts["current"] += name in current
            counts["candidate"] += name in candidate

    def add(self, outcome: LeadOutcome) -> None:
        """Count one lead's outcome."""
        self.leads += 1
        self.score_delta_total += int(outcome.candidate.get("score") or 0) - int(
            outcome.current.get("score") or 0
        )
        changed = outcome.changed()
        if changed:
            self.changed_leads += 1
        for name, (old, new) in changed.items():
            self.changes[name] += 1
            self.moves[name][f"{old} -> {new}"] += 1
            if len(self.examples[name]) < EXAMPLES_PER_CHANGE:
                self.examples[name].append(
                    {"lead_id": outcome.lead_id, "email": outcome.email, "from": old, "to": new}
                )

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for `--json`)."""
        return {
            "model_version": self.model_version,
            "routing_version": self.routing_version,
            "leads": self.leads,
            "changed_leads": self.changed_leads,
            "mean_score_delta": round(self.score_delta_total / self.leads, 2) if self.leads else 0,
            "changes": dict(self.changes),
            "moves": {f: dict(c.most_common()) for f, c in self.moves.items()},
            "examples": self.examples,
            "playbooks": {name: dict(c) for name, c in sorted(self.playbooks.items())},
        }

    def lines(self) -> list[str]:
        """The report as text for people."""
        data = self.as_dict()
        routing = f" and routing {self.routing_version}" if self.routing_version else ""
        out = [
            f"Backtest of model {self.model_version}{routing} on {self.leads} leads: "
            f"{self.changed_leads} would change (mean score delta {data['mean_score_delta']:+})."
        ]
        for name in FIELDS:
            out.append(f"  {name}: {self.changes[name]} leads would change")
            for move, count in self.moves[name].most_common(10):
                out.append(f"    {move}: {count}")
            for example in self.examples[name]:
                who = example["email"] or example["lead_id"]
                out.append(f"      e.g. {who}: {example['from']} -> {example['to']}")
        out.append("  playbooks (leads whose history fires each, now -> candidate):")
        for name, counts in sorted(self.playbooks.items()):
            out.append(f"    {name}: {counts['current']} -> {counts['candidate']}")
        return out
