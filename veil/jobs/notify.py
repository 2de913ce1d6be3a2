"""Webhook dispatch for finished jobs: sign, POST with retries, record every attempt.

The terminal UPDATE marks the job ``webhook_status='pending'`` in the same transaction,
so a webhook is never forgotten: a process that dies mid-delivery leaves it pending,
and ``resume_pending`` (run at start) sends it again. Receivers drop duplicates by the
``Veil-Delivery`` header. The body is the ``JobPublic`` JSON; the signature uses the
secret of the API key that created the job (``veil.jobs.secrets.webhook_secret``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.schemas import job_public
from veil.jobs.secrets import webhook_secret
from veil.jobs.webhooks import deliver
from veil.settings import Settings

__all__ = ["WebhookNotifier"]

log = logging.getLogger(__name__)


class _Stopping(Exception):
    """Raised from the retry sleep when the process shuts down; the delivery stays pending."""


class WebhookNotifier:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        server_secret: bytes,
        client: httpx.Client | None = None,
    ) -> None:
        self._settings = settings
        self._db = db
        self._server_secret = server_secret
        self._client = client
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: dict[str, threading.Thread] = {}

    def dispatch(self, job_id: str) -> None:
        """Deliver in a background thread (one per job at a time)."""
        with self._lock:
            if job_id in self._in_flight or self._stopping.is_set():
                return
            thread = threading.Thread(target=self._run, args=(job_id,), name=f"webhook-{job_id}", daemon=True)
            self._in_flight[job_id] = thread
        thread.start()

    def resume_pending(self) -> int:
        """Dispatch every webhook left pending by a previous process."""
        with self._db.begin() as session:
            pending = store.pending_webhook_job_ids(session=session)
        for job_id in pending:
            self.dispatch(job_id)
        return len(pending)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            threads = list(self._in_flight.values())
        for thread in threads:
            thread.join(timeout=timeout)

    def _sleep(self, seconds: float) -> None:
        if self._stopping.wait(seconds):
            raise _Stopping()

    def _run(self, job_id: str) -> None:
        try:
            self.deliver_now(job_id, sleep=self._sleep)
        except _Stopping:
            log.info("webhook left pending at shutdown", extra={"job_id": job_id})
        except Exception:
            log.error("webhook dispatch crashed", extra={"job_id": job_id}, exc_info=True)
        finally:
            with self._lock:
                self._in_flight.pop(job_id, None)

    def deliver_now(self, job_id: str, *, sleep: Callable[[float], None] | None = None) -> str | None:
        """Deliver the pending webhook of ``job_id`` in this thread; return the new status."""
        with self._db.begin() as session:
            row = store.get_job(session=session, job_id=job_id, include_deleted=True)
            if row is None or row.webhook_status != "pending":
                return None
            url = str((row.spec.get("webhook") or {}).get("url") or "")
            body = job_public(row, base_url=(self._settings.public_url or "").rstrip("/")).model_dump_json()
            event = f"job.{row.state.value}"
            key_id = row.api_key_id or ""
        attempts = deliver(
            url,
            body.encode("utf-8"),
            event=event,
            secret=webhook_secret(self._server_secret, key_id).encode("utf-8"),
            allow_private=self._settings.webhook_allow_private,
            max_attempts=self._settings.webhook_max_attempts,
            base_delay_s=self._settings.webhook_base_delay_s,
            client=self._client,
            sleep=sleep or self._sleep,
        )
        status = "delivered" if any(a.delivered for a in attempts) else "failed"
        with self._db.begin() as session:
            store.record_webhook_attempts(session=session, job_id=job_id, event=event, attempts=attempts)
            store.set_webhook_status(session=session, job_id=job_id, status=status)
        log.info("webhook " + status, extra={"job_id": job_id, "attempts": len(attempts)})
        return status
