"""HTTP Range requests (RFC 9110 §14) on the result, so that video players can seek.

One range per request (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``). A header that is not
a well-formed single byte range is ignored and the whole file is sent, as the RFC allows;
a well-formed range outside the file is 416.
"""

from __future__ import annotations

import re

from veil.api.errors import RangeNotSatisfiable

__all__ = ["parse_range"]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive, or ``None`` for the whole file."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix range: the last n bytes
        length = int(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable("empty suffix range", size=size)
        return max(size - length, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable("range starts after the end of the file", size=size)
    return first, min(last, size - 1)
