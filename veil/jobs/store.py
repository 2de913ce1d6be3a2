"""Persistence of jobs and webhook deliveries: keyword-only functions.

API keys, the audit log and rate buckets are kept by ``veil.auth`` (re-exported here for callers
written before it moved).

Routers and workers never write SQL; they call these inside ``Database.begin()``,
which owns the transaction. Functions flush but never commit.

State changes that race (claim, finish, cancel) are single conditional UPDATEs,
so the database decides who wins: ``UPDATE jobs SET state='running' ... WHERE
state='queued' RETURNING`` works the same on SQLite (one writer at a time) and
PostgreSQL (the losing UPDATE re-checks its WHERE after the winner commits).
``attempts`` doubles as a fencing token: a worker that lost its claim (its
heartbeat went stale and another worker took over) cannot finish the job.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from veil.auth.audit import append_audit, list_audit
from veil.auth.keys import (
    create_api_key,
    find_api_key,
    get_api_key,
    list_api_keys,
    revoke_api_key,
    touch_api_key,
)
from veil.auth.ratelimit import take_rate_token
from veil.jobs.states import TERMINAL_STATES, JobState
from veil.jobs.tables import JobRow, WebhookDeliveryRow

__all__ = [
    "Claim",
    "Finish",
    "Usage",
    "append_audit",
    "claim_job",
    "count_jobs_by_state",
    "count_queued",
    "create_api_key",
    "create_job",
    "decode_cursor",
    "encode_cursor",
    "find_api_key",
    "finish_job",
    "get_api_key",
    "get_job",
    "get_job_by_idempotency_key",
    "heartbeat",
    "jobs_due_for_purge",
    "list_api_keys",
    "list_audit",
    "list_jobs",
    "list_webhook_deliveries",
    "mark_deleted",
    "mark_purged",
    "next_fair_job_id",
    "tenant_rank",
    "next_queued_job_ids",
    "pending_webhook_job_ids",
    "batch_jobs",
    "claim_webhook",
    "complete_batch",
    "pending_batch_webhook",
    "due_webhook_job_ids",
    "next_webhook_due",
    "redeliver_webhook",
    "schedule_webhook",
    "record_webhook_attempts",
    "request_cancel",
    "requeue_job",
    "take_rate_token",
    "requeue_running_jobs",
    "revoke_api_key",
    "set_webhook_status",
    "touch_api_key",
    "usage",
]

_TERMINAL = [s for s in JobState if s in TERMINAL_STATES]


# --- cursors ----------------------------------------------------------------------------------------------


def encode_cursor(*parts: str) -> str:
    """An opaque page cursor (base64 of the sort key of the last row)."""
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, parts: int) -> list[str]:
    """The sort key in ``cursor``; ``ValueError`` if it was not made by ``encode_cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("malformed cursor") from exc
    values = raw.split("|")
    if len(values) != parts:
        raise ValueError("malformed cursor")
    return values


# --- jobs -------------------------------------------------------------------------------------------------


def create_job(
    *,
    session: Session,
    job_id: str,
    tenant_id: str,
    api_key_id: str | None,
    spec: dict[str, Any],
    mode: str,
    kind: str | None,
    media: dict[str, Any],
    input_key: str,
    input_size: int,
    input_sha256: str,
    source_job_id: str | None,
    idempotency_key: str | None,
    request_fingerprint: str | None,
    now: datetime,
    retention: timedelta,
    webhook_headers: str | None = None,
    batch_id: str | None = None,
    batch_index: int | None = None,
    batch_webhook_url: str | None = None,
) -> JobRow:
    row = JobRow(
        id=job_id,
        tenant_id=tenant_id,
        api_key_id=api_key_id,
        state=JobState.QUEUED,
        mode=mode,
        kind=kind,
        spec=spec,
        media=media,
        source_job_id=source_job_id,
        progress=0.0,
        cancel_requested=False,
        attempts=0,
        created_at=now,
        expires_at=now + retention,
        input_key=input_key,
        input_size=input_size,
        input_sha256=input_sha256,
        counts={},
        timings={},
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        webhook_status=None,
        webhook_headers=webhook_headers,
        batch_id=batch_id,
        batch_index=batch_index,
        batch_webhook_url=batch_webhook_url,
    )
    session.add(row)
    session.flush()
    return row


def get_job(
    *, session: Session, job_id: str, tenant_id: str | None = None, include_deleted: bool = False
) -> JobRow | None:
    """The job, or ``None``; with ``tenant_id`` another tenant's job is ``None`` too (callers answer 404)."""
    query = select(JobRow).where(JobRow.id == job_id)
    if tenant_id is not None:
        query = query.where(JobRow.tenant_id == tenant_id)
    if not include_deleted:
        query = query.where(JobRow.deleted_at.is_(None))
    return session.scalars(query).one_or_none()


def get_job_by_idempotency_key(*, session: Session, tenant_id: str, idempotency_key: str) -> JobRow | None:
    query = select(JobRow).where(JobRow.tenant_id == tenant_id, JobRow.idempotency_key == idempotency_key)
    return session.scalars(query).one_or_none()


def list_jobs(
    *,
    session: Session,
    tenant_id: str,
    limit: int,
    after: tuple[datetime, str] | None = None,
    state: JobState | None = None,
    mode: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> list[JobRow]:
    """Newest first; ``after`` is the (created_at, id) of the last row of the previous page."""
    query = select(JobRow).where(JobRow.tenant_id == tenant_id, JobRow.deleted_at.is_(None))
    if after is not None:
        at, last_id = after
        query = query.where(or_(JobRow.created_at < at, and_(JobRow.created_at == at, JobRow.id < last_id)))
    if state is not None:
        query = query.where(JobRow.state == state)
    if mode is not None:
        query = query.where(JobRow.mode == mode)
    if created_after is not None:
        query = query.where(JobRow.created_at >= created_after)
    if created_before is not None:
        query = query.where(JobRow.created_at < created_before)
    query = query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
    return list(session.scalars(query))


def count_queued(*, session: Session) -> int:
    query = select(func.count()).select_from(JobRow).where(JobRow.state == JobState.QUEUED)
    return int(session.scalar(query) or 0)


def count_jobs_by_state(*, session: Session, tenant_id: str | None = None) -> dict[JobState, int]:
    """Every state, zero included (deleted jobs count: their row stays for the audit)."""
    query = select(JobRow.state, func.count()).group_by(JobRow.state)
    if tenant_id is not None:
        query = query.where(JobRow.tenant_id == tenant_id)
    counts = {state: 0 for state in JobState}
    for state, count in session.execute(query):
        counts[JobState(state)] = int(count)
    return counts


def next_queued_job_ids(*, session: Session, limit: int) -> list[str]:
    """Oldest queued jobs first (recovery of lost broker messages)."""
    query = (
        select(JobRow.id)
        .where(JobRow.state == JobState.QUEUED, JobRow.deleted_at.is_(None))
        .order_by(JobRow.created_at, JobRow.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def tenant_rank(*, session: Session, job: JobRow) -> int:
    """How many jobs of ``job``'s tenant, queued or running, came before it (0: the tenant has nothing
    else in flight). The Celery routing turns it into a message priority, so that the brokers serve
    tenants round robin as the embedded queue does."""
    earlier = or_(
        JobRow.created_at < job.created_at, and_(JobRow.created_at == job.created_at, JobRow.id < job.id)
    )
    query = (
        select(func.count())
        .select_from(JobRow)
        .where(
            JobRow.tenant_id == job.tenant_id,
            JobRow.state.in_((JobState.QUEUED, JobState.RUNNING)),
            JobRow.deleted_at.is_(None),
            earlier,
        )
    )
    return int(session.scalar(query) or 0)


def next_fair_job_id(*, session: Session, kind: str | None = None) -> str | None:
    """The queued job to run next, round robin between tenants: the oldest job of the tenant whose
    last job started longest ago (a tenant that never ran comes first). So one tenant's backlog of
    long videos never holds another tenant's work behind all of it. ``kind`` takes only that kind
    (``image``: the quick lane)."""
    last_start = (
        select(JobRow.tenant_id.label("tenant_id"), func.max(JobRow.started_at).label("last_start"))
        .group_by(JobRow.tenant_id)
        .subquery()
    )
    query = (
        select(JobRow.id)
        .outerjoin(last_start, last_start.c.tenant_id == JobRow.tenant_id)
        .where(JobRow.state == JobState.QUEUED, JobRow.deleted_at.is_(None))
        .order_by(last_start.c.last_start.asc().nulls_first(), JobRow.created_at, JobRow.id)
        .limit(1)
    )
    if kind is not None:
        query = query.where(JobRow.kind == kind)
    return session.scalars(query).first()


@dataclass(frozen=True)
class Claim:
    """A won claim: ``attempt`` fences every later write of this run."""

    job_id: str
    attempt: int


def claim_job(
    *, session: Session, job_id: str, worker_id: str, now: datetime, stale_before: datetime | None = None
) -> Claim | None:
    """Atomically take a queued job (or a running one whose heartbeat is older than ``stale_before``).

    Returns ``None`` when another worker has it, or it is finished, canceled or deleted.
    """
    takeable = JobRow.state == JobState.QUEUED
    if stale_before is not None:
        takeable = or_(takeable, and_(JobRow.state == JobState.RUNNING, JobRow.heartbeat_at < stale_before))
    statement = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.deleted_at.is_(None), takeable)
        .values(
            state=JobState.RUNNING,
            attempts=JobRow.attempts + 1,
            worker_id=worker_id,
            started_at=func.coalesce(JobRow.started_at, now),
            heartbeat_at=now,
            progress=0.0,  # a new run starts from nothing; the old run's value would be a lie
        )
        .returning(JobRow.attempts)
        .execution_options(synchronize_session=False)
    )
    attempt = session.execute(statement).scalar_one_or_none()
    return None if attempt is None else Claim(job_id=job_id, attempt=int(attempt))


def heartbeat(
    *, session: Session, claim: Claim, progress: float, now: datetime, keep_highest: bool = False
) -> bool | None:
    """Record progress and liveness. Returns whether cancel was asked for; ``None`` if the claim is lost.

    With ``keep_highest`` a lower ``progress`` than the stored one leaves it as it is, decided inside
    the one UPDATE, so steps of a split job beating side by side never lower each other's progress."""
    value = case((JobRow.progress > progress, JobRow.progress), else_=progress) if keep_highest else progress
    statement = (
        update(JobRow)
        .where(JobRow.id == claim.job_id, JobRow.attempts == claim.attempt, JobRow.state == JobState.RUNNING)
        .values(progress=value, heartbeat_at=now)
        .returning(JobRow.cancel_requested)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).scalar_one_or_none()


@dataclass(frozen=True)
class Finish:
    """Everything a terminal transition writes. Unset fields keep their stored value."""

    state: JobState
    error_code: str | None = None
    error_message: str | None = None
    kind: str | None = None
    output_key: str | None = None
    output_size: int | None = None
    output_sha256: str | None = None
    output_content_type: str | None = None
    report_key: str | None = None
    counts: dict[str, int] | None = None
    timings: dict[str, float] | None = None
    frames: int | None = None
    masked_frames: int | None = None
    processing_s: float | None = None


def finish_job(
    *,
    session: Session,
    job_id: str,
    claim: Claim | None,
    finish: Finish,
    now: datetime,
    retention: timedelta,
    stale_before: datetime | None = None,
) -> JobRow | None:
    """Move a job to a terminal state. With a ``claim``, only that run may do it; without one, only a
    queued job may (cancel before any worker took it) or, with ``stale_before``, a running one whose
    heartbeat stopped before then (its worker died or cannot write: nobody else will ever finish it).
    Returns the updated row, or ``None`` if it lost."""
    if not finish.state.terminal:
        raise ValueError("finish_job needs a terminal state")
    values: dict[str, Any] = {
        "state": finish.state,
        "finished_at": now,
        "expires_at": now + retention,
        "heartbeat_at": None,
        "error_code": finish.error_code,
        "error_message": finish.error_message,
    }
    if finish.state is JobState.SUCCEEDED:
        values["progress"] = 1.0
    for name in (
        "kind",
        "output_key",
        "output_size",
        "output_sha256",
        "output_content_type",
        "report_key",
        "counts",
        "timings",
        "frames",
        "masked_frames",
        "processing_s",
    ):
        value = getattr(finish, name)
        if value is not None:
            values[name] = value
    query = update(JobRow).where(JobRow.id == job_id)
    if claim is not None:
        query = query.where(JobRow.attempts == claim.attempt, JobRow.state == JobState.RUNNING)
    elif stale_before is None:
        query = query.where(JobRow.state == JobState.QUEUED)
    else:
        silent = or_(JobRow.heartbeat_at.is_(None), JobRow.heartbeat_at < stale_before)
        query = query.where(
            or_(JobRow.state == JobState.QUEUED, and_(JobRow.state == JobState.RUNNING, silent))
        )
    statement = query.values(**values).returning(JobRow.id).execution_options(synchronize_session=False)
    if session.execute(statement).scalar_one_or_none() is None:
        return None
    row = session.get(JobRow, job_id, populate_existing=True)
    if row is not None and row.spec.get("webhook"):
        _start_delivery(row, now)
        session.flush()
    if row is not None and row.batch_id is not None:
        complete_batch(session=session, batch_id=row.batch_id, now=now)
    return row


def batch_jobs(*, session: Session, batch_id: str, tenant_id: str | None = None) -> list[JobRow]:
    """The jobs of a batch in submission order (empty: no such batch for this tenant)."""
    query = select(JobRow).where(JobRow.batch_id == batch_id, JobRow.deleted_at.is_(None))
    if tenant_id is not None:
        query = query.where(JobRow.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(JobRow.batch_index)))


def pending_batch_webhook(*, session: Session, batch_id: str) -> str | None:
    """The id of the job holding the batch's webhook, when that webhook is due or retrying."""
    query = select(JobRow.id).where(
        JobRow.batch_id == batch_id, JobRow.batch_webhook_url.is_not(None), JobRow.webhook_status == "pending"
    )
    return session.scalar(query)


def complete_batch(*, session: Session, batch_id: str, now: datetime) -> str | None:
    """Once every job of the batch is finished, make its one webhook due, exactly once: the conditional
    UPDATE on the first job (the one holding the batch webhook) lets only the first caller through.
    Returns that job's id when this call made the webhook due."""
    open_jobs = session.scalar(
        select(func.count())
        .select_from(JobRow)
        .where(JobRow.batch_id == batch_id, JobRow.state.not_in(list(TERMINAL_STATES)))
    )
    if open_jobs:
        return None
    statement = (
        update(JobRow)
        .where(
            JobRow.batch_id == batch_id,
            JobRow.batch_webhook_url.is_not(None),
            JobRow.webhook_status.is_(None),
        )
        .values(
            webhook_status="pending",
            webhook_next_at=now,
            webhook_attempts=0,
            webhook_delivery_id=str(uuid.uuid4()),
        )
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).scalar_one_or_none()


def _start_delivery(row: JobRow, now: datetime) -> None:
    row.webhook_status = "pending"
    row.webhook_next_at = now
    row.webhook_attempts = 0
    row.webhook_delivery_id = str(uuid.uuid4())


def request_cancel(
    *,
    session: Session,
    job_id: str,
    now: datetime,
    retention: timedelta,
    stale_before: datetime | None = None,
) -> JobRow | None:
    """Cancel a queued job at once, or flag a running one so that its worker stops between frames. A
    running job silent since ``stale_before`` has no worker to read the flag, so it is canceled at once.

    Returns the row after the change, or ``None`` when the job is already terminal (nothing changed).
    """
    finished = finish_job(
        session=session,
        job_id=job_id,
        claim=None,
        finish=Finish(state=JobState.CANCELED, error_code="canceled", error_message="canceled by the client"),
        now=now,
        retention=retention,
        stale_before=stale_before,
    )
    if finished is not None:
        return finished
    statement = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state == JobState.RUNNING)
        .values(cancel_requested=True)
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    )
    if session.execute(statement).scalar_one_or_none() is None:
        return None
    return session.get(JobRow, job_id, populate_existing=True)


def requeue_job(*, session: Session, claim: Claim) -> bool:
    """Give a running job back to the queue (graceful shutdown); its attempt does not count."""
    statement = (
        update(JobRow)
        .where(JobRow.id == claim.job_id, JobRow.attempts == claim.attempt, JobRow.state == JobState.RUNNING)
        .values(
            state=JobState.QUEUED,
            worker_id=None,
            heartbeat_at=None,
            attempts=JobRow.attempts - 1,
            progress=0.0,
        )
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount > 0  # type: ignore[attr-defined, no-any-return]


def requeue_running_jobs(*, session: Session, stale_before: datetime | None = None) -> list[str]:
    """Put ``running`` jobs back to ``queued``: all of them (embedded restart: the only process that ran
    them is gone) or, with ``stale_before``, only those whose heartbeat stopped. Such jobs that were
    deleted meanwhile are canceled instead (nobody may run them again)."""
    query = update(JobRow).where(JobRow.state == JobState.RUNNING)
    if stale_before is not None:
        query = query.where(or_(JobRow.heartbeat_at.is_(None), JobRow.heartbeat_at < stale_before))
    session.execute(
        query.where(JobRow.deleted_at.is_not(None))
        .values(
            state=JobState.CANCELED,
            heartbeat_at=None,
            error_code="canceled",
            error_message="deleted while it ran",
        )
        .execution_options(synchronize_session=False)
    )
    query = query.where(JobRow.deleted_at.is_(None))
    statement = (
        query.values(state=JobState.QUEUED, worker_id=None, heartbeat_at=None, progress=0.0)
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(statement).scalars())


def mark_deleted(
    *,
    session: Session,
    job_id: str,
    now: datetime,
    retention: timedelta,
    stale_before: datetime | None = None,
) -> JobRow | None:
    """Soft-delete a job in any state. A queued one (or a running one silent since ``stale_before``) is
    canceled first; a running one is flagged to cancel, and its worker deletes its blobs when it stops.
    The row stays (without blobs) for the audit trail; the API answers 404 for it from now on.
    ``None`` if it was already deleted."""
    finish_job(
        session=session,
        job_id=job_id,
        claim=None,
        finish=Finish(state=JobState.CANCELED, error_code="canceled", error_message="deleted before it ran"),
        now=now,
        retention=retention,
        stale_before=stale_before,
    )
    statement = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.deleted_at.is_(None))
        .values(
            deleted_at=now,
            cancel_requested=case((JobRow.state == JobState.RUNNING, True), else_=JobRow.cancel_requested),
        )
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    )
    if session.execute(statement).scalar_one_or_none() is None:
        return None
    return session.get(JobRow, job_id, populate_existing=True)


def jobs_due_for_purge(*, session: Session, now: datetime, limit: int = 100) -> list[JobRow]:
    """Finished jobs past ``expires_at``, and deleted jobs, whose blobs are still there."""
    query = (
        select(JobRow)
        .where(
            JobRow.purged_at.is_(None),
            JobRow.state.in_(_TERMINAL),
            or_(JobRow.expires_at <= now, JobRow.deleted_at.is_not(None)),
        )
        .order_by(JobRow.expires_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_purged(*, session: Session, job_id: str, now: datetime) -> None:
    statement = update(JobRow).where(JobRow.id == job_id).values(purged_at=now)
    session.execute(statement.execution_options(synchronize_session=False))


# --- webhooks ---------------------------------------------------------------------------------------------


def set_webhook_status(*, session: Session, job_id: str, status: str) -> None:
    statement = update(JobRow).where(JobRow.id == job_id).values(webhook_status=status)
    session.execute(statement.execution_options(synchronize_session=False))


def pending_webhook_job_ids(*, session: Session) -> list[str]:
    query = select(JobRow.id).where(JobRow.webhook_status == "pending").order_by(JobRow.finished_at)
    return list(session.scalars(query))


def due_webhook_job_ids(*, session: Session, now: datetime, limit: int = 100) -> list[str]:
    """Pending webhooks whose next attempt is due at ``now``, the longest-waiting first."""
    query = (
        select(JobRow.id)
        .where(JobRow.webhook_status == "pending")
        .where(or_(JobRow.webhook_next_at.is_(None), JobRow.webhook_next_at <= now))
        .order_by(JobRow.webhook_next_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def next_webhook_due(*, session: Session) -> datetime | None:
    """When the earliest pending webhook attempt is due (None: nothing pending)."""
    query = select(func.min(JobRow.webhook_next_at)).where(JobRow.webhook_status == "pending")
    return session.scalar(query)


def claim_webhook(*, session: Session, job_id: str, now: datetime, lease: timedelta) -> JobRow | None:
    """Take the due attempt of ``job_id``: push its ``webhook_next_at`` out by ``lease`` in one conditional
    UPDATE, so that of several processes looking at once exactly one sends it (and, if that one dies, the
    attempt is due again once the lease runs out). ``None`` when it is not due or another process won."""
    statement = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.webhook_status == "pending")
        .where(or_(JobRow.webhook_next_at.is_(None), JobRow.webhook_next_at <= now))
        .values(webhook_next_at=now + lease)
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    )
    if session.execute(statement).scalar_one_or_none() is None:
        return None
    return session.get(JobRow, job_id, populate_existing=True)


def schedule_webhook(
    *, session: Session, job_id: str, status: str, attempts: int, next_at: datetime | None
) -> None:
    """After an attempt: the delivery's status, attempts so far and, while pending, when to try next."""
    statement = (
        update(JobRow)
        .where(JobRow.id == job_id)
        .values(webhook_status=status, webhook_attempts=attempts, webhook_next_at=next_at)
    )
    session.execute(statement.execution_options(synchronize_session=False))


def redeliver_webhook(*, session: Session, job_id: str, now: datetime) -> JobRow | None:
    """Start the webhook of a finished job again: a new delivery id, the schedule from the start, due now.
    ``None`` when the job is not finished or has no webhook."""
    row = session.get(JobRow, job_id, populate_existing=True)
    if row is None or not JobState(row.state).terminal or not row.spec.get("webhook"):
        return None
    _start_delivery(row, now)
    session.flush()
    return row


def record_webhook_attempts(*, session: Session, job_id: str, event: str, attempts: Sequence[Any]) -> None:
    """Store ``DeliveryAttempt``s (from ``veil.jobs.webhooks.deliver``) for ``job_id``; each one's number
    continues the job's list, so a redelivery's attempts follow the earlier ones."""
    done = session.scalar(select(func.count()).where(WebhookDeliveryRow.job_id == job_id)) or 0
    for index, attempt in enumerate(attempts, start=1):
        session.add(
            WebhookDeliveryRow(
                job_id=job_id,
                event=event,
                attempt=done + index,
                status_code=attempt.status_code,
                error=None if attempt.error is None else str(attempt.error)[:200],
                delivered=bool(attempt.delivered),
                at=attempt.at,
                duration_ms=float(attempt.duration_ms),
            )
        )
    session.flush()


def list_webhook_deliveries(*, session: Session, job_id: str) -> list[WebhookDeliveryRow]:
    query = (
        select(WebhookDeliveryRow).where(WebhookDeliveryRow.job_id == job_id).order_by(WebhookDeliveryRow.id)
    )
    return list(session.scalars(query))


# --- account ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    jobs_by_state: dict[JobState, int]
    jobs_last_24h: int
    bytes_in: int
    bytes_out: int
    frames: int
    processing_s: float


def usage(*, session: Session, tenant_id: str, now: datetime) -> Usage:
    totals = session.execute(
        select(
            func.coalesce(func.sum(JobRow.input_size), 0),
            func.coalesce(func.sum(JobRow.output_size), 0),
            func.coalesce(func.sum(JobRow.frames), 0),
            func.coalesce(func.sum(JobRow.processing_s), 0.0),
        ).where(JobRow.tenant_id == tenant_id)
    ).one()
    recent = session.scalar(
        select(func.count())
        .select_from(JobRow)
        .where(JobRow.tenant_id == tenant_id, JobRow.created_at >= now - timedelta(hours=24))
    )
    return Usage(
        jobs_by_state=count_jobs_by_state(session=session, tenant_id=tenant_id),
        jobs_last_24h=int(recent or 0),
        bytes_in=int(totals[0] or 0),
        bytes_out=int(totals[1] or 0),
        frames=int(totals[2] or 0),
        processing_s=float(totals[3] or 0.0),
    )
