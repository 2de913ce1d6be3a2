"""Reads ride through a short database outage instead of failing.

When PostgreSQL restarts (an upgrade, a failover), it refuses connections for a few seconds, and every
request that needs it ends ``503 unavailable``. A client polling its job would see errors for a
restart the operator planned. A safe request (GET or HEAD) changes nothing, so it can simply be run
again: this middleware holds back a ``503 unavailable`` answer to one, waits with a growing pause,
and runs the request again, until it gets any other answer or ``budget_s`` has passed; then the last
``503`` goes out as it was, ``Retry-After`` included.

Writes are not repeated (a submission may already have stored its upload), and ``/healthz`` and
``/readyz`` are not either: a probe must see the outage as it is.

Pure ASGI, like ``RequestContextMiddleware``: a response that is not a ``503`` is passed through as
it streams; only a ``503``'s start and body (a small JSON error) are held.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DatabaseRideThroughMiddleware"]

_SAFE_METHODS = frozenset({"GET", "HEAD"})
_PROBES = frozenset({"/healthz", "/readyz"})
_FIRST_PAUSE_S = 0.25
_MAX_PAUSE_S = 2.0


class DatabaseRideThroughMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        budget_s: float,
        clock: Callable[[], float] = time.monotonic,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.app = app
        self.budget_s = budget_s
        self._clock = clock
        self._pause = pause

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.budget_s <= 0
            or scope.get("method") not in _SAFE_METHODS
            or scope.get("path") in _PROBES
        ):
            await self.app(scope, receive, send)
            return
        deadline = self._clock() + self.budget_s
        pause_s = _FIRST_PAUSE_S
        replay = _Replay(receive)
        while True:
            held = await self._run_holding_unavailable(scope, replay.receiver(), send)
            if held is None:
                return  # answered (anything but 503 unavailable), already sent
            wait_s = min(pause_s, deadline - self._clock())
            if wait_s <= 0:
                for message in held:
                    await send(message)
                return
            await self._pause(wait_s)
            pause_s = min(pause_s * 2, _MAX_PAUSE_S)

    async def _run_holding_unavailable(
        self, scope: Scope, receive: Receive, send: Send
    ) -> list[Message] | None:
        """Run the request once. A ``503 unavailable`` answer is returned unsent; anything else is sent."""
        held: list[Message] = []
        holding = False

        async def hold_or_send(message: Message) -> None:
            nonlocal holding
            if message["type"] == "http.response.start" and message["status"] == 503:
                holding = True
            if holding:
                held.append(message)
            else:
                await send(message)

        await self.app(dict(scope), receive, hold_or_send)
        if not holding:
            return None
        if _error_code(held) == "unavailable":
            return held
        for message in held:  # another 503 (a full queue): not the database, send it as it is
            await send(message)
        return None


class _Replay:
    """Each run of the request reads the same (empty) request body: the first run's ``http.request``
    messages are recorded and replayed to the next runs, then ``receive`` carries on (a disconnect)."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._body: list[Message] = []

    def receiver(self) -> Receive:
        replayed = list(self._body)

        async def receive() -> Message:
            if replayed:
                return replayed.pop(0)
            message = await self._receive()
            if message["type"] == "http.request":
                self._body.append(message)
            return message

        return receive


def _error_code(messages: list[Message]) -> str | None:
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return None
    return error.get("code") if isinstance(error, dict) else None
