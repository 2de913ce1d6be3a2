"""``Annotated`` dependencies: the services, the authenticated key, and scope checks.

An API key goes in ``Authorization: Bearer``. Unknown and revoked keys get 401; a key
without the route's scope gets 403; ``admin`` includes every scope of its tenant.
With ``VEIL_OIDC_ISSUER`` set, a JWT from the site's identity provider works there too
(``veil.auth.oidc``): its tenant and scopes come from its claims.
The per-key rate limit is enforced here, after authentication, before any work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError

from veil.api.errors import Forbidden, RateLimited, Unauthorized
from veil.api.services import Services
from veil.auth import TokenInvalid, looks_like_jwt
from veil.auth.keys import find_api_key, touch_api_key
from veil.auth.ratelimit import retry_after
from veil.auth.schemas import Scope
from veil.errors import VeilError

__all__ = [
    "Admin",
    "Authenticated",
    "Principal",
    "Reader",
    "ServicesDep",
    "Writer",
    "get_services",
    "require",
]

log = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="An API key from `veil keys create`.")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True)
class Principal:
    """The API key behind a request."""

    key_id: str
    name: str
    tenant_id: str
    scopes: frozenset[str]

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def authenticate(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("send `Authorization: Bearer <API key>`")
    if services.oidc is not None and looks_like_jwt(credentials.credentials):
        return _token_principal(request, services, credentials.credentials)
    now = services.clock.now()
    with services.db.begin() as session:
        row = find_api_key(session=session, key=credentials.credentials)
    if row is None:
        raise Unauthorized("unknown or revoked API key")
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        _touch(services, row.id, now)
    request.state.key_id = row.id
    limit = row.rate_limit_per_minute or services.settings.rate_limit_per_minute
    wait_s = services.limiter.acquire(row.id, per_minute=limit)
    if wait_s > 0:
        raise RateLimited(
            f"rate limit of {limit} requests per minute exceeded",
            retry_after_s=retry_after(wait_s),
        )
    return Principal(
        key_id=row.id, name=row.name, tenant_id=row.tenant_id, scopes=frozenset(row.scopes.split())
    )


def _token_principal(request: Request, services: Services, token: str) -> Principal:
    assert services.oidc is not None
    try:
        identity = services.oidc.verify(token)
    except TokenInvalid as exc:
        raise Unauthorized(exc.message) from exc
    request.state.key_id = identity.caller_id
    limit = services.settings.rate_limit_per_minute
    wait_s = services.oidc_limiter.acquire(identity.caller_id, per_minute=limit)
    if wait_s > 0:
        raise RateLimited(
            f"rate limit of {limit} requests per minute exceeded", retry_after_s=retry_after(wait_s)
        )
    return Principal(
        key_id=identity.caller_id, name="oidc", tenant_id=identity.tenant, scopes=identity.scopes
    )


def _touch(services: Services, key_id: str, now: datetime) -> None:
    """Record ``last_used_at``, at most once a minute. Bookkeeping only: a database that cannot be
    written (a full disk) must not turn a read into a 500, so a failure is logged and skipped."""
    try:
        with services.db.begin() as session:
            touch_api_key(session=session, key_id=key_id, now=now)
    except (VeilError, SQLAlchemyError) as exc:
        log.warning("API key last-use not recorded", extra={"error_type": type(exc).__name__})


Authenticated = Annotated[Principal, Depends(authenticate)]


def require(scope: Scope) -> Callable[[Principal], Principal]:
    def check(principal: Authenticated) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"this API key lacks the `{scope}` scope")
        return principal

    return check


Reader = Annotated[Principal, Depends(require("jobs:read"))]
Writer = Annotated[Principal, Depends(require("jobs:write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
