"""Token-bucket rate limits, driven by a fake clock."""

from __future__ import annotations

from shared.ratelimit import RateLimiter, TokenBucket


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_burst_is_allowed_then_refused_with_retry_after_at_least_one() -> None:
    limiter = RateLimiter(rate=2.0, burst=3, clock=FakeClock())
    assert [limiter.check("key") for _ in range(3)] == [0, 0, 0]
    wait = limiter.check("key")
    assert wait >= 1


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    limiter = RateLimiter(rate=0.25, burst=1, clock=FakeClock())
    assert limiter.check("key") == 0
    assert limiter.check("key") == 4


def test_retry_after_is_at_least_one_even_when_a_token_is_nearly_ready() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10.0, burst=1, clock=clock)
    assert limiter.check("key") == 0
    clock.advance(0.05)
    assert limiter.check("key") == 1


def test_bucket_refills_over_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    assert limiter.check("key") == 0
    assert limiter.check("key") == 0
    assert limiter.check("key") >= 1
    clock.advance(1.0)
    assert limiter.check("key") == 0
    assert limiter.check("key") >= 1


def test_refill_never_exceeds_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=5.0, burst=2, clock=clock)
    limiter.check("key")
    clock.advance(3600)
    assert [limiter.check("key") for _ in range(2)] == [0, 0]
    assert limiter.check("key") >= 1


def test_separate_names_have_separate_buckets() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=FakeClock())
    assert limiter.check("alice") == 0
    assert limiter.check("alice") >= 1
    assert limiter.check("bob") == 0


def test_rate_zero_admits_everything() -> None:
    limiter = RateLimiter(rate=0, burst=1, clock=FakeClock())
    assert all(limiter.check("key") == 0 for _ in range(1000))


def test_token_bucket_reports_seconds_until_next_token() -> None:
    bucket = TokenBucket(rate=2.0, burst=1, tokens=1.0, updated=0.0)
    assert bucket.take(now=0.0) == 0.0
    assert bucket.take(now=0.0) == 0.5
    assert bucket.take(now=0.25) == 0.25
    assert bucket.take(now=0.5) == 0.0
