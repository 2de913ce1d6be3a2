"""``/healthz`` (the process answers), ``/readyz`` (it can take and run jobs), ``/metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from veil.api.deps import ServicesDep
from veil.api.schemas import HealthPublic, ReadyPublic

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic, summary="Liveness")
def healthz() -> HealthPublic:
    return HealthPublic(status="ok")


@router.get(
    "/readyz",
    response_model=ReadyPublic,
    summary="Readiness",
    responses={503: {"model": ReadyPublic, "description": "A dependency is not ready (see `checks`)."}},
)
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when the database and storage answer and, where this process runs jobs, the models are loaded."""
    checks = services.readiness()
    ready = all(value == "ok" for value in checks.values())
    body = ReadyPublic(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format.", "content": {"text/plain": {}}}},
)
def metrics(services: ServicesDep) -> Response:
    """Jobs by state, queue depth, processing seconds, frames per second, HTTP requests. No job ids."""
    return Response(generate_latest(services.registry), media_type=CONTENT_TYPE_LATEST)
