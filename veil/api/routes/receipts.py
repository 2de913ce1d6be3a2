"""Signed receipts: ``GET /v1/jobs/{id}/receipt`` and the public keys that verify them,
``GET /v1/receipt-keys``.

A receipt is issued from what the job store and the job's report hold (hashes, spec, models, counts,
times) and signed with the current key. Its ``issued`` time is the job's finish time and Ed25519 is
deterministic, so the same job gives the same receipt bytes until the key is rotated; a receipt
signed by an earlier key keeps verifying because old public keys stay published.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from veil.api.deps import Reader, ServicesDep
from veil.api.errors import Expired, error_responses
from veil.api.job_access import load_job
from veil.api.services import Services
from veil.errors import JobConflict, StorageNotFound
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.receipts import FileFacts, Receipt, ReceiptTimes, SignedReceipt, sign_receipt
from veil.receipts.model import make_receipt
from veil.report import Report

__all__ = ["receipt_for_job", "router"]

router = APIRouter(tags=["receipts"])

JobId = Annotated[str, Path(description="Job id.", max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


class ReceiptKeyPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_id: str = Field(max_length=80, description="The `signature.key_id` of receipts it signed.")
    alg: str = Field(max_length=20, description="Always `Ed25519`.")
    public_key: str = Field(max_length=100, description="Raw 32-byte public key, base64.")
    public_key_pem: str = Field(max_length=400, description="The same key as PEM (SubjectPublicKeyInfo).")
    current: bool = Field(description="Signs new receipts; the others signed receipts before a rotation.")


class ReceiptKeysPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[ReceiptKeyPublic] = Field(description="Every key that signed receipts here, current first.")


def _report(services: Services, row: JobRow) -> Report:
    if row.purged_at is not None or row.report_key is None:
        raise Expired("retention deleted this job's report; a receipt can no longer be issued for it")
    try:
        data = b"".join(services.storage.iter_range(row.report_key))
    except StorageNotFound as exc:
        raise Expired("the job's report is no longer stored; a receipt can no longer be issued") from exc
    return Report.model_validate_json(data)


def receipt_for_job(row: JobRow, report: Report) -> Receipt:
    """What a succeeded job's receipt states. No boxes, no file names (the API keeps none)."""
    assert row.finished_at is not None
    output = None
    if row.output_sha256 is not None and row.output_size is not None:
        output = FileFacts(
            sha256=row.output_sha256, size=row.output_size, content_type=row.output_content_type
        )
    return make_receipt(
        spec=dict(row.spec),
        job_id=row.id,
        veil_version=report.veil_version,
        mode="detect" if row.mode == "detect" else "redact",
        kind=report.kind,
        input=FileFacts(sha256=row.input_sha256, size=row.input_size),
        output=output,
        models=report.models,
        counts={str(k): int(v) for k, v in (row.counts or {}).items()},
        frames=row.frames,
        masked_frames=row.masked_frames,
        times=ReceiptTimes(
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            processing_s=None if row.processing_s is None else round(row.processing_s, 4),
        ),
    )


@router.get(
    "/v1/jobs/{job_id}/receipt",
    summary="Signed receipt of a job",
    response_model=SignedReceipt,
    responses=error_responses(400, 401, 403, 404, 409, 410, 429),
)
def get_receipt(job_id: JobId, principal: Reader, services: ServicesDep) -> Response:
    """The Ed25519-signed receipt of a succeeded job: SHA-256 of input and output, the spec (without the
    webhook and region boxes), model names and weights' SHA-256, Veil version, counts and times. Save it
    with the output; `veil verify RECEIPT --output FILE --public-key KEYS` checks it offline."""
    row = load_job(services, job_id=job_id, tenant_id=principal.tenant_id)
    if row.state is not JobState.SUCCEEDED:
        raise JobConflict(f"the job is {row.state.value}; only succeeded jobs have a receipt")
    signed = sign_receipt(receipt_for_job(row, _report(services, row)), services.receipt_keys)
    body: dict[str, Any] = signed.model_dump(mode="json")
    return JSONResponse(body, headers={"Cache-Control": "private, no-store"})


@router.get("/v1/receipt-keys", response_model=ReceiptKeysPublic, summary="Public keys that verify receipts")
def receipt_keys(services: ServicesDep) -> ReceiptKeysPublic:
    """Every public key that signed receipts on this service, the current one first. No key needed: they
    are public. Keep a copy beside archived receipts."""
    return ReceiptKeysPublic.model_validate({"keys": services.receipt_keys.published()})
