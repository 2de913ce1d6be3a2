"""What several routers do with a job: find it for the caller's tenant, show it, and audit access to it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request

from veil.api.errors import request_id_of
from veil.api.services import Services
from veil.auth.audit import append_audit
from veil.errors import JobNotFound
from veil.jobs import store
from veil.jobs.schemas import job_public
from veil.jobs.tables import JobRow

__all__ = ["JobId", "audit", "audit_job", "base_url", "job_base_url", "load_job", "public"]

JobId = Annotated[str, Path(description="Job id.", max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


def base_url(services: Services, request: Request) -> str:
    """Where clients reach the API: for URLs that must be absolute (signed links)."""
    return (services.settings.public_url or str(request.base_url)).rstrip("/")


def job_base_url(services: Services) -> str:
    """The prefix of a job's URLs: ``VEIL_PUBLIC_URL`` when set, else none (relative URLs). The webhook
    body uses the same, so a job reads the same in ``GET`` and in its webhook."""
    return (services.settings.public_url or "").rstrip("/")


def public(services: Services, request: Request, row: JobRow) -> dict[str, Any]:
    """The job as ``JobPublic`` JSON."""
    return job_public(row, base_url=job_base_url(services)).model_dump(mode="json")


def load_job(services: Services, *, job_id: str, tenant_id: str) -> JobRow:
    """The tenant's job; ``JobNotFound`` (404) when it does not exist or belongs to another tenant."""
    with services.db.begin() as session:
        row = store.get_job(session=session, job_id=job_id, tenant_id=tenant_id)
    if row is None:
        raise JobNotFound("no such job")
    return row


def audit(
    services: Services,
    request: Request,
    *,
    actor: str,
    action: str,
    tenant_id: str | None,
    job_id: str | None,
    outcome: str = "ok",
    row: JobRow | None = None,
) -> None:
    """Append one audit line (with the request id and the job's content hashes, never its content)."""
    with services.db.begin() as session:
        append_audit(
            session=session,
            actor=actor,
            action=action,
            outcome=outcome,
            now=services.clock.now(),
            tenant_id=tenant_id,
            job_id=job_id,
            request_id=request_id_of(request),
            input_sha256=None if row is None else row.input_sha256,
            output_sha256=None if row is None else row.output_sha256,
        )


def audit_job(services: Services, request: Request, *, actor: str, action: str, row: JobRow) -> None:
    """``audit`` of an action on the job ``row``: its tenant, id and content hashes."""
    audit(services, request, actor=actor, action=action, tenant_id=row.tenant_id, job_id=row.id, row=row)
