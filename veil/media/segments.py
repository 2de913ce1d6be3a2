"""Cut a video into independently decodable pieces, and join re-encoded pieces again, without re-encoding.

Segment-parallel processing (issue 5): a long video is split at keyframes, each
piece is detected, masked and re-encoded by a different worker, and the pieces
are joined. Both ends are pure stream copies (packets move, pixels are never
decoded), so they cost seconds even for hours of video, and the only
re-encode is the one the workers do anyway.

Frame-exactness is the contract. A cut is only made at a *clean* keyframe: one
that no packet before it is shown after, and no packet after it is shown
before. This rules out the leading B-frames of open GOPs, which reference the
previous GOP and would not decode alone. With clean cuts, the frames of
segment ``i`` are exactly the source frames ``start_frame .. start_frame +
frame_count - 1`` in presentation order, and the concatenation of all segments
is the source, frame for frame.

Only the video stream is cut. Audio stays in the source, and ``concat_segments``
muxes it back from there: untouched on the source's own timeline where the output
container takes the codec, else converted to AAC as a whole-file run would.
"""

from __future__ import annotations

import contextlib
import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
import av.packet
import av.stream
import numpy as np
import numpy.typing as npt

from veil.errors import CorruptMedia, MediaError, UnsupportedMedia
from veil.media.audio import KEEP_SOUND, AudioRoutes, SoundEdit
from veil.media.sniff import sniff
from veil.media.tags import CONTAINER_SELF_TAGS, kept_tags
from veil.media.timeline import shift_packet, timeline_origin

__all__ = ["Segment", "concat_segments", "split_at_keyframes"]


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of the source's video stream, written to ``path``.

    ``start_frame``/``frame_count`` number the source's frames in presentation
    order (the frames a player shows); ``start_time_s`` is the presentation
    time of the segment's first frame, measured from the source's first frame.
    The segment's own timestamps start at 0.
    """

    index: int
    path: Path
    start_frame: int
    frame_count: int
    start_time_s: float


def split_at_keyframes(src: Path, dst_dir: Path, *, target_seconds: float) -> list[Segment]:
    """Stream-copy the video of ``src`` into segments of about ``target_seconds`` each.

    For each multiple of ``target_seconds`` the cut goes to the first clean
    keyframe at or after it (a multiple already passed by the previous cut is
    skipped), so segments are at least ``target_seconds`` long, except the
    last, and as long as the keyframe interval demands. A video whose
    keyframes are further apart than its length gives one segment. Segments
    are written to ``dst_dir`` as ``segment-00000.mp4`` (``.mkv`` for codecs
    MP4 cannot hold), without audio or metadata.

    Raises ``UnsupportedMedia`` when there is no video stream, or when the
    stream cannot be cut frame-exactly (packets without timestamps, or packets
    the container marks to be discarded, as after an edit list that trims the
    start); callers process such files whole. ``CorruptMedia`` when it cannot
    be read.
    """
    if not (target_seconds > 0 and math.isfinite(target_seconds)):
        raise ValueError(f"target_seconds must be positive, got {target_seconds}")
    dst_dir.mkdir(parents=True, exist_ok=True)
    pts, keyframe, time_base, codec = _scan_video_packets(src)
    cuts = _choose_cuts(pts, keyframe, time_base, target_seconds=target_seconds)
    first_pts = int(pts.min())
    suffix, fmt = _segment_format(codec)
    starts = [0, *cuts]
    ends = [*cuts, int(pts.shape[0])]
    segments = [
        Segment(
            index=index,
            path=dst_dir / f"segment-{index:05d}{suffix}",
            start_frame=lo,
            frame_count=hi - lo,
            start_time_s=float((int(pts[lo]) - first_pts) * time_base),
        )
        for index, (lo, hi) in enumerate(zip(starts, ends, strict=True))
    ]
    _write_segments(src, segments, fmt=fmt, start_pts=[int(pts[s.start_frame]) for s in segments])
    return segments


def _open_input(path: Path) -> av.container.InputContainer:
    """Open ``path`` with the reader its bytes call for (a Hikvision export's header hides its stream
    from FFmpeg's own guess)."""
    opener = sniff(path).opener
    try:
        return av.open(str(path), mode="r", format=opener)
    except av.error.InvalidDataError as exc:
        raise UnsupportedMedia("not a video container that can be read") from exc
    except (av.error.FFmpegError, OSError) as exc:
        raise CorruptMedia("the video could not be opened") from exc


def _video_stream(container: av.container.InputContainer) -> av.stream.Stream:
    """The first real video stream; cover art (an attached picture) is not the video."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise UnsupportedMedia("the file has no video stream")


def _is_real(packet: av.packet.Packet[Any]) -> bool:
    """Demuxers end each stream with an empty flush packet; it is not a frame."""
    return packet.size > 0


def _scan_video_packets(src: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], Fraction, str]:
    """Timestamps and keyframe flags of every video packet, in decode order (no decoding)."""
    container = _open_input(src)
    try:
        stream = _video_stream(container)
        if stream.time_base is None:
            raise UnsupportedMedia("the video stream has no time base")
        time_base = Fraction(stream.time_base)
        codec = stream.codec_context.name if stream.codec_context is not None else ""
        pts: list[int] = []
        keyframe: list[bool] = []
        for packet in container.demux(stream):
            if not _is_real(packet):
                continue
            if packet.pts is None:
                raise UnsupportedMedia("the video has packets without timestamps and cannot be split")
            if packet.is_discard:
                raise UnsupportedMedia("the video has an edit list that hides frames and cannot be split")
            pts.append(int(packet.pts))
            keyframe.append(bool(packet.is_keyframe))
    except av.error.FFmpegError as exc:
        raise CorruptMedia("the video could not be read to the end") from exc
    finally:
        container.close()
    if not pts:
        raise CorruptMedia("the video stream holds no frames")
    if not keyframe[0]:
        raise CorruptMedia("the video does not start with a keyframe")
    return np.asarray(pts, dtype=np.int64), np.asarray(keyframe, dtype=np.bool_), time_base, codec


def _choose_cuts(
    pts: npt.NDArray[np.int64], keyframe: npt.NDArray[np.bool_], time_base: Fraction, *, target_seconds: float
) -> list[int]:
    """Packet indices (decode order) where a new segment starts; 0 is implied."""
    # Clean cut at i: everything before it is shown before it, everything from it on is not.
    before_max = np.concatenate([[np.iinfo(np.int64).min], np.maximum.accumulate(pts)[:-1]])
    after_min = np.minimum.accumulate(pts[::-1])[::-1]
    clean = keyframe & (before_max < pts) & (after_min == pts)
    clean[0] = False
    seconds = (pts - int(pts.min())).astype(np.float64) * float(time_base)
    target = float(target_seconds)
    cuts: list[int] = []
    next_at = target
    for i in np.flatnonzero(clean).tolist():
        # A tiny tolerance, so that a keyframe at 4.9999999 s counts as "at 5 s".
        if seconds[i] + 1e-9 >= next_at:
            cuts.append(int(i))
            next_at = (math.floor(seconds[i] / target + 1e-9) + 1) * target
    return cuts


def _segment_format(codec: str) -> tuple[str, str]:
    """MP4 when it can hold the codec (what workers and players expect), else Matroska."""
    if codec in {"h264", "hevc", "av1", "vp9", "mpeg4", "mpeg2video", "mjpeg"}:
        return ".mp4", "mp4"
    return ".mkv", "matroska"


def _write_segments(src: Path, segments: Sequence[Segment], *, fmt: str, start_pts: Sequence[int]) -> None:
    """One demux pass that routes each segment's packets to its file, with
    timestamps shifted so that every segment starts at 0."""
    container = _open_input(src)
    out: av.container.OutputContainer | None = None
    try:
        stream = _video_stream(container)
        index = -1
        remaining = 0
        out_stream: Any = None
        for packet in container.demux(stream):
            if not _is_real(packet):
                continue
            if remaining == 0:
                if out is not None:
                    out.close()
                    out = None
                index += 1
                if index >= len(segments):
                    raise CorruptMedia("the video changed while it was being split")
                out = av.open(str(segments[index].path), mode="w", format=fmt)
                out_stream = out.add_stream_from_template(stream)
                remaining = segments[index].frame_count
            assert out is not None
            offset = start_pts[index]
            packet.pts = int(packet.pts) - offset if packet.pts is not None else None
            packet.dts = int(packet.dts) - offset if packet.dts is not None else None
            packet.stream = out_stream
            out.mux(packet)
            remaining -= 1
        if remaining or index != len(segments) - 1:
            raise CorruptMedia("the video changed while it was being split")
        if out is not None:
            out.close()  # writes the trailer; its errors are mapped below
            out = None
    except av.error.FFmpegError as exc:
        raise MediaError("the video could not be split into segments") from exc
    finally:
        if out is not None:  # only after an error: keep that error, not a failing trailer
            with contextlib.suppress(av.error.FFmpegError):
                out.close()
        container.close()


# -- joining -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Timed:
    """A packet with its decode time in seconds, for interleaving video and audio
    (a float is exact enough to order packets; timestamps themselves stay integers)."""

    seconds: float
    order: int
    packet: av.packet.Packet[Any]

    def __lt__(self, other: _Timed) -> bool:
        return (self.seconds, self.order) < (other.seconds, other.order)


def concat_segments(
    segment_paths: list[Path],
    dst: Path,
    *,
    audio_from: Path | None,
    keep_metadata: bool = False,
    sound: SoundEdit = KEEP_SOUND,
) -> None:
    """Join re-encoded segments by stream copy, and mux the audio of ``audio_from`` back in.

    Every segment must start with a keyframe and share the first segment's
    codec parameters (codec, size, pixel format and SPS/PPS), as when each was
    encoded with the same settings. Segment ``i + 1`` is placed right after the
    last frame of segment ``i`` ends, so timestamps run on without gaps and the
    output has exactly the frames of the segments, in order. The video starts
    at the source's video start time. The audio streams of ``audio_from`` (the
    original file) go through ``AudioRoutes``, as in a whole-file transcode:
    copied packet for packet with their original timestamps where the output
    format takes the codec, so audio and video stay in sync as they were in the
    source, else converted to AAC from time 0; ``sound`` drops it or silences
    spans of it, as in a whole-file transcode.

    ``keep_metadata`` copies the container tags of ``audio_from`` (which may
    hold GPS positions or device serials); by default none are written.
    Rotation travels with the first segment's stream parameters. The output
    format follows ``dst``'s suffix. Raises ``MediaError`` when the segments
    cannot be joined, and ``CorruptMedia`` or ``UnsupportedMedia`` when the
    source's audio is damaged or cannot be decoded; ``dst`` is then removed.
    """
    if not segment_paths:
        raise ValueError("no segments to join")
    try:
        _concat(segment_paths, dst, audio_from=audio_from, keep_metadata=keep_metadata, sound=sound)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise


def _concat(
    segment_paths: list[Path], dst: Path, *, audio_from: Path | None, keep_metadata: bool, sound: SoundEdit
) -> None:
    source: av.container.InputContainer | None = None
    first: av.container.InputContainer | None = None
    out: av.container.OutputContainer | None = None
    try:
        source = _open_input(audio_from) if audio_from is not None else None
        first = _open_input(segment_paths[0])
        template = _video_stream(first)
        try:
            out = av.open(str(dst), mode="w")
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError("the output format is not supported") from exc
        video_out = out.add_stream_from_template(template)
        video_start = Fraction(0)
        audio: Iterator[_Timed] = iter(())
        if source is not None:
            if source.streams.video:
                src_video = source.streams.video[0]
                if src_video.start_time is not None and src_video.time_base is not None:
                    video_start = src_video.start_time * Fraction(src_video.time_base)
                    video_start -= Fraction(timeline_origin(source), av.time_base)
            routes = AudioRoutes(out, source.streams.audio, keep_metadata=keep_metadata, edit=sound)
            if routes.inputs:
                audio = _audio_packets(source, routes)
            if keep_metadata:
                out.metadata.update(kept_tags(source.metadata, CONTAINER_SELF_TAGS))
        video = _video_packets(
            segment_paths, expected=_codec_params(template), video_start=video_start, out_stream=video_out
        )
        for timed in heapq.merge(video, audio):
            out.mux(timed.packet)
        out.close()  # writes the trailer; its errors are mapped below
        out = None
    except av.error.FFmpegError as exc:
        raise MediaError("the segments could not be joined") from exc
    finally:
        for container in (out, first, source):
            if container is not None:
                with contextlib.suppress(av.error.FFmpegError):
                    container.close()


def _codec_params(stream: av.stream.Stream) -> tuple[object, ...]:
    ctx: Any = stream.codec_context
    return (
        ctx.name,
        ctx.width,
        ctx.height,
        ctx.format.name if ctx.format else None,
        bytes(ctx.extradata or b""),
    )


def _video_packets(
    segment_paths: Sequence[Path],
    *,
    expected: tuple[object, ...],
    video_start: Fraction,
    out_stream: av.stream.Stream,
) -> Iterator[_Timed]:
    """Video packets of all segments, re-timed onto one continuous timeline, in one
    demux pass per segment (one packet held at a time, however long the segment).

    Segment ``i`` starts where segment ``i - 1`` ends: at the end of its
    last-shown frame (pts + duration; a frame without a duration lasts one
    frame period). Its first packet must be a keyframe that no later packet is
    shown before, which is what makes it decodable alone.
    """
    offset_s = video_start
    last_dts: tuple[int, Fraction] | None = None
    order = 0
    for i, path in enumerate(segment_paths):
        container = _open_input(path)
        try:
            stream = _video_stream(container)
            if _codec_params(stream) != expected:
                raise MediaError(f"segment {i} was encoded with different parameters than segment 0")
            if stream.time_base is None:
                raise MediaError(f"segment {i} has no time base")
            tb = Fraction(stream.time_base)
            tb_float = float(tb)
            period = _frame_period(stream, tb)
            start = end = shift = 0
            count = 0
            for packet in container.demux(stream):
                if not _is_real(packet):
                    continue
                if packet.pts is None:
                    raise MediaError(f"segment {i} has packets without timestamps")
                pts = int(packet.pts)
                if count == 0:
                    if not packet.is_keyframe:
                        raise MediaError(f"segment {i} does not start with a keyframe")
                    start = end = pts
                    shift = round(offset_s / tb) - start  # in this segment's time base units
                elif pts < start:
                    raise MediaError(f"segment {i} shows a frame before its first keyframe")
                end = max(end, pts + (int(packet.duration) if packet.duration else period))
                dts = (int(packet.dts) if packet.dts is not None else pts) + shift
                if last_dts is not None and (
                    dts <= last_dts[0] if last_dts[1] == tb else dts * tb <= last_dts[0] * last_dts[1]
                ):
                    raise MediaError(f"segment {i} does not continue the decoding order of segment {i - 1}")
                last_dts = (dts, tb)
                packet.pts = pts + shift
                packet.dts = dts
                packet.stream = out_stream
                yield _Timed(seconds=dts * tb_float, order=order, packet=packet)
                order += 1
                count += 1
            if count == 0:
                raise MediaError(f"segment {i} holds no frames")
        finally:
            container.close()
        offset_s += (end - start) * tb


def _frame_period(stream: av.stream.Stream, tb: Fraction) -> int:
    """One frame's duration in ``tb`` units, for packets that carry none (1 if the rate is unknown)."""
    rate = getattr(stream, "average_rate", None) or getattr(stream, "guessed_rate", None)
    if not rate:
        return 1
    return max(1, round(1 / (Fraction(rate) * tb)))


def _audio_packets(source: av.container.InputContainer, routes: AudioRoutes) -> Iterator[_Timed]:
    """The source's audio as ``routes`` writes it (copied or converted), tagged with decode times."""
    order = 0
    origin = timeline_origin(source)
    for packet in source.demux(list(routes.inputs)):
        if not _is_real(packet):
            continue
        for out_packet in routes.handle(shift_packet(packet, origin)):
            yield _Timed(seconds=_decode_seconds(out_packet), order=order, packet=out_packet)
            order += 1
    for out_packet in routes.flush():
        yield _Timed(seconds=_decode_seconds(out_packet), order=order, packet=out_packet)
        order += 1


def _decode_seconds(packet: av.packet.Packet[Any]) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    tb = packet.time_base
    return float(ts * tb) if ts is not None and tb is not None else 0.0
