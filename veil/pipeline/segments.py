"""The stages of a split job, one piece at a time; ``veil.jobs.segmented`` runs them across workers and
keeps only the orchestration (storage, manifest, dispatch, retries).

``split`` cuts at clean keyframes by stream copy. ``analyse_segment`` tracks a piece and the first
``overlap_frames`` of the next, so a face crossing a border is seen by both neighbours; ``stitch``
matches tracks on those shared frames (one id per face). ``render_segment`` encodes each piece with
the codec parameters (B-frames, frame rate, bit rate) of the whole source, so that ``join`` needs no
re-encoding; it muxes the source's audio back and checks that no frame is missing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from veil.errors import JobCanceled, MediaError, UnsupportedMedia
from veil.media import MediaInfo, iter_frames, probe
from veil.media.probe import probe_video
from veil.media.segments import concat_segments, split_at_keyframes
from veil.pipeline.analysis import Cancel, Progress, analyse
from veil.pipeline.engine import Engine
from veil.pipeline.plan import Plan, output_suffix
from veil.pipeline.rendering import render
from veil.settings import Settings
from veil.track import Track

__all__ = ["Piece", "Split", "Unsplittable", "analyse_segment", "join", "render_segment", "split"]


class Unsplittable(Exception):
    """The video is better run whole: it cannot be cut exactly, or has too few keyframes."""


@dataclass(frozen=True)
class Piece:
    """One segment of the source: frames ``start_frame .. start_frame + frame_count - 1``."""

    index: int
    start_frame: int
    frame_count: int
    start_time_s: float
    suffix: str


@dataclass(frozen=True)
class Split:
    """A video cut into pieces, and what every later step needs to know about the whole source (plain
    data, so that split jobs can store it as JSON)."""

    pieces: tuple[Piece, ...]
    time_origin_s: float
    """Presentation time of the source's first frame (manual regions are timed on the source)."""
    output_suffix: str
    frame_rate: str
    """The source's average rate as ``num/den``: every segment's encoder declares it."""
    bit_rate: int | None
    """The source's video bit rate: the target of every segment when ``keep_bitrate`` is asked for."""
    b_frames: bool
    """False when the source has a variable frame rate (then no segment uses B-frames)."""
    overlap_frames: int

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Split:
        return cls(**{**raw, "pieces": tuple(Piece(**p) for p in raw["pieces"])})


def split(plan: Plan, input_path: Path, work_dir: Path, *, settings: Settings) -> tuple[Split, list[Path]]:
    """Cut ``input_path`` at clean keyframes about every ``VEIL_SEGMENT_SECONDS`` (stream copy, into
    ``work_dir``): the split and the pieces' files. Raises ``Unsplittable``, the probe's ``MediaError``
    (limits), or ``MediaError`` when the pieces miss frames."""
    details = probe_video(input_path, **settings.probe_limits())
    info = details.info
    out_suffix = output_suffix(plan.spec, info)
    try:
        segments = split_at_keyframes(input_path, work_dir, target_seconds=settings.segment_seconds)
    except UnsupportedMedia as exc:
        raise Unsplittable("the video cannot be cut exactly") from exc
    if len(segments) < 2:
        raise Unsplittable("too few keyframes")
    if sum(s.frame_count for s in segments) != info.frame_count:
        raise MediaError("the video's segments do not add up to its frame count")
    first = next(iter_frames(input_path), None)
    fps = info.fps or Fraction(30)
    pieces = tuple(
        Piece(s.index, s.start_frame, s.frame_count, s.start_time_s, s.path.suffix) for s in segments
    )
    cut = Split(
        pieces=pieces,
        time_origin_s=float(first.time_s if first is not None else 0.0),
        output_suffix=out_suffix,
        frame_rate=f"{fps.numerator}/{fps.denominator}",
        bit_rate=info.bit_rate,
        b_frames=not details.variable_frame_rate,
        overlap_frames=plan.tracking.overlap_frames(info.fps),
    )
    return cut, [s.path for s in segments]


def analyse_segment(
    engine: Engine,
    plan: Plan,
    sources: Sequence[Path],
    *,
    video: Split,
    index: int,
    progress: Progress,
    cancel: Cancel,
) -> list[Track]:
    """Tracks of piece ``index`` of ``video`` followed by the overlap into the next one (``sources``:
    their files), numbered from the piece's first frame; ``MediaError`` when frames are missing."""
    pieces = video.pieces
    expected = pieces[index].frame_count
    if index + 1 < len(pieces):
        expected += min(video.overlap_frames, pieces[index + 1].frame_count)
    info = probe(sources[0])
    tracks, seen = analyse(
        engine, plan, sources, info=info, frame_limit=expected, progress=progress, cancel=cancel
    )
    if cancel():
        raise JobCanceled("the job was canceled")
    if seen != expected:
        raise MediaError(f"segment {index} decoded to {seen} frames; {expected} were expected")
    return tracks


def render_segment(
    plan: Plan,
    src: Path,
    dst: Path,
    tracks: Sequence[Track],
    *,
    video: Split,
    index: int,
    progress: Progress,
    cancel: Cancel,
) -> None:
    """Mask and encode piece ``index`` of ``video`` with the video-wide ``tracks``, with the encoder
    options pinned from the whole source; ``MediaError`` when the encoded piece misses frames."""
    piece = video.pieces[index]
    first, last = piece.start_frame, piece.start_frame + piece.frame_count - 1
    rate, bit_rate = Fraction(video.frame_rate), video.bit_rate
    render(
        plan,
        src,
        dst,
        [t for t in tracks if t.last_frame >= first and t.first_frame <= last],
        info=probe(src),
        frame_offset=first,
        time_offset_s=video.time_origin_s + piece.start_time_s,
        encode=plan.segment_encoding(frame_rate=rate, bit_rate=bit_rate, b_frames=video.b_frames),
        progress=progress,
        cancel=cancel,
    )
    if cancel():
        raise JobCanceled("the job was canceled")
    frames = probe(dst).frame_count
    if frames != piece.frame_count:
        raise MediaError(f"segment {index} rendered to {frames} frames; {piece.frame_count} were expected")


def join(
    plan: Plan, pieces: Sequence[Path], output_path: Path, *, input_path: Path
) -> tuple[MediaInfo, MediaInfo]:
    """Join rendered pieces without re-encoding, with the source's audio; the source's and the output's
    probes. ``MediaError`` when the output does not have exactly the source's frames."""
    info = probe(input_path)
    concat_segments(
        list(pieces),
        output_path,
        audio_from=input_path,
        keep_metadata=plan.spec.output.keep_metadata,
        sound=plan.sound,
    )
    output_info = probe(output_path)
    if output_info.frame_count != info.frame_count:
        raise MediaError(
            f"the joined video has {output_info.frame_count} frames, the source {info.frame_count}"
        )
    return info, output_info
