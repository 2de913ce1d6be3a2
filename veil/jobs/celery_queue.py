"""``CeleryQueue``: the ``JobQueue`` of scaled-out Veil (``VEIL_QUEUE=celery``).

The API commits the job row first and only then calls ``enqueue``, which publishes a
``veil.job`` task carrying the job id alone; ``veil worker`` processes run it. A job whose
message was never published (the API died between the commit and the publish, or the broker
was down) is published again when an API process starts, and duplicates are harmless: the task
reloads the job and claims it atomically. A publish that fails while the client waits cancels
the job it was for and answers 503, so that a failed submission leaves no job behind.

Fairness between tenants: each message's priority falls with the number of jobs its tenant already
has in flight (``store.tenant_rank``), so the broker serves tenants round robin, as the embedded
queue does, and images go to the ``cpu`` queue, never behind video segments.

Importing this module imports Celery; ``veil.jobs.queue.create_queue`` does so only when
``VEIL_QUEUE=celery``, so the embedded default never needs a broker.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Celery

from veil.clock import utcnow
from veil.errors import QueueFull
from veil.jobs import store
from veil.jobs.celery_app import CPU, TASK_JOB, create_celery, job_level, message_priority, queue_name
from veil.jobs.db import Database
from veil.settings import Settings

__all__ = ["CeleryQueue"]

log = logging.getLogger(__name__)

_RECOVER_LIMIT = 10_000


class CeleryQueue:
    """Publishes job ids to Celery. ``db`` (optional) lets it republish lost jobs at ``start`` and
    cancel a job whose publish failed."""

    def __init__(
        self,
        *,
        app: Celery,
        db: Database | None = None,
        retention: timedelta | None = None,
        quick_queue: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.app = app
        self._db = db
        self._retention = retention or timedelta(hours=24)
        self._quick_queue = quick_queue
        """Images go here (the ``cpu`` queue) instead of behind every video's detection on ``gpu``."""
        self._settings = settings
        """Maps fairness levels to the broker's priorities; without it messages carry none."""

    @classmethod
    def from_settings(cls, settings: Settings, *, db: Database | None = None) -> CeleryQueue:
        return cls(
            app=create_celery(settings),
            db=db,
            retention=timedelta(hours=settings.retention_hours),
            quick_queue=queue_name(settings, CPU),
            settings=settings,
        )

    def enqueue(self, job_id: str) -> None:
        """Publish ``veil.job(job_id)``. Raises ``QueueFull`` (503) when the broker cannot be reached;
        the job is then canceled, so that the client's retry is the only copy."""
        kind, options = self._routing(job_id)
        if self._quick_queue is not None and kind == "image":
            # Fairness: a still takes seconds, so it must not wait behind another tenant's long video,
            # whose segments fill the gpu queue. Workers that take both queues alternate between them.
            options["queue"] = self._quick_queue
        try:
            self.app.send_task(TASK_JOB, args=[job_id], ignore_result=True, **options)
        except Exception as exc:  # kombu raises OperationalError, OSError and friends
            log.error("job could not be queued", extra={"job_id": job_id, "error_type": type(exc).__name__})
            self._cancel(job_id)
            raise QueueFull("the job queue cannot be reached; try again shortly") from exc

    def _routing(self, job_id: str) -> tuple[str | None, dict[str, Any]]:
        """The job's kind, and its message priority: round robin between tenants (a tenant's first job
        in flight at the top level, each further one a level lower)."""
        if self._db is None:
            return None, {}
        with self._db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
            if row is None:
                return None, {}
            rank = store.tenant_rank(session=session, job=row)
            kind = row.kind
        if self._settings is None:
            return kind, {}
        return kind, {"priority": message_priority(self._settings, job_level(rank))}

    def _cancel(self, job_id: str) -> None:
        if self._db is None:
            return
        try:
            with self._db.begin() as session:
                store.request_cancel(session=session, job_id=job_id, now=utcnow(), retention=self._retention)
        except Exception:
            log.error(
                "job could not be canceled after a failed publish", extra={"job_id": job_id}, exc_info=True
            )

    def start(self) -> None:
        """Republish every queued job (lost publishes from a crash). Never fails the caller's start."""
        if self._db is None:
            return
        try:
            with self._db.begin() as session:
                queued = store.next_queued_job_ids(session=session, limit=_RECOVER_LIMIT)
            for job_id in queued:
                kind, options = self._routing(job_id)
                if self._quick_queue is not None and kind == "image":
                    options["queue"] = self._quick_queue
                self.app.send_task(TASK_JOB, args=[job_id], ignore_result=True, **options)
        except Exception:
            log.warning("queued jobs could not be republished at start", exc_info=True)
            return
        if queued:
            log.info("queued jobs republished", extra={"count": len(queued)})

    def stop(self, timeout: float = 30.0) -> None:
        """Close the broker connections. Running jobs belong to the workers, which keep going."""
        self.app.close()
