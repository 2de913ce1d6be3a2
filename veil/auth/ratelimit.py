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
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import case, literal, select
from sqlalchemy.orm import Session

from veil.auth.tables import RateBucketRow

if TYPE_CHECKING:
    from veil.jobs.db import Database

__all__ = ["DatabaseRateLimiter", "Limiter", "RateLimiter", "retry_after", "take_rate_token"]


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
            return take_rate_token(
                session=session, key_id=key, per_minute=per_minute, now_s=self._clock()
            )


def take_rate_token(*, session: Session, key_id: str, per_minute: int, now_s: float) -> float:
    """Take one token from ``key_id``'s shared bucket (capacity ``per_minute``, refilled at
    ``per_minute / 60`` per second). Returns 0 when taken, else the seconds until one is back.

    Creating, refilling and taking are one conditional upsert, so a request that gets its token
    costs one statement, and API processes racing on the same key never both spend the last
    token. A clock behind the stored time refills nothing.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    capacity, rate = float(per_minute), per_minute / 60.0
    elapsed = case(
        (literal(now_s) > RateBucketRow.updated_s, literal(now_s) - RateBucketRow.updated_s), else_=0.0
    )
    refilled = case(
        (RateBucketRow.tokens + elapsed * rate > capacity, capacity),
        else_=RateBucketRow.tokens + elapsed * rate,
    )
    latest = case((literal(now_s) > RateBucketRow.updated_s, literal(now_s)), else_=RateBucketRow.updated_s)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    upsert = (
        dialect.insert(RateBucketRow)
        .values(key_id=key_id, tokens=capacity - 1.0, updated_s=now_s)
        .on_conflict_do_update(
            index_elements=["key_id"],
            set_={"tokens": refilled - 1.0, "updated_s": latest},
            where=refilled >= 1.0,
        )
        .returning(RateBucketRow.tokens)
    )
    if session.execute(upsert.execution_options(synchronize_session=False)).first() is not None:
        return 0.0
    left = session.execute(select(refilled).where(RateBucketRow.key_id == key_id)).scalar_one()
    return max((1.0 - float(left)) / rate, 0.0)
