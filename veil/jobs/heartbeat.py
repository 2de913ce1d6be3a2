"""The heartbeat of a running job: liveness and progress out, cancel requests and lost claims in.

A whole job (``worker``) and each step of a split one (``segmented``) run under one. It writes
every ``every_s`` seconds from a daemon thread, so a busy frame loop never delays it, and a
failed write (a busy database) is logged and retried at the next beat instead of killing the job.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from veil.jobs import store
from veil.jobs.db import Database

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


class Heartbeat:
    """Beats for ``claim`` between ``start()`` and ``stop()`` (or as a context manager).

    With ``keep_highest`` the job's progress is never lowered: the steps of a split job run side
    by side and each reports its own share, so the highest value written so far stands.
    """

    def __init__(
        self,
        db: Database,
        claim: store.Claim,
        *,
        every_s: float,
        shutdown: threading.Event,
        keep_highest: bool = False,
    ) -> None:
        self._db = db
        self._claim = claim
        self._every_s = every_s
        self._shutdown = shutdown
        self._keep_highest = keep_highest
        self._progress = 0.0
        self.cancel_requested = False
        self.lost = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{claim.job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def set_progress(self, fraction: float) -> None:
        self._progress = min(max(float(fraction), 0.0), 1.0)

    def should_stop(self) -> bool:
        """Whether the job should stop between frames: canceled, claim lost, or the worker shutting down."""
        return self.cancel_requested or self.lost or self._shutdown.is_set()

    def _loop(self) -> None:
        while not self._stopped.wait(self._every_s):
            try:
                flag = self._beat()
            except Exception:  # a busy database must not kill the job; the next beat retries
                log.warning("heartbeat failed", extra={"job_id": self._claim.job_id}, exc_info=True)
                continue
            if flag is None:
                self.lost = True
            elif flag:
                self.cancel_requested = True

    def _beat(self) -> bool | None:
        """One write; ``store.heartbeat``'s answer: cancel requested, or None when the claim is lost."""
        with self._db.begin() as session:
            return store.heartbeat(
                session=session,
                claim=self._claim,
                progress=self._progress,
                now=datetime.now(UTC),
                keep_highest=self._keep_highest,
            )
