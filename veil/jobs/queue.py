"""Queues hand job ids to workers: the ``JobQueue`` protocol and the in-process ``LocalQueue``.

The job table is the queue's memory. ``enqueue`` (called after the job row is
committed) only wakes a worker; workers take the oldest ``queued`` row and claim it
atomically. Nothing lives only in memory, so a SIGKILL loses nothing: on start,
``LocalQueue`` puts jobs left ``running`` by the dead process back to ``queued``
(in embedded mode one ``veil serve`` owns the job table), and they run again.

``VEIL_QUEUE=celery`` is built lazily from ``veil.jobs.celery_queue.CeleryQueue``.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol, runtime_checkable

from veil.jobs import store
from veil.jobs.retention import clean_scratch
from veil.jobs.worker import WorkerContext, execute_job
from veil.settings import Settings

__all__ = ["JobQueue", "LocalQueue", "create_queue"]

log = logging.getLogger(__name__)


@runtime_checkable
class JobQueue(Protocol):
    def enqueue(self, job_id: str) -> None:
        """Hand ``job_id`` (already committed as ``queued``) to a worker."""
        ...

    def start(self) -> None:
        """Begin taking jobs (recovering interrupted ones where the backend needs it)."""
        ...

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking jobs; running ones go back to the queue."""
        ...


class LocalQueue:
    """``workers`` threads in this process, plus one quick lane that runs only images. ``workers=0``
    accepts jobs but runs none (API-only node).

    Fairness: every thread takes the next job round robin between tenants (``store.next_fair_job_id``),
    and the quick lane (``VEIL_IMAGE_LANE``) keeps an image from waiting behind another tenant's
    hour-long video on the only worker: a still is bounded by ``VEIL_MAX_PIXELS`` and takes seconds.
    """

    def __init__(
        self, *, ctx: WorkerContext, workers: int, poll_s: float = 2.0, image_lane: bool = True
    ) -> None:
        self._ctx = ctx
        self._workers = workers
        self._image_lane = image_lane
        self._poll_s = poll_s
        self._wake = threading.Condition()
        self._signals = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def workers(self) -> int:
        return self._workers

    def start(self) -> None:
        with self._ctx.db.begin() as session:
            requeued = store.requeue_running_jobs(session=session)
        if requeued:
            log.info("interrupted jobs requeued", extra={"count": len(requeued)})
        if self._workers > 0:  # this process owns the data directory: every scratch entry is a leftover
            removed = clean_scratch(self._ctx.scratch_dir, older_than_s=0)
            if removed:
                log.info("scratch left by a killed process removed", extra={"count": removed})
        lanes: list[tuple[str, str | None]] = [(f"veil-worker-{n}", None) for n in range(self._workers)]
        if self._workers > 0 and self._image_lane:
            lanes.append(("veil-worker-images", "image"))
        for name, kind in lanes:
            thread = threading.Thread(target=self._loop, args=(kind,), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def enqueue(self, job_id: str) -> None:
        with self._wake:
            self._signals += 1
            self._wake.notify_all()  # the quick lane and the workers each look

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._ctx.shutdown.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _next(self, kind: str | None) -> str | None:
        with self._ctx.db.begin() as session:
            return store.next_fair_job_id(session=session, kind=kind)

    def _loop(self, kind: str | None = None) -> None:
        while not self._stopping.is_set():
            try:
                job_id = self._next(kind)
                if job_id is not None:
                    execute_job(job_id, ctx=self._ctx)
                    continue
            except Exception:  # the loop must outlive any one failure (a locked database, a full disk)
                log.error("worker loop error", exc_info=True)
                self._stopping.wait(1.0)
                continue
            with self._wake:
                if self._signals == 0 and not self._stopping.is_set():
                    self._wake.wait(self._poll_s)
                self._signals = max(self._signals - 1, 0)


def create_queue(settings: Settings, *, ctx: WorkerContext, queue: JobQueue | None = None) -> JobQueue:
    """The queue for ``VEIL_QUEUE``, or ``queue`` when one is injected."""
    if queue is not None:
        return queue
    if settings.queue == "celery":
        from veil.jobs.celery_queue import CeleryQueue

        return CeleryQueue.from_settings(settings, db=ctx.db)
    return LocalQueue(ctx=ctx, workers=settings.workers, image_lane=settings.image_lane)
