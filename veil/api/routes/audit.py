"""``/v1/audit``: the tenant's append-only audit log, for admin keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from veil.api.deps import Admin, ServicesDep
from veil.api.errors import BadRequest, error_responses
from veil.auth import audit as audit_log
from veil.auth.schemas import AuditPublic, audit_public
from veil.jobs import store

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=AuditPublic,
    summary="Read the audit log",
    responses=error_responses(400, 401, 403, 429),
)
def list_audit(
    principal: Admin,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
    ] = None,
    job_id: Annotated[str | None, Query(max_length=40, description="Only events of this job.")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="Only this action, e.g. `job.create`.")
    ] = None,
) -> AuditPublic:
    """Who did what to which job, when, with which outcome and file hashes; newest first.
    Holds no detections and no file names."""
    before = None
    if cursor is not None:
        try:
            before = int(store.decode_cursor(cursor, parts=1)[0])
        except ValueError as exc:
            raise BadRequest("invalid cursor") from exc
    with services.db.begin() as session:
        rows = audit_log.list_audit(
            session=session,
            tenant_id=principal.tenant_id,
            limit=limit + 1,
            before_id=before,
            job_id=job_id,
            action=action,
        )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = store.encode_cursor(str(rows[-1].id))
    return AuditPublic(data=[audit_public(r) for r in rows], next_cursor=next_cursor)
