"""A small thread-safe cache whose entries expire, for values worth a short staleness."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Maps keys to values for `ttl_s` seconds; a TTL of 0 caches nothing."""

    def __init__(self, *, ttl_s: float, max_entries: int = 10_000) -> None:
        self._ttl_s, self._max = ttl_s, max_entries
        self._entries: dict[str, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> tuple[bool, V | None]:
        """(True, value) while `key` has an unexpired entry (the value may be None), else
        (False, None): lets async callers answer a hit without leaving the event loop."""
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def get_or_load(self, key: str, load: Callable[[], V]) -> V:
        """The cached value for `key`, else `load()`, remembered for the TTL."""
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        if self._ttl_s > 0:
            with self._lock:
                # Unknown keys must not grow it without bound: start over when full.
                if len(self._entries) >= self._max:
                    self._entries.clear()
                self._entries[key] = (now + self._ttl_s, value)
        return value
