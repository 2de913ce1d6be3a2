"""The webhook retry schedule, driven by an injected clock (no sleeps): it reaches past 24 hours, every
attempt is listed while it retries, a restart resumes it where it was, a redelivery starts it again, and
custom headers go out with each attempt while being stored sealed and never logged.
The receiver is a real HTTP server on loopback."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.jobs.factories import add_job
from tests.jobs.test_notify import Receiver
from veil.auth.secrets import load_server_secret, seal_headers
from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.notify import WebhookNotifier
from veil.jobs.states import JobState
from veil.settings import Settings
from veil.storage import MemoryStorage

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def failing() -> Iterator[Receiver]:
    r = Receiver([500] * 100)
    yield r
    r.close()


def finished_job(db: Database, url: str, *, headers: str | None = None) -> str:
    """A job canceled before it started at T0, with a webhook: pending, due at T0."""
    job = add_job(db, MemoryStorage(), spec={"webhook": {"url": url}})
    with db.begin() as session:
        done = store.finish_job(
            session=session,
            job_id=job.id,
            claim=None,
            finish=store.Finish(state=JobState.CANCELED, error_code="canceled", error_message="canceled"),
            now=T0,
            retention=timedelta(days=1),
        )
        assert done is not None and done.webhook_status == "pending"
        if headers is not None:
            done.webhook_headers = headers
    return job.id


def notifier_for(settings: Settings, db: Database, clock: Clock) -> WebhookNotifier:
    secret = load_server_secret(settings)
    return WebhookNotifier(settings=settings, db=db, server_secret=secret, clock=clock, rng=random.Random(7))


def state(db: Database, job_id: str) -> tuple[str | None, datetime | None, list[tuple[int, int | None]]]:
    with db.begin() as session:
        row = store.get_job(session=session, job_id=job_id)
        rows = store.list_webhook_deliveries(session=session, job_id=job_id)
        return row.webhook_status, row.webhook_next_at, [(r.attempt, r.status_code) for r in rows]


def test_the_default_schedule_reaches_past_24_hours(tmp_path: Path) -> None:
    schedule = Settings(data_dir=tmp_path).webhook_retry_schedule_s
    assert sum(schedule) * 0.8 >= 24 * 3600, "even with the most jitter"


def test_a_failing_receiver_is_retried_for_more_than_a_day_with_every_attempt_listed(
    tmp_path: Path, db: Database, failing: Receiver
) -> None:
    settings = Settings(data_dir=tmp_path, webhook_allow_private=True)
    clock = Clock()
    notifier = notifier_for(settings, db, clock)
    job_id = finished_job(db, failing.url)

    assert notifier.deliver_due() == 1
    status, next_at, attempts = state(db, job_id)
    assert status == "pending" and attempts == [(1, 500)], "listed while still retrying"
    assert next_at is not None and T0 + timedelta(seconds=8) <= next_at <= T0 + timedelta(seconds=10)

    clock.now = next_at - timedelta(seconds=1)
    assert notifier.deliver_due() == 0, "not due yet: nothing is sent early"

    while status == "pending":
        assert next_at is not None
        clock.now = next_at
        assert notifier.deliver_due() == 1
        status, next_at, attempts = state(db, job_id)
    expected = len(settings.webhook_retry_schedule_s) + 1
    assert status == "failed" and [a for a, _ in attempts] == list(range(1, expected + 1))
    assert len(failing.requests) == expected
    assert clock.now - T0 >= timedelta(hours=24)
    assert len({h["veil-delivery"] for h, _ in failing.requests}) == 1, "one delivery id for all attempts"


def test_a_restart_resumes_the_schedule_and_redelivery_starts_it_again(
    tmp_path: Path, db: Database, failing: Receiver
) -> None:
    settings = Settings(data_dir=tmp_path, webhook_allow_private=True, webhook_retry_schedule_s=(60, 3600))
    clock = Clock()
    job_id = finished_job(db, failing.url)
    notifier_for(settings, db, clock).deliver_due()
    _, next_at, _ = state(db, job_id)
    assert next_at is not None and next_at >= T0 + timedelta(seconds=48)

    restarted = notifier_for(settings, db, clock)  # a new process: the schedule is in the job table
    assert restarted.deliver_due() == 0
    clock.now = next_at
    restarted.deliver_due()
    _, next_at, _ = state(db, job_id)
    clock.now = next_at
    restarted.deliver_due()
    assert state(db, job_id)[0] == "failed"

    with db.begin() as session:
        assert store.redeliver_webhook(session=session, job_id=job_id, now=clock.now) is not None
    failing.statuses = []  # the receiver is fixed: 200 from now on
    assert restarted.deliver_due() == 1
    status, next_at, attempts = state(db, job_id)
    assert status == "delivered" and next_at is None
    assert attempts == [(1, 500), (2, 500), (3, 500), (4, 200)], "earlier attempts stay listed"
    ids = [h["veil-delivery"] for h, _ in failing.requests]
    assert ids[0] == ids[2] != ids[3], "a redelivery is a new delivery"


def test_custom_headers_go_out_sealed_and_unlogged(
    tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path, webhook_allow_private=True)
    secret_value = "Bearer receivers-own-token-123"
    sealed = seal_headers(load_server_secret(settings), {"Authorization": secret_value, "X-Tenant": "acme"})
    assert "receivers-own-token" not in sealed
    receiver = Receiver([])
    try:
        job_id = finished_job(db, receiver.url, headers=sealed)
        caplog.set_level(logging.DEBUG)
        assert notifier_for(settings, db, Clock()).deliver_due() == 1
    finally:
        receiver.close()
    headers, _ = receiver.requests[0]
    assert headers["authorization"] == secret_value and headers["x-tenant"] == "acme"
    assert "veil-signature" in headers
    assert secret_value not in caplog.text and "receivers-own-token" not in caplog.text
    with db.begin() as session:
        assert "receivers-own-token" not in str(store.get_job(session=session, job_id=job_id).spec)


def test_headers_sealed_under_another_secret_fail_with_a_reason(tmp_path: Path, db: Database) -> None:
    settings = Settings(data_dir=tmp_path, webhook_allow_private=True)
    receiver = Receiver([])
    try:
        job_id = finished_job(db, receiver.url, headers=seal_headers(b"another secret" * 3, {"A": "b"}))
        assert notifier_for(settings, db, Clock()).deliver_due() == 1
    finally:
        receiver.close()
    assert receiver.requests == [], "nothing is sent without the headers the caller asked for"
    with db.begin() as session:
        [attempt] = store.list_webhook_deliveries(session=session, job_id=job_id)
    assert attempt.error is not None and "VEIL_SECRET_KEY changed" in attempt.error
    assert state(db, job_id)[0] == "failed"
