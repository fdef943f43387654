"""Who a touch belongs to: the lead its identities point at, the leads to merge into it, and
the merges to refuse.

A lead without an email is a stand-in for someone not yet known, so it merges into the person
an event ties it to. Two leads that each have a different email, or each a platform user id
and no id in common (`segment:u1`, `segment:u2` sharing a browser's anonymous id), are two
people: they are never merged, and the refusal is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Person:
    """What tells people apart: an email and platform user ids (a lead's, or a touch's)."""

    email: str | None = None
    user_ids: frozenset[str] = field(default_factory=frozenset)

    def with_(self, other: Person) -> Person:
        """Both together (a lead after it took a touch's identities)."""
        return Person(self.email or other.email, self.user_ids | other.user_ids)


@dataclass(frozen=True)
class Known:
    """A lead one of the touch's identities belongs to."""

    lead_id: str
    person: Person


@dataclass(frozen=True)
class Resolution:
    """Where a touch goes: `target` (None: a new lead), the leads merged into it, and the
    leads left apart with the reason (lead id, reason)."""

    target: str | None
    merge: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()


def apart(a: Person, b: Person) -> str | None:
    """Why `a` and `b` are two people, or None if they may be one."""
    if a.email and b.email and a.email != b.email:
        return "each has its own email address"
    if a.user_ids and b.user_ids and not a.user_ids & b.user_ids:
        ids = ", ".join(sorted(a.user_ids | b.user_ids))
        return f"each has its own platform user id ({ids})"
    return None


def resolve(*, touch: Person, by_email: Known | None, candidates: Sequence[Known]) -> Resolution:
    """Where a touch with identities `touch` goes: the lead of its email (`by_email`) if there
    is one, else a lead its other identities point at (`candidates`, in the order found) that
    is not someone else, a known person first; the email-less candidates that are not someone
    else merge into it, the ones that are stay apart."""
    found: Known | None
    if by_email is not None:
        found = by_email
    else:
        fitting = [c for c in candidates if apart(c.person, touch) is None]
        if touch.email:
            ranked = [c for c in fitting if c.person.email is None]
        else:
            known = [c for c in fitting if c.person.email is not None]
            by_user = [c for c in fitting if c.person.user_ids & touch.user_ids]
            ranked = known or by_user or fitting
        found = ranked[0] if ranked else None
    target = found.lead_id if found else None
    merged = found.person.with_(touch) if found else touch
    merge: list[str] = []
    refused: list[tuple[str, str]] = []
    for c in candidates:
        if c.lead_id == target:
            continue
        reason = apart(c.person, merged)
        if reason is not None:
            refused.append((c.lead_id, reason))
        elif c.person.email is None:
            merge.append(c.lead_id)
            merged = merged.with_(c.person)
    return Resolution(target=target, merge=tuple(merge), refused=tuple(refused))
