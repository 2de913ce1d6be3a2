"""``LocalQueue``: in-process workers that take jobs from the job table, oldest first, and recover
jobs a killed process left running."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.jobs.conftest import make_ctx
from tests.jobs.factories import GateRunner, add_job
from veil.clock import utcnow
from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.queue import JobQueue, LocalQueue, create_queue
from veil.jobs.states import JobState
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


class VideoGate(GateRunner):
    """Holds video jobs (a video as long as the test wants) until released; images run at once."""

    def __init__(self) -> None:
        super().__init__(hold=True)

    def run(self, spec: Any, input_path: Path, output_path: Path | None, **kw: Any) -> Any:
        if kw["info"].kind == "image":
            return GateRunner().run(spec, input_path, output_path, **kw)
        return super().run(spec, input_path, output_path, **kw)


def test_an_image_behind_another_tenants_long_video_runs_at_once_on_the_default_single_worker(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    """One worker (the embedded default) busy with tenant A's video for as long as it takes: tenant B's
    image submitted behind it finishes within 10 s, on the quick lane."""
    runner = VideoGate()
    queue = LocalQueue(ctx=make_ctx(settings, db, storage, runner), workers=1, poll_s=0.1)
    video = add_job(
        db, storage, tenant_id="a", media_path=media_dir / "selfie_portrait_noaudio.mp4", kind="video"
    )
    queue.start()
    try:
        assert runner.started.wait(10)
        image = add_job(db, storage, tenant_id="b", media_path=media_dir / "street.jpg", kind="image")
        queue.enqueue(image.id)
        started = time.monotonic()
        wait_for_state(db, image.id, JobState.SUCCEEDED, timeout=10.0)
        assert time.monotonic() - started <= 10.0
        with db.begin() as session:
            assert store.get_job(session=session, job_id=video.id).state is JobState.RUNNING  # type: ignore[union-attr]
    finally:
        runner.release()
        queue.stop()


def test_workers_take_jobs_round_robin_between_tenants(db: Database) -> None:
    """Tenant A queued three videos before tenant B queued one: B's runs second, not fourth."""
    a = [add_job(db, tenant_id="a", kind="video", created_delta_s=i) for i in range(3)]
    b = add_job(db, tenant_id="b", kind="video", created_delta_s=10)
    taken: list[str] = []
    for step in range(4):
        with db.begin() as session:
            job_id = store.next_fair_job_id(session=session)
            assert job_id is not None
            store.claim_job(
                session=session, job_id=job_id, worker_id="w", now=utcnow() + timedelta(seconds=step)
            )
        taken.append(job_id)
    assert taken == [a[0].id, b.id, a[1].id, a[2].id]
    with db.begin() as session:
        assert store.next_fair_job_id(session=session) is None
