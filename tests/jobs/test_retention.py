"""Retention: blobs go when ``expires_at`` passes; the row and the audit trail stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

from tests.jobs.factories import add_job, migrated_db
from veil.auth.audit import list_audit
from veil.clock import utcnow
from veil.jobs import blobs, store
from veil.jobs.db import Database
from veil.jobs.retention import RetentionSweeper, clean_scratch, sweep
from veil.jobs.states import JobState
from veil.storage import LocalStorage, MemoryStorage


def finish(db: Database, job_id: str) -> None:
    with db.begin() as session:
        claim = store.claim_job(session=session, job_id=job_id, worker_id="w", now=utcnow())
        store.finish_job(
            session=session,
            job_id=job_id,
            claim=claim,
            finish=store.Finish(state=JobState.SUCCEEDED, output_key=blobs.output_key(job_id, ".jpg")),
            now=utcnow(),
            retention=timedelta(hours=1),
        )


def test_expired_jobs_lose_their_blobs_and_keep_their_row(
    db: Database, media_dir: Path, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "blobs")
    old, fresh, waiting = (add_job(db, storage, media_path=media_dir / "street.jpg") for _ in range(3))
    for job in (old, fresh):
        finish(db, job.id)
        storage.put_stream(blobs.output_key(job.id, ".jpg"), [b"result"])

    later = utcnow() + timedelta(hours=2)
    with db.begin() as session:  # only `old` is past its deadline
        session.get(store.JobRow, fresh.id).expires_at = later + timedelta(hours=1)
    assert sweep(db=db, storage=storage, now=later) == 1

    assert not storage.exists(old.input_key) and not storage.exists(blobs.output_key(old.id, ".jpg"))
    assert storage.exists(fresh.input_key) and storage.exists(waiting.input_key), (
        "queued jobs are never purged"
    )
    with db.begin() as session:
        row = store.get_job(session=session, job_id=old.id)
        events = list_audit(session=session, tenant_id="default", limit=10, action="retention.purge")
    assert row is not None and row.purged_at is not None and row.state is JobState.SUCCEEDED
    assert [(e.job_id, e.input_sha256) for e in events] == [(old.id, old.input_sha256)]


def test_the_deadline_survives_a_restart(tmp_path: Path, media_dir: Path) -> None:
    storage = MemoryStorage()
    first = migrated_db(tmp_path / "veil.db")
    job = add_job(first, storage, media_path=media_dir / "street.jpg")
    finish(first, job.id)
    first.dispose()

    second = migrated_db(
        tmp_path / "veil.db"
    )  # a new process: nothing in memory, the deadline is in the table
    sweeper = RetentionSweeper(db=second, storage=storage, interval_s=3600)
    assert sweeper.run_once() == 0
    assert sweep(db=second, storage=storage, now=utcnow() + timedelta(hours=2)) == 1
    assert sweep(db=second, storage=storage, now=utcnow() + timedelta(hours=3)) == 0, (
        "purged once, audited once"
    )
    assert storage.keys() == []


def test_deleted_jobs_are_purged_at_once(db: Database, media_dir: Path) -> None:
    storage = MemoryStorage()
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    with db.begin() as session:
        store.mark_deleted(session=session, job_id=job.id, now=utcnow(), retention=timedelta(hours=1))
    assert sweep(db=db, storage=storage, now=utcnow()) == 1
    assert storage.keys() == []


def test_scratch_cleanup_removes_only_old_leftovers(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    (scratch / "job_old-1").mkdir(parents=True)
    (scratch / "job_new-2").mkdir()
    (scratch / "job_long-3").mkdir()
    (scratch / "job_long-3" / "output.mp4").write_bytes(b"still being written")
    hours_ago = time.time() - 7200
    for name in ("job_old-1", "job_long-3"):
        os.utime(scratch / name, (hours_ago, hours_ago))
    assert clean_scratch(scratch) == 1
    assert sorted(p.name for p in scratch.iterdir()) == ["job_long-3", "job_new-2"], (
        "a long job keeps its files"
    )
