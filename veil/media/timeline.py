"""Sources whose timestamps are the wall clock, moved to start at zero.

Most containers start their timeline at or near zero. Some CCTV recorders (Dahua's DAV) stamp
every frame with the time of day it was recorded, so the first frame sits some 1.8 billion seconds
in. Copied as they are, those timestamps make an MP4 that players open at the wrong place, and they
carry the recording's date and time into an output that was meant to drop it. Every stream of such a
source is shifted by the same amount, so sound stays in step with the picture.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import av.container
import av.packet

__all__ = ["WALL_CLOCK_START_S", "timeline_origin", "shift_packet"]

WALL_CLOCK_START_S = 86_400
"""A source whose first timestamp lies more than a day in is on the wall clock: no camera records one
file that long before its first frame."""


def timeline_origin(container: av.container.InputContainer) -> int:
    """Where the source's timeline is moved to zero from, in ``av.time_base`` units (microseconds): its
    start time when that is on the wall clock, else 0 (the timeline stays as the file has it)."""
    start = container.start_time
    if start is None or start <= WALL_CLOCK_START_S * av.time_base:
        return 0
    return int(start)


def shift_packet(packet: av.packet.Packet[Any], origin: int) -> av.packet.Packet[Any]:
    """``packet`` with ``origin`` microseconds taken off its timestamps (in its own time base)."""
    if origin and packet.time_base is not None:
        offset = round(Fraction(origin, av.time_base) / Fraction(packet.time_base))
        if packet.pts is not None:
            packet.pts -= offset
        if packet.dts is not None:
            packet.dts -= offset
    return packet
