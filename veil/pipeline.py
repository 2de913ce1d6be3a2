"""probe → decode → detect → track → redact → encode, as one call.

Video runs in two passes over the file. The first decodes, detects (on every
Nth frame) and tracks; tracks are then finalized offline, because padding a
track *before* it first appears needs to know the future. The second pass
decodes again and masks each frame with the finished tracks while the encoder
writes the output. Decoding twice costs far less than detection, and the
split is also the review loop: a ``detect`` job stops after the first pass,
and a later ``redact`` job renders from its tracks without detecting again.

``run`` is the only entry point; the CLI, the in-process workers and the
Celery tasks all call it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from veil.boxes import clip_xyxy
from veil.detect import Detections, Detector
from veil.detect.face_overlap import drop_boxes_over_faces
from veil.detect.models import ModelStore
from veil.detect.registry import (
    Overrides,
    build_detector,
    category_labels,
    category_overrides,
    default_threshold,
    model_sha256,
)
from veil.detect.runtime import RuntimeOptions
from veil.errors import JobCanceled, SpecError
from veil.media import (
    EncodeOptions,
    MediaInfo,
    VideoFrame,
    iter_frames,
    probe,
    read_image,
    transcode_video,
    write_image,
)
from veil.media.formats import IMAGE_SUFFIXES, MUXER_BY_SUFFIX
from veil.redact import Redactor, build_redactor
from veil.report import AudioInfo, MediaSummary, ModelInfo, Report, TrackFrame, TrackReport
from veil.settings import Settings
from veil.spec import Method, RedactionSpec, Region, Shape, TrackedRegion, resolve_strength
from veil.track import DetectionSchedule, IoUTracker, Track, TrackerConfig, finalize_tracks, tracks_at_frames

__all__ = [
    "Engine",
    "analyse_video",
    "make_report",
    "output_suffix",
    "render_video",
    "reviewed_tracks",
    "run",
    "write_video_thumbnails",
]

Progress = Callable[[float], None]
Cancel = Callable[[], bool]

_WEAK_FACTOR = 0.5
"""Candidates scoring above ``threshold * _WEAK_FACTOR`` may extend an existing track (never start one)."""


class Engine:
    """Loaded detectors, reused across jobs and shared between worker threads.

    Building an onnxruntime session and warming it up takes longer than
    redacting a photo, so detectors are cached by everything that shapes them.
    """

    def __init__(self, *, model_dir: Path, runtime: RuntimeOptions) -> None:
        self.store = ModelStore(model_dir)
        self.runtime = runtime
        self._cache: dict[
            tuple[str, float | None, str, float, Overrides], tuple[Detector, threading.Lock]
        ] = {}
        self._model_info: dict[str, ModelInfo] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        return cls(model_dir=settings.model_dir, runtime=RuntimeOptions.from_settings(settings))

    @contextmanager
    def detector(
        self,
        category: str,
        *,
        threshold: float | None,
        mode: str,
        detect_scale: float,
        overrides: Overrides = (),
    ) -> Iterator[Detector]:
        """A warmed-up detector for ``category``, held exclusively for the ``with`` block."""
        key = (category, threshold, mode, detect_scale, overrides)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                detector = build_detector(
                    category,
                    store=self.store,
                    runtime=self.runtime,
                    threshold=threshold,
                    mode=mode,  # type: ignore[arg-type]
                    detect_scale=detect_scale,
                    overrides=overrides,
                )
                entry = self._cache[key] = (detector, threading.Lock())
        detector, lock = entry
        with lock:
            yield detector

    def default_threshold(self, category: str) -> float | None:
        return default_threshold(category, store=self.store, runtime=self.runtime)

    def model_info(self, category: str) -> ModelInfo:
        """Name and sha256 of the model behind ``category``, for reports. Hashing a model file takes
        longer than masking a photo, so it is done once per category and process."""
        with self._lock:
            info = self._model_info.get(category)
        if info is None:
            with self.detector(category, threshold=None, mode="image", detect_scale=1.0) as det:
                name = det.model_name
            sha256 = model_sha256(category, store=self.store, runtime=self.runtime)
            info = ModelInfo(name=name, category=category, sha256=sha256)
            with self._lock:
                self._model_info[category] = info
        return info


@dataclass(frozen=True)
class _Plan:
    """The category table and masking effects for one run."""

    categories: tuple[str, ...]
    redactors: tuple[Redactor, ...]
    region_redactors: dict[tuple[Method, Shape, int], Redactor]
    track_redactors: dict[int, Redactor] = field(default_factory=dict)
    """Per-track method or strength (``track_styles``), by track id."""

    def class_id(self, category: str) -> int:
        return self.categories.index(category)


def output_suffix(spec: RedactionSpec, info: MediaInfo) -> str:
    """The file suffix ``run`` writes for this spec and input (``.mp4``, ``.jpg``, ...)."""
    fmt = spec.output.format
    if info.kind == "image":
        if fmt in ("mp4", "mov", "mkv"):
            raise SpecError(f"output format {fmt!r} is for video, but the input is an image")
        if fmt == "auto":
            return IMAGE_SUFFIXES.get(info.container, ".png")
        return IMAGE_SUFFIXES[fmt]
    if fmt in IMAGE_SUFFIXES:
        raise SpecError(f"output format {fmt!r} is for images, but the input is a video")
    return ".mp4" if fmt == "auto" else f".{fmt}"


def run(
    engine: Engine,
    spec: RedactionSpec,
    input_path: Path,
    output_path: Path | None,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    source_report: Report | None = None,
    thumbnails_dir: Path | None = None,
    file_label: str | None = None,
    info: MediaInfo | None = None,
) -> Report:
    """Redact (or, in ``detect`` mode, only analyse) one file. See the module docstring."""
    if (spec.mode == "redact") != (output_path is not None):
        raise SpecError("redact mode needs an output path and detect mode takes none")
    if spec.source_job is not None and source_report is None:
        raise SpecError("source_job is set but its report was not supplied")
    report_progress = progress or (lambda _f: None)
    is_canceled = cancel or (lambda: False)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    info = info or probe(input_path)
    timings["probe"] = time.perf_counter() - started
    plan = _make_plan(spec, source_report)

    if info.kind == "image":
        tracks, output_info = _run_image(
            engine, spec, plan, input_path, output_path, info, source_report, timings, thumbnails_dir
        )
    else:
        tracks, output_info = _run_video(
            engine,
            spec,
            plan,
            input_path,
            output_path,
            info,
            source_report,
            timings,
            report_progress,
            is_canceled,
            thumbnails_dir,
        )
    report_progress(1.0)

    return make_report(
        engine,
        spec,
        input_path=input_path,
        info=info,
        tracks=tracks,
        output_path=output_path,
        output_info=output_info,
        timings=timings,
        source_report=source_report,
        file_label=file_label,
    )


def make_report(
    engine: Engine,
    spec: RedactionSpec,
    *,
    input_path: Path,
    info: MediaInfo,
    tracks: Sequence[Track],
    output_path: Path | None = None,
    output_info: MediaInfo | None = None,
    timings: dict[str, float] | None = None,
    source_report: Report | None = None,
    file_label: str | None = None,
) -> Report:
    """The report of one file (also used by segment-parallel jobs once tracks are stitched)."""
    plan = _make_plan(spec, source_report)
    started = time.perf_counter()
    report = Report(
        file=file_label,
        kind=info.kind,
        mode=spec.mode,
        input=_summary(info),
        output=None if output_info is None else _summary(output_info),
        counts=_counts(tracks, plan),
        masked_frames=_masked_frames(tracks),
        tracks=[_track_report(t, plan) for t in tracks],
        models=list(source_report.models)
        if source_report is not None
        else [engine.model_info(c) for c in plan.categories],
        timings=dict(timings or {}),
        input_sha256=_sha256(input_path),
        output_sha256=None if output_path is None else _sha256(output_path),
    )
    report.timings["report"] = time.perf_counter() - started
    return report


# --- planning ---------------------------------------------------------------------------------------------


def _make_plan(spec: RedactionSpec, source_report: Report | None) -> _Plan:
    categories = list(spec.enabled_categories())
    if source_report is not None:
        disabled = {name for name, cat in spec.categories.items() if not cat.enabled}
        for t in source_report.tracks:
            if t.category not in categories and t.category not in disabled:
                categories.append(t.category)
    redactors = tuple(
        build_redactor(
            spec.method_for(c),
            shape=spec.shape_for(c),
            mask_scale=spec.mask_scale_for(c),
            strength=spec.strength_for(c),
        )
        for c in categories
    )
    region_redactors = {
        (m, s, k): build_redactor(m, shape=s, mask_scale=1.0, strength=k)
        for m, s, k in {_region_key(spec, r) for r in _manual_regions(spec)}
    }
    track_category = {t.id: t.category for t in source_report.tracks} if source_report is not None else {}
    track_redactors: dict[int, Redactor] = {}
    for style in spec.track_styles:
        category = track_category.get(style.track_id, "")
        track_redactors[style.track_id] = build_redactor(
            style.method or spec.method_for(category),
            shape=spec.shape_for(category),
            mask_scale=spec.mask_scale_for(category),
            strength=resolve_strength(style.strength)
            if style.strength is not None
            else spec.strength_for(category),
        )
    return _Plan(
        categories=tuple(categories),
        redactors=redactors,
        region_redactors=region_redactors,
        track_redactors=track_redactors,
    )


def _manual_regions(spec: RedactionSpec) -> list[Region | TrackedRegion]:
    return [*spec.regions, *spec.tracked_regions]


def _region_key(spec: RedactionSpec, region: Region | TrackedRegion) -> tuple[Method, Shape, int]:
    return (region.method or spec.method, region.shape, spec.region_strength(region))


def reviewed_tracks(spec: RedactionSpec, source_report: Report) -> list[Track]:
    """The tracks of a finished detect job that a ``source_job`` redaction masks (its ``filter``
    applied), with the class ids ``render_video`` gives them for the same spec and report."""
    return _tracks_from_report(source_report, spec, _make_plan(spec, source_report))


def _tracks_from_report(report: Report, spec: RedactionSpec, plan: _Plan) -> list[Track]:
    chosen = set(spec.filter.track_ids) if spec.filter is not None else set()
    include = spec.filter is not None and spec.filter.scope == "include"
    tracks: list[Track] = []
    for t in report.tracks:
        if t.category not in plan.categories:
            continue
        if (t.id in chosen) != include:
            continue
        tracks.append(
            Track(
                track_id=t.id,
                class_id=plan.class_id(t.category),
                frames=np.array([f.frame for f in t.frames], dtype=np.int64),
                xyxy=np.array([f.box for f in t.frames], dtype=np.float32).reshape(-1, 4),
                score=np.array([f.score for f in t.frames], dtype=np.float32),
            )
        )
    return tracks


def _detect_all(
    engine: Engine,
    spec: RedactionSpec,
    plan: _Plan,
    rgb: np.ndarray,
    *,
    mode: str,
) -> tuple[Detections, Detections]:
    """Run every category's detector; split into boxes to mask and weak candidates.

    Plate and code boxes over a masked face are dropped (``veil.detect.face_overlap``).

    One after the other: each detector already uses every core (running face and plate side
    by side measured no faster, 254 vs 255 ms on a 1080p still)."""
    strong: list[Detections] = []
    weak: list[Detections] = []
    scale = spec.detection.detect_scale
    for class_id, category in enumerate(plan.categories):
        cat = spec.categories.get(category)
        threshold = cat.threshold if cat is not None else None
        overrides = category_overrides(spec, category)
        if mode == "video" and threshold is None:
            threshold = engine.default_threshold(category)
        if mode == "video" and threshold is not None:
            low = max(threshold * _WEAK_FACTOR, 0.01)
            with engine.detector(
                category, threshold=low, mode=mode, detect_scale=scale, overrides=overrides
            ) as det:
                found = det.detect(rgb).with_class_id(class_id)
            is_strong = found.confidence >= threshold
            strong.append(found[is_strong])
            weak.append(found[~is_strong])
        else:
            with engine.detector(
                category, threshold=threshold, mode=mode, detect_scale=scale, overrides=overrides
            ) as det:
                strong.append(det.detect(rgb).with_class_id(class_id))
    masked = Detections.merge(strong)
    return (
        drop_boxes_over_faces(masked, plan.categories, faces=masked),
        drop_boxes_over_faces(Detections.merge(weak), plan.categories, faces=masked),
    )


# --- images -----------------------------------------------------------------------------------------------


def _run_image(
    engine: Engine,
    spec: RedactionSpec,
    plan: _Plan,
    input_path: Path,
    output_path: Path | None,
    info: MediaInfo,
    source_report: Report | None,
    timings: dict[str, float],
    thumbnails_dir: Path | None,
) -> tuple[list[Track], MediaInfo | None]:
    started = time.perf_counter()
    rgb = _writable(read_image(input_path))
    timings["decode"] = time.perf_counter() - started

    started = time.perf_counter()
    if source_report is not None:
        tracks = _tracks_from_report(source_report, spec, plan)
    else:
        mode = "image" if spec.detection.image_search == "thorough" else "video"
        found, _ = _detect_all(engine, spec, plan, rgb, mode=mode)
        order = np.lexsort((found.xyxy[:, 0], found.class_id))
        found = found[order]
        tracks = [
            Track(
                track_id=i + 1,
                class_id=int(found.class_id[i]),
                frames=np.zeros(1, dtype=np.int64),
                xyxy=found.xyxy[i : i + 1],
                score=found.confidence[i : i + 1],
                outline=None if found.outline is None else found.outline[i : i + 1],
                label=None if found.label is None or found.label[i] < 0 else int(found.label[i]),
            )
            for i in range(len(found))
        ]
    timings["detect"] = time.perf_counter() - started

    if thumbnails_dir is not None:
        _write_thumbnails(thumbnails_dir, tracks, {0: rgb})
    if output_path is None:
        return tracks, None

    started = time.perf_counter()
    frame_dets = tracks_at_frames(tracks, 1)[0] if tracks else Detections.empty()
    _mask_frame(rgb, frame_dets, spec, plan, time_s=0.0, resolution_wh=(info.width, info.height))
    timings["redact"] = time.perf_counter() - started

    started = time.perf_counter()
    fmt = output_suffix(spec, info).lstrip(".").replace("jpg", "jpeg")
    write_image(
        output_path,
        rgb,
        fmt=fmt,  # type: ignore[arg-type]
        quality=spec.output.jpeg_quality,
        source=input_path,
        keep_metadata=spec.output.keep_metadata,
    )
    timings["encode"] = time.perf_counter() - started
    return tracks, probe(output_path)


# --- video ------------------------------------------------------------------------------------------------


def _run_video(
    engine: Engine,
    spec: RedactionSpec,
    plan: _Plan,
    input_path: Path,
    output_path: Path | None,
    info: MediaInfo,
    source_report: Report | None,
    timings: dict[str, float],
    progress: Progress,
    cancel: Cancel,
    thumbnails_dir: Path | None,
) -> tuple[list[Track], MediaInfo | None]:
    analyse_share = 0.0 if source_report is not None else (0.6 if output_path is not None else 1.0)

    started = time.perf_counter()
    if source_report is not None:
        tracks = _tracks_from_report(source_report, spec, plan)
    else:
        tracks, _ = _analyse(
            engine,
            spec,
            plan,
            [input_path],
            info=info,
            frame_limit=None,
            cancel=cancel,
            progress=lambda f: progress(analyse_share * f),
        )
    timings["detect"] = time.perf_counter() - started

    if thumbnails_dir is not None and tracks:
        write_video_thumbnails(thumbnails_dir, tracks, input_path)
    if output_path is None:
        return tracks, None

    started = time.perf_counter()
    _render(
        engine,
        spec,
        plan,
        input_path,
        output_path,
        tracks,
        info=info,
        frame_offset=0,
        time_offset_s=0.0,
        cancel=cancel,
        progress=lambda f: progress(analyse_share + (1 - analyse_share) * f),
    )
    timings["render"] = time.perf_counter() - started
    return tracks, probe(output_path)


def analyse_video(
    engine: Engine,
    spec: RedactionSpec,
    sources: Sequence[Path],
    *,
    info: MediaInfo,
    frame_limit: int | None = None,
    source_report: Report | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> tuple[list[Track], int]:
    """Detect and track over ``sources`` decoded back to back as one stream (a segment and the
    start of the next one, for overlap), stopping after ``frame_limit`` frames.

    Returns finalized tracks numbered from the first frame of ``sources[0]``, and the frame count seen.
    Segment workers call this; ``run`` does the same for a whole file.
    """
    plan = _make_plan(spec, source_report)
    return _analyse(
        engine,
        spec,
        plan,
        sources,
        info=info,
        frame_limit=frame_limit,
        progress=progress or (lambda _f: None),
        cancel=cancel or (lambda: False),
    )


def render_video(
    engine: Engine,
    spec: RedactionSpec,
    src: Path,
    dst: Path,
    tracks: Sequence[Track],
    *,
    info: MediaInfo,
    frame_offset: int = 0,
    time_offset_s: float = 0.0,
    source_report: Report | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    encode: EncodeOptions | None = None,
) -> None:
    """Mask ``src`` with ``tracks`` and encode it to ``dst``. Frame ``i`` of ``src`` is frame
    ``frame_offset + i`` of the tracks (and ``time_offset_s`` shifts manual regions), so a segment
    worker renders its slice of a long video with the stitched, global tracks. ``encode`` replaces the
    encoder options taken from ``spec.output`` (segment workers pin them from the whole source)."""
    plan = _make_plan(spec, source_report)
    _render(
        engine,
        spec,
        plan,
        src,
        dst,
        tracks,
        info=info,
        frame_offset=frame_offset,
        time_offset_s=time_offset_s,
        progress=progress or (lambda _f: None),
        cancel=cancel or (lambda: False),
        encode=encode,
    )


def _analyse(
    engine: Engine,
    spec: RedactionSpec,
    plan: _Plan,
    sources: Sequence[Path],
    *,
    info: MediaInfo,
    frame_limit: int | None,
    progress: Progress,
    cancel: Cancel,
) -> tuple[list[Track], int]:
    every = spec.detection.detect_every
    opts = spec.tracking
    tracker = IoUTracker(TrackerConfig(max_age_frames=max(opts.gap_frames, every) + every))
    schedule = DetectionSchedule(every=every)
    total = max(frame_limit or info.frame_count or 1, 1)
    frame_count = 0
    for frame in _frames_of(sources):
        if frame_limit is not None and frame_count >= frame_limit:
            break
        index = frame_count
        frame_count += 1
        thumbnail = frame.gray_thumbnail() if every > 1 else None
        if not schedule.due(index, thumbnail=thumbnail):
            continue
        if cancel():
            raise JobCanceled("the job was canceled")
        strong, weak = _detect_all(engine, spec, plan, frame.detection_rgb(), mode="video")
        schedule.observe(index, tracker.update(strong, frame_index=index, weak=weak), thumbnail=thumbnail)
        progress(min(frame_count / total, 1.0))
    tracks = finalize_tracks(
        tracker.history(),
        frame_count=frame_count,
        gap_frames=max(opts.gap_frames, every),
        pad_before=max(opts.pad_before, every - 1),
        pad_after=max(opts.pad_after, every - 1),
        smooth=opts.smooth,
        resolution_wh=(info.width, info.height),
        detect_every=every,
    )
    return tracks, frame_count


def _frames_of(sources: Sequence[Path]) -> Iterator[VideoFrame]:
    for source in sources:
        yield from iter_frames(source)


def _render(
    engine: Engine,
    spec: RedactionSpec,
    plan: _Plan,
    src: Path,
    dst: Path,
    tracks: Sequence[Track],
    *,
    info: MediaInfo,
    frame_offset: int,
    time_offset_s: float,
    progress: Progress,
    cancel: Cancel,
    encode: EncodeOptions | None = None,
) -> None:
    frame_count = info.frame_count or 0
    per_frame = tracks_at_frames(tracks, max(frame_offset + frame_count, _last_frame(tracks) + 1))
    resolution_wh = (info.width, info.height)
    total = max(frame_count, 1)

    def process(frame: VideoFrame) -> np.ndarray | None:
        if frame.index % 16 == 0:
            if cancel():
                raise JobCanceled("the job was canceled")
            progress(min(frame.index / total, 1.0))
        index = frame_offset + frame.index
        dets = per_frame[index] if index < len(per_frame) else Detections.empty()
        time_s = time_offset_s + frame.time_s
        jobs = _mask_jobs(dets, spec, plan, time_s=time_s, frame_index=index, resolution_wh=resolution_wh)
        if not jobs:
            return None
        # Only the rectangles the masks touch are converted to RGB and back (see VideoFrame.rgb_regions).
        rects = [r for redactor, d in jobs for r in redactor.touched(d, resolution_wh=resolution_wh)]
        rgb = _writable(frame.rgb_regions(rects))
        for redactor, d in jobs:
            redactor.apply(rgb, d)
        return rgb

    out = spec.output
    transcode_video(
        src,
        dst,
        process,
        options=encode
        or EncodeOptions(
            codec=out.codec,
            crf=out.crf,
            preset=out.preset,
            keep_bitrate=out.keep_bitrate,
            keep_metadata=out.keep_metadata,
        ),
        container_format=MUXER_BY_SUFFIX[output_suffix(spec, info)],
    )


# --- masking ----------------------------------------------------------------------------------------------


def _writable(rgb: np.ndarray) -> np.ndarray:
    return rgb if rgb.flags.writeable else rgb.copy()


def _regions_at(spec: RedactionSpec, time_s: float) -> list[int]:
    return [
        i
        for i, r in enumerate(spec.regions)
        if r.start <= time_s + 1e-6 and (r.end is None or time_s <= r.end + 1e-6)
    ]


def _outside_zones(dets: Detections, spec: RedactionSpec, time_s: float) -> Detections:
    if not spec.exclusion_zones or not len(dets):
        return dets
    centre = (dets.xyxy[:, :2] + dets.xyxy[:, 2:]) / 2
    inside = np.zeros(len(dets), dtype=bool)
    for zone in spec.exclusion_zones:
        if time_s + 1e-6 < zone.start or (zone.end is not None and time_s > zone.end + 1e-6):
            continue
        x1, y1, x2, y2 = zone.box
        inside |= (centre[:, 0] >= x1) & (centre[:, 0] <= x2) & (centre[:, 1] >= y1) & (centre[:, 1] <= y2)
    return dets[~inside]


def _mask_frame(
    rgb: np.ndarray,
    dets: Detections,
    spec: RedactionSpec,
    plan: _Plan,
    *,
    time_s: float,
    frame_index: int = 0,
    resolution_wh: tuple[int, int],
) -> None:
    """Mask detections (outside exclusion zones) and the manual regions active at ``time_s`` and
    ``frame_index``, in place."""
    for redactor, mine in _mask_jobs(
        dets, spec, plan, time_s=time_s, frame_index=frame_index, resolution_wh=resolution_wh
    ):
        redactor.apply(rgb, mine)


def _mask_jobs(
    dets: Detections,
    spec: RedactionSpec,
    plan: _Plan,
    *,
    time_s: float,
    frame_index: int,
    resolution_wh: tuple[int, int],
) -> list[tuple[Redactor, Detections]]:
    """Which redactor masks which boxes in one frame: detections outside exclusion zones by their
    category's redactor, then the manual regions active at ``time_s`` and the tracked regions'
    boxes at ``frame_index`` (interpolated between keyframes)."""
    dets = _outside_zones(dets, spec, time_s)
    jobs: list[tuple[Redactor, Detections]] = []
    if plan.track_redactors and dets.track_id is not None and len(dets):
        styled = np.isin(dets.track_id, list(plan.track_redactors))
        for track_id in np.unique(dets.track_id[styled]):
            jobs.append((plan.track_redactors[int(track_id)], dets[dets.track_id == track_id]))
        dets = dets[~styled]
    for class_id, redactor in enumerate(plan.redactors):
        mine = dets[dets.class_id == class_id]
        if len(mine):
            jobs.append((redactor, mine))
    manual: list[tuple[Region | TrackedRegion, tuple[float, float, float, float]]] = [
        (spec.regions[i], spec.regions[i].box) for i in _regions_at(spec, time_s)
    ]
    for tracked in spec.tracked_regions:
        at = tracked.box_at(frame_index)
        if at is not None:
            manual.append((tracked, at))
    for region, xyxy in manual:
        box = clip_xyxy(np.array([xyxy], dtype=np.float32), resolution_wh=resolution_wh)
        region_dets = Detections(
            xyxy=box, confidence=np.ones(1, np.float32), class_id=np.full(1, -1, np.int64)
        )
        jobs.append((plan.region_redactors[_region_key(spec, region)], region_dets))
    return jobs


# --- thumbnails -------------------------------------------------------------------------------------------


def _best_frames(tracks: Sequence[Track]) -> dict[int, list[tuple[Track, int]]]:
    """For each track, the frame where its detector score is highest, grouped by frame index."""
    wanted: dict[int, list[tuple[Track, int]]] = {}
    for t in tracks:
        k = int(np.argmax(t.score))
        wanted.setdefault(int(t.frames[k]), []).append((t, k))
    return wanted


def _write_thumbnails(directory: Path, tracks: Sequence[Track], frames: dict[int, np.ndarray]) -> None:
    import cv2

    directory.mkdir(parents=True, exist_ok=True)
    for frame_index, items in _best_frames(tracks).items():
        rgb = frames.get(frame_index)
        if rgb is None:
            continue
        h, w = rgb.shape[:2]
        for track, k in items:
            x1, y1, x2, y2 = (int(v) for v in clip_xyxy(track.xyxy[k : k + 1], resolution_wh=(w, h))[0])
            crop = rgb[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)]
            if crop.size == 0:
                continue
            scale = 128 / max(crop.shape[:2])
            crop = cv2.resize(
                crop,
                None,
                fx=scale,
                fy=scale,
                interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
            )
            ok, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
            )
            if ok:
                (directory / f"{track.track_id}.jpg").write_bytes(buf.tobytes())


def write_video_thumbnails(directory: Path, tracks: Sequence[Track], input_path: Path) -> None:
    """One ``<track_id>.jpg`` per track in ``directory``: its best-scored box, cropped from the video.
    Decodes ``input_path`` only up to the last frame it needs."""
    if not tracks:
        return
    wanted = _best_frames(tracks)
    frames: dict[int, np.ndarray] = {}
    last = max(wanted)
    for frame in iter_frames(input_path):
        if frame.index in wanted:
            frames[frame.index] = frame.rgb()
        if frame.index >= last:
            break
    _write_thumbnails(directory, tracks, frames)


# --- report -----------------------------------------------------------------------------------------------


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


def _counts(tracks: Sequence[Track], plan: _Plan) -> dict[str, int]:
    counts = dict.fromkeys(plan.categories, 0)
    for t in tracks:
        counts[plan.categories[t.class_id]] += 1
    return counts


def _masked_frames(tracks: Sequence[Track]) -> int:
    if not tracks:
        return 0
    return int(np.unique(np.concatenate([t.frames for t in tracks])).size)


def _last_frame(tracks: Sequence[Track]) -> int:
    return max((int(t.frames[-1]) for t in tracks), default=-1)


def _track_report(track: Track, plan: _Plan) -> TrackReport:
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
