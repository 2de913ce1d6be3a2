"""Run one job: ``execute_job(job_id, ctx=...)``. The in-process pool and the Celery task both call it.

It is idempotent, so a queue may deliver a job twice (Celery after a lost worker,
the local pool after a restart). It follows the one job lifecycle of ``veil.jobs.lifecycle``:

1. reload the job; return at once if it is terminal or another live worker has it;
2. claim it atomically (``attempts`` becomes the fencing token of this run);
3. fetch the input into a scratch directory, probe it, run the pipeline while a
   heartbeat thread records progress and polls for cancellation;
4. store the report and thumbnails, write the result to a temporary key and promote it;
5. mark the job succeeded / failed (with a stable error code) / canceled, fenced by
   the claim, then audit, wake waiters, count metrics and send the webhook.

A job whose worker died ``job_max_attempts`` times fails with ``job_error`` instead of
running forever, and a full disk fails it with ``storage_full`` (see ``veil.jobs.lifecycle`` for
what happens when the terminal state itself cannot be written). Nothing here logs file names,
detections or error details beyond codes.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from veil.clock import utcnow  # re-exported for branches written before veil.clock
from veil.errors import JobCanceled
from veil.jobs import store
from veil.jobs.heartbeat import Heartbeat
from veil.jobs.lifecycle import (
    CANCELED,
    Notifier,
    WorkerContext,
    claim_job,
    conclude_job,
    default_worker_id,
    failure,
    fetch_input,
    given_up,
    job_spec,
    load_source_report,
    store_result,
)
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.private_files import make_private_dirs

__all__ = [
    "Notifier",
    "WorkerContext",
    "conclude_job",
    "default_worker_id",
    "execute_job",
    "load_source_report",
    "utcnow",
]

log = logging.getLogger(__name__)


def execute_job(job_id: str, *, ctx: WorkerContext) -> JobState | None:
    """Run ``job_id`` to a terminal state if it is ours to run. Returns the state it ended in, or ``None``
    when there was nothing to do (unknown, already terminal, or claimed by another live worker)."""
    claimed = claim_job(ctx, job_id)
    if claimed is None:
        return None
    row, claim = claimed
    exhausted = given_up(ctx, claim)
    if exhausted is not None:
        conclude_job(ctx, row, claim, exhausted, seconds=0.0)
        return JobState.FAILED
    log.info("job started", extra={"job_id": job_id, "attempt": claim.attempt, "mode": row.mode})
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
        finish = CANCELED
    except Exception as exc:
        finish = failure(exc)
        if finish.error_code == "internal_error":
            log.error(
                "job crashed", extra={"job_id": row.id, "error_type": type(exc).__name__}, exc_info=True
            )
    finally:
        beat.stop()
    return conclude_job(ctx, row, claim, finish, seconds=time.perf_counter() - started)


def _process(ctx: WorkerContext, row: JobRow, claim: store.Claim, tmp: Path, beat: Heartbeat) -> store.Finish:
    spec = job_spec(row)
    input_path = fetch_input(ctx, row, tmp)
    info = ctx.runner.probe(input_path, settings=ctx.settings)
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
    return store_result(ctx, claim, report, output_path=output_path, thumbnails=thumbnails)
