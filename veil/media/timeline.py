"""Every source on one clock that starts at zero: the clock of spec times, and of the output.

Containers may start their timeline anywhere. An MP4 from a phone starts at zero; an MPEG-PS export of a
DVR half a second in; an MPEG-TS from a dashcam or a recorder wherever its clock stood (hours in, for
some); a Dahua DAV stamps every frame with the time of day it was recorded, some 1.8 billion seconds in.
Spec times (``regions``, ``exclusion_zones``, ``audio.mute``) are seconds as a player shows them, from
the start of the file; read on the file's own clock, a span "from 10 s to 20 s" of a file that starts
an hour in would mask nothing. Copied as they are, such timestamps also carry the recording's date and
time into an output that was meant to drop it. So every stream of a source that starts late is shifted
by the same amount, the file's start time: picture and sound stay in step, and the first of them starts
at zero. A start before zero (the encoder delay some MP4 files state for their sound) is left as it is.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import av.container
import av.packet

__all__ = ["timeline_origin", "shift_packet"]


def timeline_origin(container: av.container.InputContainer) -> int:
    """Where the source's timeline is moved to zero from, in ``av.time_base`` units (microseconds): its
    start time when that is after zero, else 0 (the timeline stays as the file has it)."""
    start = container.start_time
    if start is None or start <= 0:
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
