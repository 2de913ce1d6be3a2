"""The job state machine, shared by the table, the schemas and the workers.

::

    queued ──claim──▶ running ──▶ succeeded
      │                 │  └────▶ failed
      └──cancel──▶ canceled ◀──cancel (cooperative, between frames)

``running`` goes back to ``queued`` only when its worker died (restart recovery
or a stale heartbeat); every other arrow is one-way, and the three terminal
states never change again.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TERMINAL_STATES", "JobState"]


class JobState(StrEnum):
    """Stored as a database enum; the values are part of the public API."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})
