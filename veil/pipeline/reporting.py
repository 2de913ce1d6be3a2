"""The report stage: what one run found and did, as the ``Report`` document; and what the review page
shows besides: track thumbnails, and previews of media browsers cannot show."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from veil.detect.registry import category_labels
from veil.frames import RGBFrame
from veil.media import EncodeOptions, MediaInfo, probe, transcode_video, write_image
from veil.media.formats import (
    BROWSER_CODECS,
    BROWSER_CONTAINERS,
    BROWSER_IMAGE_CONTAINERS,
    IMAGE_PREVIEW_NAME,
    PREVIEW_NAME,
)
from veil.media.thumbnails import frames_at, write_crops
from veil.pipeline.engine import Engine
from veil.pipeline.plan import Plan
from veil.report import AudioInfo, MediaSummary, Report, TrackFrame, TrackReport
from veil.track import Track

__all__ = [
    "report",
    "write_image_preview",
    "write_thumbnails",
    "write_video_preview",
    "write_video_thumbnails",
]

_PREVIEW_ENCODING = EncodeOptions(crf=26, preset="veryfast")
"""For looking at, not for keeping: smaller than the output's encoding, and as fast."""


def report(
    engine: Engine,
    plan: Plan,
    *,
    input_path: Path,
    tracks: Sequence[Track],
    info: MediaInfo | None = None,
    output_path: Path | None = None,
    output_info: MediaInfo | None = None,
    timings: dict[str, float] | None = None,
    file_label: str | None = None,
) -> Report:
    """The report of one file, whole or joined from segments (``info`` is probed when not given)."""
    info = info or probe(input_path)
    started = time.perf_counter()
    source = plan.source_report
    result = Report(
        file=file_label,
        kind=info.kind,
        mode=plan.spec.mode,
        input=_summary(info),
        output=None if output_info is None else _summary(output_info),
        counts=_counts(tracks, plan),
        masked_frames=_masked_frames(tracks),
        tracks=[_track_report(t, plan) for t in tracks],
        models=list(source.models) if source is not None else [engine.model_info(c) for c in plan.categories],
        timings=dict(timings or {}),
        input_sha256=_sha256(input_path),
        output_sha256=None if output_path is None else _sha256(output_path),
    )
    result.timings["report"] = time.perf_counter() - started
    return result


def write_video_thumbnails(directory: Path, tracks: Sequence[Track], input_path: Path) -> None:
    """One ``<track_id>.jpg`` per track in ``directory``: its best-scored box, cropped from the video."""
    if tracks:
        crops = _best_boxes(tracks)
        write_crops(directory, crops, frames_at(input_path, set(crops)))


def write_video_preview(directory: Path, input_path: Path, info: MediaInfo) -> Path | None:
    """``PREVIEW_NAME`` in ``directory``: the video as H.264 MP4, when browsers cannot play it as it is
    (MPEG-TS, AVI, WMV and the other exports of cameras and DVRs); None when they can.

    Every frame is kept at its own time, as in a redacted output, so the review page's frame numbers
    and boxes fit the preview as they fit the source."""
    if info.container in BROWSER_CONTAINERS and info.codec in BROWSER_CODECS:
        return None
    preview = directory / PREVIEW_NAME
    keep = lambda _frame: None  # noqa: E731  (every frame as it is: no RGB conversion)
    transcode_video(input_path, preview, keep, options=_PREVIEW_ENCODING, container_format="mp4")
    return preview


def write_image_preview(directory: Path, rgb: RGBFrame, input_path: Path, info: MediaInfo) -> Path | None:
    """``IMAGE_PREVIEW_NAME`` in ``directory``: the still as JPEG, when browsers cannot show it as it is
    (HEIC from phones, TIFF from scanners); None when they can. Same pixels and EXIF rotation as the
    source, so the review page's boxes fit it; no other metadata."""
    if info.container in BROWSER_IMAGE_CONTAINERS:
        return None
    preview = directory / IMAGE_PREVIEW_NAME
    write_image(preview, rgb, fmt="jpeg", quality=85, source=input_path, keep_metadata=False)
    return preview


def write_thumbnails(directory: Path, tracks: Sequence[Track], frames: dict[int, np.ndarray]) -> None:
    """One ``<track_id>.jpg`` (at most 128 px) per track whose best frame is in ``frames``."""
    write_crops(directory, _best_boxes(tracks), frames)


def _best_boxes(tracks: Sequence[Track]) -> dict[int, list[tuple[str, np.ndarray]]]:
    """For each track, its box where the detector score is highest, grouped by frame index."""
    wanted: dict[int, list[tuple[str, np.ndarray]]] = {}
    for t in tracks:
        k = int(np.argmax(t.score))
        wanted.setdefault(int(t.frames[k]), []).append((str(t.track_id), t.xyxy[k]))
    return wanted


def _summary(info: MediaInfo) -> MediaSummary:
    return MediaSummary(
        kind=info.kind,
        container=info.container,
        codec=info.codec,
        width=info.width,
        height=info.height,
        rotation=info.rotation,
        fps=None if info.fps is None else float(info.fps),
        frame_count=info.frame_count,
        duration=info.duration,
        bit_rate=info.bit_rate,
        audio=[
            AudioInfo(codec=a.codec, channels=a.channels, sample_rate=a.sample_rate, duration=a.duration)
            for a in info.audio
        ],
    )


def _counts(tracks: Sequence[Track], plan: Plan) -> dict[str, int]:
    counts = dict.fromkeys(plan.categories, 0)
    for t in tracks:
        counts[plan.categories[t.class_id]] += 1
    return counts


def _masked_frames(tracks: Sequence[Track]) -> int:
    if not tracks:
        return 0
    return int(np.unique(np.concatenate([t.frames for t in tracks])).size)


def _track_report(track: Track, plan: Plan) -> TrackReport:
    boxes = np.round(track.xyxy.astype(np.float64), 1)
    category = plan.categories[track.class_id]
    labels = category_labels(category)
    return TrackReport(
        id=track.track_id,
        category=category,
        label=None
        if track.label is None or labels is None or track.label >= len(labels)
        else labels[track.label],
        frames=[
            TrackFrame(frame=int(f), box=(b[0], b[1], b[2], b[3]), score=round(float(s), 4))
            for f, b, s in zip(track.frames, boxes.tolist(), track.score, strict=True)
        ],
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
