"""``create_app(settings)``: the FastAPI application. No import-time globals: every app owns its
database engine, storage, queue, workers and metrics registry (``veil.api.services``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi

from veil import __version__
from veil.api.errors import install_error_handlers
from veil.api.middleware import RequestContextMiddleware
from veil.api.params import reject_unknown_query
from veil.api.ride_through import DatabaseRideThroughMiddleware
from veil.api.routes import account, audit, batches, health, jobs, links, receipts, tracking, web
from veil.api.schemas import JobCreate
from veil.api.services import Services
from veil.clock import Clock
from veil.jobs.queue import JobQueue
from veil.jobs.runner import JobRunner
from veil.settings import Settings, get_settings
from veil.storage import Storage

__all__ = ["create_app"]

DESCRIPTION = """
Veil finds faces and licence plates in images and video, tracks them, and masks them.

**Flow.** `POST /v1/jobs` with a file and a JSON spec → `202` and a job → poll `GET /v1/jobs/{id}`
(or pass `?wait=30`, or receive the signed webhook) → `GET /v1/jobs/{id}/result`.
A `detect` job returns tracks (`/report`, `/tracks/{tid}/thumbnail`); a `redact` job with
`source_job`, `filter`, `regions` and `exclusion_zones` then renders without detecting again.

**Auth.** `Authorization: Bearer <key>` from `veil keys create`. Scopes: `jobs:read`, `jobs:write`,
`admin`. A key sees only its tenant's jobs (others are 404).

**Errors.** Always `{"error": {"code", "message", "request_id"}}` with a stable `code`, and an
`X-Request-ID` header on every response. 429 and 503 carry `Retry-After`.

**Webhooks.** `Veil-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`, with the
webhook secret shown when the key was created. Retried on a schedule of more than 24 hours
(`VEIL_WEBHOOK_RETRY_SCHEDULE_S`); every attempt is listed at `/v1/jobs/{id}/webhooks` as it happens, and
`POST /v1/jobs/{id}/webhooks/redeliver` sends it again. `webhook.headers` (e.g. the receiver's own
`Authorization`) are stored encrypted and never returned.

**Unknown parameters** are a 400 `unknown_parameter` naming them, never ignored.
"""


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The generated schema plus the multipart body of ``POST /v1/jobs`` (read by hand, for streaming)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            upload = JobCreate.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in upload.pop("$defs", {}).items():
                components.setdefault(name, definition)
            upload["properties"]["file"] = {
                "type": "string",
                "format": "binary",
                "description": upload["properties"]["file"].get("description", ""),
            }
            components["JobCreate"] = upload
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def create_app(
    settings: Settings | None = None,
    *,
    storage: Storage | None = None,
    queue: JobQueue | None = None,
    runner: JobRunner | None = None,
    webhook_client: httpx.Client | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The API for ``settings`` (default: from the environment). Backends (and the clock) may be injected."""
    settings = settings or get_settings()
    services = Services.build(
        settings, storage=storage, queue=queue, runner=runner, webhook_client=webhook_client, clock=clock
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.start)  # migrations first: nothing serves on an old schema
        try:
            yield
        finally:
            await run_in_threadpool(services.stop)

    app = FastAPI(
        title="Veil",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(reject_unknown_query)],  # an ignored parameter would be a silent no-op
    )
    app.state.services = services
    install_error_handlers(app)
    # added first, so it runs inside RequestContextMiddleware: one request id and log line per request
    app.add_middleware(DatabaseRideThroughMiddleware, budget_s=services.settings.db_ride_through_s)
    app.add_middleware(
        RequestContextMiddleware,
        metrics=services.http_metrics,
        body_timeout_s=services.settings.body_timeout_s,
    )
    for module in (jobs, tracking, batches, receipts, links, account, audit, health, web):
        app.include_router(module.router)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app
