from __future__ import annotations

from veil.api.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bursts_up_to_the_limit_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    assert [limiter.acquire("k", per_minute=60) for _ in range(60)] == [0.0] * 60
    wait = limiter.acquire("k", per_minute=60)
    assert 0.99 <= wait <= 1.0 and RateLimiter.retry_after(wait) == 1
    clock.now += 1.0
    assert limiter.acquire("k", per_minute=60) == 0.0
    assert limiter.acquire("other", per_minute=60) == 0.0, "buckets are per key"


def test_slow_limits_say_how_long_to_wait() -> None:
    limiter = RateLimiter(clock=Clock())
    limiter.acquire("k", per_minute=1)
    assert RateLimiter.retry_after(limiter.acquire("k", per_minute=1)) == 60
