"""Video decoding and re-encoding that keeps everything but the pixels Veil changes.

The output must match the input in frame count, timestamps (so variable
frame rate survives), duration, rotation and audio; only the video stream
is re-encoded. Audio packets are copied untouched when the output container
accepts their codec. Video and audio are demuxed together and interleaved by
the muxer, so memory stays bounded by the encoder's look-ahead, never by the
length of the file.

Frames nobody changes skip the RGB round trip: ``process`` returns None and
the decoded YUV frame goes straight to the encoder. Frames that are changed
go YUV -> RGB -> YUV with swscale's accurate rounding and full chroma
interpolation, which makes the round trip practically lossless (mean error
0.005 levels against 1.1 with the fast defaults), so masked and unmasked
frames do not flicker against each other.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import av
import av.audio.stream
import av.container
import av.error
import av.packet
import av.stream
import av.video.stream
import cv2
import numpy as np
import numpy.typing as npt
from av.video.frame import PictureType
from av.video.reformatter import Interpolation

from veil.errors import CorruptMedia, MediaError
from veil.frames import RGBFrame, as_rgb_frame
from veil.media.audio import KEEP_SOUND, AudioRoutes, SoundEdit
from veil.media.formats import MUXER_ALIASES, MUXER_BY_SUFFIX
from veil.media.orientation import rotate_tag_rotation
from veil.media.patch import I420Patch, Rect, patchable
from veil.media.probe import VideoProbe, open_video, probe_video
from veil.media.tags import CONTAINER_SELF_TAGS, kept_tags
from veil.media.timeline import shift_packet, timeline_origin

__all__ = ["EncodeOptions", "VideoCodec", "VideoFrame", "iter_frames", "transcode_video"]

VideoCodec = Literal["h264", "h265"]
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"]

_ENCODERS: dict[str, str] = {"h264": "libx264", "h265": "libx265"}
_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")
_SWS_ACCURATE = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_SWS_ACCURATE |= Interpolation.FULL_CHR_H_INP
_KEEP_BITRATE_MAXRATE = 1.5
_KEEP_BITRATE_BUFSIZE_S = 2.0

if TYPE_CHECKING:  # PyAV's Packet is generic only in its stubs
    _Packet = av.packet.Packet[Any]


class VideoFrame:
    """One decoded frame with its timing; converts to RGB only when asked, once.

    ``pts`` is in ``time_base`` units (None when the file has no timestamp for
    it); ``time_s`` is its presentation time in seconds on the file's clock.
    """

    __slots__ = ("_frame", "_patch", "_rgb", "index", "pts", "time_base", "time_s")

    def __init__(
        self, *, index: int, pts: int | None, time_base: Fraction, time_s: float, frame: av.VideoFrame
    ) -> None:
        self.index = index
        self.pts = pts
        self.time_base = time_base
        self.time_s = time_s
        self._frame = frame
        self._rgb: RGBFrame | None = None
        self._patch: I420Patch | None = None

    @property
    def width(self) -> int:
        return self._frame.width

    @property
    def height(self) -> int:
        return self._frame.height

    @property
    def resolution_wh(self) -> tuple[int, int]:
        return self._frame.width, self._frame.height

    @property
    def av_frame(self) -> av.VideoFrame:
        """The decoded PyAV frame, for code in ``veil.media``; do not modify it."""
        return self._frame

    def rgb(self) -> RGBFrame:
        """The frame as an (H, W, 3) uint8 RGB array in stored orientation.

        Computed on first call and cached; the same array is returned after,
        so a caller that draws on it in place changes the cached copy.
        """
        if self._rgb is None:
            array = self._frame.to_ndarray(format="rgb24", interpolation=_SWS_ACCURATE)
            self._rgb = as_rgb_frame(array)
        return self._rgb

    def rgb_regions(self, rects: Sequence[Rect]) -> RGBFrame:
        """An (H, W, 3) RGB array that holds the picture at least inside ``rects`` (x1, y1, x2, y2).

        For masking a few boxes: on 8-bit 4:2:0 video only the rectangles are converted,
        the rest of the array is black, and when this array is handed back to the encoder
        only the rectangles are written back, so every other pixel stays bit-exact and the
        frame costs a fraction of ``rgb()``. Other formats get ``rgb()``. Change pixels only
        inside ``rects``.
        """
        if self._rgb is not None or not patchable(self._frame):
            return self.rgb()
        self._patch = I420Patch(self._frame, rects)
        return self._patch.canvas

    def encoded_from(self, rgb: RGBFrame) -> av.VideoFrame | None:
        """The frame to encode when ``rgb`` is this frame's ``rgb_regions`` canvas, else None."""
        patch = self._patch
        return patch.to_frame() if patch is not None and patch.canvas is rgb else None

    def gray_thumbnail(self, *, width: int = 64, height: int = 48) -> npt.NDArray[np.uint8]:
        """A tiny grayscale copy, for cheap motion estimates between frames.

        Taken from the luma plane where the frame has one (every YUV format), which costs
        a tenth of a colour conversion; otherwise one swscale call.
        """
        frame = self._frame
        if frame.format.name.startswith("yuv") and not frame.format.name.endswith(("le", "be")):
            plane = frame.planes[0]
            rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(frame.height, plane.line_size)
            luma = rows[:, : frame.width]
            step = max(1, min(frame.height // (2 * height), frame.width // (2 * width)))
            small = cv2.resize(luma[::step, ::step], (width, height), interpolation=cv2.INTER_AREA)
            if frame.color_range != 2 and not frame.format.name.startswith("yuvj"):  # limited range: 16-235
                small = np.clip((small.astype(np.int32) - 16) * 255 // 219, 0, 255)
            return np.ascontiguousarray(small, dtype=np.uint8)
        array = frame.reformat(width=width, height=height, format="gray").to_ndarray()
        return np.ascontiguousarray(array, dtype=np.uint8)

    def detection_rgb(self) -> RGBFrame:
        """RGB good enough for a detector: the exact ``rgb()`` if already made, else a fast
        conversion (plain chroma upsampling, a quarter of the cost), not cached."""
        if self._rgb is not None:
            return self._rgb
        return as_rgb_frame(self._frame.to_ndarray(format="rgb24"))

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}"
        return f"VideoFrame(index={self.index}, pts={self.pts}, time_s={self.time_s:.3f}, {size})"


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    """How the output video stream is encoded.

    ``crf`` and ``preset`` go to x264/x265. With ``keep_bitrate`` the encoder
    instead aims at the input's video bit rate (average bit rate, with a VBV
    cap of 1.5x the target so peaks stay bounded). ``threads=0`` lets the
    encoder choose. Output is yuv420p; a frame with odd width or height cannot
    be 4:2:0 in H.264/H.265, so such videos are encoded as yuv444p instead of
    changing their size.
    """

    codec: VideoCodec = "h264"
    crf: int = 20
    preset: Preset = "veryfast"
    keep_bitrate: bool = False
    keep_metadata: bool = False
    threads: int = 0
    bit_rate: int | None = None
    """With ``keep_bitrate``, the target in bits per second instead of the input's own. Segment workers
    pin the whole source's rate (and ``b_frames``, ``frame_rate``), so that every segment is encoded
    with the same codec parameters and the segments join by stream copy."""
    b_frames: bool | None = None
    """Whether the encoder may use B-frames. None: yes, unless the input has a variable frame rate."""
    frame_rate: Fraction | None = None
    """The frame rate the encoder declares. None: the input's average rate."""

    def __post_init__(self) -> None:
        if self.codec not in _ENCODERS:
            raise ValueError(f"codec must be one of {sorted(_ENCODERS)}, got {self.codec!r}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be within 0..51, got {self.crf}")
        if self.preset not in _PRESETS:
            raise ValueError(f"preset must be one of {list(_PRESETS)}, got {self.preset!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.bit_rate is not None and self.bit_rate <= 0:
            raise ValueError(f"bit_rate must be positive, got {self.bit_rate}")
        if self.frame_rate is not None and self.frame_rate <= 0:
            raise ValueError(f"frame_rate must be positive, got {self.frame_rate}")


def iter_frames(path: Path) -> Generator[VideoFrame, None, None]:
    """Decode every frame of the main video stream, in presentation order.

    Yields exactly the frames a player shows (the count ``probe`` reports).
    Raises ``CorruptMedia`` when the stream breaks off, ``UnsupportedMedia``
    when it is not a video.
    """
    container, stream = open_video(path)
    try:
        clock = _Clock(stream)
        index = 0
        for packet in _demux(container, [stream]):
            for frame in _decode_video(packet, index):
                yield clock.frame(index, frame)
                index += 1
    finally:
        container.close()


def transcode_video(
    src: Path,
    dst: Path,
    process: Callable[[VideoFrame], RGBFrame | None],
    *,
    options: EncodeOptions,
    container_format: str | None = None,
    progress: Callable[[int], None] | None = None,
    sound: SoundEdit = KEEP_SOUND,
) -> None:
    """Re-encode the video stream of ``src`` into ``dst`` through ``process``; copy the rest (the
    sound as ``sound`` says).

    ``process`` sees every frame in order and returns the new RGB pixels, or
    None to keep the frame as it is (encoded straight from YUV, which is much
    faster). ``container_format`` is mp4, mov or mkv; by default it follows
    ``dst``'s suffix and falls back to mp4. ``progress`` is called with the
    number of frames done. On any failure the partial ``dst`` is removed.
    Raises ``CorruptMedia`` when the input breaks off mid-stream.
    """
    details = probe_video(src)
    fmt = _output_format(dst, container_format)
    container, vin = open_video(src)
    out: av.container.OutputContainer | None = None
    try:
        out = _open_output(dst, fmt, keep_metadata=options.keep_metadata)
        if options.keep_metadata:
            out.metadata.update(kept_tags(container.metadata, CONTAINER_SELF_TAGS))
        encoder = _VideoEncoder(out, vin, details, options)
        routes = AudioRoutes(out, container.streams.audio, keep_metadata=options.keep_metadata, edit=sound)
        clock = _Clock(vin)
        index = 0
        for packet in _demux(container, [vin, *routes.inputs]):
            if packet.stream_index == vin.index:
                for decoded in _decode_video(packet, index):
                    frame = clock.frame(index, decoded)
                    encoder.encode(frame, process(frame))
                    index += 1
                    if progress is not None:
                        progress(index)
            else:
                _mux(out, routes.handle(packet))
        _mux(out, routes.flush())
        encoder.flush()
        out.close()
        out = None
    except BaseException:
        if out is not None:
            _close_quietly(out)
        dst.unlink(missing_ok=True)
        raise
    finally:
        container.close()


class _Clock:
    """Turns decoded frames into ``VideoFrame`` with a presentation time, even when a pts is missing."""

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        self.time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate
        self.frame_s = float(1 / rate) if rate else 0.0

    def frame(self, index: int, frame: av.VideoFrame) -> VideoFrame:
        pts = frame.pts if frame.pts is not None else frame.dts
        time_s = float(pts * self.time_base) if pts is not None else index * self.frame_s
        return VideoFrame(index=index, pts=pts, time_base=self.time_base, time_s=time_s, frame=frame)


class _VideoEncoder:
    """libx264/libx265 set up to reproduce the input's timing, size, colour and rotation."""

    def __init__(
        self,
        out: av.container.OutputContainer,
        vin: av.video.stream.VideoStream,
        details: VideoProbe,
        options: EncodeOptions,
    ) -> None:
        info = details.info
        self.time_base = Fraction(vin.time_base) if vin.time_base else Fraction(1, 90000)
        rate = options.frame_rate or info.fps or Fraction(30)
        self.step = max(1, round(1 / (rate * self.time_base)))
        self.width, self.height = info.width, info.height
        self.pix_fmt = "yuv420p" if self.width % 2 == 0 and self.height % 2 == 0 else "yuv444p"
        self.last_pts: int | None = None
        encoder_options: dict[str, str] = {"preset": options.preset}
        if options.codec == "h265":
            encoder_options["x265-params"] = "log-level=error"
        target = (options.bit_rate or info.bit_rate) if options.keep_bitrate else None
        if target:
            encoder_options["maxrate"] = str(int(target * _KEEP_BITRATE_MAXRATE))
            encoder_options["bufsize"] = str(int(target * _KEEP_BITRATE_BUFSIZE_S))
        else:
            encoder_options["crf"] = str(options.crf)
        stream = cast(
            av.video.stream.VideoStream, out.add_stream(_ENCODERS[options.codec], options=encoder_options)
        )
        context = stream.codec_context
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.pix_fmt
        stream.time_base = self.time_base
        context.time_base = self.time_base
        context.framerate = rate
        context.thread_count = options.threads
        if target:
            context.bit_rate = target
        if options.b_frames is False or (options.b_frames is None and details.variable_frame_rate):
            # With B-frames x264 derives decode times from earlier frames' presentation times; at
            # irregular intervals MP4's track duration then ends before the last frames are shown.
            context.max_b_frames = 0
        source = vin.codec_context
        context.color_range = source.color_range
        context.colorspace = source.colorspace
        context.color_primaries = source.color_primaries
        context.color_trc = source.color_trc
        if source.sample_aspect_ratio:
            context.sample_aspect_ratio = source.sample_aspect_ratio
        if options.codec == "h265" and out.format.name in ("mp4", "mov"):
            context.codec_tag = "hvc1"  # what Apple players require for HEVC in MP4
        if details.display_matrix is not None:
            stream.set_display_matrix(details.display_matrix)
        else:
            legacy = rotate_tag_rotation(vin.metadata)
            if legacy:
                stream.set_display_rotation(-legacy)
        language = vin.metadata.get("language")
        tags = kept_tags(vin.metadata, {"encoder", "rotate", "duration"}) if options.keep_metadata else {}
        if language:
            tags["language"] = language
        stream.metadata.update(tags)
        self.stream = stream
        self.out = out

    def encode(self, frame: VideoFrame, rgb: RGBFrame | None) -> None:
        decoded = frame.av_frame
        patched = None if rgb is None else frame.encoded_from(rgb)
        if rgb is None or patched is not None:
            picture = decoded if patched is None else patched
            if picture.format.name != self.pix_fmt or frame.resolution_wh != (self.width, self.height):
                picture = picture.reformat(
                    width=self.width, height=self.height, format=self.pix_fmt, interpolation=_SWS_ACCURATE
                )
        else:
            array = as_rgb_frame(rgb, resolution_wh=frame.resolution_wh)
            picture = av.VideoFrame.from_ndarray(array, format="rgb24")
            picture.colorspace = decoded.colorspace
            picture.color_range = decoded.color_range
            picture = picture.reformat(
                width=self.width, height=self.height, format=self.pix_fmt, interpolation=_SWS_ACCURATE
            )
        pts = frame.pts
        if pts is None or (self.last_pts is not None and pts <= self.last_pts):
            pts = self.step if self.last_pts is None else self.last_pts + self.step
        self.last_pts = pts
        picture.pts = pts
        picture.time_base = self.time_base
        picture.duration = decoded.duration
        picture.pict_type = PictureType.NONE  # let the encoder place keyframes, not the input's GOP
        self._mux(self._encode(picture))

    def flush(self) -> None:
        self._mux(self._encode(None))

    def _encode(self, picture: av.VideoFrame | None) -> list[_Packet]:
        try:
            return self.stream.encode(picture)
        except av.error.FFmpegError as exc:
            raise MediaError("the video encoder failed") from exc

    def _mux(self, packets: Sequence[_Packet]) -> None:
        _mux(self.out, packets)


def _demux(container: av.container.InputContainer, streams: Sequence[av.stream.Stream]) -> Iterator[_Packet]:
    """Packets of ``streams`` in file order, on a timeline that starts at zero where the file's starts
    later (``veil.media.timeline``); read errors become ``CorruptMedia``."""
    origin = timeline_origin(container)
    packets = container.demux(list(streams))
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            raise CorruptMedia("the file cannot be read to its end; it is truncated or damaged") from exc
        yield shift_packet(packet, origin)


def _decode_video(packet: _Packet, done: int) -> list[av.VideoFrame]:
    try:
        frames = packet.decode()
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"video stream is truncated or damaged after frame {done}") from exc
    return [frame for frame in frames if isinstance(frame, av.VideoFrame)]


def _mux(out: av.container.OutputContainer, packets: Sequence[_Packet]) -> None:
    try:
        out.mux(list(packets))
    except av.error.FFmpegError as exc:
        raise MediaError("could not write the output file") from exc


def _open_output(dst: Path, fmt: str, *, keep_metadata: bool) -> av.container.OutputContainer:
    container_options: dict[str, str] = {}
    if fmt in ("mp4", "mov"):
        container_options["movflags"] = "+faststart+use_metadata_tags" if keep_metadata else "+faststart"
    try:
        return av.open(str(dst), mode="w", format=fmt, container_options=container_options)
    except av.error.FFmpegError as exc:
        raise MediaError("could not create the output file") from exc
    except OSError as exc:
        raise MediaError("could not create the output file") from exc


def _output_format(dst: Path, container_format: str | None) -> str:
    if container_format is None:
        return MUXER_BY_SUFFIX.get(dst.suffix.lower(), "mp4")
    fmt = MUXER_ALIASES.get(container_format.lower())
    if fmt is None:
        choices = sorted(MUXER_ALIASES)
        raise ValueError(f"container_format must be one of {choices}, got {container_format!r}")
    return fmt


def _close_quietly(out: av.container.OutputContainer) -> None:
    try:
        out.close()
    except (av.error.FFmpegError, OSError):
        pass
