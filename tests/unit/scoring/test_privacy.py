"""Erased identities are remembered by a hash alone, and a touch is dropped only when it was
received before its person was erased."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.scoring.domain.privacy import erased_before_arrival, identity_hash

ERASED_AT = datetime(2026, 12, 7, 12, tzinfo=UTC)
EVA = [("email", "eva@erase.example"), ("anonymous_id", "anon-1")]


def test_an_identity_hash_keeps_nothing_readable_and_tells_kinds_apart():
    hashed = identity_hash("email", "eva@erase.example")
    assert len(hashed) == 64 and "eva" not in hashed
    assert hashed == identity_hash("email", "eva@erase.example")
    assert hashed != identity_hash("user_id", "eva@erase.example")


def test_a_touch_received_before_the_erasure_belongs_to_the_erased_person():
    erased = {identity_hash("anonymous_id", "anon-1"): ERASED_AT}
    for received in (ERASED_AT - timedelta(hours=1), ERASED_AT):
        assert erased_before_arrival(identities=EVA, received_at=received, erased=erased)


def test_a_touch_received_after_the_erasure_is_the_person_coming_back():
    erased = {identity_hash("email", "eva@erase.example"): ERASED_AT}
    later = ERASED_AT + timedelta(seconds=1)
    assert not erased_before_arrival(identities=EVA, received_at=later, erased=erased)


def test_a_touch_naming_no_erased_identity_is_kept():
    erased = {identity_hash("email", "someone@else.example"): ERASED_AT}
    assert not erased_before_arrival(identities=EVA, received_at=ERASED_AT, erased=erased)
