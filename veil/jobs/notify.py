"""Webhook dispatch for finished jobs: a durable retry schedule, one signed attempt at a time.

The terminal UPDATE marks the job ``webhook_status='pending'``, due now, in the same transaction, so a
webhook is never forgotten. Each attempt is claimed in the job table (``store.claim_webhook``: one
conditional UPDATE, so several API processes never send the same attempt twice), sent, and recorded at
once, so ``GET /v1/jobs/{id}/webhooks`` lists every attempt while the delivery is still retrying. The next
attempt's time is stored too (``VEIL_WEBHOOK_RETRY_SCHEDULE_S``, by default 31.9 hours in all), so a
restart resumes the schedule where it was instead of starting again or forgetting it.

The body is the ``JobPublic`` JSON, with the same URLs as ``GET /v1/jobs/{id}`` (absolute when
``VEIL_PUBLIC_URL`` is set, relative to the API otherwise). The signature uses the secret of the API key
that created the job (``veil.jobs.secrets.webhook_secret``); custom headers are opened from their sealed
column for each attempt and never logged. Receivers drop duplicates by ``Veil-Delivery``.

``deliver_due(now)`` does the work and takes the time as an argument, so tests drive the whole schedule
with an injected clock; the background thread only calls it when something is due or a job finished.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from veil.auth.secrets import open_headers, webhook_secret
from veil.errors import JobError
from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.schemas import batch_public, job_public
from veil.jobs.webhooks import DeliveryAttempt, attempt_once
from veil.settings import Settings

__all__ = ["WebhookNotifier", "retry_delay_s"]

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
"""How long a claimed attempt is held; a process that dies mid-attempt leaves it due again after this."""
_IDLE_POLL_S = 60.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


def retry_delay_s(
    schedule: tuple[float, ...], attempts: int, *, retry_after_s: float | None, rng: random.Random
) -> float | None:
    """Seconds until the attempt after ``attempts`` failed ones; ``None`` when the schedule is spent.
    Jitter shortens each delay by up to 20 %; a receiver's ``Retry-After`` is honoured up to the longest
    delay of the schedule."""
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1] * rng.uniform(0.8, 1.0)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max(schedule, default=0.0)))
    return delay


class WebhookNotifier:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        server_secret: bytes,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = _utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._db = db
        self._server_secret = server_secret
        self._client = client
        self._clock = clock
        self._rng = rng or random.Random()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- the background loop ------------------------------------------------------------------------------

    def dispatch(self, job_id: str) -> None:
        """A job finished (or was redelivered): wake the loop, which sends what is due."""
        self._ensure_thread()
        self._wake.set()

    def resume_pending(self) -> int:
        """Start the loop; it resumes every pending webhook at its stored next attempt. Returns how many."""
        with self._db.begin() as session:
            pending = len(store.pending_webhook_job_ids(session=session))
        self._ensure_thread()
        self._wake.set()
        return pending

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._stopping.is_set() or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._loop, name="veil-webhooks", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.deliver_due()
                with self._db.begin() as session:
                    due = store.next_webhook_due(session=session)
            except Exception:
                log.error("webhook loop failed; retrying", exc_info=True)
                due = None
            wait = _IDLE_POLL_S
            if due is not None:
                wait = min(wait, max(0.0, (due - self._clock()).total_seconds()))
            self._wake.wait(wait)

    # -- the work, with the time as an argument -----------------------------------------------------------

    def deliver_due(self, now: datetime | None = None) -> int:
        """Send every attempt due at ``now`` (default: the clock); return how many were sent."""
        now = now or self._clock()
        with self._db.begin() as session:
            due = store.due_webhook_job_ids(session=session, now=now)
        sent = 0
        for job_id in due:
            if self._stopping.is_set():
                break
            if self.attempt(job_id, now=now) is not None:
                sent += 1
        return sent

    def attempt(self, job_id: str, *, now: datetime | None = None) -> str | None:
        """Claim and send the due attempt of ``job_id``, record it, and schedule the next one. Returns the
        webhook status after it (``pending``, ``delivered``, ``failed``), or ``None`` if nothing was due."""
        now = now or self._clock()
        with self._db.begin() as session:
            row = store.claim_webhook(session=session, job_id=job_id, now=now, lease=LEASE)
            if row is None:
                return None
            base = (self._settings.public_url or "").rstrip("/")
            if row.batch_webhook_url is not None and row.batch_id is not None:
                url = row.batch_webhook_url
                members = store.batch_jobs(session=session, batch_id=row.batch_id)
                body = batch_public(row.batch_id, members, base_url=base).model_dump_json()
                event = "batch.completed"
            else:
                url = str((row.spec.get("webhook") or {}).get("url") or "")
                body = job_public(row, base_url=base).model_dump_json()
                event = f"job.{row.state.value}"
            key_id = row.api_key_id or ""
            sealed, attempts = row.webhook_headers, row.webhook_attempts + 1
            delivery_id = row.webhook_delivery_id or job_id
        try:
            headers = open_headers(self._server_secret, sealed) if sealed else None
        except JobError as exc:
            failed = DeliveryAttempt(attempts, None, exc.message[:200], now, 0.0, False)
            self._record(job_id, event, failed, status="failed", attempts=attempts, next_at=None)
            return "failed"
        result = attempt_once(
            url,
            body.encode("utf-8"),
            event=event,
            delivery_id=delivery_id,
            number=attempts,
            secret=webhook_secret(self._server_secret, key_id).encode("utf-8"),
            allow_private=self._settings.webhook_allow_private,
            extra_headers=headers,
            client=self._client,
        )
        if result.attempt.delivered:
            status, next_at = "delivered", None
        else:
            delay = (
                retry_delay_s(
                    self._settings.webhook_retry_schedule_s,
                    attempts,
                    retry_after_s=result.retry_after_s,
                    rng=self._rng,
                )
                if result.retryable
                else None
            )
            status = "pending" if delay is not None else "failed"
            next_at = None if delay is None else now + timedelta(seconds=delay)
        self._record(job_id, event, result.attempt, status=status, attempts=attempts, next_at=next_at)
        if status != "pending":
            log.info("webhook " + status, extra={"job_id": job_id, "attempts": attempts})
        return status

    def _record(
        self,
        job_id: str,
        event: str,
        attempt: DeliveryAttempt,
        *,
        status: str,
        attempts: int,
        next_at: datetime | None,
    ) -> None:
        with self._db.begin() as session:
            store.record_webhook_attempts(session=session, job_id=job_id, event=event, attempts=[attempt])
            store.schedule_webhook(
                session=session, job_id=job_id, status=status, attempts=attempts, next_at=next_at
            )

    def deliver_now(self, job_id: str, *, sleep: Callable[[float], None] | None = None) -> str | None:
        """The due attempt of ``job_id``, in this thread (Celery's ``veil.webhook`` task). Later attempts
        follow the stored schedule, sent by the API processes' loops. ``sleep`` is unused."""
        del sleep
        return self.attempt(job_id)
