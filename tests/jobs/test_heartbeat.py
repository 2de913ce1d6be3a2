"""The heartbeat a running job writes: progress out, cancel requests and lost claims in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from tests.jobs.factories import add_job
from veil.clock import utcnow
from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.heartbeat import Heartbeat

BEAT_S = 0.02


def _claimed(db: Database) -> store.Claim:
    row = add_job(db)
    with db.begin() as session:
        claim = store.claim_job(session=session, job_id=row.id, worker_id="w1", now=utcnow())
    assert claim is not None
    return claim


def _progress(db: Database, job_id: str) -> float:
    with db.begin() as session:
        row = store.get_job(session=session, job_id=job_id)
        assert row is not None
        return float(row.progress)


def _eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(BEAT_S)
    return False


def test_progress_reaches_the_job_row(db: Database) -> None:
    claim = _claimed(db)
    with Heartbeat(db, claim, every_s=BEAT_S, shutdown=threading.Event()) as beat:
        beat.set_progress(0.4)
        assert _eventually(lambda: _progress(db, claim.job_id) == 0.4)
        assert not beat.should_stop()


def test_a_cancel_request_stops_the_job(db: Database) -> None:
    claim = _claimed(db)
    with Heartbeat(db, claim, every_s=BEAT_S, shutdown=threading.Event()) as beat:
        with db.begin() as session:
            store.request_cancel(
                session=session, job_id=claim.job_id, now=utcnow(), retention=timedelta(hours=1)
            )
        assert _eventually(beat.should_stop)
        assert beat.cancel_requested and not beat.lost


def test_a_claim_taken_over_by_another_worker_is_lost(db: Database) -> None:
    claim = _claimed(db)
    with Heartbeat(db, claim, every_s=BEAT_S, shutdown=threading.Event()) as beat:
        later = utcnow() + timedelta(hours=1)  # w2 finds the claim stale and takes the job over
        with db.begin() as session:
            taken = store.claim_job(
                session=session, job_id=claim.job_id, worker_id="w2", now=later, stale_before=later
            )
        assert taken is not None and taken.attempt == claim.attempt + 1
        assert _eventually(lambda: beat.lost)
        assert beat.should_stop()


def test_worker_shutdown_stops_the_job(db: Database) -> None:
    shutdown = threading.Event()
    beat = Heartbeat(db, _claimed(db), every_s=60, shutdown=shutdown)
    assert not beat.should_stop()
    shutdown.set()
    assert beat.should_stop()


def test_side_by_side_steps_never_lower_the_progress(db: Database) -> None:
    """Split jobs: a step that reports less than another already did leaves the higher value."""
    claim = _claimed(db)
    with Heartbeat(db, claim, every_s=BEAT_S, shutdown=threading.Event(), keep_highest=True) as ahead:
        ahead.set_progress(0.7)
        assert _eventually(lambda: _progress(db, claim.job_id) == 0.7)
    with Heartbeat(db, claim, every_s=BEAT_S, shutdown=threading.Event(), keep_highest=True) as behind:
        behind.set_progress(0.2)
        time.sleep(BEAT_S * 10)
        assert _progress(db, claim.job_id) == 0.7
        behind.set_progress(0.9)
        assert _eventually(lambda: _progress(db, claim.job_id) == 0.9)


def test_a_failing_database_does_not_kill_the_heartbeat(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = _claimed(db)
    failures = {"left": 3}
    original = store.heartbeat

    def flaky(**kw: object) -> bool | None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database is locked")
        return original(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "heartbeat", flaky)
    with Heartbeat(db, claim, every_s=BEAT_S, shutdown=threading.Event()) as beat:
        beat.set_progress(0.5)
        assert _eventually(lambda: _progress(db, claim.job_id) == 0.5)
        assert failures["left"] == 0
        assert not beat.should_stop()
