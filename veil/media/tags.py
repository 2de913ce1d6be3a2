"""Metadata tags that an output keeps when the user asks for ``keep_metadata``.

By default outputs carry no source tags at all (they can hold GPS positions, device
serials, owner names); these helpers decide what is copied when the user opts in.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONTAINER_SELF_TAGS", "kept_tags"]

CONTAINER_SELF_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder"})
"""Tags a container reports about itself rather than about the recording; never copied."""


def kept_tags(tags: Any, drop: set[str] | frozenset[str]) -> dict[str, str]:
    """``tags`` (a PyAV metadata mapping) as plain strings, without the keys in ``drop`` (any case)."""
    return {str(key): str(value) for key, value in dict(tags).items() if str(key).lower() not in drop}
