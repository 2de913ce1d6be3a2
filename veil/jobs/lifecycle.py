"""One job lifecycle for whole-file and split jobs: claim, fetch the input, store the result, conclude.

``execute_job`` (``veil.jobs.worker``) runs all of it in one task; a split job
(``veil.jobs.segmented``) claims in its first step and concludes in its last, with the same
functions, so that both kinds of job are fenced, stored, audited and announced alike:

1. ``claim_job`` reloads the job and claims it atomically (``attempts`` becomes the fencing token);
   ``given_up`` says when the job's workers died ``job_max_attempts`` times, and the job fails;
2. ``fetch_input`` brings the input into a scratch directory (or reads it in place);
3. ``store_result`` writes the report and thumbnails, then the output to a temporary key that it
   promotes, and returns the success to record;
4. ``conclude_job`` records the terminal state, fenced by the claim, then audits, logs, drops the
   blobs nobody can use, counts, wakes waiters and sends the webhook.

A full disk fails the job with ``storage_full`` (scratch, blobs or database). When the terminal
state itself cannot be written (the database's disk is full, or the database is away),
``conclude_job`` retries until it can or the worker shuts down, so a job never stays ``running``
once space returns. A job that ends failed or canceled, or was deleted while it ran, loses its blobs
(input, report, partial outputs, segments) at once; every job loses its ``tmp/`` blobs left by
killed attempts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import OperationalError

from veil.auth.audit import append_audit
from veil.clock import utcnow
from veil.errors import JobError, SpecError, StorageError, StorageFull, StorageNotFound, VeilError
from veil.jobs import blobs, store
from veil.jobs.db import Database
from veil.jobs.events import JobEvents
from veil.jobs.metrics import JobMetrics
from veil.jobs.runner import JobRunner, PipelineRunner
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.media.formats import IMAGE_PREVIEW_NAME, PREVIEW_NAME, content_type_for
from veil.private_files import NO_SPACE_ERRNOS
from veil.report import Report
from veil.settings import Settings
from veil.spec import RedactionSpec
from veil.storage import Storage, create_storage

__all__ = [
    "CANCELED",
    "Notifier",
    "WorkerContext",
    "claim_job",
    "conclude_job",
    "default_worker_id",
    "failure",
    "fetch_blob",
    "fetch_input",
    "given_up",
    "job_spec",
    "load_source_report",
    "store_result",
]

log = logging.getLogger(__name__)

CANCELED = store.Finish(
    state=JobState.CANCELED, error_code="canceled", error_message="canceled by the client"
)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Notifier(Protocol):
    """Sends the webhook of a finished job (``veil.jobs.notify.WebhookNotifier``)."""

    def dispatch(self, job_id: str) -> None: ...


@dataclass
class WorkerContext:
    """Everything a worker needs, built once per process and shared by its worker threads."""

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


def job_spec(row: JobRow) -> RedactionSpec:
    """The job's spec, validated when it was accepted (so this cannot fail on a row the API wrote)."""
    return RedactionSpec.model_validate(row.spec)


def claim_job(ctx: WorkerContext, job_id: str) -> tuple[JobRow, store.Claim] | None:
    """Reload ``job_id`` and claim it; ``None`` when it is unknown, terminal, or another live worker has it
    (a stale claim is taken over when ``ctx.take_over_stale``)."""
    now = utcnow()
    with ctx.db.begin() as session:
        row = store.get_job(session=session, job_id=job_id)
        if row is None or JobState(row.state).terminal:
            return None
        stale_before = now - timedelta(seconds=ctx.settings.job_stale_s) if ctx.take_over_stale else None
        claim = store.claim_job(
            session=session, job_id=job_id, worker_id=ctx.worker_id, now=now, stale_before=stale_before
        )
    return None if claim is None else (row, claim)


def given_up(ctx: WorkerContext, claim: store.Claim) -> store.Finish | None:
    """The failure to conclude with when this claim is one too many: the job's workers kept dying."""
    if claim.attempt <= ctx.settings.job_max_attempts:
        return None
    message = f"the job was interrupted {claim.attempt - 1} times (worker lost); giving up"
    return store.Finish(state=JobState.FAILED, error_code=JobError.code, error_message=message)


def failure(exc: BaseException) -> store.Finish:
    """How an exception ends a job: its stable code, ``storage_full`` for a full disk, or
    ``internal_error`` with no detail."""
    if _no_space(exc):  # scratch files, or the encoder's write wrapped in a MediaError
        exc = StorageFull("no space left on the data disk while processing")
    if isinstance(exc, VeilError):
        return store.Finish(state=JobState.FAILED, error_code=exc.code, error_message=exc.message)
    return store.Finish(
        state=JobState.FAILED, error_code="internal_error", error_message="internal error while processing"
    )


def _no_space(exc: BaseException | None) -> bool:
    """Whether ``exc`` or an error it was raised from is a full disk: the media layer wraps FFmpeg's
    ENOSPC (a PyAV ``OSError``) in ``MediaError``, which must still end the job ``storage_full``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def fetch_blob(storage: Storage, key: str, path: Path) -> Path:
    """``key`` as a local file: read in place when the storage is a local directory (steps never write
    to their inputs), else downloaded to ``path``."""
    local = storage.local_path(key)
    if local is not None and local.is_file():
        return Path(local)
    storage.get_file(key, path)
    return path


def fetch_input(ctx: WorkerContext, row: JobRow, directory: Path) -> Path:
    """The job's input as a local file; ``JobError`` when it is no longer stored."""
    try:
        return fetch_blob(ctx.storage, row.input_key, directory / f"input{Path(row.input_key).suffix}")
    except StorageNotFound as exc:
        raise JobError("the input is no longer stored (its job was deleted or expired)") from exc


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


def store_result(
    ctx: WorkerContext,
    claim: store.Claim,
    report: Report,
    *,
    output_path: Path | None = None,
    thumbnails: Path | None = None,
) -> store.Finish:
    """Store the report (without the file label), the track thumbnails and preview, and the output
    (to a temporary key of this attempt, then promoted); the success to conclude with."""
    job_id = claim.job_id
    report = report.model_copy(update={"file": None})
    report_key = blobs.report_key(job_id)
    ctx.storage.put_stream(report_key, [report.model_dump_json().encode("utf-8")])
    for thumb in sorted(thumbnails.glob("*.jpg")) if thumbnails is not None else []:
        if thumb.stem.isdigit():
            ctx.storage.put_file(blobs.thumbnail_key(job_id, int(thumb.stem)), thumb)
    previews = [thumbnails / name for name in (PREVIEW_NAME, IMAGE_PREVIEW_NAME)] if thumbnails else []
    for preview in previews:
        if preview.is_file():
            ctx.storage.put_file(blobs.preview_key(job_id, preview.suffix), preview)
    finish = store.Finish(
        state=JobState.SUCCEEDED,
        kind=report.kind,
        report_key=report_key,
        counts={str(k): int(v) for k, v in report.counts.items()},
        timings={str(k): float(v) for k, v in report.timings.items()},
        frames=report.input.frame_count if report.kind == "video" else 1,
        masked_frames=report.masked_frames,
    )
    if output_path is None:
        return finish
    suffix = output_path.suffix
    temp_key = blobs.temp_output_key(job_id, claim.attempt, suffix)
    final_key = blobs.output_key(job_id, suffix)
    ctx.storage.put_file(temp_key, output_path)
    ctx.storage.move(temp_key, final_key)
    return dataclasses.replace(
        finish,
        output_key=final_key,
        output_size=output_path.stat().st_size,
        output_sha256=report.output_sha256,
        output_content_type=content_type_for(suffix),
    )


def conclude_job(
    ctx: WorkerContext, row: JobRow, claim: store.Claim, finish: store.Finish, *, seconds: float
) -> JobState | None:
    """Record the terminal state of a claimed run, fenced by ``claim``, then audit, log, drop the blobs
    nobody can use, count, wake waiters and send the webhook; ``None`` when the claim was lost, or the
    worker shut down before the state could be written (the job then runs again)."""
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
    extra = {"job_id": row.id, "state": finish.state.value, "error_code": finish.error_code}
    log.info("job finished", extra={**extra, "seconds": round(seconds, 3), "frames": done.frames})
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
