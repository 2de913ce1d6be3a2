"""The shape of a storage key, checked by every backend.

Keys are chosen by Veil (``jobs/<id>/input``), never taken from a user's file
name, but a bug that builds ``../`` into one must not escape the blob root of
the local backend, so every backend refuses such keys the same way.
"""

from __future__ import annotations

import re

__all__ = ["check_key", "check_prefix"]

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


def check_key(key: str) -> str:
    """Return ``key`` if it is a relative ``/``-separated path of safe segments; else raise ``ValueError``."""
    if not key or len(key) > 1024:
        raise ValueError("storage key must be 1..1024 characters")
    for segment in key.split("/"):
        if not _SEGMENT.match(segment):
            raise ValueError("storage key segments must be non-empty [A-Za-z0-9._-] and not start with '.'")
    return key


def check_prefix(prefix: str) -> str:
    """A prefix is a key, optionally with a trailing ``/`` (meaning: everything in that folder)."""
    check_key(prefix.rstrip("/") or "_")
    return prefix
