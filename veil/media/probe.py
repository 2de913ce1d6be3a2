"""What is in a media file, learned as cheaply as possible and checked against limits.

``probe`` is what the API runs on every upload before it accepts a job, so it
must be fast, must never decode more than one frame, and must refuse hostile
files (decompression bombs, truncated uploads, text files named ``.jpg``)
with a clear ``veil.errors.MediaError`` instead of a crash deeper down.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.container
import av.error
import av.stream
import av.video.stream
from PIL import Image, UnidentifiedImageError
from pillow_heif import register_heif_opener

from veil.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from veil.media.orientation import (
    DisplayMatrix,
    exif_orientation_rotation,
    frame_display_matrix,
    normalize_rotation,
    orientation_of,
    rotate_tag_rotation,
)
from veil.media.sniff import Sniffed, sniff

register_heif_opener()  # HEIC stills from phones (rotation applied to the pixels); Pillow reads AVIF itself

__all__ = [
    "AudioStream",
    "MediaInfo",
    "VideoProbe",
    "media_summary",
    "open_image",
    "open_video",
    "probe",
    "probe_video",
]

_MOV_FAMILY = "mov"
RAW_STREAM_OPENERS = frozenset({"h264", "hevc"})
"""FFmpeg readers of raw video streams: no container, no timestamps (frames are timed by the frame rate)."""
_MAX_RAW_FPS = 240
_WHOLE_SECOND_DURATIONS = frozenset({"dhav"})
"""Readers whose stated duration counts whole seconds (a DAV's, from the dates of its first and last
chunks): the frame count at the frame rate says it better."""


@dataclass(frozen=True, slots=True)
class AudioStream:
    """One audio track, as the transcoder needs to know it to copy or convert it."""

    index: int
    codec: str
    channels: int
    sample_rate: int
    duration: float | None
    """Seconds, or None when the container does not say."""


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """Facts about one image or video. Sizes are of the stored (unrotated) pixels."""

    kind: Literal["image", "video"]
    container: str
    """jpeg, png, webp, bmp, tiff, mp4, mov, mkv, webm or avi, from the file's content."""
    codec: str
    """FFmpeg codec name of the video (h264, hevc, vp9, av1, ...) or the image format."""
    width: int
    height: int
    rotation: int
    """Clockwise degrees a player turns the stored picture: 0, 90, 180 or 270."""
    fps: Fraction | None
    """Average frame rate of a video (exact, e.g. 30000/1001); None for images."""
    frame_count: int | None
    """Frames a player shows: 1 for images."""
    duration: float | None
    """Seconds; None for images."""
    bit_rate: int | None
    """Bits per second of the video stream alone (what ``keep_bitrate`` aims at); None for images."""
    pix_fmt: str | None
    """FFmpeg pixel format of a video (yuv420p, ...); None for images."""
    audio: tuple[AudioStream, ...]

    @property
    def pixels(self) -> int:
        return self.width * self.height


def probe(
    path: Path,
    *,
    max_pixels: int | None = None,
    max_duration_s: float | None = None,
    max_frames: int | None = None,
    max_decode_pixels: int | None = None,
) -> MediaInfo:
    """Describe ``path`` without decoding more than its first video frame.

    The kind is taken from the content, never the file name. Images are
    checked against ``max_pixels`` from their header, before a single pixel is
    decoded, so a 50000x50000 PNG costs nothing. Videos are also checked on
    their frame count and on frames x pixels (what decoding, detecting and
    encoding cost), from the container index. Raises ``UnsupportedMedia``,
    ``CorruptMedia`` or ``MediaTooLarge``.
    """
    sniffed = sniff(path)
    if sniffed.kind == "image":
        return _probe_image(path, sniffed, max_pixels=max_pixels)
    return probe_video(
        path,
        sniffed,
        max_pixels=max_pixels,
        max_duration_s=max_duration_s,
        max_frames=max_frames,
        max_decode_pixels=max_decode_pixels,
    ).info


def media_summary(info: MediaInfo) -> dict[str, object]:
    """The non-personal facts of a probe that the job row keeps (``MediaPublic``)."""
    fps = info.fps
    return {
        "kind": info.kind,
        "width": info.width,
        "height": info.height,
        "duration": None if info.duration is None else float(info.duration),
        "frame_count": info.frame_count,
        "fps": None if fps is None else round(float(fps), 4),
    }


@dataclass(frozen=True, slots=True)
class VideoProbe:
    """What the transcoder needs beyond ``MediaInfo`` to reproduce a video faithfully."""

    info: MediaInfo
    display_matrix: DisplayMatrix | None
    """The raw matrix (rotation and mirroring) to copy to the output, if the input has one."""
    variable_frame_rate: bool
    """Frame intervals differ by more than timestamp rounding."""


def open_image(path: Path, sniffed: Sniffed, *, max_pixels: int | None = None) -> Image.Image:
    """Open an image lazily (header only) and enforce the pixel limit before any decoding.

    Pillow's own bomb guard (about 179 million pixels) still stops files when
    no limit is given; its softer warning is silenced because the caller's
    limit is the policy.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path, formats=[sniffed.opener])
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge("image dimensions exceed the decoder's safety limit") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptMedia(f"{sniffed.container} header is damaged") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise CorruptMedia(f"{sniffed.container} header has no picture size")
    if max_pixels is not None and width * height > max_pixels:
        image.close()
        raise MediaTooLarge(f"image has {width * height} pixels; the limit is {max_pixels}")
    return image


def _probe_image(path: Path, sniffed: Sniffed, *, max_pixels: int | None) -> MediaInfo:
    image = open_image(path, sniffed, max_pixels=max_pixels)
    with image:
        orientation = orientation_of(image)
        try:
            image.load()  # catches truncation now, not in the middle of a job
        except (OSError, SyntaxError, ValueError) as exc:
            raise CorruptMedia(f"{sniffed.container} image data is truncated or damaged") from exc
        return MediaInfo(
            kind="image",
            container=sniffed.container,
            codec=sniffed.container,
            width=image.width,
            height=image.height,
            rotation=exif_orientation_rotation(orientation),
            fps=None,
            frame_count=1,
            duration=None,
            bit_rate=None,
            pix_fmt=None,
            audio=(),
        )


def open_video(
    path: Path, sniffed: Sniffed | None = None, *, thread_type: Literal["AUTO", "SLICE"] = "AUTO"
) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open a video with the demuxer its content calls for and pick its main video stream.

    ``thread_type="AUTO"`` (frame and slice threads) is fastest for whole
    streams; ``"SLICE"`` returns the first frame sooner, since frame threads
    decode several frames before handing out one. The caller closes the
    container. Raises ``UnsupportedMedia`` or ``CorruptMedia``.
    """
    sniffed = sniffed if sniffed is not None else sniff(path)
    if sniffed.kind != "video":
        raise UnsupportedMedia("expected a video, got an image")
    options = _raw_stream_options(path, sniffed.opener) if sniffed.opener in RAW_STREAM_OPENERS else {}
    try:
        container = av.open(
            str(path), mode="r", format=sniffed.opener, options=options, metadata_errors="ignore"
        )
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"{sniffed.container} file is truncated or damaged") from exc
    try:
        stream = _main_video_stream(container)
        if stream is None:
            raise UnsupportedMedia("file has no video stream")
        if stream.codec_context is None:
            raise UnsupportedMedia("no decoder is available for this video codec")
        stream.thread_type = thread_type
    except BaseException:
        container.close()
        raise
    return container, stream


def _raw_stream_options(path: Path, opener: str) -> dict[str, str]:
    """The frame rate a raw H.264/H.265 stream states in its own headers (the SPS timing info), as the
    option of FFmpeg's raw reader, which otherwise assumes 25 fps: a raw stream has no clock of its own,
    and a 15 fps DVR export read at 25 would play 1.7 times too fast. Empty when the stream states none."""
    try:
        with av.open(str(path), mode="r", format=opener, metadata_errors="ignore") as container:
            stream = _main_video_stream(container)
            rate = stream.codec_context.framerate if stream is not None else None
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"{opener} stream is truncated or damaged") from exc
    if rate is None or not 0 < rate <= _MAX_RAW_FPS:
        return {}
    return {"framerate": f"{rate.numerator}/{rate.denominator}"}


def _main_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:  # skip cover art
            return stream
    return None


def probe_video(
    path: Path,
    sniffed: Sniffed | None = None,
    *,
    max_pixels: int | None = None,
    max_duration_s: float | None = None,
    max_frames: int | None = None,
    max_decode_pixels: int | None = None,
) -> VideoProbe:
    """``probe`` for videos, plus what the transcoder needs to copy rotation and timing."""
    sniffed = sniffed if sniffed is not None else sniff(path)
    container, stream = open_video(path, sniffed, thread_type="SLICE")
    try:
        width, height = stream.codec_context.width, stream.codec_context.height
        if max_pixels is not None and width * height > max_pixels:
            raise MediaTooLarge(f"video frames have {width * height} pixels; the limit is {max_pixels}")
        duration = _duration_s(container, stream)
        if max_duration_s is not None and duration is not None and duration > max_duration_s:
            raise MediaTooLarge(f"video lasts {duration:.1f} s; the limit is {max_duration_s:g} s")
        audio = tuple(_audio_stream(s) for s in container.streams.audio)
        indexed = _indexed_count(path, stream) if sniffed.opener == _MOV_FAMILY else None
        first = _first_frame(stream, container, sniffed)
        width, height = width or first.width, height or first.height
        matrix = frame_display_matrix(first)
        rotation = normalize_rotation(-first.rotation) if first.rotation else 0
        if rotation == 0:
            rotation = rotate_tag_rotation(stream.metadata) or 0
        fps = _fps(stream)
        codec = stream.codec_context.codec.canonical_name
        pix_fmt = stream.codec_context.pix_fmt or first.format.name
        bit_rate = stream.bit_rate or None
    finally:
        container.close()
    if indexed is None:
        indexed = _demuxed_count(path, sniffed, fps)
    frame_count, video_bytes, timestamps = indexed
    if max_frames is not None and frame_count > max_frames:
        raise MediaTooLarge(f"video has {frame_count} frames; the limit is {max_frames}")
    cost = frame_count * width * height
    if max_decode_pixels is not None and cost > max_decode_pixels:
        raise MediaTooLarge(
            f"video has {cost / 1e9:.1f} gigapixels to decode (frames x pixels); "
            f"the limit is {max_decode_pixels / 1e9:g}"
        )
    if (duration is None or sniffed.opener in _WHOLE_SECOND_DURATIONS) and fps:
        duration = float(frame_count / fps)
    if bit_rate is None and duration and video_bytes:
        bit_rate = int(video_bytes * 8 / duration)
    info = MediaInfo(
        kind="video",
        container=sniffed.container,
        codec=codec,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        frame_count=frame_count,
        duration=duration,
        bit_rate=bit_rate,
        pix_fmt=pix_fmt,
        audio=audio,
    )
    return VideoProbe(info=info, display_matrix=matrix, variable_frame_rate=_is_variable(timestamps))


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return None


def _fps(stream: av.video.stream.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate)
    return None


def _audio_stream(stream: av.stream.Stream) -> AudioStream:
    context = stream.codec_context
    duration = None
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        duration = float(stream.duration * stream.time_base)
    channels = int(getattr(context, "channels", 0) or 0) if context is not None else 0
    sample_rate = int(getattr(context, "sample_rate", 0) or 0) if context is not None else 0
    codec = context.codec.canonical_name if context is not None else "unknown"
    return AudioStream(
        index=stream.index, codec=codec, channels=channels, sample_rate=sample_rate, duration=duration
    )


def _indexed_count(path: Path, stream: av.video.stream.VideoStream) -> tuple[int, int, list[int]] | None:
    """Frame count and video bytes from an MP4/MOV sample table, without reading the samples.

    The table also tells where each sample lies, so a file cut short by an
    interrupted upload is caught here: its last samples point past the end.
    Returns None when the table is missing (fragmented MP4), so the caller
    counts packets instead.
    """
    entries = stream.index_entries
    if stream.frames <= 0 or len(entries) != stream.frames:
        return None
    shown = 0
    total = 0
    end = 0
    timestamps: list[int] = []
    for entry in entries:
        if not entry.is_discard:
            shown += 1
            timestamps.append(entry.timestamp)
        total += entry.size
        end = max(end, entry.pos + entry.size)
    if end > path.stat().st_size:
        raise CorruptMedia("video file is truncated: its sample table points past the end of the file")
    return shown, total, timestamps


def _demuxed_count(path: Path, sniffed: Sniffed, fps: Fraction | None) -> tuple[int, int, list[int]]:
    """Count video packets by demuxing (no decoding): the count a player shows for MKV, WebM and AVI.

    Matroska writers record each track's duration when they finish; packets
    that stop well short of it mean the upload was cut off.
    """
    container, stream = open_video(path, sniffed)
    count = 0
    total = 0
    end = None
    timestamps: list[int] = []
    try:
        declared = _declared_duration_s(stream.metadata)
        time_base = stream.time_base
        for packet in container.demux(stream):
            if packet.size > 0:
                count += 1
                total += packet.size
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is not None:
                    timestamps.append(stamp)
                    stop = stamp + (packet.duration or 0)
                    end = stop if end is None else max(end, stop)
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"{sniffed.container} file is damaged after {count} video packets") from exc
    finally:
        container.close()
    if count == 0:
        raise CorruptMedia("video stream holds no frames")
    if declared is not None and end is not None and time_base is not None and timestamps:
        covered = float((end - min(timestamps)) * time_base)
        slack = float(2 / fps) if fps else 0.1
        if covered + slack < declared:
            raise CorruptMedia(f"video file is truncated: frames cover {covered:.2f} s of {declared:.2f} s")
    return count, total, timestamps


def _declared_duration_s(tags: dict[str, str]) -> float | None:
    """A Matroska track's ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``) in seconds."""
    raw = next((value for key, value in tags.items() if key.upper() == "DURATION"), None)
    if raw is None:
        return None
    try:
        hours, minutes, seconds = raw.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def _is_variable(timestamps: list[int]) -> bool:
    """True when frame intervals vary beyond rounding (1/1000 time bases give 33, 33, 34 at 30 fps)."""
    ordered = sorted(set(timestamps))
    if len(ordered) < 3:
        return False
    deltas = sorted(b - a for a, b in zip(ordered, ordered[1:], strict=False))
    median = deltas[len(deltas) // 2]
    return deltas[-1] - deltas[0] > max(2, median // 50)


def _first_frame(
    stream: av.video.stream.VideoStream, container: av.container.InputContainer, sniffed: Sniffed
) -> av.VideoFrame:
    """Decode frames up to the first one: proves the stream decodes and carries its display matrix."""
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                return frame
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"{sniffed.container} video stream cannot be decoded") from exc
    raise CorruptMedia("video stream holds no decodable frame")
