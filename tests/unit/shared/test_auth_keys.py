"""API keys, the pure parts: generating, hashing, scope checks and what a principal allows."""

from __future__ import annotations

import hashlib
import re

import pytest

from shared.auth import SCOPES, ApiKeyError, Principal, check_scopes, generate_key, hash_key


def test_generated_keys_are_unique_and_start_with_lf() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(key.startswith("lf_") for key in keys)


def test_generated_key_is_url_safe_with_256_bits() -> None:
    key = generate_key()
    assert re.fullmatch(r"lf_[A-Za-z0-9_-]{43}", key)


def test_hash_key_is_deterministic_and_not_the_key() -> None:
    key = generate_key()
    assert hash_key(key) == hash_key(key)
    assert hash_key(key) != key
    assert key not in hash_key(key)
    assert hash_key(key) != hash_key(generate_key())


def test_hash_key_is_hex_sha256() -> None:
    assert hash_key("lf_example") == hashlib.sha256(b"lf_example").hexdigest()


def test_check_scopes_accepts_known_scopes_in_order() -> None:
    assert check_scopes(["leads:read", "events:write"]) == ["leads:read", "events:write"]


def test_check_scopes_de_duplicates_keeping_first_order() -> None:
    assert check_scopes(["ops:read", "leads:read", "ops:read"]) == ["ops:read", "leads:read"]


def test_check_scopes_rejects_unknown_scope_naming_it() -> None:
    with pytest.raises(ApiKeyError, match="leads:delete"):
        check_scopes(["leads:read", "leads:delete"])


def test_check_scopes_rejects_empty_list() -> None:
    with pytest.raises(ApiKeyError):
        check_scopes([])


def test_every_documented_scope_is_accepted() -> None:
    assert check_scopes(SCOPES) == list(SCOPES)
    assert "admin" in SCOPES


def test_admin_principal_allows_everything() -> None:
    admin = Principal(name="root", scopes=frozenset({"admin"}))
    assert all(admin.allows(scope) for scope in SCOPES)
    assert admin.allows("anything:else")


def test_principal_allows_only_its_own_scopes() -> None:
    reader = Principal(name="dash", scopes=frozenset({"leads:read", "ops:read"}))
    assert reader.allows("leads:read")
    assert reader.allows("ops:read")
    assert not reader.allows("leads:write")
    assert not reader.allows("events:write")
    assert not reader.allows("admin")
