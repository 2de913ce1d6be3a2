"""``LocalQueue``: in-process workers that take jobs from the job table, oldest first, and recover
jobs a killed process left running."""

from __future__ import annotations

import time
from pathlib import Path

from tests.jobs.conftest import make_ctx
from tests.jobs.factories import GateRunner, add_job
from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.queue import JobQueue, LocalQueue, create_queue
from veil.jobs.states import JobState
from veil.jobs.worker import utcnow
from veil.settings import Settings
from veil.storage import MemoryStorage


def wait_for_state(db: Database, job_id: str, state: JobState, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
        if row is not None and row.state is state:
            return
        time.sleep(0.05)
    raise AssertionError(f"{job_id} did not reach {state}")


def test_runs_queued_jobs_oldest_first(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    jobs = [add_job(db, storage, media_path=media_dir / "street.jpg", created_delta_s=-i) for i in range(3)]
    queue = LocalQueue(ctx=make_ctx(settings, db, storage, GateRunner()), workers=1, poll_s=0.1)
    assert isinstance(queue, JobQueue)
    queue.start()
    try:
        for job in jobs:
            wait_for_state(db, job.id, JobState.SUCCEEDED)
    finally:
        queue.stop()
    with db.begin() as session:
        started = {j.id: store.get_job(session=session, job_id=j.id).started_at for j in jobs}
    assert sorted(started, key=lambda j: started[j]) == [j.id for j in reversed(jobs)]


def test_enqueue_wakes_an_idle_worker(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    queue = LocalQueue(ctx=make_ctx(settings, db, storage, GateRunner()), workers=1, poll_s=30)
    queue.start()
    try:
        time.sleep(0.2)  # the worker is now waiting
        job = add_job(db, storage, media_path=media_dir / "street.jpg")
        started = time.monotonic()
        queue.enqueue(job.id)
        wait_for_state(db, job.id, JobState.SUCCEEDED, timeout=10)
        assert time.monotonic() - started < 5, "enqueue must not wait for the 30 s poll"
    finally:
        queue.stop()


def test_start_recovers_jobs_left_running_by_a_dead_process(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    with db.begin() as session:
        store.claim_job(session=session, job_id=job.id, worker_id="host:dead-pid", now=utcnow())
    ctx = make_ctx(settings, db, storage, GateRunner())
    (ctx.scratch_dir / f"{job.id}-killed").mkdir(parents=True)  # what SIGKILL leaves behind
    (ctx.scratch_dir / "upload-killed.jpg").write_bytes(b"half an upload")
    queue = LocalQueue(ctx=ctx, workers=1, poll_s=0.1)
    queue.start()
    try:
        wait_for_state(db, job.id, JobState.SUCCEEDED)
    finally:
        queue.stop()
    assert list(ctx.scratch_dir.iterdir()) == [], "no empty tmp/ folders or partial uploads after a kill"
    with db.begin() as session:
        assert store.get_job(session=session, job_id=job.id).attempts == 2


def test_zero_workers_accepts_but_runs_nothing(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    queue = LocalQueue(ctx=make_ctx(settings, db, storage, GateRunner()), workers=0)
    queue.start()
    queue.enqueue(job.id)
    time.sleep(0.3)
    queue.stop()
    with db.begin() as session:
        assert store.get_job(session=session, job_id=job.id).state is JobState.QUEUED


def test_stop_hands_the_running_job_back(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    runner = GateRunner(hold=True)
    queue = LocalQueue(ctx=make_ctx(settings, db, storage, runner), workers=1, poll_s=0.1)
    queue.start()
    assert runner.started.wait(10)
    queue.stop(timeout=10)
    with db.begin() as session:
        assert store.get_job(session=session, job_id=job.id).state is JobState.QUEUED


def test_factory_builds_the_local_queue_or_takes_an_injected_one(
    settings: Settings, db: Database, storage: MemoryStorage
) -> None:
    ctx = make_ctx(settings, db, storage, GateRunner())
    assert isinstance(create_queue(settings, ctx=ctx), LocalQueue)
    injected = LocalQueue(ctx=ctx, workers=0)
    assert create_queue(settings, ctx=ctx, queue=injected) is injected
