"""How a stored picture is turned for display.

Phones store portrait video as landscape pixels plus a display matrix (or,
in older files, a ``rotate`` tag), and portrait photos as landscape pixels
plus an EXIF Orientation. Veil works on stored pixels and copies the
turning instruction to the output unchanged, so the result displays exactly
as the input did. Rotations here are the clockwise degrees a player applies
(the convention of the legacy ``rotate`` tag): 0, 90, 180 or 270.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import av
from av.sidedata.sidedata import Type as FrameSideDataType
from PIL import Image

__all__ = [
    "ORIENTATION_TAG",
    "DisplayMatrix",
    "exif_orientation_rotation",
    "frame_display_matrix",
    "normalize_rotation",
    "orientation_of",
    "rotate_tag_rotation",
]

DisplayMatrix = tuple[int, int, int, int, int, int, int, int, int]
"""FFmpeg's 3x3 display matrix (16.16 / 2.30 fixed point), as stored in containers."""

ORIENTATION_TAG = 0x0112
"""The EXIF tag that holds the Orientation (1..8)."""

_EXIF_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}


def normalize_rotation(degrees: float) -> int:
    """Snap any angle to the nearest of 0, 90, 180, 270 (clockwise)."""
    return int(round(degrees / 90.0)) * 90 % 360


def frame_display_matrix(frame: av.VideoFrame) -> DisplayMatrix | None:
    """The display matrix a decoder attached to ``frame``, if any.

    FFmpeg copies the container's matrix onto every decoded frame, which is
    the one place PyAV exposes it; copying the raw matrix (not just its angle)
    keeps mirroring too.
    """
    entries: Iterable[Any] = frame.side_data  # PyAV's stub types this mapping too narrowly
    for entry in entries:
        if entry.type == FrameSideDataType.DISPLAYMATRIX:
            raw = bytes(entry)
            if len(raw) != 36:
                return None
            a, b, c, d, e, f, g, h, i = struct.unpack("=9i", raw)
            return (a, b, c, d, e, f, g, h, i)
    return None


def rotate_tag_rotation(tags: Mapping[str, str]) -> int | None:
    """Clockwise rotation from a legacy ``rotate`` stream tag, or None when absent or malformed.

    Matroska hands tags back upper-case (``ROTATE``), MP4 lower-case.
    """
    raw = next((value for key, value in tags.items() if key.lower() == "rotate"), None)
    if raw is None:
        return None
    try:
        return normalize_rotation(float(raw))
    except ValueError:
        return None


def exif_orientation_rotation(orientation: int) -> int:
    """Clockwise rotation part of an EXIF Orientation (1..8); mirroring is not a rotation."""
    return _EXIF_ROTATION.get(orientation, 0)


def orientation_of(image: Image.Image) -> int:
    """EXIF Orientation of an opened image; 1 when absent or malformed (broken EXIF is common)."""
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
