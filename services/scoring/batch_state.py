"""What a scoring batch keeps while it works: each lead it touched and each lead change waiting
for its account role; and the identities a touch names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.scoring.domain import folding
from services.scoring.domain.model import Bant, Touch, Transition
from shared.events import TouchEnvelope

_IDENTITY_KINDS = ("user_id", "anonymous_id")


@dataclass
class LeadInBatch:
    """One lead while a batch works on it."""

    row: dict[str, Any]
    identities: list[tuple[str, str]]
    new: bool = False
    state: folding.LeadState | None = None  # None: replay the history before folding
    qualified_at: datetime | None = None
    pending_after: datetime | None = None  # stored stage history has fall-backs after this
    rewrite: bool = False  # replace every funnel and journey move on flush
    moves: list[Transition] = field(default_factory=list)  # stage moves not yet stored
    tail: tuple[Transition, ...] = ()  # fall-backs due after the newest touch, as of now
    unsaved: list[Touch] = field(default_factory=list)  # touches not yet written
    bant: Bant | None = None  # as last assessed in this batch
    dirty: bool = False


@dataclass
class PendingChange:
    """A lead change waiting for its account role (known once the roll-up has run)."""

    lead_id: str
    cause_event_id: str
    occurred_at: datetime
    changes: dict[str, Any]
    values: dict[str, Any]
    touch: dict[str, Any] | None


def stage_value(stage: Any) -> str | None:
    """A stage enum's value, or None."""
    return stage.value if stage is not None else None


def identities_of_touch(envelope: TouchEnvelope) -> list[tuple[str, str]]:
    """The (kind, value) identities a touch names: email, user id, anonymous id."""
    lead = envelope.lead
    pairs = [("email", lead.email)] if lead.email else []
    pairs += [(kind, getattr(lead, kind)) for kind in _IDENTITY_KINDS if getattr(lead, kind)]
    return pairs  # type: ignore[return-value]
