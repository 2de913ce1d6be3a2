"""Public shapes of API keys and audit events (pydantic), and the scopes a key may hold."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from veil.auth.tables import ApiKeyRow, AuditRow

__all__ = [
    "SCOPES",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "ApiKeysPublic",
    "AuditEntryPublic",
    "AuditPublic",
    "Scope",
    "api_key_public",
    "audit_public",
]

Scope = Literal["jobs:read", "jobs:write", "admin"]
SCOPES: tuple[Scope, ...] = ("jobs:read", "jobs:write", "admin")


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiKeyPublic(_Public):
    id: str = Field(description="Key id (not the secret).", max_length=40)
    name: str = Field(description="Human name given at creation.", max_length=100)
    tenant: str = Field(
        description="Tenant the key acts for; it sees only this tenant's jobs.", max_length=64
    )
    scopes: list[Scope] = Field(description="What the key may do.")
    prefix: str = Field(description="First characters of the key, to recognise it.", max_length=20)
    rate_limit_per_minute: int | None = Field(
        None, ge=1, description="Own rate limit; null uses the default."
    )
    created_at: datetime = Field(description="Creation time (UTC).")
    revoked_at: datetime | None = Field(None, description="Revocation time (UTC); revoked keys get 401.")
    last_used_at: datetime | None = Field(None, description="Last request, to within a minute (UTC).")


class ApiKeysPublic(_Public):
    data: list[ApiKeyPublic] = Field(description="Keys, oldest first.")


class ApiKeyCreated(ApiKeyPublic):
    """Returned once, at creation: the only time the key and its webhook secret are shown."""

    key: str = Field(description="The API key, for `Authorization: Bearer …`. Stored only as a hash.")
    webhook_secret: str = Field(description="Verifies the `Veil-Signature` of webhooks for this key's jobs.")


class AuditEntryPublic(_Public):
    id: int = Field(ge=1, description="Increasing event number.")
    at: datetime = Field(description="When (UTC).")
    actor: str = Field(description="Key id, or `system` / `worker` / `cli`.", max_length=64)
    action: str = Field(
        description="What, e.g. `job.create`, `result.download`, `retention.purge`.", max_length=64
    )
    outcome: str = Field(description="`ok`, or an error code.", max_length=64)
    job_id: str | None = Field(None, description="The job concerned.", max_length=40)
    request_id: str | None = Field(None, description="X-Request-ID of the API call.", max_length=64)
    input_sha256: str | None = Field(None, description="SHA-256 of the input involved.", max_length=64)
    output_sha256: str | None = Field(None, description="SHA-256 of the output involved.", max_length=64)


class AuditPublic(_Public):
    data: list[AuditEntryPublic] = Field(description="Events, newest first.")
    next_cursor: str | None = Field(None, description="Pass as `cursor` for older events; null at the start.")


def api_key_public(row: ApiKeyRow) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=row.id,
        name=row.name,
        tenant=row.tenant_id,
        scopes=[s for s in SCOPES if s in row.scopes.split()],
        prefix=row.prefix,
        rate_limit_per_minute=row.rate_limit_per_minute,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def audit_public(row: AuditRow) -> AuditEntryPublic:
    return AuditEntryPublic(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        outcome=row.outcome,
        job_id=row.job_id,
        request_id=row.request_id,
        input_sha256=row.input_sha256,
        output_sha256=row.output_sha256,
    )
