"""``timeline_origin``: a source stamped with the time of day (a Dahua DAV) is moved to start at zero;
any other keeps the timeline it has."""

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


def test_a_timeline_near_zero_is_kept(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", pts=[3000, 4000, 5000], time_base=Fraction(1, 1000))
    with av.open(str(clip)) as container:
        assert timeline_origin(container) == 0
        packet = next(p for p in container.demux() if p.size)
        pts = packet.pts
        assert shift_packet(packet, 0).pts == pts
