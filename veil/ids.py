"""Ids of the things Veil stores (jobs, API keys, audit entries): random, URL-safe and unguessable."""

from __future__ import annotations

import secrets

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """A random, URL-safe, unguessable id such as ``job_3f9c…`` (96 bits)."""
    return f"{prefix}_{secrets.token_hex(12)}"
