"""The life of a follow-up action: the one list of its states, what each means, and which
states it may still leave. The store, the worker, the playbooks and the API all use these."""

from __future__ import annotations

from enum import StrEnum


class ActionStatus(StrEnum):
    """Where an action is in its life."""

    SCHEDULED = "scheduled"  # waiting for its due time
    CLAIMED = "claimed"  # taken by a worker, not begun
    SENDING = "sending"  # the worker began sending (committed before the send)
    SENT = "sent"  # delivered (an email, a webhook)
    OPEN = "open"  # a task handed to a person, not closed yet
    FAILED = "failed"  # gave up after its attempts
    CANCELLED = "cancelled"  # no longer wanted (an order came, the lead unsubscribed...)
    UNCERTAIN = "uncertain"  # an email whose worker died mid-send: never resent automatically


# What `POST /v1/actions/{id}/cancel` may still stop.
CANCELLABLE = frozenset({ActionStatus.SCHEDULED, ActionStatus.OPEN})
# What a dead worker may have left: taken back after the claim timeout.
IN_FLIGHT = (ActionStatus.CLAIMED, ActionStatus.SENDING)
