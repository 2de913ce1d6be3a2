"""The review page (``/review``): static files from ``veil.web``, outside the OpenAPI contract."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

from veil.errors import JobNotFound

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_ASSETS = {
    "review.js": "text/javascript",
    "api.js": "text/javascript",
    "jobs.js": "text/javascript",
    "editor.js": "text/javascript",
    "review.css": "text/css",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return resources.files("veil.web").joinpath(name).read_bytes()


@router.get("/review")
def review_page() -> Response:
    return Response(_read("review.html"), media_type="text/html; charset=utf-8", headers=_SECURITY_HEADERS)


@router.get("/review/{asset}")
def review_asset(asset: str) -> Response:
    if asset not in _ASSETS:
        raise JobNotFound("no such file")
    return Response(_read(asset), media_type=_ASSETS[asset], headers=_SECURITY_HEADERS)
