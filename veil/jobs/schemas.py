"""Public shapes of jobs and webhook deliveries (pydantic; tables are in ``tables``).

Keys and audit events are ``veil.auth.schemas`` (re-exported here for callers written before).

These are what API clients and webhook receivers read, so every field says what it
means. ``job_public`` turns a row into a ``JobPublic``: the one place that decides what
of a job is shown (sizes, hashes, counts, timings, never file names or detections).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from veil.auth.schemas import (
    SCOPES,
    ApiKeyCreated,
    ApiKeyPublic,
    ApiKeysPublic,
    AuditEntryPublic,
    AuditPublic,
    Scope,
    api_key_public,
    audit_public,
)
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow, WebhookDeliveryRow
from veil.spec import DetectionOptions

__all__ = [
    "BatchPublic",
    "batch_public",
    "SCOPES",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ApiKeysPublic",
    "AuditEntryPublic",
    "AuditPublic",
    "InputPublic",
    "JobErrorPublic",
    "JobPublic",
    "JobsPublic",
    "MediaPublic",
    "OutputPublic",
    "Scope",
    "WebhookDeliveriesPublic",
    "WebhookDeliveryPublic",
    "api_key_public",
    "audit_public",
    "delivery_public",
    "job_public",
]


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class JobErrorPublic(_Public):
    code: str = Field(
        description="Stable machine-readable code, e.g. `corrupt_media`, `invalid_spec`.", max_length=64
    )
    message: str = Field(
        description="What went wrong, for a human; never contains file contents.", max_length=2000
    )


class MediaPublic(_Public):
    """What the probe found in the upload (no metadata, no file name)."""

    kind: Literal["image", "video"] = Field(description="Image or video.")
    width: int | None = Field(None, ge=0, description="Stored width in pixels.")
    height: int | None = Field(None, ge=0, description="Stored height in pixels.")
    duration: float | None = Field(None, ge=0, description="Duration in seconds (video).")
    frame_count: int | None = Field(None, ge=0, description="Frames in the video stream (video).")
    fps: float | None = Field(None, ge=0, description="Average frame rate (video).")


class InputPublic(_Public):
    size: int = Field(ge=0, description="Upload size in bytes.")
    sha256: str = Field(description="SHA-256 of the upload, hex.", min_length=64, max_length=64)
    media: MediaPublic | None = Field(None, description="What the probe found.")


class OutputPublic(_Public):
    size: int = Field(ge=0, description="Result size in bytes.")
    sha256: str = Field(description="SHA-256 of the result, hex.", min_length=64, max_length=64)
    content_type: str = Field(description="MIME type of the result.", max_length=100)


class JobPublic(_Public):
    """A job as clients and webhook receivers see it."""

    id: str = Field(description="Job id.", max_length=40)
    object: Literal["job"] = Field("job", description="Always `job`.")
    state: JobState = Field(description="queued, running, succeeded, failed or canceled.")
    mode: Literal["redact", "detect"] = Field(
        description="`redact` writes a masked file; `detect` only finds tracks."
    )
    progress: float = Field(ge=0, le=100, description="Percent done, 0–100.")
    cancel_requested: bool = Field(description="A cancel was asked for and the worker has not stopped yet.")
    created_at: datetime = Field(description="When the job was accepted (UTC).")
    started_at: datetime | None = Field(None, description="When a worker first started it (UTC).")
    finished_at: datetime | None = Field(None, description="When it reached a terminal state (UTC).")
    expires_at: datetime = Field(description="When retention deletes its input and output (UTC).")
    source_job: str | None = Field(
        None, description="The detect job whose tracks this job reuses.", max_length=40
    )
    input: InputPublic = Field(description="The uploaded file.")
    output: OutputPublic | None = Field(None, description="The result file, once a redact job succeeded.")
    counts: dict[str, int] = Field(
        default_factory=dict, description="Tracks (video) or boxes (image) per category, once succeeded."
    )
    masked_frames: int | None = Field(None, ge=0, description="Frames in which something was masked.")
    frames: int | None = Field(None, ge=0, description="Frames processed.")
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per pipeline stage.")
    processing_seconds: float | None = Field(None, ge=0, description="Wall time of the run that finished it.")
    error: JobErrorPublic | None = Field(
        None, description="Why it failed (state `failed`), or that it was canceled."
    )
    result_url: str | None = Field(None, description="Where to download the result (needs the API key).")
    report_url: str | None = Field(None, description="Where to read the JSON report with tracks.")
    receipt_url: str | None = Field(
        None, description="Where to get the signed receipt (hashes, spec, models), once succeeded."
    )
    expired: bool = Field(False, description="Retention already deleted the input and output.")
    warnings: list[str] = Field(
        default_factory=list,
        description="Parts of the spec this input cannot use (video-only detection options sent for a "
        "still), named here rather than ignored silently.",
    )


class BatchPublic(_Public):
    """A batch: jobs submitted together with one spec, one status and one webhook when all are finished."""

    id: str = Field(description="Batch id.", max_length=40)
    object: Literal["batch"] = Field("batch", description="Always `batch`.")
    state: Literal["running", "finished"] = Field(
        description="`finished` once every job is succeeded, failed or canceled."
    )
    counts: dict[str, int] = Field(description="Jobs per state.")
    created_at: datetime = Field(description="When the batch was accepted (UTC).")
    jobs: list[JobPublic] = Field(description="The batch's jobs, in the order the files were sent.")
    results_url: str = Field(description="A ZIP of every succeeded job's result (as far as there are any).")


class JobsPublic(_Public):
    object: Literal["list"] = Field("list", description="Always `list`.")
    data: list[JobPublic] = Field(description="Jobs, newest first.")
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )


class WebhookDeliveryPublic(_Public):
    event: str = Field(description="`job.succeeded`, `job.failed` or `job.canceled`.", max_length=32)
    attempt: int = Field(ge=1, description="1-based attempt number.")
    status_code: int | None = Field(None, description="HTTP status of the receiver; null if none arrived.")
    error: str | None = Field(None, description="Why it was not delivered.", max_length=200)
    delivered: bool = Field(description="The receiver answered 2xx.")
    at: datetime = Field(description="When the attempt started (UTC).")
    duration_ms: float = Field(ge=0, description="How long it took.")


class WebhookDeliveriesPublic(_Public):
    status: Literal["none", "pending", "delivered", "failed"] = Field(description="Where the webhook stands.")
    next_attempt_at: datetime | None = Field(
        None, description="While `pending`: when the next attempt is due (UTC)."
    )
    data: list[WebhookDeliveryPublic] = Field(description="Attempts, oldest first.")


def _media(media: dict[str, object]) -> MediaPublic | None:
    if not media:
        return None
    return MediaPublic.model_validate(media)


def spec_warnings(spec: dict[str, Any], kind: str | None) -> list[str]:
    """What a stored spec asks of its input that the input cannot use (``DetectionOptions.unused_for``)."""
    unused = DetectionOptions.model_validate(spec.get("detection") or {}).unused_for(kind or "")
    if not unused:
        return []
    only, this = ("video", "a still") if kind == "image" else ("stills", "a video")
    verb = "applies" if len(unused) == 1 else "apply"
    return [
        f"{' and '.join(f'detection.{name}' for name in unused)} {verb} to {only} only; this input is {this}"
    ]


def job_public(row: JobRow, *, base_url: str = "") -> JobPublic:
    """The public view of ``row``. ``base_url`` (no trailing slash) makes the URLs absolute."""
    state = JobState(row.state)
    expired = row.purged_at is not None
    has_result = state is JobState.SUCCEEDED and row.output_key is not None and not expired
    output = None
    if row.output_key is not None and row.output_size is not None and row.output_sha256 is not None:
        output = OutputPublic(
            size=row.output_size,
            sha256=row.output_sha256,
            content_type=row.output_content_type or "application/octet-stream",
        )
    error = None
    if row.error_code is not None:
        error = JobErrorPublic(code=row.error_code, message=row.error_message or "")
    return JobPublic(
        id=row.id,
        state=state,
        mode="detect" if row.mode == "detect" else "redact",
        progress=round(min(max(row.progress, 0.0), 1.0) * 100, 1),
        cancel_requested=bool(row.cancel_requested) and not state.terminal,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=row.expires_at,
        source_job=row.source_job_id,
        input=InputPublic(size=row.input_size, sha256=row.input_sha256, media=_media(row.media)),
        output=output,
        counts={str(k): int(v) for k, v in (row.counts or {}).items()},
        masked_frames=row.masked_frames,
        frames=row.frames,
        timings={str(k): round(float(v), 4) for k, v in (row.timings or {}).items()},
        processing_seconds=None if row.processing_s is None else round(row.processing_s, 4),
        error=error,
        result_url=f"{base_url}/v1/jobs/{row.id}/result" if has_result else None,
        report_url=f"{base_url}/v1/jobs/{row.id}/report"
        if state is JobState.SUCCEEDED and not expired
        else None,
        receipt_url=f"{base_url}/v1/jobs/{row.id}/receipt"
        if state is JobState.SUCCEEDED and not expired
        else None,
        expired=expired,
        warnings=spec_warnings(row.spec or {}, row.kind),
    )


def delivery_public(row: WebhookDeliveryRow) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic(
        event=row.event,
        attempt=row.attempt,
        status_code=row.status_code,
        error=row.error,
        delivered=row.delivered,
        at=row.at,
        duration_ms=max(row.duration_ms, 0.0),
    )


def batch_public(batch_id: str, rows: Sequence[JobRow], *, base_url: str = "") -> BatchPublic:
    """The public view of a batch from its job rows (in batch order)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[JobState(row.state).value] = counts.get(JobState(row.state).value, 0) + 1
    finished = all(JobState(row.state).terminal for row in rows)
    return BatchPublic(
        id=batch_id,
        state="finished" if finished else "running",
        counts=counts,
        created_at=min(row.created_at for row in rows),
        jobs=[job_public(row, base_url=base_url) for row in rows],
        results_url=f"{base_url}/v1/batches/{batch_id}/results.zip",
    )
