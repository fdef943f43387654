"""Erasing a person: the hash an erased identity is remembered by, and whether a touch belongs
to a person erased after it arrived."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime


def identity_hash(kind: str, value: str) -> str:
    """The SHA-256 (hex) an identity is remembered by once erased: nothing else of it is kept."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def erased_before_arrival(
    *,
    identities: Iterable[tuple[str, str]],
    received_at: datetime,
    erased: Mapping[str, datetime],
) -> bool:
    """True when the touch names an identity erased at or after the touch was received: it was
    part of what the person asked to erase (still in flight, or replayed), so it is dropped. A
    touch received after the erasure is the person coming back, a new lead."""
    return any(
        (at := erased.get(identity_hash(kind, value))) is not None and at >= received_at
        for kind, value in identities
    )
