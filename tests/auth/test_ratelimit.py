from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.jobs.factories import migrated_db
from veil.api.services import limiter_for
from veil.auth.keys import create_api_key
from veil.auth.ratelimit import DatabaseRateLimiter, RateLimiter, retry_after
from veil.clock import utcnow
from veil.jobs.db import Database
from veil.settings import Settings


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
    assert 0.99 <= wait <= 1.0 and retry_after(wait) == 1
    clock.now += 1.0
    assert limiter.acquire("k", per_minute=60) == 0.0
    assert limiter.acquire("other", per_minute=60) == 0.0, "buckets are per key"


def test_slow_limits_say_how_long_to_wait() -> None:
    limiter = RateLimiter(clock=Clock())
    limiter.acquire("k", per_minute=1)
    assert retry_after(limiter.acquire("k", per_minute=1)) == 60


def _key(db: Database) -> str:
    with db.begin() as session:
        row, _ = create_api_key(session=session, name="k", tenant_id="t", scopes=["jobs:read"], now=utcnow())
    return row.id


def test_database_buckets_burst_refill_and_say_how_long_to_wait(tmp_path: Path) -> None:
    db = migrated_db(tmp_path / "veil.db")
    key, clock = _key(db), Clock()
    limiter = DatabaseRateLimiter(db, clock=clock)
    assert [limiter.acquire(key, per_minute=60) for _ in range(60)] == [0.0] * 60
    assert 0.99 <= limiter.acquire(key, per_minute=60) <= 1.0
    clock.now += 1.0
    assert limiter.acquire(key, per_minute=60) == 0.0
    clock.now -= 30.0  # another machine whose clock runs behind refills nothing
    assert limiter.acquire(key, per_minute=60) > 0
    slow = _key(db)
    limiter.acquire(slow, per_minute=1)
    assert retry_after(limiter.acquire(slow, per_minute=1)) == 60


@pytest.mark.services
def test_api_processes_on_postgres_share_one_bucket(postgres_db: Database) -> None:
    """Two limiters (two API processes) racing from 8 threads: exactly the limit gets through."""
    postgres_db.upgrade()
    key = _key(postgres_db)
    processes = [DatabaseRateLimiter(postgres_db, clock=lambda: 1000.0) for _ in range(2)]
    allowed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def client(n: int) -> None:
        barrier.wait()
        for _ in range(10):
            ok = processes[n % 2].acquire(key, per_minute=30) == 0.0
            with lock:
                allowed.append(ok)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 80 and sum(allowed) == 30


def test_the_store_follows_the_job_database(tmp_path: Path) -> None:
    sqlite = migrated_db(tmp_path / "veil.db")
    assert isinstance(limiter_for(Settings(data_dir=tmp_path), sqlite), RateLimiter)
    chosen = limiter_for(Settings(data_dir=tmp_path, rate_limit_store="database"), sqlite)
    assert isinstance(chosen, DatabaseRateLimiter)
