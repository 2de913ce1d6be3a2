"""In-process "job finished" signals, so that ``?wait=`` answers as soon as a local worker is done.

Workers run in threads and requests in the event loop, so a waiter subscribes an
``asyncio`` future and the worker resolves it with ``call_soon_threadsafe``. Subscribe
*before* reading the job's state, so a finish in between cannot be missed. A job
finished by another process (a Celery worker) is not signalled here; waiters also
re-read the job store every second, so they never depend on this alone.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["JobEvents", "Subscription"]


class Subscription:
    def __init__(self, events: JobEvents, job_id: str) -> None:
        self._events = events
        self.job_id = job_id
        self._loop = asyncio.get_running_loop()
        self._future: asyncio.Future[None] = self._loop.create_future()

    def _fire(self) -> None:
        try:
            self._loop.call_soon_threadsafe(_resolve, self._future)
        except RuntimeError:  # the loop closed meanwhile
            pass

    async def wait(self, timeout: float) -> bool:
        """``True`` once the job was signalled (then at once on every later call)."""
        if self._future.done():
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._future), timeout=max(timeout, 0.0))
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self._events._remove(self)


class JobEvents:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: dict[str, list[Subscription]] = {}

    def subscribe(self, job_id: str) -> Subscription:
        """Call from the event loop; ``close()`` the subscription when done."""
        subscription = Subscription(self, job_id)
        with self._lock:
            self._subscriptions.setdefault(job_id, []).append(subscription)
        return subscription

    def notify(self, job_id: str) -> None:
        """Wake everything waiting for ``job_id`` (call from any thread)."""
        with self._lock:
            subscriptions = list(self._subscriptions.get(job_id, ()))
        for subscription in subscriptions:
            subscription._fire()

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            subscriptions = self._subscriptions.get(subscription.job_id)
            if subscriptions is not None and subscription in subscriptions:
                subscriptions.remove(subscription)
                if not subscriptions:
                    del self._subscriptions[subscription.job_id]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
