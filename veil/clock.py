"""What time it is, behind a seam that tests can turn.

``utcnow()`` is the wall clock as an aware UTC ``datetime``, which every timestamp in the job
store uses. Long-lived services (the API's ``Services``) carry a ``Clock`` instead of calling it,
so that a test can hand them a ``ManualClock`` and move time on (a link expiring, a key's
last use) without sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock", "utcnow"]


def utcnow() -> datetime:
    """The wall clock, as an aware UTC ``datetime``."""
    return datetime.now(UTC)


class Clock(Protocol):
    """Wall-clock time, as an aware UTC ``datetime`` and as Unix seconds (the same instant)."""

    def now(self) -> datetime: ...

    def time(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return utcnow()

    def time(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (``advance``); thread-safe. For tests and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime (tzinfo=UTC)")
        self._now = start or utcnow()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def time(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time only moves forward; got {seconds} s")
        with self._lock:
            self._now += timedelta(seconds=seconds)
