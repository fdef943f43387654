"""The expiring cache behind API-key checks: bounded, and unknown keys never evict known ones."""

from __future__ import annotations

import time

from shared.ttlcache import TTLCache


def test_a_million_unknown_keys_keep_the_cache_bounded_and_the_known_key_cached() -> None:
    cache: TTLCache[str] = TTLCache(ttl_s=600, max_entries=1_000)
    loads: list[str] = []

    def load_known() -> str:
        loads.append("known")
        return "principal"

    assert cache.get_or_load("known", load_known) == "principal"
    for n in range(1_000_000):
        assert cache.get_or_load(f"bad-{n}", lambda: None) is None
    assert len(cache) == 1 + 1_000
    assert cache.get_or_load("known", load_known) == "principal"
    assert loads == ["known"], "the known key was evicted and loaded again"


def test_known_values_beyond_the_bound_drop_the_oldest_first() -> None:
    cache: TTLCache[int] = TTLCache(ttl_s=600, max_entries=2)
    for n in range(3):
        cache.get_or_load(f"k{n}", lambda n=n: n)
    assert cache.cached("k0") == (False, None)
    assert cache.cached("k1") == (True, 1)
    assert cache.cached("k2") == (True, 2)
    assert len(cache) == 2


def test_a_remembered_miss_is_answered_without_loading_until_it_expires() -> None:
    cache: TTLCache[str] = TTLCache(ttl_s=0.05, max_entries=10)
    calls: list[int] = []
    cache.get_or_load("k", lambda: calls.append(1))
    assert cache.cached("k") == (True, None)
    time.sleep(0.06)
    assert cache.cached("k") == (False, None)
    assert len(cache) == 0, "an expired entry is dropped when it is looked at"


def test_a_key_found_after_a_miss_replaces_the_miss() -> None:
    cache: TTLCache[str] = TTLCache(ttl_s=0.05, max_entries=10)
    cache.get_or_load("k", lambda: None)
    time.sleep(0.06)
    assert cache.get_or_load("k", lambda: "now known") == "now known"
    assert cache.cached("k") == (True, "now known")
    assert len(cache) == 1


def test_a_ttl_of_zero_remembers_nothing() -> None:
    cache: TTLCache[str] = TTLCache(ttl_s=0, max_entries=10)
    cache.get_or_load("k", lambda: "v")
    assert cache.cached("k") == (False, None)
    assert len(cache) == 0
