"""Audio streams of an output: copied packet for packet where the container takes the codec,
else converted to AAC.

Both the whole-file transcode (``veil.media.video``) and the join of separately rendered
segments (``veil.media.segments``) route the source's audio through ``AudioRoutes``, so a
segmented job writes the same audio as a whole one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av
import av.audio.stream
import av.container
import av.error
import av.stream
import numpy as np

from veil.errors import CorruptMedia, MediaError, UnsupportedMedia
from veil.media.tags import kept_tags

__all__ = ["KEEP_SOUND", "AudioRoutes", "SoundEdit"]

if TYPE_CHECKING:  # PyAV's Packet is generic only in its stubs
    _Packet = av.packet.Packet[Any]

# MP4 can technically hold PCM and Vorbis, but few players play them there: convert those to AAC.
_MP4_COPYABLE_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
_AAC_FRAME_SAMPLES = 1024
_AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})
_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
"""The layout AAC is written with for a source whose channels come in no stated order, by channel count."""


@dataclass(frozen=True, slots=True)
class SoundEdit:
    """What a run does to the sound besides carrying it over: drop every sound track (``remove``), or
    silence spans of it (``silences``: start and end in seconds on the source's timeline, the clock a
    video frame's ``time_s`` runs on)."""

    remove: bool = False
    silences: tuple[tuple[float, float], ...] = ()
    bleep: bool = False
    """Fill the silenced spans with a 1 kHz tone at -20 dBFS instead of silence."""


KEEP_SOUND = SoundEdit()


class AudioRoutes:
    """Per audio stream of the source: copy its packets into ``out``, or decode and encode them as AAC.

    ``handle`` and ``flush`` return the packets to mux; the caller muxes them, so it can
    interleave them with its video. Only ``language`` is kept of the stream tags, unless
    ``keep_metadata``. Converted audio starts at time 0: the encoder numbers samples itself.
    ``edit`` drops every stream, or silences spans (every stream is then converted, to reach its samples).
    """

    def __init__(
        self,
        out: av.container.OutputContainer,
        streams: Sequence[av.audio.stream.AudioStream],
        *,
        keep_metadata: bool,
        edit: SoundEdit = KEEP_SOUND,
    ) -> None:
        self.inputs: list[av.audio.stream.AudioStream] = []
        self._copies: dict[int, av.stream.Stream] = {}
        self._converts: dict[int, tuple[av.audio.stream.AudioStream, av.AudioResampler]] = {}
        self._silences = edit.silences
        self._bleep = edit.bleep
        self._positions: dict[int, float] = {}
        """Per converted stream, the time its next decoded samples start at (for frames without a pts, or
        with a rounded one)."""
        copyable = set(out.supported_codecs) if not edit.silences else set()
        if out.format.name == "mp4":
            copyable &= _MP4_COPYABLE_AUDIO
        for stream in [] if edit.remove else streams:
            context = stream.codec_context
            if context is None:
                raise UnsupportedMedia("an audio stream uses a codec this build cannot read")
            tags = kept_tags(stream.metadata, set()) if keep_metadata else {}
            if "language" in stream.metadata:
                tags["language"] = stream.metadata["language"]
            if context.codec.canonical_name in copyable:
                copy = out.add_stream_from_template(stream)
                copy.metadata.clear()
                copy.metadata.update(tags)
                self._copies[stream.index] = copy
            else:
                rate = context.sample_rate if context.sample_rate in _AAC_RATES else 48000
                layout = _aac_layout(context.layout)
                aac = out.add_stream("aac", rate=rate)
                aac.layout = layout
                aac.metadata.update(tags)
                resampler = av.AudioResampler(
                    format="fltp", layout=layout, rate=rate, frame_size=_AAC_FRAME_SAMPLES
                )
                self._converts[stream.index] = (aac, resampler)
            self.inputs.append(stream)

    def handle(self, packet: _Packet) -> list[_Packet]:
        """The output packets for one source packet of a stream in ``inputs``."""
        copy = self._copies.get(packet.stream_index)
        if copy is not None:
            if packet.dts is None:  # the demuxer's end-of-stream marker, not data
                return []
            packet.stream = copy
            return [packet]
        aac, resampler = self._converts[packet.stream_index]
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            raise CorruptMedia("an audio stream is truncated or damaged") from exc
        packets: list[_Packet] = []
        for frame in frames:
            if not isinstance(frame, av.AudioFrame):
                continue
            if self._silences:
                self._silence(packet.stream_index, frame)
            frame.pts = None  # the encoder numbers samples itself; input gaps are not preserved
            for chunk in resampler.resample(frame):
                packets.extend(_encode(aac, chunk))
        return packets

    def _silence(self, stream_index: int, frame: av.AudioFrame) -> None:
        """Silence (or bleep) in place the samples of ``frame`` in a silenced span, to the sample."""
        expected = self._positions.get(stream_index)
        start = float(frame.time) if frame.time is not None else (expected or 0.0)
        if expected is not None and abs(start - expected) < _CLOCK_SLACK_S:
            start = expected  # a container's millisecond timestamps would break the bleep's phase
        rate, count = frame.sample_rate, frame.samples
        self._positions[stream_index] = start + count / rate
        spans = [
            (max(0, round((a - start) * rate)), min(count, round((b - start) * rate)))
            for a, b in self._silences
        ]
        spans = [(a, b) for a, b in spans if b > a]
        if not spans:
            return
        fmt = frame.format
        if self._bleep:
            _write_bleep(frame, spans, start)
            return
        stride = fmt.bytes * (1 if fmt.is_planar else frame.layout.nb_channels)
        quiet = 0x80 if fmt.name.startswith("u8") else 0  # unsigned 8-bit silence sits mid-scale
        for plane in frame.planes:
            data = np.frombuffer(memoryview(plane), dtype=np.uint8)
            for a, b in spans:
                data[a * stride : b * stride] = quiet

    def flush(self) -> list[_Packet]:
        """What the AAC encoders still hold, after the last source packet."""
        packets: list[_Packet] = []
        for aac, resampler in self._converts.values():
            for chunk in resampler.resample(None):
                packets.extend(_encode(aac, chunk))
            packets.extend(_encode(aac, None))
        return packets


_CLOCK_SLACK_S = 0.002
"""Sound frames whose timestamp is this close to where the previous one ended continue it (timestamps
rounded to a millisecond, as Matroska stores them); a larger jump is a gap in the sound, kept."""
_BLEEP_HZ = 1000.0
_BLEEP_LEVEL = 0.1  # -20 dBFS
_SAMPLE_TYPES: dict[str, tuple[type[np.generic], float, float]] = {
    "u8": (np.uint8, 127.0, 128.0),
    "s16": (np.int16, 32767.0, 0.0),
    "s32": (np.int32, 2147483647.0, 0.0),
    "s64": (np.int64, 9.2e18, 0.0),
    "flt": (np.float32, 1.0, 0.0),
    "dbl": (np.float64, 1.0, 0.0),
}
"""Per FFmpeg sample format (planar or packed): its NumPy type, full scale and zero level."""


def _write_bleep(frame: av.AudioFrame, spans: Sequence[tuple[int, int]], start_s: float) -> None:
    """Write the bleep (in place) over the samples ``spans`` of ``frame``, which starts at ``start_s``:
    its phase follows the file's clock, so a span across frames sounds as one tone."""
    fmt = frame.format
    dtype, scale, zero = _SAMPLE_TYPES[fmt.name.rstrip("p")]
    channels = frame.layout.nb_channels
    rate = frame.sample_rate
    for plane in frame.planes:
        data = np.frombuffer(memoryview(plane), dtype=dtype)
        samples = data[: frame.samples * (1 if fmt.is_planar else channels)]
        view = samples.reshape(-1, 1) if fmt.is_planar else samples.reshape(-1, channels)
        for a, b in spans:
            t = start_s + np.arange(a, b) / rate
            tone = zero + scale * _BLEEP_LEVEL * np.sin(2 * np.pi * _BLEEP_HZ * t)
            view[a:b, :] = tone.astype(dtype)[:, None]


def _aac_layout(layout: av.AudioLayout) -> av.AudioLayout | str:
    """The source's layout where it names its channels; else the usual one for its channel count.

    Windows Media audio and some cameras' PCM decode as "2 channels" with no order, which the AAC
    encoder refuses, so such a video could not be written at all."""
    if not layout.name.endswith(" channels"):
        return layout
    named = _AAC_LAYOUTS.get(layout.nb_channels)
    if named is None:
        raise UnsupportedMedia(f"an audio stream has {layout.nb_channels} channels in no stated order")
    return named


def _encode(stream: av.audio.stream.AudioStream, frame: av.AudioFrame | None) -> list[_Packet]:
    try:
        return stream.encode(frame)
    except av.error.FFmpegError as exc:
        raise MediaError("the audio encoder failed") from exc
