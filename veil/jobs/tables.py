"""SQLAlchemy 2 tables: what the job store persists. API shapes live in ``veil.jobs.schemas``.

API keys, the audit log and rate buckets are ``veil.auth.tables`` (re-exported here, one database).

Rows hold only non-personal facts: sizes, hashes, counts, timings, error codes.
No file names, no detections (those are in the report blob, which retention deletes).
The audit log is append-only; the migration adds triggers that refuse UPDATE and DELETE.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from veil.auth.tables import ApiKeyRow, AuditRow, RateBucketRow
from veil.jobs.states import JobState
from veil.sqlbase import Base, UTCDateTime

__all__ = ["ApiKeyRow", "AuditRow", "Base", "JobRow", "RateBucketRow", "UTCDateTime", "WebhookDeliveryRow"]


JOB_STATE_ENUM = Enum(
    JobState,
    name="job_state",
    values_callable=lambda states: [s.value for s in states],
    validate_strings=True,
)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[JobState] = mapped_column(JOB_STATE_ENUM, default=JobState.QUEUED)
    mode: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str | None] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_job_id: Mapped[str | None] = mapped_column(String(40))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200))

    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]

    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)

    input_key: Mapped[str] = mapped_column(String(1024))
    input_size: Mapped[int] = mapped_column(BigInteger)
    input_sha256: Mapped[str] = mapped_column(String(64))
    media: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    output_key: Mapped[str | None] = mapped_column(String(1024))
    output_size: Mapped[int | None] = mapped_column(BigInteger)
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    output_content_type: Mapped[str | None] = mapped_column(String(100))
    report_key: Mapped[str | None] = mapped_column(String(1024))

    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    frames: Mapped[int | None] = mapped_column(Integer)
    masked_frames: Mapped[int | None] = mapped_column(Integer)
    processing_s: Mapped[float | None] = mapped_column(Float)

    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    webhook_status: Mapped[str | None] = mapped_column(String(16))
    webhook_next_at: Mapped[datetime | None]
    """When the next webhook attempt is due (pending only); a claimed attempt pushes it out by a lease."""
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Attempts of the current delivery (a redelivery starts again at 0): the retry schedule's index."""
    webhook_delivery_id: Mapped[str | None] = mapped_column(String(40))
    """``Veil-Delivery`` of the current delivery, the same for all its attempts."""
    webhook_headers: Mapped[str | None] = mapped_column(Text)
    """The webhook's custom headers, sealed (``veil.jobs.secrets.seal``); never logged or returned."""
    batch_id: Mapped[str | None] = mapped_column(String(40))
    """The batch this job was submitted in (``POST /v1/batches``), if any."""
    batch_index: Mapped[int | None] = mapped_column(Integer)
    """Its place in the batch, from 0."""
    batch_webhook_url: Mapped[str | None] = mapped_column(String(2048))
    """On the batch's first job only: where the one batch webhook goes once every job is finished."""

    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_expires", "expires_at"),
        Index("ix_jobs_webhook_due", "webhook_status", "webhook_next_at"),
        Index("ix_jobs_batch", "batch_id", "batch_index"),
    )


class WebhookDeliveryRow(Base):
    """One POST attempt of a job's webhook. Holds no URL, body or secret."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(40), ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    delivered: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
