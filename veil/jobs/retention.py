"""Retention: delete a job's blobs once ``expires_at`` has passed (or the job was deleted).

The deadline is a column in the job table, so the sweeper survives restarts: a job
that expired while the service was down is purged at the next start. The job row
stays (state, sizes, hashes, timings: no personal data) and every purge is audited.
Scratch folders of killed processes are removed after an hour.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path

from veil.auth.audit import append_audit
from veil.errors import StorageError
from veil.jobs import blobs, store
from veil.jobs.db import Database
from veil.storage import Storage

__all__ = ["RetentionSweeper", "clean_scratch", "sweep"]

log = logging.getLogger(__name__)


def sweep(*, db: Database, storage: Storage, now: datetime, batch: int = 100) -> int:
    """Purge every job that is due; return how many were purged."""
    purged = 0
    while True:
        with db.begin() as session:
            due = store.jobs_due_for_purge(session=session, now=now, limit=batch)
        if not due:
            return purged
        progressed = False
        for job in due:
            try:
                storage.delete_prefix(blobs.job_prefix(job.id))
            except StorageError:
                log.warning("retention could not delete blobs; will retry", extra={"job_id": job.id})
                continue
            with db.begin() as session:
                store.mark_purged(session=session, job_id=job.id, now=now)
                append_audit(
                    session=session,
                    actor="system",
                    action="job.purge" if job.deleted_at is not None else "retention.purge",
                    outcome="ok",
                    now=now,
                    tenant_id=job.tenant_id,
                    job_id=job.id,
                    input_sha256=job.input_sha256,
                    output_sha256=job.output_sha256,
                )
            purged += 1
            progressed = True
        if not progressed or len(due) < batch:
            return purged


def _newest_mtime(entry: Path) -> float:
    """The latest change anywhere under ``entry``: a running job keeps writing its output file,
    which does not touch the folder's own mtime."""
    newest = entry.stat().st_mtime
    if entry.is_dir():
        for dirpath, _dirs, files in os.walk(entry):
            for name in files:
                try:
                    newest = max(newest, (Path(dirpath) / name).stat().st_mtime)
                except OSError:
                    continue
    return newest


def clean_scratch(scratch_dir: Path, *, older_than_s: float = 3600.0) -> int:
    """Remove scratch entries untouched for ``older_than_s`` (left by a killed worker or upload)."""
    if not scratch_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for entry in scratch_dir.iterdir():
        try:
            if _newest_mtime(entry) < cutoff:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
        except OSError:
            continue
    return removed


class RetentionSweeper:
    """A daemon thread that sweeps at start and then every ``interval_s``."""

    def __init__(
        self, *, db: Database, storage: Storage, interval_s: float, scratch_dir: Path | None = None
    ) -> None:
        self._db = db
        self._storage = storage
        self._interval_s = interval_s
        self._scratch_dir = scratch_dir
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="veil-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def run_once(self) -> int:
        from veil.clock import utcnow

        purged = sweep(db=self._db, storage=self._storage, now=utcnow())
        if purged:
            log.info("retention purged jobs", extra={"count": purged})
        if self._scratch_dir is not None:
            clean_scratch(self._scratch_dir)
        return purged

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.error("retention sweep failed", exc_info=True)
            self._stopping.wait(self._interval_s)
