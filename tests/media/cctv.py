"""The files CCTV recorders export, made from real footage: a Dahua DAV, a Hikvision export, and the raw
H.264/H.265 streams of DVRs and IP cameras.

FFmpeg reads these formats but writes none of them, so they are built here by hand: each is a stream
PyAV encodes, wrapped the way the recorder does. The DAV chunk layout is the one FFmpeg's reader
(libavformat/dhav.c) parses: a 24-byte ``DHAV`` header, extensions, the payload, and a ``dhav`` trailer.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.media.synthetic import export_clip

SIZE_WH = (304, 536)
"""Frames are 304x536: a DAV header states sizes in pixels, and many recorders in steps of 8."""
RECORDED_AT = datetime(2026, 11, 30, 14, 5, 7)
"""The wall-clock time a DAV's first frame carries."""
AUDIO_RATE = 8000
_AUDIO_CHUNK = 320  # 40 ms of G.711, as Dahua recorders send it


@dataclass(frozen=True, slots=True)
class _Unit:
    payload: bytes
    keyframe: bool


def _frames(src: Path, frames: int) -> Iterator[av.VideoFrame]:
    with av.open(str(src)) as inp:
        for i, frame in enumerate(inp.decode(video=0)):
            if i >= frames:
                return
            yield frame.reformat(width=SIZE_WH[0], height=SIZE_WH[1], format="yuv420p")


def _encode(src: Path, *, codec: str, frames: int, rate: int, gop: int) -> list[_Unit]:
    """``frames`` frames of ``src`` encoded as Annex B access units (SPS/PPS repeated at each keyframe)."""
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = *SIZE_WH, "yuv420p"
    context.time_base, context.framerate = Fraction(1, rate), Fraction(rate)
    params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    if codec == "libx265":
        context.options = {"preset": "ultrafast", "x265-params": f"{params}:log-level=error"}
    else:
        context.options = {"preset": "ultrafast", "x264-params": params}
    packets = []
    for i, frame in enumerate(_frames(src, frames)):
        frame.pts, frame.time_base = i, context.time_base
        packets += context.encode(frame)
    packets += context.encode(None)
    return [_Unit(bytes(p), p.is_keyframe) for p in packets]


def raw_stream(src: Path, dst: Path, *, codec: str = "libx264", frames: int = 30, rate: int = 15) -> Path:
    """A raw H.264 (or, with ``libx265``, H.265) stream of ``src``: no container, no timestamps; its
    frame rate only in the stream's own headers."""
    units = _encode(src, codec=codec, frames=frames, rate=rate, gop=rate)
    dst.write_bytes(b"".join(u.payload for u in units))
    return dst


def hikvision_export(src: Path, dst: Path, *, frames: int = 30, transport: bool = False) -> Path:
    """``src`` as a Hikvision recorder exports it: the 40-byte ``IMKH`` header (system format 2, MPEG-PS;
    3, MPEG-TS), then H.264 and MP2 sound in that stream."""
    inner = dst.with_suffix(".ts" if transport else ".mpg")
    export_clip(src, inner, fmt="mpegts" if transport else "vob", audio="mp2", frames=frames)
    header = b"IMKH" + struct.pack("<HHHHHH", 0x0101, 3 if transport else 2, 0x0100, 0x2000, 1, 16)
    dst.write_bytes(header.ljust(40, b"\0") + inner.read_bytes())
    inner.unlink()
    return dst


def dahua_dav(
    src: Path, dst: Path, *, frames: int = 30, rate: int = 25, gop: int = 25, sound: bool = True
) -> Path:
    """``src`` as a Dahua recorder exports it: H.264 in DHAV chunks stamped with the wall-clock time
    (``RECORDED_AT`` onwards), with G.711 A-law sound at 8 kHz in chunks of its own when ``sound``."""
    width, height = SIZE_WH
    chunks: list[tuple[int, bytes]] = []
    for number, unit in enumerate(_encode(src, codec="libx264", frames=frames, rate=rate, gop=gop)):
        ms = number * 1000 // rate
        if unit.keyframe:  # the size in pixels, then codec (2: H.264) and frame rate
            extensions = struct.pack("<B3xHH", 0x82, width, height) + bytes([0x81, 0, 0x02, rate])
            chunks.append((ms, _chunk(0xFD, number, ms, extensions, unit.payload)))
        else:
            chunks.append((ms, _chunk(0xFC, number, ms, b"", unit.payload)))
    if sound:
        chunks += _audio_chunks(frames * 1000 // rate)
    dst.write_bytes(b"".join(chunk for _, chunk in sorted(chunks, key=lambda timed: timed[0])))
    return dst


def _audio_chunks(total_ms: int) -> list[tuple[int, bytes]]:
    """A 440 Hz tone as G.711 A-law chunks of 40 ms (one channel, codec 0x0E, rate index 0: 8 kHz)."""
    encoder = av.CodecContext.create("pcm_alaw", "w")
    encoder.sample_rate, encoder.layout, encoder.format = AUDIO_RATE, "mono", "s16"
    extensions = bytes([0x83, 1, 0x0E, 0])
    chunks = []
    for number, start in enumerate(range(0, total_ms * AUDIO_RATE // 1000, _AUDIO_CHUNK)):
        t = np.arange(start, start + _AUDIO_CHUNK) / AUDIO_RATE
        tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        payload = b"".join(bytes(p) for p in encoder.encode(frame))
        ms = start * 1000 // AUDIO_RATE
        chunks.append((ms, _chunk(0xF0, number, ms, extensions, payload)))
    return chunks


def _chunk(kind: int, number: int, ms: int, extensions: bytes, payload: bytes) -> bytes:
    """One DHAV chunk ``ms`` milliseconds after ``RECORDED_AT``: its date to the second, packed as Dahua
    packs it, and a millisecond counter that FFmpeg times the frames within a second by."""
    when = RECORDED_AT + timedelta(milliseconds=ms)
    date = (
        when.second
        | when.minute << 6
        | when.hour << 12
        | when.day << 17
        | when.month << 22
        | (when.year - 2000) << 26
    )
    length = 24 + len(extensions) + len(payload) + 8
    header = b"DHAV" + bytes([kind, 0, 0, 0])
    header += struct.pack("<IIIHBB", number, length, date, ms & 0xFFFF, len(extensions), 0)
    return header + extensions + payload + b"dhav" + struct.pack("<I", length)
