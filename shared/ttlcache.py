"""A small thread-safe cache whose entries expire, for values worth a short staleness.

Found values and misses (a loader's None) are kept apart, each bounded, oldest dropped first:
a flood of unknown keys (say, a million made-up API keys) only ever evicts other misses, never
a value that was found.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Maps keys to values for `ttl_s` seconds; a TTL of 0 caches nothing. At most
    `max_entries` found values and as many misses are kept."""

    def __init__(self, *, ttl_s: float, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._ttl_s, self._max = ttl_s, max_entries
        self._found: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._missing: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many entries (found and missing, expired ones not yet dropped) are held."""
        with self._lock:
            return len(self._found) + len(self._missing)

    def cached(self, key: str) -> tuple[bool, V | None]:
        """(True, value) while `key` has an unexpired entry (the value may be None), else
        (False, None): lets async callers answer a hit without leaving the event loop."""
        now = time.monotonic()
        with self._lock:
            found = self._found.get(key)
            if found is not None:
                if found[0] > now:
                    return True, found[1]
                del self._found[key]
            expires = self._missing.get(key)
            if expires is not None:
                if expires > now:
                    return True, None
                del self._missing[key]
        return False, None

    def get_or_load(self, key: str, load: Callable[[], V | None]) -> V | None:
        """The cached value for `key`, else `load()`, remembered for the TTL."""
        hit, value = self.cached(key)
        if hit:
            return value
        value = load()
        if self._ttl_s > 0:
            expires = time.monotonic() + self._ttl_s
            with self._lock:
                if value is None:
                    self._missing[key] = expires
                    self._missing.move_to_end(key)
                    while len(self._missing) > self._max:
                        self._missing.popitem(last=False)
                else:
                    self._missing.pop(key, None)
                    self._found[key] = (expires, value)
                    self._found.move_to_end(key)
                    while len(self._found) > self._max:
                        self._found.popitem(last=False)
        return value
