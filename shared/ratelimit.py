"""Token-bucket rate limits per API key and per source, kept in the process's memory."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`rate` tokens per second up to `burst`; each request takes one."""

    rate: float
    burst: int
    tokens: float
    updated: float

    def take(self, *, now: float) -> float:
        """Take a token; returns 0.0 if allowed, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """Named buckets sharing one rate and burst; a rate of 0 admits everything."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, name: str) -> int:
        """0 if `name` may proceed now, else the whole seconds to wait (for Retry-After)."""
        if self.rate <= 0:
            return 0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                bucket = self._buckets[name] = TokenBucket(
                    rate=self.rate, burst=self.burst, tokens=float(self.burst), updated=now
                )
            wait = bucket.take(now=now)
        return 0 if wait == 0 else max(1, math.ceil(wait))
