"""What a scoring batch keeps while it works: each lead it touched and each lead change waiting
for its account role; and the identities a touch names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.scoring.domain import folding
from services.scoring.domain.model import Bant, Touch, Transition
from services.scoring.shapes import account_of, lead_change_id, lead_snapshot
from shared.events import LeadChange, LeadMoves, TouchEnvelope

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


def new_lead_row(
    *, lead_id: str, email: str | None, columns: Iterable[Any], now: datetime
) -> dict[str, Any]:
    """The row of a lead a batch creates: every column, the lead unscored."""
    return {
        **{c.name: None for c in columns},
        "id": lead_id,
        "email": email,
        "score": 0,
        "fit_score": 0,
        "engagement_score": 0,
        "qualification": "unqualified",
        "bant": {},
        "model_version": "",
        "created_at": now,
        "updated_at": now,
    }


def lead_change_of(change: PendingChange, *, accounts: dict[str, Any]) -> LeadChange:
    """The lead change to publish, with the lead's account role after the batch's roll-up."""
    values = change.values
    account = account_of(values, accounts.get(values.get("account_domain") or ""))
    return LeadChange(
        event_id=lead_change_id(change.cause_event_id),
        lead_id=change.lead_id,
        cause_event_id=change.cause_event_id,
        occurred_at=change.occurred_at,
        changes=LeadMoves.model_validate(change.changes),
        lead=lead_snapshot(values, account=account),
        touch=change.touch,
    )


def consent_rows(*, lead_id: str, envelope: TouchEnvelope) -> list[dict[str, Any]]:
    """The consent statements a touch makes for its lead, one row per purpose."""
    return [
        {
            "lead_id": lead_id,
            "purpose": purpose,
            "granted": granted,
            "source": envelope.source,
            "event_id": envelope.event_id,
            "at": envelope.occurred_at,
        }
        for purpose, granted in (envelope.lead.consent or {}).items()
    ]
