"""Run one job: ``execute_job(job_id, ctx=...)``. The in-process pool and the Celery task both call it.

It is idempotent, so a queue may deliver a job twice (Celery after a lost worker,
the local pool after a restart):

1. reload the job; return at once if it is terminal or another live worker has it;
2. claim it atomically (``attempts`` becomes the fencing token of this run);
3. fetch the input into a scratch directory, probe it, run the pipeline while a
   heartbeat thread records progress and polls for cancellation;
4. write the result to a temporary key and promote it, then the report and thumbnails;
5. mark the job succeeded / failed (with a stable error code) / canceled, fenced by
   the claim, then audit, wake waiters, count metrics and send the webhook.

A job whose worker died ``job_max_attempts`` times fails with ``job_error`` instead of
running forever. Nothing here logs file names, detections or error details beyond codes.

A full disk fails the job with ``storage_full`` (scratch, blobs or database). When the
terminal state itself cannot be written (the database's disk is full, or the database
is away), ``_conclude`` retries until it can or the worker shuts down, so a job never
stays ``running`` once space returns. A job that ends failed or canceled, or was deleted
while it ran, loses its blobs (input, report, partial outputs) at once; every job loses
its ``tmp/`` blobs left by killed attempts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import OperationalError

from veil.auth.audit import append_audit
from veil.clock import utcnow
from veil.errors import (
    JobCanceled,
    JobError,
    SpecError,
    StorageError,
    StorageFull,
    StorageNotFound,
    VeilError,
)
from veil.jobs import blobs, store
from veil.jobs.db import Database
from veil.jobs.events import JobEvents
from veil.jobs.heartbeat import Heartbeat
from veil.jobs.metrics import JobMetrics
from veil.jobs.runner import JobRunner, PipelineRunner
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.media.formats import content_type_for
from veil.private_files import NO_SPACE_ERRNOS, make_private_dirs
from veil.report import Report
from veil.settings import Settings
from veil.spec import RedactionSpec
from veil.storage import Storage, create_storage

if TYPE_CHECKING:
    pass

__all__ = [
    "Notifier",
    "WorkerContext",
    "conclude_job",
    "default_worker_id",
    "execute_job",
    "load_source_report",
]

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Notifier(Protocol):
    """Sends the webhook of a finished job (``veil.jobs.notify.WebhookNotifier``)."""

    def dispatch(self, job_id: str) -> None: ...


@dataclass
class WorkerContext:
    """Everything ``execute_job`` needs, built once per process and shared by its worker threads."""

    settings: Settings
    db: Database
    storage: Storage
    runner: JobRunner
    scratch_dir: Path
    worker_id: str = field(default_factory=default_worker_id)
    events: JobEvents | None = None
    metrics: JobMetrics | None = None
    notifier: Notifier | None = None
    shutdown: threading.Event = field(default_factory=threading.Event)
    """Set on graceful shutdown: running jobs stop between frames and go back to the queue."""
    heartbeat_s: float = 1.0
    take_over_stale: bool = False
    """Claim ``running`` jobs whose heartbeat is older than ``job_stale_s`` (many worker processes)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        db: Database | None = None,
        storage: Storage | None = None,
        runner: JobRunner | None = None,
        events: JobEvents | None = None,
        metrics: JobMetrics | None = None,
        notifier: Notifier | None = None,
        take_over_stale: bool | None = None,
    ) -> WorkerContext:
        return cls(
            settings=settings,
            db=db or Database.from_settings(settings),
            storage=create_storage(settings, storage=storage),
            runner=runner or PipelineRunner(settings),
            scratch_dir=Path(settings.data_dir) / "tmp",
            events=events,
            metrics=metrics,
            notifier=notifier,
            take_over_stale=settings.queue != "local" if take_over_stale is None else take_over_stale,
        )

    @property
    def retention(self) -> timedelta:
        return timedelta(hours=self.settings.retention_hours)


def execute_job(job_id: str, *, ctx: WorkerContext) -> JobState | None:
    """Run ``job_id`` to a terminal state if it is ours to run. Returns the state it ended in, or ``None``
    when there was nothing to do (unknown, already terminal, or claimed by another live worker)."""
    now = utcnow()
    with ctx.db.begin() as session:
        row = store.get_job(session=session, job_id=job_id)
        if row is None or JobState(row.state).terminal:
            return None
        stale_before = now - timedelta(seconds=ctx.settings.job_stale_s) if ctx.take_over_stale else None
        claim = store.claim_job(
            session=session, job_id=job_id, worker_id=ctx.worker_id, now=now, stale_before=stale_before
        )
    if claim is None:
        return None
    if claim.attempt > ctx.settings.job_max_attempts:
        interrupted = store.Finish(
            state=JobState.FAILED,
            error_code=JobError.code,
            error_message=f"the job was interrupted {claim.attempt - 1} times (worker lost); giving up",
        )
        _conclude(ctx, row, claim, interrupted, seconds=0.0)
        return JobState.FAILED
    log.info("job started", extra={"job_id": job_id, "attempt": claim.attempt, "mode": row.mode})
    return _run_claimed(ctx, row, claim)


def _run_claimed(ctx: WorkerContext, row: JobRow, claim: store.Claim) -> JobState | None:
    beat = Heartbeat(ctx.db, claim, every_s=ctx.heartbeat_s, shutdown=ctx.shutdown)
    started = time.perf_counter()
    beat.start()
    try:
        make_private_dirs(ctx.scratch_dir)
        with tempfile.TemporaryDirectory(prefix=f"{row.id}-", dir=ctx.scratch_dir) as tmp:
            finish = _process(ctx, row, claim, Path(tmp), beat)
    except JobCanceled:
        if ctx.shutdown.is_set() and not beat.cancel_requested and not beat.lost:
            with ctx.db.begin() as session:
                store.requeue_job(session=session, claim=claim)
            log.info("job returned to the queue at shutdown", extra={"job_id": row.id})
            return JobState.QUEUED
        finish = store.Finish(
            state=JobState.CANCELED, error_code="canceled", error_message="canceled by the client"
        )
    except VeilError as exc:
        finish = store.Finish(state=JobState.FAILED, error_code=exc.code, error_message=exc.message)
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:  # scratch files, the encoder
            full = StorageFull("no space left on the data disk while processing")
            finish = store.Finish(state=JobState.FAILED, error_code=full.code, error_message=full.message)
        else:
            log.error(
                "job crashed", extra={"job_id": row.id, "error_type": type(exc).__name__}, exc_info=True
            )
            finish = store.Finish(
                state=JobState.FAILED,
                error_code="internal_error",
                error_message="internal error while processing",
            )
    finally:
        beat.stop()
    return _conclude(ctx, row, claim, finish, seconds=time.perf_counter() - started)


def _fetch_input(ctx: WorkerContext, row: JobRow, tmp: Path) -> Path:
    local = ctx.storage.local_path(row.input_key)
    if local is not None and local.is_file():
        return local  # read in place: the pipeline never writes to its input
    path = tmp / f"input{Path(row.input_key).suffix}"
    try:
        ctx.storage.get_file(row.input_key, path)
    except StorageNotFound as exc:
        raise JobError("the input is no longer stored (its job was deleted or expired)") from exc
    return path


def load_source_report(ctx: WorkerContext, row: JobRow) -> Report | None:
    """The report of ``row``'s ``source_job`` (None without one). SpecError when it is gone."""
    if row.source_job_id is None:
        return None
    with ctx.db.begin() as session:
        source = store.get_job(session=session, job_id=row.source_job_id, tenant_id=row.tenant_id)
    if source is None or source.report_key is None or source.purged_at is not None:
        raise SpecError("source_job is no longer available (deleted or expired)")
    with tempfile.TemporaryDirectory(dir=ctx.scratch_dir) as tmp:
        path = Path(tmp) / "report.json"
        try:
            ctx.storage.get_file(source.report_key, path)
        except StorageNotFound as exc:
            raise SpecError("source_job is no longer available (deleted or expired)") from exc
        return Report.model_validate_json(path.read_bytes())


def _process(ctx: WorkerContext, row: JobRow, claim: store.Claim, tmp: Path, beat: Heartbeat) -> store.Finish:
    from veil.media import probe

    spec = RedactionSpec.model_validate(row.spec)
    input_path = _fetch_input(ctx, row, tmp)
    info = probe(input_path, **ctx.settings.probe_limits())
    source_report = load_source_report(ctx, row)
    suffix = ctx.runner.output_suffix(spec, info) if spec.mode == "redact" else None
    output_path = None if suffix is None else tmp / f"output{suffix}"
    thumbnails = tmp / "thumbs" if spec.mode == "detect" else None
    if thumbnails is not None:
        thumbnails.mkdir()
    report = ctx.runner.run(
        spec,
        input_path,
        output_path,
        info=info,
        progress=beat.set_progress,
        cancel=beat.should_stop,
        source_report=source_report,
        thumbnails_dir=thumbnails,
    )
    if beat.should_stop():
        raise JobCanceled("the job was canceled")

    report = report.model_copy(update={"file": None})
    report_key = blobs.report_key(row.id)
    ctx.storage.put_stream(report_key, [report.model_dump_json().encode("utf-8")])
    if thumbnails is not None:
        for thumb in sorted(thumbnails.glob("*.jpg")):
            if thumb.stem.isdigit():
                ctx.storage.put_file(blobs.thumbnail_key(row.id, int(thumb.stem)), thumb)
    finish = store.Finish(
        state=JobState.SUCCEEDED,
        kind=info.kind,
        report_key=report_key,
        counts={str(k): int(v) for k, v in report.counts.items()},
        timings={str(k): float(v) for k, v in report.timings.items()},
        frames=report.input.frame_count if report.kind == "video" else 1,
        masked_frames=report.masked_frames,
    )
    if output_path is not None and suffix is not None:
        temp_key = blobs.temp_output_key(row.id, claim.attempt, suffix)
        final_key = blobs.output_key(row.id, suffix)
        ctx.storage.put_file(temp_key, output_path)
        ctx.storage.move(temp_key, final_key)
        finish = dataclasses.replace(
            finish,
            output_key=final_key,
            output_size=output_path.stat().st_size,
            output_sha256=report.output_sha256,
            output_content_type=content_type_for(suffix),
        )
    return finish


_CONCLUDE_RETRY_MAX_S = 10.0


def _record_finish(
    ctx: WorkerContext, row: JobRow, claim: store.Claim, finish: store.Finish
) -> JobRow | None:
    now = utcnow()
    with ctx.db.begin() as session:
        done = store.finish_job(
            session=session, job_id=row.id, claim=claim, finish=finish, now=now, retention=ctx.retention
        )
        if done is not None:
            append_audit(
                session=session,
                actor="worker",
                action=f"job.{finish.state.value}",
                outcome="ok" if finish.error_code is None else finish.error_code,
                now=now,
                tenant_id=done.tenant_id,
                job_id=done.id,
                input_sha256=done.input_sha256,
                output_sha256=done.output_sha256,
            )
    return done


def _record_until_written(
    ctx: WorkerContext, row: JobRow, claim: store.Claim, finish: store.Finish
) -> tuple[bool, JobRow | None]:
    """Write the terminal state, retrying while the database cannot be written (disk full, database
    restarting). ``(False, None)`` when the worker shuts down first: the job stays ``running`` and is
    requeued at restart (embedded) or taken over once stale (Celery), never lost."""
    delay = 0.25
    while True:
        try:
            return True, _record_finish(ctx, row, claim, finish)
        except (StorageError, OperationalError) as exc:
            log.warning(
                "job result not recorded yet; retrying",
                extra={"job_id": row.id, "error_type": type(exc).__name__, "retry_in_s": delay},
            )
        if ctx.shutdown.wait(delay):
            return False, None
        delay = min(delay * 2, _CONCLUDE_RETRY_MAX_S)


def _discard_blobs(ctx: WorkerContext, done: JobRow) -> None:
    """Partial outputs of killed attempts always; everything the job stored (input, report, segments,
    thumbnails) when it failed, was canceled or was deleted while it ran: nobody can use them, and
    the input is unredacted media. A redact job's ``source_job`` input lives under that job's prefix
    and stays."""
    everything = done.deleted_at is not None or done.state in (JobState.FAILED, JobState.CANCELED)
    prefix = blobs.job_prefix(done.id)
    try:
        if not everything:
            ctx.storage.delete_prefix(f"{prefix}tmp/")
            return
        ctx.storage.delete_prefix(prefix)
        with ctx.db.begin() as session:
            store.mark_purged(session=session, job_id=done.id, now=utcnow())
    except (StorageError, OperationalError):
        log.warning("job blobs not deleted yet; retention will", extra={"job_id": done.id})


def _conclude(
    ctx: WorkerContext, row: JobRow, claim: store.Claim, finish: store.Finish, *, seconds: float
) -> JobState | None:
    finish = dataclasses.replace(finish, processing_s=seconds)
    written, done = _record_until_written(ctx, row, claim, finish)
    if not written:
        log.warning("job left running at shutdown; it runs again", extra={"job_id": row.id})
        return None
    if done is None:
        log.warning(
            "job result discarded: the claim was lost", extra={"job_id": row.id, "attempt": claim.attempt}
        )
        return None
    log.info(
        "job finished",
        extra={
            "job_id": row.id,
            "state": finish.state.value,
            "error_code": finish.error_code,
            "seconds": round(seconds, 3),
            "frames": done.frames,
        },
    )
    _discard_blobs(ctx, done)
    if ctx.metrics is not None:
        ctx.metrics.observe(
            state=finish.state.value, mode=done.mode, kind=done.kind, seconds=seconds, frames=done.frames
        )
    if ctx.events is not None:
        ctx.events.notify(row.id)
    if ctx.notifier is not None and done.webhook_status == "pending":
        ctx.notifier.dispatch(row.id)
    if ctx.notifier is not None and done.batch_id is not None:
        with ctx.db.begin() as session:
            holder = store.pending_batch_webhook(session=session, batch_id=done.batch_id)
        if holder is not None:
            ctx.notifier.dispatch(holder)  # the last job of the batch finished: its one webhook
    return finish.state


def conclude_job(
    ctx: WorkerContext, row: JobRow, claim: store.Claim, finish: store.Finish, *, seconds: float
) -> JobState | None:
    """Record the terminal state of a claimed run, fenced by ``claim``, then audit, log, count, wake
    waiters and send the webhook; ``None`` when the claim was lost. Public for runs that span several
    tasks (``veil.jobs.segmented``), which conclude exactly as ``execute_job`` does."""
    return _conclude(ctx, row, claim, finish, seconds=seconds)
