"""The render stage: mask every frame with the finished tracks and the manual regions, and encode.

Video is decoded a second time for this (decoding twice costs far less than detection), and only the
rectangles the masks touch are converted to RGB and back (see ``VideoFrame.rgb_regions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from veil.boxes import clip_xyxy
from veil.detections import Detections
from veil.errors import JobCanceled
from veil.frames import RGBFrame
from veil.media import EncodeOptions, MediaInfo, VideoFrame, transcode_video
from veil.media.formats import MUXER_BY_SUFFIX
from veil.pipeline.analysis import Cancel, Progress
from veil.pipeline.plan import Plan, output_suffix, region_key
from veil.redact import Redactor
from veil.spec import Region, TrackedRegion
from veil.track import Track, tracks_at_frames

__all__ = ["mask_frame", "render"]


def render(
    plan: Plan,
    src: Path,
    dst: Path,
    tracks: Sequence[Track],
    *,
    info: MediaInfo,
    frame_offset: int = 0,
    time_offset_s: float = 0.0,
    encode: EncodeOptions | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> None:
    """Mask ``src`` with ``tracks`` and encode it to ``dst`` (as ``plan.output_suffix`` says). Frame
    ``i`` of ``src`` is frame ``frame_offset + i`` of the tracks (and ``time_offset_s`` shifts manual
    regions), so a segment worker renders its slice of a long video with the stitched, global tracks.
    ``encode`` replaces ``plan.encoding`` (segment workers pin it from the whole source)."""
    report_progress = progress or (lambda _f: None)
    is_canceled = cancel or (lambda: False)
    frame_count = info.frame_count or 0
    last = max((int(t.frames[-1]) for t in tracks), default=-1)
    per_frame = tracks_at_frames(tracks, max(frame_offset + frame_count, last + 1))
    resolution_wh = (info.width, info.height)
    total = max(frame_count, 1)

    def process(frame: VideoFrame) -> np.ndarray | None:
        if frame.index % 16 == 0:
            if is_canceled():
                raise JobCanceled("the job was canceled")
            report_progress(min(frame.index / total, 1.0))
        index = frame_offset + frame.index
        dets = per_frame[index] if index < len(per_frame) else Detections.empty()
        time_s = time_offset_s + frame.time_s
        jobs = _mask_jobs(dets, plan, time_s=time_s, frame_index=index, resolution_wh=resolution_wh)
        if not jobs:
            return None
        rects = [r for redactor, d in jobs for r in redactor.touched(d, resolution_wh=resolution_wh)]
        rgb = frame.rgb_regions(rects)
        rgb = rgb if rgb.flags.writeable else rgb.copy()
        for redactor, d in jobs:
            redactor.apply(rgb, d)
        return rgb

    transcode_video(
        src,
        dst,
        process,
        options=encode or plan.encoding,
        container_format=MUXER_BY_SUFFIX[output_suffix(plan.spec, info)],
        sound=plan.sound,
    )


def mask_frame(rgb: RGBFrame, tracks: Sequence[Track], plan: Plan, *, resolution_wh: tuple[int, int]) -> None:
    """Mask a still (frame 0 of ``tracks``, time 0) in place: detections outside exclusion zones, and
    the manual regions."""
    dets = tracks_at_frames(tracks, 1)[0] if tracks else Detections.empty()
    for redactor, mine in _mask_jobs(dets, plan, time_s=0.0, frame_index=0, resolution_wh=resolution_wh):
        redactor.apply(rgb, mine)


def _mask_jobs(
    dets: Detections, plan: Plan, *, time_s: float, frame_index: int, resolution_wh: tuple[int, int]
) -> list[tuple[Redactor, Detections]]:
    """Which redactor masks which boxes in one frame: detections outside exclusion zones by their
    category's redactor, then the manual regions active at ``time_s`` and the tracked regions'
    boxes at ``frame_index`` (interpolated between keyframes)."""
    spec = plan.spec
    dets = _outside_zones(dets, plan, time_s)
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
        (r, r.box) for r in spec.regions if _active(r.start, r.end, time_s)
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
        jobs.append((plan.region_redactors[region_key(spec, region)], region_dets))
    return jobs


def _active(start: float, end: float | None, time_s: float) -> bool:
    return start <= time_s + 1e-6 and (end is None or time_s <= end + 1e-6)


def _outside_zones(dets: Detections, plan: Plan, time_s: float) -> Detections:
    zones = [z for z in plan.spec.exclusion_zones if _active(z.start, z.end, time_s)]
    if not zones or not len(dets):
        return dets
    centre = (dets.xyxy[:, :2] + dets.xyxy[:, 2:]) / 2
    inside = np.zeros(len(dets), dtype=bool)
    for zone in zones:
        x1, y1, x2, y2 = zone.box
        inside |= (centre[:, 0] >= x1) & (centre[:, 0] <= x2) & (centre[:, 1] >= y1) & (centre[:, 1] <= y2)
    return dets[~inside]
