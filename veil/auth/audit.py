"""The audit log: who (key id, `worker`, `system`, `cli`) did what to which job, when, and the outcome.

Append-only: there is no update or delete function, and the table refuses both. Entries hold hashes,
never content.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from veil.auth.tables import AuditRow

__all__ = ["append_audit", "list_audit"]


def append_audit(
    *,
    session: Session,
    actor: str,
    action: str,
    outcome: str,
    now: datetime,
    tenant_id: str | None = None,
    job_id: str | None = None,
    request_id: str | None = None,
    input_sha256: str | None = None,
    output_sha256: str | None = None,
) -> None:
    """Add one audit event. There is no update or delete: the table refuses both."""
    session.add(
        AuditRow(
            at=now,
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            outcome=outcome,
            job_id=job_id,
            request_id=request_id,
            input_sha256=input_sha256,
            output_sha256=output_sha256,
        )
    )
    session.flush()


def list_audit(
    *,
    session: Session,
    tenant_id: str,
    limit: int,
    before_id: int | None = None,
    job_id: str | None = None,
    action: str | None = None,
) -> list[AuditRow]:
    """Newest first. System events that concern the tenant's jobs carry its tenant id too."""
    query = select(AuditRow).where(AuditRow.tenant_id == tenant_id)
    if before_id is not None:
        query = query.where(AuditRow.id < before_id)
    if job_id is not None:
        query = query.where(AuditRow.job_id == job_id)
    if action is not None:
        query = query.where(AuditRow.action == action)
    return list(session.scalars(query.order_by(AuditRow.id.desc()).limit(limit)))
