"""``/v1/jobs``: submit, list, read, cancel, delete, download, report, thumbnails, links, webhooks."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from veil.api.deps import Principal, Reader, ServicesDep, Writer
from veil.api.download import (
    check_result_available,
    file_responses,
    preview_key_of,
    preview_response,
    result_response,
    source_response,
)
from veil.api.errors import BadRequest, Expired, error_responses, request_id_of
from veil.api.job_access import JobId, audit, audit_job, base_url, job_base_url, load_job, public
from veil.api.schemas import LinkCreate, LinkPublic
from veil.api.services import Services
from veil.api.signed_links import sign_link
from veil.api.submit import require_queue_room, submit_job
from veil.api.upload import UPLOAD_REQUEST_BODY, receive_upload
from veil.errors import JobConflict, JobNotFound, StorageNotFound, VeilError
from veil.jobs import blobs, store
from veil.jobs.schemas import JobPublic, JobsPublic, WebhookDeliveriesPublic, delivery_public, job_public
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow, WebhookDeliveryRow
from veil.report import Report
from veil.storage.space import require_free_space

__all__ = ["router"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_PREFER_WAIT = re.compile(r"(?:^|[\s,;])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def _wait_seconds(services: Services, wait: float | None, prefer: str | None) -> tuple[float, bool]:
    """Seconds to wait (capped by VEIL_MAX_WAIT_S) and whether it came from ``Prefer``."""
    if wait is not None:
        return min(wait, services.settings.max_wait_s), False
    if prefer:
        match = _PREFER_WAIT.search(prefer)
        if match:
            return min(float(match.group(1)), services.settings.max_wait_s), True
    return 0.0, False


def _any_job(services: Services, job_id: str) -> JobRow | None:
    with services.db.begin() as session:
        return store.get_job(session=session, job_id=job_id)


async def _wait_for(services: Services, job_id: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    subscription = services.events.subscribe(job_id)
    try:
        while True:
            row = await run_in_threadpool(_any_job, services, job_id)
            remaining = deadline - time.monotonic()
            if row is None or row.state.terminal or remaining <= 0:
                return
            await subscription.wait(min(remaining, 1.0))
    finally:
        subscription.close()


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    summary="Submit a job",
    responses={
        200: {"model": JobPublic, "description": "Finished within `wait` (state is terminal)."},
        202: {"model": JobPublic, "description": "Accepted; poll the `Location`."},
        **error_responses(400, 401, 403, 408, 409, 413, 415, 422, 429, 503, 507),
    },
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
)
async def create_job(
    request: Request,
    principal: Writer,
    services: ServicesDep,
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            le=3600,
            description="Wait up to this many seconds for the result (capped by VEIL_MAX_WAIT_S).",
        ),
    ] = None,
    prefer: Annotated[
        str | None, Header(max_length=200, description="`wait=N` works like `?wait=N`.")
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Retry-safe submission: the same key and request return the same job; "
            "the same key with another request is 409.",
        ),
    ] = None,
) -> Response:
    """Upload a file (multipart field `file`) with a JSON `spec`. Returns 202 and the job; with `wait`
    (or `Prefer: wait=N`), returns 200 with the finished job if it finishes in time. A `redact` job with
    `source_job` may omit `file`: the detect job's input is reused."""
    full = "the job queue is full; retry later"
    await run_in_threadpool(require_queue_room, services, jobs=1, refusal=full)
    await run_in_threadpool(  # 507 before the client uploads gigabytes into a full disk
        require_free_space, services.ctx.scratch_dir, min_free_bytes=services.settings.min_free_mb << 20
    )
    upload = await receive_upload(
        request,
        scratch_dir=services.ctx.scratch_dir,
        max_bytes=services.settings.max_upload_mb * (1 << 20),
    )
    try:
        submitted = await run_in_threadpool(
            submit_job,
            services,
            tenant_id=principal.tenant_id,
            key_id=principal.key_id,
            upload=upload,
            idempotency_key=idempotency_key,
            request_id=request_id_of(request),
        )
    except VeilError as exc:
        await run_in_threadpool(
            audit,
            services,
            request,
            actor=principal.key_id,
            action="job.create",
            tenant_id=principal.tenant_id,
            job_id=None,
            outcome=exc.code,
        )
        raise
    finally:
        upload.discard()
    job_id = submitted.job.id
    if submitted.created:
        services.queue.enqueue(job_id)

    seconds, from_prefer = _wait_seconds(services, wait, prefer)
    row = submitted.job
    if seconds > 0 and not row.state.terminal:
        await _wait_for(services, job_id, seconds)
        row = await run_in_threadpool(load_job, services, job_id=job_id, tenant_id=principal.tenant_id)
    headers = {"Location": f"/v1/jobs/{job_id}"}
    if from_prefer:
        headers["Preference-Applied"] = f"wait={math.floor(seconds)}"
    if not submitted.created:
        headers["Idempotent-Replayed"] = "true"
    status = 200 if row.state.terminal else 202
    return JSONResponse(public(services, request, row), status_code=status, headers=headers)


@router.get("", response_model=JobsPublic, summary="List jobs", responses=error_responses(400, 401, 403, 429))
def list_jobs(
    request: Request,
    principal: Reader,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    mode: Annotated[Literal["redact", "detect"] | None, Query(description="Only jobs of this mode.")] = None,
    created_after: Annotated[
        datetime | None, Query(description="Only jobs created at or after (ISO 8601).")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Only jobs created before (ISO 8601).")
    ] = None,
) -> JobsPublic:
    """The tenant's jobs, newest first, one page at a time."""
    after = None
    if cursor is not None:
        try:
            at_text, last_id = store.decode_cursor(cursor, parts=2)
            after = (datetime.fromisoformat(at_text), last_id)
        except ValueError as exc:
            raise BadRequest("invalid cursor") from exc

    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    with services.db.begin() as session:
        rows = store.list_jobs(
            session=session,
            tenant_id=principal.tenant_id,
            limit=limit + 1,
            after=after,
            state=state,
            mode=mode,
            created_after=aware(created_after),
            created_before=aware(created_before),
        )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = store.encode_cursor(rows[-1].created_at.isoformat(), rows[-1].id)
    url = job_base_url(services)
    return JobsPublic(data=[job_public(r, base_url=url) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{job_id}",
    response_model=JobPublic,
    summary="Get a job",
    responses=error_responses(400, 401, 403, 404, 429),
)
async def get_job(
    request: Request,
    job_id: JobId,
    principal: Reader,
    services: ServicesDep,
    wait: Annotated[
        float | None,
        Query(
            ge=0,
            le=3600,
            description="Long-poll: wait up to this many seconds (capped by VEIL_MAX_WAIT_S) for the job "
            "to finish before answering.",
        ),
    ] = None,
) -> dict[str, Any]:
    """State, progress, counts, timings, error and result URL of one job."""
    row = await run_in_threadpool(load_job, services, job_id=job_id, tenant_id=principal.tenant_id)
    seconds = min(wait or 0.0, services.settings.max_wait_s)
    if seconds > 0 and not row.state.terminal:
        await _wait_for(services, job_id, seconds)
        row = await run_in_threadpool(load_job, services, job_id=job_id, tenant_id=principal.tenant_id)
    return public(services, request, row)


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    summary="Cancel a job",
    responses={
        200: {"model": JobPublic, "description": "Canceled (it had not started)."},
        202: {"model": JobPublic, "description": "Cancel requested; the worker stops between frames."},
        **error_responses(400, 401, 403, 404, 409, 429),
    },
)
def cancel_job(request: Request, job_id: JobId, principal: Writer, services: ServicesDep) -> Response:
    """A queued job is canceled at once (200); a running one stops within a second or two (202). A
    running job whose worker went silent (died, or cannot write) for `VEIL_JOB_STALE_S` is canceled at
    once (200)."""
    row, _now = _stop(services, job_id, principal.tenant_id, store.request_cancel)
    if row is None:
        raise JobConflict("the job already finished")
    audit(
        services, request, actor=principal.key_id, action="job.cancel", tenant_id=row.tenant_id, job_id=job_id
    )
    if row.state.terminal:
        services.events.notify(job_id)
        if row.webhook_status == "pending":
            services.notifier.dispatch(job_id)
    return JSONResponse(public(services, request, row), status_code=200 if row.state.terminal else 202)


def _stop(
    services: Services, job_id: str, tenant_id: str, change: Callable[..., JobRow | None]
) -> tuple[JobRow | None, datetime]:
    """Apply ``change`` (``store.request_cancel`` or ``store.mark_deleted``) to the tenant's job, now; a
    running job whose heartbeat is older than ``VEIL_JOB_STALE_S`` has no live worker, so it stops at
    once. The changed row (None: the change did not apply) and the time it was made."""
    load_job(services, job_id=job_id, tenant_id=tenant_id)
    now = services.clock.now()
    stale_before = now - timedelta(seconds=services.settings.job_stale_s)
    with services.db.begin() as session:
        row = change(
            session=session,
            job_id=job_id,
            now=now,
            retention=services.ctx.retention,
            stale_before=stale_before,
        )
    return row, now


@router.delete(
    "/{job_id}",
    status_code=204,
    summary="Delete a job and its files",
    responses={204: {"description": "Deleted."}, **error_responses(400, 401, 403, 404, 429, 507)},
)
def delete_job(request: Request, job_id: JobId, principal: Writer, services: ServicesDep) -> Response:
    """Deletes the input, result, report and thumbnails now, in any state. A queued job is canceled
    first; a running one is canceled, and its files go as soon as its worker stops (a second or two).
    The job then answers 404; the audit log keeps its hashes."""
    row, now = _stop(services, job_id, principal.tenant_id, store.mark_deleted)
    if row is None:
        raise JobNotFound("no such job")
    services.events.notify(job_id)
    if row.state is not JobState.RUNNING:  # a running job's worker deletes its blobs when it stops
        try:
            services.storage.delete_prefix(blobs.job_prefix(job_id))
            with services.db.begin() as session:
                store.mark_purged(session=session, job_id=job_id, now=now)
        except VeilError:
            pass  # the retention sweeper retries deleted jobs whose blobs are still there
    audit_job(services, request, actor=principal.key_id, action="job.delete", row=row)
    return Response(status_code=204)


Ranges = Annotated[str | None, Header(alias="Range", max_length=200, description="`bytes=a-b`")]
"""The ``Range`` header of a download: one ``bytes=a-b`` range, so that players can seek."""


@router.head("/{job_id}/result", include_in_schema=False)
@router.get(
    "/{job_id}/result",
    summary="Download the result",
    response_class=Response,
    responses=file_responses("The redacted file.", 400, 401, 403, 404, 409, 410, 416, 429),
)
def get_result(
    request: Request, job_id: JobId, principal: Reader, services: ServicesDep, range_header: Ranges = None
) -> Response:
    """The redacted file. Supports HEAD and a single HTTP Range, so players can seek."""
    return _download(request, job_id, principal, services, range_header, result_response, "result.download")


@router.head("/{job_id}/source", include_in_schema=False)
@router.get(
    "/{job_id}/source",
    summary="Stream the source media",
    response_class=Response,
    responses=file_responses("The job's input as uploaded.", 400, 401, 403, 404, 410, 416, 429),
)
def get_source(
    request: Request, job_id: JobId, principal: Reader, services: ServicesDep, range_header: Ranges = None
) -> Response:
    """The unredacted input of a job (for a `source_job` redaction, the detect job's input), for the
    review player. Supports HEAD and a single HTTP Range, so players can seek. Same key scope as the
    report: whoever may read a job's tracks may see what they were found in."""
    return _download(request, job_id, principal, services, range_header, source_response, "source.download")


@router.head("/{job_id}/preview", include_in_schema=False)
@router.get(
    "/{job_id}/preview",
    summary="Stream the preview",
    response_class=Response,
    responses=file_responses(
        "The source as H.264 MP4 (video) or JPEG (still).", 400, 401, 403, 404, 410, 416, 429
    ),
)
def get_preview(
    request: Request, job_id: JobId, principal: Reader, services: ServicesDep, range_header: Ranges = None
) -> Response:
    """A detect job's source as browsers show it, for the review page: a video as H.264 MP4 with every frame
    at its own time, a still as JPEG. Made only when browsers cannot show the source as it is (MPEG-TS, AVI,
    WMV and the other exports of cameras and DVRs; HEIC, TIFF); 404 otherwise. Supports HEAD and a single
    HTTP Range. Same key scope as the source."""
    return _download(request, job_id, principal, services, range_header, preview_response, "source.download")


def _download(
    request: Request,
    job_id: str,
    principal: Principal,
    services: Services,
    range_header: str | None,
    serve: Callable[..., Response],
    action: str,
) -> Response:
    """The tenant's job file that ``serve`` streams (HEAD, one Range). A download from the first byte is
    audited as ``action`` once: not HEAD probes, nor the later ranges a seeking player asks for."""
    row = load_job(services, job_id=job_id, tenant_id=principal.tenant_id)
    head = request.method == "HEAD"
    response = serve(services.storage, row, range_header=range_header, head=head)
    if not head and (
        response.status_code == 200 or (range_header or "").replace(" ", "").startswith("bytes=0-")
    ):
        audit_job(services, request, actor=principal.key_id, action=action, row=row)
    return response


@router.get(
    "/{job_id}/report",
    summary="Read the report",
    response_model=Report,
    responses=error_responses(400, 401, 403, 404, 409, 410, 429),
)
def get_report(job_id: JobId, principal: Reader, services: ServicesDep) -> Response:
    """What was found and masked: counts, tracks with per-frame boxes, models, timings, hashes."""
    row = load_job(services, job_id=job_id, tenant_id=principal.tenant_id)
    if row.purged_at is not None:
        raise Expired("retention deleted this job's report")
    if row.state is not JobState.SUCCEEDED or row.report_key is None:
        raise JobConflict(f"the job is {row.state.value}; there is no report")
    try:
        size = services.storage.size(row.report_key)
    except StorageNotFound as exc:
        raise Expired("the report is no longer stored") from exc
    return StreamingResponse(
        services.storage.iter_range(row.report_key),
        media_type="application/json",
        headers={"Content-Length": str(size), "Cache-Control": "private, no-store"},
    )


@router.get(
    "/{job_id}/tracks/{track_id}/thumbnail",
    summary="Thumbnail of a track",
    response_class=Response,
    responses={
        200: {"description": "JPEG crop of the track's best frame.", "content": {"image/jpeg": {}}},
        **error_responses(400, 401, 403, 404, 409, 410, 429),
    },
)
def get_thumbnail(
    job_id: JobId,
    track_id: Annotated[int, Path(ge=0, le=2**31 - 1, description="Track id from the report.")],
    principal: Reader,
    services: ServicesDep,
) -> Response:
    """For the review loop: a small crop per track of a succeeded detect job."""
    row = load_job(services, job_id=job_id, tenant_id=principal.tenant_id)
    if row.purged_at is not None:
        raise Expired("retention deleted this job's thumbnails")
    if row.state is not JobState.SUCCEEDED or row.mode != "detect":
        raise JobConflict("thumbnails exist for succeeded detect jobs only")
    key = blobs.thumbnail_key(job_id, track_id)
    try:
        size = services.storage.size(key)
    except StorageNotFound as exc:
        raise JobNotFound("no thumbnail for this track") from exc
    return StreamingResponse(
        services.storage.iter_range(key),
        media_type="image/jpeg",
        headers={"Content-Length": str(size), "Cache-Control": "private, max-age=3600"},
    )


@router.post(
    "/{job_id}/links",
    status_code=201,
    response_model=LinkPublic,
    summary="Create a signed download link",
    responses=error_responses(400, 401, 403, 404, 409, 410, 429),
)
def create_link(
    request: Request,
    job_id: JobId,
    principal: Reader,
    services: ServicesDep,
    body: Annotated[LinkCreate | None, Body()] = None,
) -> LinkPublic:
    """A URL that downloads the result (or, with `file: source`, the unredacted input; with `file: preview`,
    the detect job's preview, see `GET /v1/jobs/{id}/preview`) without an API key
    until it expires (default 24 h, at most 7 days).
    Anyone holding it can download, so hand it out as you would the file."""
    row = load_job(services, job_id=job_id, tenant_id=principal.tenant_id)
    file = body.file if body is not None else "result"
    if file == "source":
        if row.purged_at is not None:
            raise Expired("retention deleted this job's input")
        key = row.input_key
    elif file == "preview":
        key = preview_key_of(services.storage, row)
    else:
        key = check_result_available(row)
    ttl = (body.expires_in if body is not None else None) or services.settings.link_ttl_s
    expires = int(services.clock.time()) + ttl
    url = services.storage.presign(key, ttl)
    if url is None:
        sig = sign_link(services.server_secret, job_id=job_id, expires=expires, file=file)
        which = "" if file == "result" else f"file={file}&"
        url = f"{base_url(services, request)}/v1/links/{job_id}?{which}expires={expires}&sig={sig}"
    audit_job(services, request, actor=principal.key_id, action="link.create", row=row)
    return LinkPublic(url=url, expires_at=datetime.fromtimestamp(expires, UTC))


@router.get(
    "/{job_id}/webhooks",
    response_model=WebhookDeliveriesPublic,
    summary="Webhook deliveries of a job",
    responses=error_responses(400, 401, 403, 404, 429),
)
def list_deliveries(job_id: JobId, principal: Reader, services: ServicesDep) -> WebhookDeliveriesPublic:
    """Every attempt to deliver this job's webhook, with the receiver's status code."""
    row = load_job(services, job_id=job_id, tenant_id=principal.tenant_id)
    with services.db.begin() as session:
        rows = store.list_webhook_deliveries(session=session, job_id=job_id)
    return _deliveries(row, rows)


def _deliveries(row: JobRow, rows: list[WebhookDeliveryRow]) -> WebhookDeliveriesPublic:
    status = row.webhook_status if row.webhook_status in ("pending", "delivered", "failed") else "none"
    return WebhookDeliveriesPublic(
        status=status,
        next_attempt_at=row.webhook_next_at if status == "pending" else None,
        data=[delivery_public(r) for r in rows],
    )


@router.post(
    "/{job_id}/webhooks/redeliver",
    status_code=202,
    response_model=WebhookDeliveriesPublic,
    summary="Send a job's webhook again",
    responses=error_responses(400, 401, 403, 404, 409, 429),
)
def redeliver_webhook(
    request: Request, job_id: JobId, principal: Writer, services: ServicesDep
) -> WebhookDeliveriesPublic:
    """Start the webhook of a finished job again, now: a new `Veil-Delivery` id and the retry schedule
    from its start. Earlier attempts stay listed. 409 when the job is not finished or has no webhook."""
    load_job(services, job_id=job_id, tenant_id=principal.tenant_id)
    with services.db.begin() as session:
        row = store.redeliver_webhook(session=session, job_id=job_id, now=services.clock.now())
        if row is None:
            raise JobConflict("only a finished job with a webhook can be redelivered")
        rows = store.list_webhook_deliveries(session=session, job_id=job_id)
        public_view = _deliveries(row, rows)
    audit(
        services,
        request,
        actor=principal.key_id,
        action="webhook.redeliver",
        tenant_id=principal.tenant_id,
        job_id=job_id,
    )
    services.notifier.dispatch(job_id)
    return public_view
