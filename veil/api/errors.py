"""Every HTTP error, in one place: ``veil.errors`` codes (and the API's own) → status codes.

Every error body is ``{"error": {"code", "message", "request_id"}}`` and every response
carries ``X-Request-ID``. Messages come from ``VeilError.message``, which by contract
never holds file contents, detections or secrets; unexpected exceptions become a
generic ``internal_error`` (the traceback goes to the log, not to the client).

=====================================  ======
code                                   status
=====================================  ======
bad_request, unknown_parameter,        400
client_disconnected
unauthorized                           401
forbidden, link_invalid, link_expired  403
not_found                              404
request_timeout                        408
method_not_allowed                     405
conflict, canceled                     409
expired                                410
upload_too_large                       413
unsupported_media,                     415
unsupported_content_type
range_not_satisfiable                  416
invalid_spec, webhook_url_refused,     422
corrupt_media, media_too_large,
media_error
rate_limited                           429 (Retry-After)
internal_error, job_error,             500
storage_error, model_error, ...
queue_full, unavailable,               503 (Retry-After)
model_missing
storage_full                           507 (Retry-After)
=====================================  ======
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from veil.errors import QueueFull, VeilError

__all__ = [
    "STATUS_BY_CODE",
    "ApiError",
    "BadRequest",
    "ClientGone",
    "ErrorBody",
    "ErrorResponse",
    "Expired",
    "Forbidden",
    "LinkExpired",
    "LinkInvalid",
    "RangeNotSatisfiable",
    "RateLimited",
    "RequestTimeout",
    "Unauthorized",
    "Unavailable",
    "UnsupportedContentType",
    "UploadTooLarge",
    "error_response",
    "error_responses",
    "install_error_handlers",
    "request_id_of",
    "status_for",
]

log = logging.getLogger(__name__)


class ApiError(VeilError):
    """Errors that exist only at the HTTP boundary. ``headers`` are added to the response."""

    headers: dict[str, str] = {}


class BadRequest(ApiError):
    code = "bad_request"


class Unauthorized(ApiError):
    code = "unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    code = "forbidden"


class LinkInvalid(ApiError):
    code = "link_invalid"


class LinkExpired(ApiError):
    code = "link_expired"


class Expired(ApiError):
    code = "expired"


class PreviewNotFound(ApiError):
    code = "not_found"


class UploadTooLarge(ApiError):
    code = "upload_too_large"


class UnsupportedContentType(ApiError):
    code = "unsupported_content_type"


class RangeNotSatisfiable(ApiError):
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.headers = {"Content-Range": f"bytes */{size}"}


class RateLimited(ApiError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, retry_after_s))}


class RequestTimeout(ApiError):
    code = "request_timeout"
    headers = {"Connection": "close"}


class ClientGone(ApiError):
    """The client disconnected mid-request: nobody reads the answer, and it is no server error."""

    code = "client_disconnected"


class Unavailable(ApiError):
    code = "unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, retry_after_s))}


STATUS_BY_CODE: dict[str, int] = {
    "bad_request": 400,
    "client_disconnected": 400,
    "unknown_parameter": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "request_timeout": 408,
    "link_invalid": 403,
    "link_expired": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "canceled": 409,
    "expired": 410,
    "upload_too_large": 413,
    "unsupported_media": 415,
    "unsupported_content_type": 415,
    "range_not_satisfiable": 416,
    "invalid_spec": 422,
    "webhook_url_refused": 422,
    "media_error": 422,
    "corrupt_media": 422,
    "media_too_large": 422,
    "rate_limited": 429,
    "queue_full": 503,
    "unavailable": 503,
    "model_missing": 503,
    "storage_full": 507,
}


def status_for(code: str) -> int:
    """The HTTP status of an error code; anything unlisted is a server-side failure (500)."""
    return STATUS_BY_CODE.get(code, 500)


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Stable machine-readable error code (see the table in the API docs).")
    message: str = Field(description="Human-readable explanation. Never contains file contents or secrets.")
    request_id: str = Field(
        description="Same as the X-Request-ID response header; quote it in support requests."
    )


class ErrorResponse(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


_DESCRIPTIONS = {
    400: "Malformed request (parameters, headers, body).",
    401: "Missing, unknown or revoked API key.",
    403: "The key lacks the scope, or the signed link is invalid or expired.",
    404: "No such job for this tenant.",
    408: "The request body paused longer than VEIL_BODY_TIMEOUT_S.",
    409: "The job is not in a state that allows this.",
    410: "Retention already deleted the blobs.",
    413: "Upload over VEIL_MAX_UPLOAD_MB.",
    415: "The upload is not an image or video Veil can read, or the body is not multipart.",
    416: "The Range cannot be satisfied.",
    422: "Invalid spec, or media over the limits for pixels or duration.",
    429: "Rate limit of the key exceeded; see Retry-After.",
    503: "Queue full or service not ready; see Retry-After.",
    507: "The data disk or job database is full; see Retry-After.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses (plus 500, always possible)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in (*statuses, 500):
        description = _DESCRIPTIONS.get(status, "Internal error.")
        responses[status] = {"model": ErrorResponse, "description": description}
    return responses


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "-")


def error_response(
    request: Request,
    *,
    code: str,
    message: str,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = request_id_of(request)
    body = ErrorResponse(error=ErrorBody(code=code, message=message, request_id=request_id))
    return JSONResponse(
        body.model_dump(),
        status_code=status or status_for(code),
        headers={**(headers or {}), "X-Request-ID": request_id},
    )


def _veil_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VeilError)
    headers = dict(getattr(exc, "headers", {}) or {})
    if isinstance(exc, QueueFull):
        headers.setdefault("Retry-After", "10")
    if exc.code in ("model_missing",):
        headers.setdefault("Retry-After", "30")
    if exc.code == "storage_full":
        headers.setdefault("Retry-After", "60")
    if exc.code == "unavailable":
        headers.setdefault("Retry-After", "5")
    status = status_for(exc.code)
    if status >= 500:
        log.error("request failed", extra={"code": exc.code, "request_id": request_id_of(request)})
    return error_response(request, code=exc.code, message=exc.message, headers=headers)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")  # message and location, never the value
    return error_response(request, code="bad_request", message="; ".join(problems) or "invalid request")


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "upload_too_large",
    415: "unsupported_content_type",
    503: "unavailable",
}


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "internal_error" if exc.status_code >= 500 else "bad_request")
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    return error_response(
        request, code=code, message=message, status=exc.status_code, headers=dict(exc.headers or {})
    )


def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    """A client that went away mid-body is logged as that, in one line without a traceback."""
    log.info("client disconnected", extra={"request_id": request_id_of(request)})
    return error_response(request, code="client_disconnected", message="the client disconnected")


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unhandled error",
        extra={"request_id": request_id_of(request), "error_type": type(exc).__name__},
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(request, code="internal_error", message="internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VeilError, _veil_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
