"""``/v1/batches``: several files with one spec; one status with each job's state; one webhook once every job
is finished (``batch.completed``, the batch object as body); a ZIP of all results.

A batch is its jobs: each file becomes an ordinary job (``GET /v1/jobs/{id}`` works on it) that carries the
batch id and its place. Either every file is accepted or none is: when one is refused (not media, over a
limit), the jobs already made for the others are deleted and the error names the file's place.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from veil.api.deps import Reader, ServicesDep, Writer
from veil.api.errors import BadRequest, error_responses, request_id_of
from veil.api.job_access import job_base_url
from veil.api.services import Services
from veil.api.submit import BatchSlot, Submitted, require_queue_room, submit_job
from veil.api.upload import UPLOAD_REQUEST_BODY, Upload, receive_uploads
from veil.clock import utcnow
from veil.errors import JobConflict, JobNotFound, VeilError
from veil.ids import new_id
from veil.jobs import blobs, store
from veil.jobs.schemas import BatchPublic, batch_public
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow

__all__ = ["MAX_BATCH_FILES", "router"]

router = APIRouter(prefix="/v1/batches", tags=["batches"])

MAX_BATCH_FILES = 100
BatchId = Annotated[str, Path(description="Batch id.", max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


def _load(services: Services, batch_id: str, tenant_id: str) -> list[JobRow]:
    with services.db.begin() as session:
        rows = store.batch_jobs(session=session, batch_id=batch_id, tenant_id=tenant_id)
    if not rows:
        raise JobNotFound("no such batch")
    return rows


def _submit_all(
    services: Services, uploads: list[Upload], *, tenant_id: str, key_id: str, request_id: str
) -> tuple[str, list[Submitted]]:
    batch_id = new_id("bat")
    made: list[Submitted] = []
    try:
        for index, upload in enumerate(uploads):
            try:
                made.append(
                    submit_job(
                        services,
                        tenant_id=tenant_id,
                        key_id=key_id,
                        upload=upload,
                        idempotency_key=None,
                        request_id=request_id,
                        batch=BatchSlot(batch_id=batch_id, index=index),
                    )
                )
            except VeilError as exc:
                exc.message = f"file {index + 1} of {len(uploads)}: {exc.message}"
                exc.args = (exc.message,)
                raise
    except BaseException:
        now = utcnow()
        for submitted in made:  # all or nothing: the batch was not accepted
            with services.db.begin() as session:
                store.mark_deleted(
                    session=session, job_id=submitted.job.id, now=now, retention=services.ctx.retention
                )
            services.storage.delete_prefix(blobs.job_prefix(submitted.job.id))
        raise
    return batch_id, made


@router.post(
    "",
    status_code=202,
    response_model=BatchPublic,
    summary="Submit a batch",
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503),
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
)
async def create_batch(request: Request, principal: Writer, services: ServicesDep) -> Response:
    """Upload several files (repeat the multipart field `file`, up to 100) with one JSON `spec`. Each file
    becomes a job; a `webhook` in the spec is sent once, when every job is finished, with the batch as body
    (event `batch.completed`)."""
    uploads, _spec = await receive_uploads(
        request,
        scratch_dir=services.ctx.scratch_dir,
        max_bytes=services.settings.max_upload_mb * (1 << 20),
        max_files=MAX_BATCH_FILES,
    )
    try:
        if not uploads:
            raise BadRequest("send the files in repeated `file` fields")
        refusal = "the job queue has no room for this batch; retry later"
        await run_in_threadpool(require_queue_room, services, jobs=len(uploads), refusal=refusal)
        batch_id, made = await run_in_threadpool(
            _submit_all,
            services,
            uploads,
            tenant_id=principal.tenant_id,
            key_id=principal.key_id,
            request_id=request_id_of(request),
        )
    finally:
        for upload in uploads:
            upload.discard()
    for submitted in made:
        services.queue.enqueue(submitted.job.id)
    rows = await run_in_threadpool(_load, services, batch_id, principal.tenant_id)
    body = batch_public(batch_id, rows, base_url=job_base_url(services)).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/batches/{batch_id}"})


@router.get(
    "/{batch_id}",
    response_model=BatchPublic,
    summary="Get a batch",
    responses=error_responses(400, 401, 403, 404, 429),
)
def get_batch(batch_id: BatchId, principal: Reader, services: ServicesDep) -> BatchPublic:
    """The batch's state (`running` or `finished`), jobs per state, and every job."""
    rows = _load(services, batch_id, principal.tenant_id)
    return batch_public(batch_id, rows, base_url=job_base_url(services))


class _Sink:
    """A write-only stream ``zipfile`` writes into (without seeking), drained between chunks."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.position = 0

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _zip_stream(services: Services, batch_id: str, rows: list[JobRow]) -> Iterator[bytes]:
    sink = _Sink()
    manifest: list[dict[str, Any]] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[call-overload]
        for row in rows:
            entry: dict[str, Any] = {"job": row.id, "state": JobState(row.state).value, "file": None}
            if row.state is JobState.SUCCEEDED and row.output_key is not None and row.purged_at is None:
                name = f"{(row.batch_index or 0) + 1:03d}-{row.id}{PurePosixPath(row.output_key).suffix}"
                info = zipfile.ZipInfo(name, date_time=(row.finished_at or row.created_at).timetuple()[:6])
                with archive.open(info, "w", force_zip64=True) as member:
                    for chunk in services.storage.iter_range(row.output_key):
                        member.write(chunk)
                        if len(sink.buffer) >= 1 << 20:
                            yield sink.take()
                entry.update(file=name, sha256=row.output_sha256)
                yield sink.take()
            manifest.append(entry)
        archive.writestr("batch.json", json.dumps({"batch": batch_id, "jobs": manifest}, indent=2))
    yield sink.take()


@router.get(
    "/{batch_id}/results.zip",
    summary="Download every result as a ZIP",
    response_class=Response,
    responses={
        200: {"description": "The results, plus batch.json.", "content": {"application/zip": {}}},
        **error_responses(400, 401, 403, 404, 409, 429),
    },
)
def get_results(batch_id: BatchId, principal: Reader, services: ServicesDep) -> Response:
    """Once the batch is finished: each succeeded job's result as `NNN-<job id>.<ext>` (NNN is the file's
    place in the batch) and `batch.json` listing every job with its state and result SHA-256. Streamed;
    no file names from the upload are kept."""
    rows = _load(services, batch_id, principal.tenant_id)
    waiting = sum(1 for row in rows if not JobState(row.state).terminal)
    if waiting:
        raise JobConflict(f"the batch is running: {waiting} of {len(rows)} jobs are not finished")
    return StreamingResponse(
        _zip_stream(services, batch_id, rows),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{batch_id}.zip"',
            "Cache-Control": "private, no-store",
        },
    )
