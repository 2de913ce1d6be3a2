"""Per-key rate limits: a token bucket per API key.

A key may burst up to its per-minute limit and then gets one request per
``60 / limit`` seconds. The 429 carries ``Retry-After``: the seconds until one token
is back. Two stores hold the buckets:

* ``RateLimiter``: this process's memory. Exact for the embedded single-process
  service, and free of database writes.
* ``DatabaseRateLimiter``: the job database, one row per key, so every API process
  behind a balancer spends from the same bucket. The default when the job store is
  shared (PostgreSQL); ``VEIL_RATE_LIMIT_STORE`` overrides the choice.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from veil.jobs import store
from veil.jobs.db import Database

__all__ = ["DatabaseRateLimiter", "Limiter", "RateLimiter", "retry_after"]


class Limiter(Protocol):
    def acquire(self, key: str, *, per_minute: int) -> float:
        """Take one token for ``key``. Returns 0 when allowed, else the seconds until it would be."""
        ...


def retry_after(seconds: float) -> int:
    """The ``Retry-After`` value for a wait: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


class RateLimiter:
    """Buckets in this process's memory."""

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


class DatabaseRateLimiter:
    """Buckets in the job database, shared by every process that uses it.

    ``key`` must be an API key id (the bucket row references the key). The clock is
    wall time, as processes on different machines share it; one that runs behind
    refills nothing rather than too much.
    """

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def acquire(self, key: str, *, per_minute: int) -> float:
        with self._db.begin() as session:
            return store.take_rate_token(
                session=session, key_id=key, per_minute=per_minute, now_s=self._clock()
            )
