"""A read that meets a restarting database waits for it (up to a budget) instead of answering 503.

The routes below raise the real ``StorageUnavailable`` that ``veil.jobs.db`` raises for a refused
PostgreSQL connection, through Veil's real error handlers; the clock and the pause are injected, so
the budget is tested without waiting. The whole path, a real ``pg_ctlcluster restart`` under a
polling client, is ``bench/reliability.py --only postgres-restart``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from veil.api.errors import install_error_handlers
from veil.api.middleware import RequestContextMiddleware
from veil.api.ride_through import DatabaseRideThroughMiddleware
from veil.api.services import HttpMetrics
from veil.errors import QueueFull, StorageUnavailable


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


@contextmanager
def outage(*, down_for: int, budget_s: float) -> Iterator[tuple[TestClient, list[str], FakeTime]]:
    """A client of an app whose database refuses the first ``down_for`` requests that need it, the
    list of those requests, and the injected time."""
    time = FakeTime()
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(DatabaseRideThroughMiddleware, budget_s=budget_s, clock=time.clock, pause=time.pause)
    app.add_middleware(RequestContextMiddleware, metrics=HttpMetrics(CollectorRegistry()))
    calls: list[str] = []

    def database() -> None:
        calls.append("db")
        if len(calls) <= down_for:
            raise StorageUnavailable("the job database cannot be reached right now; try again shortly")

    @app.get("/v1/jobs/{job_id}")
    def read(job_id: str) -> dict[str, str]:
        database()
        return {"id": job_id}

    @app.post("/v1/jobs")
    def write() -> dict[str, str]:
        database()
        return {"id": "new"}

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        database()
        return {"status": "ready"}

    @app.get("/v1/busy")
    def busy() -> dict[str, str]:
        raise QueueFull("the queue is full")

    with TestClient(app) as client:
        yield client, calls, time


def test_a_read_during_a_short_outage_answers_200_once_the_database_is_back() -> None:
    with outage(down_for=3, budget_s=10.0) as (client, calls, time):
        response = client.get("/v1/jobs/job_1")
    assert response.status_code == 200
    assert response.json() == {"id": "job_1"}
    assert len(calls) == 4
    assert time.pauses == [0.25, 0.5, 1.0]
    assert response.headers["x-request-id"]  # one request to the client, however often it ran


def test_an_outage_longer_than_the_budget_is_still_503_unavailable_with_retry_after() -> None:
    with outage(down_for=1000, budget_s=5.0) as (client, calls, time):
        response = client.get("/v1/jobs/job_1")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["retry-after"]
    assert sum(time.pauses) == 5.0
    assert time.now == 5.0


def test_writes_probes_and_other_503s_are_answered_at_once() -> None:
    with outage(down_for=1000, budget_s=10.0) as (client, calls, time):
        submit = client.post("/v1/jobs")
        ready = client.get("/readyz")
        busy = client.get("/v1/busy")
    assert submit.status_code == 503 and submit.json()["error"]["code"] == "unavailable"
    assert ready.status_code == 503  # a probe reports the outage as it is
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "queue_full"
    assert len(calls) == 2
    assert time.pauses == []


def test_a_zero_budget_answers_at_once() -> None:
    with outage(down_for=1, budget_s=0.0) as (client, calls, time):
        response = client.get("/v1/jobs/job_1")
    assert response.status_code == 503
    assert len(calls) == 1
