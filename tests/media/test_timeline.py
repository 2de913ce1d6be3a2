"""``timeline_origin``: a source that starts late (a Dahua DAV stamped with the time of day, a recorder's
MPEG-PS or TS) is moved to start at zero; one that starts at zero keeps the timeline it has."""

from __future__ import annotations

from datetime import UTC
from fractions import Fraction
from pathlib import Path

import av

from tests.media import cctv
from tests.media.synthetic import make_clip
from veil.media.timeline import shift_packet, timeline_origin

RECORDED_AT_S = int(cctv.RECORDED_AT.replace(tzinfo=UTC).timestamp())
"""The DAV's first frame, in seconds since 1970: its date fields are read as UTC."""


def test_a_wall_clock_timeline_moves_to_zero_with_every_stream(media_dir: Path, tmp_path: Path) -> None:
    dav = cctv.dahua_dav(media_dir / "selfie_portrait_noaudio.mp4", tmp_path / "nvr.dav", frames=5)
    with av.open(str(dav), format="dhav") as container:
        origin = timeline_origin(container)
        assert origin == RECORDED_AT_S * av.time_base  # the recording's date and time, in microseconds
        first: dict[str, int | None] = {}
        for packet in container.demux():
            if packet.size and packet.stream.type not in first:
                first[packet.stream.type] = shift_packet(packet, origin).pts
    assert first == {"video": 0, "audio": 0}  # picture and sound moved alike


def test_a_late_start_moves_to_zero_and_a_start_at_zero_stays(tmp_path: Path) -> None:
    """A recorder's MPEG-PS or TS starts wherever its clock stood: 3 s in here, moved to 0; an MP4 that
    starts at 0 keeps its timestamps as they are."""
    late = make_clip(tmp_path / "late.mov", pts=[3000, 3040, 3080], time_base=Fraction(1, 1000))
    with av.open(str(late)) as container:
        origin = timeline_origin(container)
        assert origin == 3 * av.time_base
        video = next(p for p in container.demux(video=0) if p.size)
        assert shift_packet(video, origin).pts == 0
    early = make_clip(tmp_path / "c.mp4", frames=3)
    with av.open(str(early)) as container:
        assert timeline_origin(container) == 0
        packet = next(p for p in container.demux() if p.size)
        pts = packet.pts
        assert shift_packet(packet, 0).pts == pts
