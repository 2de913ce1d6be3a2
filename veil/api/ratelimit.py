"""Per-key rate limits: a token bucket per API key, in this process.

A key may burst up to its per-minute limit and then gets one request per
``60 / limit`` seconds. The 429 carries ``Retry-After``: the seconds until one token
is back. Buckets are per process; with several API processes behind a balancer each
enforces the limit on its share (a shared limiter would need Redis, not a new idea here).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._max_keys = max_keys

    def acquire(self, key: str, *, per_minute: int) -> float:
        """Take one token for ``key``. Returns 0 when allowed, else the seconds until it would be."""
        capacity = float(per_minute)
        rate = per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self._max_keys:  # revoked keys' buckets: drop the oldest half
                for stale in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self._max_keys // 2]:
                    del self._buckets[stale]
            return (1.0 - tokens) / rate

    @staticmethod
    def retry_after(seconds: float) -> int:
        return max(1, math.ceil(seconds))
