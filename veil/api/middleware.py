"""Request context: an ``X-Request-ID`` on every response, one structured access-log line and
the HTTP metrics per request, and a read timeout on request bodies.

A client that stops sending its body for ``body_timeout_s`` (a stalled or trickling upload that
would hold a connection and a scratch file for ever) gets 408 ``request_timeout``: the wrapped
``receive`` raises ``RequestTimeout`` inside whichever handler reads the body, and the error
handlers answer it like any other ``VeilError``. Once the body is complete, ``receive`` is passed
through untouched (streaming responses wait on it for the disconnect).

Pure ASGI (not ``BaseHTTPMiddleware``) so that streamed uploads and downloads pass
through untouched. The log line names the route *template* (``/v1/jobs/{job_id}``),
never the query string (signed links carry their signature there) or client address.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veil.api.errors import RequestTimeout
from veil.api.services import HttpMetrics

__all__ = ["RequestContextMiddleware", "new_request_id"]

log = logging.getLogger("veil.api.access")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_request_id() -> str:
    return f"req_{secrets.token_hex(8)}"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, body_timeout_s: float | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _CLIENT_ID.match(incoming) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers.append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, self._timed(receive), send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", "?"))
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.duration.labels(method=method, route=route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "key_id": state.get("key_id"),
                },
            )

    def _timed(self, receive: Receive) -> Receive:
        timeout = self.body_timeout_s
        if timeout is None:
            return receive
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body sent nothing for {timeout:g} s; send it without pauses"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return timed_receive
