"""``execute_job``: claim, run, store, finish — and every way a run can end."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import av

from tests.jobs.conftest import make_ctx
from tests.jobs.factories import GateRunner, add_job, migrated_db
from veil.auth.audit import list_audit
from veil.clock import utcnow
from veil.errors import MediaError, SpecError
from veil.jobs import blobs, store
from veil.jobs.db import Database
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.jobs.worker import execute_job
from veil.report import Report
from veil.settings import Settings
from veil.storage import MemoryStorage


def reload(db: Database, job_id: str) -> JobRow:
    with db.begin() as session:
        row = store.get_job(session=session, job_id=job_id, include_deleted=True)
    assert row is not None
    return row


def test_success_promotes_the_output_writes_the_report_and_audits(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    runner = GateRunner()
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    ctx = make_ctx(settings, db, storage, runner)

    assert execute_job(job.id, ctx=ctx) is JobState.SUCCEEDED
    row = reload(db, job.id)
    assert row.state is JobState.SUCCEEDED and row.progress == 1.0 and row.attempts == 1
    assert row.counts == {"face": 1} and row.kind == "image" and row.output_content_type == "image/jpeg"
    assert storage.keys() == sorted(
        [row.input_key, blobs.output_key(job.id, ".jpg"), blobs.report_key(job.id)]
    )
    report = Report.model_validate_json(b"".join(storage.iter_range(blobs.report_key(job.id))))
    assert report.file is None, "the stored report names no file"
    with db.begin() as session:
        events = list_audit(session=session, tenant_id="default", limit=5)
    assert [(e.action, e.outcome, e.output_sha256) for e in events] == [
        ("job.succeeded", "ok", row.output_sha256)
    ]

    assert execute_job(job.id, ctx=ctx) is None, "a redelivered finished job is not run again"
    assert runner.runs == 1


def test_detect_jobs_store_thumbnails_and_no_output(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg", spec={"mode": "detect"})
    assert execute_job(job.id, ctx=make_ctx(settings, db, storage, GateRunner())) is JobState.SUCCEEDED
    row = reload(db, job.id)
    assert row.output_key is None and storage.exists(blobs.thumbnail_key(job.id, 1))


def test_input_that_is_not_media_fails_with_its_code(
    settings: Settings, db: Database, storage: MemoryStorage, tmp_path: Path
) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a picture\n" * 50)
    job = add_job(db, storage, media_path=text)
    runner = GateRunner()
    assert execute_job(job.id, ctx=make_ctx(settings, db, storage, runner)) is JobState.FAILED
    row = reload(db, job.id)
    assert row.error_code == "unsupported_media" and runner.runs == 0


def test_unexpected_errors_become_internal_error_without_details(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    runner = GateRunner(fail_with=RuntimeError("/home/alice/secret.jpg exploded"))
    assert execute_job(job.id, ctx=make_ctx(settings, db, storage, runner)) is JobState.FAILED
    row = reload(db, job.id)
    assert row.error_code == "internal_error" and "alice" not in (row.error_message or "")
    assert not storage.exists(blobs.output_key(job.id, ".jpg"))


def test_veil_errors_keep_their_code(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    runner = GateRunner(fail_with=SpecError("output format 'mp4' is for video"))
    execute_job(job.id, ctx=make_ctx(settings, db, storage, runner))
    row = reload(db, job.id)
    assert (row.state, row.error_code, row.error_message) == (
        JobState.FAILED,
        "invalid_spec",
        "output format 'mp4' is for video",
    )


def test_a_full_disk_under_the_encoder_fails_the_job_as_storage_full(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    """The encoder's ENOSPC arrives wrapped in a MediaError (measured by bench/reliability.py's full
    disk, which ended the job ``media_error``): the job still fails ``storage_full``."""
    import errno

    try:
        try:
            raise av.error.OSError(errno.ENOSPC, "No space left on device")
        except av.error.FFmpegError as exc:
            raise MediaError("could not write the output file") from exc
    except MediaError as wrapped:
        encoder_failure = wrapped
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    execute_job(job.id, ctx=make_ctx(settings, db, storage, GateRunner(fail_with=encoder_failure)))
    row = reload(db, job.id)
    assert (row.state, row.error_code) == (JobState.FAILED, "storage_full")


def test_cancel_stops_a_running_job_and_publishes_nothing(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    runner = GateRunner(hold=True)
    ctx = make_ctx(settings, db, storage, runner)
    result: list[JobState | None] = []
    thread = threading.Thread(target=lambda: result.append(execute_job(job.id, ctx=ctx)))
    thread.start()
    assert runner.started.wait(10)
    with db.begin() as session:
        store.request_cancel(session=session, job_id=job.id, now=utcnow(), retention=timedelta(hours=1))
    thread.join(10)
    assert result == [JobState.CANCELED]
    row = reload(db, job.id)
    assert row.state is JobState.CANCELED and row.output_key is None
    assert storage.keys() == [], "a canceled job's input (unredacted media) is deleted at once"
    assert row.purged_at is not None


def test_progress_is_recorded_while_running(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    runner = GateRunner(hold=True)
    ctx = make_ctx(settings, db, storage, runner)
    thread = threading.Thread(target=execute_job, args=(job.id,), kwargs={"ctx": ctx})
    thread.start()
    assert runner.started.wait(10)
    for _ in range(100):
        if reload(db, job.id).progress == 0.25:
            break
        threading.Event().wait(0.05)
    assert reload(db, job.id).state is JobState.RUNNING and reload(db, job.id).progress == 0.25
    runner.release()
    thread.join(10)
    assert reload(db, job.id).state is JobState.SUCCEEDED


def test_shutdown_hands_a_running_job_back_to_the_queue(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    runner = GateRunner(hold=True)
    ctx = make_ctx(settings, db, storage, runner)
    result: list[JobState | None] = []
    thread = threading.Thread(target=lambda: result.append(execute_job(job.id, ctx=ctx)))
    thread.start()
    assert runner.started.wait(10)
    ctx.shutdown.set()
    thread.join(10)
    row = reload(db, job.id)
    assert result == [JobState.QUEUED] and row.state is JobState.QUEUED and row.attempts == 0


def test_a_job_whose_worker_keeps_dying_fails_instead_of_looping(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    for _ in range(settings.job_max_attempts):  # each claim followed by a crash and a restart
        with db.begin() as session:
            assert store.claim_job(session=session, job_id=job.id, worker_id="doomed", now=utcnow())
            store.requeue_running_jobs(session=session)
    runner = GateRunner()
    assert execute_job(job.id, ctx=make_ctx(settings, db, storage, runner)) is JobState.FAILED
    row = reload(db, job.id)
    assert row.error_code == "job_error" and "interrupted" in (row.error_message or "") and runner.runs == 0


def test_missing_source_job_fails_as_invalid_spec(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg", spec={"source_job": "job_gone"})
    execute_job(job.id, ctx=make_ctx(settings, db, storage, GateRunner()))
    assert reload(db, job.id).error_code == "invalid_spec"


def test_missing_input_fails_as_job_error(settings: Settings, db: Database, storage: MemoryStorage) -> None:
    job = add_job(db, storage)  # row only, no blob
    execute_job(job.id, ctx=make_ctx(settings, db, storage, GateRunner()))
    row = reload(db, job.id)
    assert row.error_code == "job_error" and "no longer stored" in (row.error_message or "")


def _wait(predicate: object, timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_full_disk_fails_the_job_and_it_finishes_once_space_returns(
    small_disk: Any, media_dir: Path
) -> None:
    """The data disk (database, blobs, scratch) fills while a job runs: the job must not stay
    ``running`` for good. It ends ``failed``/``storage_full`` as soon as the database can be written
    again, and leaves no input, report or scratch file behind."""
    from veil.storage import LocalStorage

    data = small_disk.root / "data"
    settings = Settings(data_dir=data, min_free_mb=0)
    db = migrated_db(data / "veil.db")
    storage = LocalStorage(data / "blobs")
    runner = GateRunner(hold=True)
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    ctx = make_ctx(settings, db, storage, runner)  # type: ignore[arg-type]
    result: list[JobState | None] = []
    worker = threading.Thread(target=lambda: result.append(execute_job(job.id, ctx=ctx)))
    worker.start()
    try:
        assert runner.started.wait(30)
        small_disk.fill()
        seen: list[str] = []
        handler = logging.Handler(level=logging.WARNING)
        handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
        worker_log = logging.getLogger("veil.jobs.lifecycle")  # on the logger itself: other tests may
        worker_log.addHandler(handler)  # stop propagation (JSON log setup), which caplog relies on
        try:
            runner.release()
            # SQLite usually cannot write on the full disk (the retry path); when its WAL still has
            # room, the job is recorded at once. Either way it ends failed/storage_full, nothing left.
            _wait(lambda: any("not recorded yet" in m for m in seen) or not worker.is_alive())
        finally:
            worker_log.removeHandler(handler)
        if worker.is_alive():
            assert reload(db, job.id).state is JobState.RUNNING  # nothing could be written yet
    finally:  # never leave the worker (and its heartbeat) running on a full disk
        small_disk.free()
        runner.release()
        worker.join(timeout=30)
        if worker.is_alive():
            ctx.shutdown.set()
            worker.join(timeout=30)
    assert not worker.is_alive() and result == [JobState.FAILED]
    row = reload(db, job.id)
    assert (row.state, row.error_code) == (JobState.FAILED, "storage_full")
    assert not list((data / "blobs").rglob("*")), "the input and partial files are deleted at once"
    assert not (data / "tmp").exists() or not list((data / "tmp").iterdir())
    db.dispose()


def test_a_failed_job_deletes_its_input_report_and_scratch_at_once(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    storage.put_stream(blobs.temp_output_key(job.id, 0, ".jpg"), [b"partial output of a killed attempt"])
    runner = GateRunner(fail_with=SpecError("nothing to mask"))
    assert execute_job(job.id, ctx=make_ctx(settings, db, storage, runner)) is JobState.FAILED
    row = reload(db, job.id)
    assert row.error_code == "invalid_spec" and row.purged_at is not None
    assert storage.keys() == [], "input, partial outputs and reports go at once, not at retention"
    assert list((settings.data_dir / "tmp").iterdir()) == []


def test_a_succeeded_job_leaves_no_partial_output_of_earlier_attempts(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    job = add_job(db, storage, media_path=media_dir / "street.jpg")
    storage.put_stream(blobs.temp_output_key(job.id, 0, ".jpg"), [b"partial output of a killed attempt"])
    assert execute_job(job.id, ctx=make_ctx(settings, db, storage, GateRunner())) is JobState.SUCCEEDED
    assert not [k for k in storage.keys() if "/tmp/" in k]


def test_the_database_blobs_and_scratch_are_private_to_the_service_user(
    tmp_path: Path, media_dir: Path
) -> None:
    import os
    import stat

    from veil.storage import LocalStorage

    old = os.umask(0o022)  # the usual umask, which made them 0644 / 0755
    try:
        data = tmp_path / "data"
        settings = Settings(data_dir=data)
        db = migrated_db(data / "veil.db")
        storage = LocalStorage(data / "blobs")
        job = add_job(db, storage, media_path=media_dir / "street.jpg")
        assert execute_job(job.id, ctx=make_ctx(settings, db, storage, GateRunner())) is JobState.SUCCEEDED  # type: ignore[arg-type]
        db.dispose()
    finally:
        os.umask(old)
    paths = list(data.rglob("*"))  # the database with its -wal/-shm files, blobs, scratch
    modes = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert modes["veil.db"] == 0o600
    assert all(mode == (0o700 if (data / name).is_dir() else 0o600) for name, mode in modes.items()), modes
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
