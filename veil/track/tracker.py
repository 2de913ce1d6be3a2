"""Online multi-object tracker (ByteTrack-style, IoU plus centre distance).

Redaction fails closed, so unlike most trackers this one never drops a
detection: every confident detection comes back with a track id, and an
unmatched one simply starts a new track. Weak detections (below the user's
threshold) can only extend a track that already exists; they never start
one, and the matched ones are returned so they get masked too.

Association per frame, only within the same ``class_id``:

1. predict every live track to the current frame with a constant-velocity
   model on box centre and size, scaled by the frame gap (detection may run on
   every Nth frame only);
2. match confident detections to predictions greedily, best first: IoU above
   ``iou_threshold`` wins; otherwise a centre distance (in units of box size)
   below ``max_centre_distance`` with a similar size, for fast motion and small
   boxes where IoU is zero;
3. match weak detections to the tracks still unmatched, by IoU only;
4. start tracks for confident detections still unmatched.

A track not seen for more than ``max_age_frames`` is retired (its history is
kept). ``history()`` returns what the tracker saw, for ``finalize_tracks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from veil.boxes import box_iou_xyxy
from veil.detections import Detections, merge_outlines
from veil.track.tracks import Track

__all__ = ["IoUTracker", "TrackerConfig"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

_NO_MATCH = -1.0


class TrackerConfig(BaseModel):
    """Association settings. Defaults suit faces and plates at 25-60 fps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iou_threshold: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        description="Smallest IoU between a predicted track box and a detection that matches.",
    )
    weak_iou_threshold: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Smallest IoU for a weak (low-score) detection to extend a track. Stricter than the "
        "confident threshold because weak detections are more often false positives.",
    )
    max_centre_distance: float = Field(
        1.5,
        ge=0.0,
        le=10.0,
        description="Fallback when IoU is too small: largest distance between predicted and detected box "
        "centres, in units of the geometric mean of the two box sizes. 0 disables the fallback.",
    )
    max_size_ratio: float = Field(
        2.0,
        ge=1.0,
        le=10.0,
        description="Centre-distance matches also need widths and heights within this ratio of each other.",
    )
    velocity_weight: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Weight of the newest measured velocity against the running estimate (1 = newest only).",
    )
    max_age_frames: int = Field(
        30,
        ge=1,
        le=10_000,
        description="Retire a track not matched for more than this many frames. Set it at least to the gap "
        "that finalize bridges plus the detection step, or bridged gaps become two tracks.",
    )


@dataclass
class _TrackState:
    """Mutable per-track state; lives only inside the tracker."""

    track_id: int
    class_id: int
    last_frame: int
    cxcywh: FloatArray
    velocity: FloatArray  # per frame, on (cx, cy, w, h)
    hits: int = 1
    frames: list[int] = field(default_factory=list)
    boxes: list[FloatArray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    outlines: list[FloatArray | None] = field(default_factory=list)
    label: int | None = None


def _ordered(xyxy: FloatArray) -> FloatArray:
    """A copy of one box with x1 <= x2 and y1 <= y2, so a detector's flipped box
    is still recorded (and masked) rather than rejected later by ``Track``."""
    box = np.asarray(xyxy, dtype=np.float32).reshape(4)
    return np.concatenate([np.minimum(box[:2], box[2:]), np.maximum(box[:2], box[2:])]).astype(np.float32)


def _to_cxcywh(xyxy: FloatArray) -> FloatArray:
    xyxy = xyxy.reshape(-1, 4)
    wh = xyxy[:, 2:] - xyxy[:, :2]
    return np.concatenate([xyxy[:, :2] + wh / 2, wh], axis=1).astype(np.float32)


def _to_xyxy(cxcywh: FloatArray) -> FloatArray:
    cxcywh = cxcywh.reshape(-1, 4)
    half = cxcywh[:, 2:] / 2
    return np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1).astype(np.float32)


class IoUTracker:
    """Associates detections over the frames of one stream; one instance per stream.

    Call ``update`` once per detected frame with strictly increasing
    ``frame_index`` (indices may skip when the detector runs every Nth frame).
    Not thread-safe.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.reset()

    def reset(self) -> None:
        """Forget every track and its history; the next id is 1 again."""
        self._live: list[_TrackState] = []
        self._retired: list[_TrackState] = []
        self._next_id = 1
        self._last_frame: int | None = None

    def update(
        self, detections: Detections, *, frame_index: int, weak: Detections | None = None
    ) -> Detections:
        """Assign a track id to every detection of frame ``frame_index``.

        Returns ``detections`` in their order, each with ``track_id`` set,
        followed by the ``weak`` detections that extended a track (unmatched weak
        ones are left out). Inputs are never mutated.
        """
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise ValueError(f"frame_index must increase: got {frame_index} after {self._last_frame}")
        if frame_index < 0:
            raise ValueError(f"frame_index must be >= 0, got {frame_index}")
        self._last_frame = frame_index
        cfg = self.config
        self._retire(frame_index)

        live = self._live
        predicted = self._predict(frame_index)
        track_classes = np.asarray([t.class_id for t in live], dtype=np.int64)
        free_tracks = np.ones(len(live), dtype=bool)

        # 1. confident detections against every live track.
        ids = np.zeros(len(detections), dtype=np.int64)
        affinity = self._affinity(
            predicted,
            track_classes,
            detections.xyxy,
            detections.class_id,
            iou_threshold=cfg.iou_threshold,
            use_centre=cfg.max_centre_distance > 0,
        )
        for ti, di in _greedy_pairs(affinity):
            free_tracks[ti] = False
            ids[di] = self._observe(
                live[ti],
                frame_index,
                detections.xyxy[di],
                float(detections.confidence[di]),
                _outline_row(detections, di),
            )
            self._label(live[ti], detections, di)

        # 2. weak detections may only extend tracks that stayed unmatched.
        weak_out: Detections | None = None
        if weak is not None and len(weak) and bool(free_tracks.any()):
            free_idx = np.flatnonzero(free_tracks)
            weak_affinity = self._affinity(
                predicted[free_idx],
                track_classes[free_idx],
                weak.xyxy,
                weak.class_id,
                iou_threshold=cfg.weak_iou_threshold,
                use_centre=False,
            )
            weak_ids = np.zeros(len(weak), dtype=np.int64)
            for ti, di in _greedy_pairs(weak_affinity):
                track = live[int(free_idx[ti])]
                weak_ids[di] = self._observe(
                    track, frame_index, weak.xyxy[di], float(weak.confidence[di]), _outline_row(weak, di)
                )
                self._label(track, weak, di)
            matched = np.flatnonzero(weak_ids > 0)
            if matched.size:
                weak_out = Detections(
                    xyxy=weak.xyxy[matched],
                    confidence=weak.confidence[matched],
                    class_id=weak.class_id[matched],
                    track_id=weak_ids[matched],
                    outline=None if weak.outline is None else weak.outline[matched],
                )

        # 3. every confident detection left over starts a track: nothing is dropped.
        for di in (int(i) for i in np.flatnonzero(ids == 0)):
            ids[di] = self._start(
                frame_index,
                detections.xyxy[di],
                int(detections.class_id[di]),
                float(detections.confidence[di]),
                _outline_row(detections, di),
            )
            self._label(self._live[-1], detections, di)

        out = Detections(
            xyxy=detections.xyxy.copy(),
            confidence=detections.confidence.copy(),
            class_id=detections.class_id.copy(),
            track_id=ids,
            outline=detections.outline,
        )
        return out if weak_out is None else Detections.merge([out, weak_out])

    def history(self) -> list[Track]:
        """What the tracker saw, one ``Track`` per id in id order; every frame is a detection."""
        states = sorted(self._retired + self._live, key=lambda t: t.track_id)
        return [
            Track(
                track_id=t.track_id,
                class_id=t.class_id,
                frames=np.asarray(t.frames, dtype=np.int64),
                xyxy=np.stack(t.boxes).astype(np.float32),
                score=np.asarray(t.scores, dtype=np.float32),
                outline=merge_outlines(t.outlines, [1] * len(t.outlines)),
                label=t.label,
            )
            for t in states
        ]

    # -- internals ---------------------------------------------------------

    @staticmethod
    def _label(track: _TrackState, detections: Detections, index: int) -> None:
        """A track keeps the first label its detections carry."""
        if track.label is None and detections.label is not None and detections.label[index] >= 0:
            track.label = int(detections.label[index])

    def _retire(self, frame_index: int) -> None:
        max_age = self.config.max_age_frames
        keep: list[_TrackState] = []
        for t in self._live:
            (keep if frame_index - t.last_frame <= max_age else self._retired).append(t)
        self._live = keep

    def _predict(self, frame_index: int) -> FloatArray:
        if not self._live:
            return np.zeros((0, 4), dtype=np.float32)
        state = np.stack([t.cxcywh for t in self._live])
        velocity = np.stack([t.velocity for t in self._live])
        dt = np.asarray([frame_index - t.last_frame for t in self._live], dtype=np.float32)[:, None]
        pred = state + velocity * dt
        # A shrinking box must not vanish or flip: keep at least half its last size.
        pred[:, 2:] = np.maximum(pred[:, 2:], state[:, 2:] / 2)
        return _to_xyxy(pred)

    def _affinity(
        self,
        track_xyxy: FloatArray,
        track_classes: IntArray,
        det_xyxy: FloatArray,
        det_classes: IntArray,
        *,
        iou_threshold: float,
        use_centre: bool,
    ) -> FloatArray:
        """(tracks, detections) scores: 1 + IoU for IoU matches, (0, 1] for centre
        matches (closer is higher), ``_NO_MATCH`` where they may not match."""
        n_t, n_d = track_xyxy.shape[0], det_xyxy.shape[0]
        if n_t == 0 or n_d == 0:
            return np.full((n_t, n_d), _NO_MATCH, dtype=np.float32)
        same_class = track_classes[:, None] == det_classes[None, :]
        iou = box_iou_xyxy(track_xyxy, det_xyxy)
        out = np.where(same_class & (iou >= iou_threshold) & (iou > 0), 1.0 + iou, _NO_MATCH)
        if use_centre:
            a, b = _to_cxcywh(track_xyxy), _to_cxcywh(det_xyxy)
            size_a = np.sqrt(np.maximum(a[:, 2] * a[:, 3], 1e-6))
            size_b = np.sqrt(np.maximum(b[:, 2] * b[:, 3], 1e-6))
            scale = np.sqrt(size_a[:, None] * size_b[None, :])
            dist = np.linalg.norm(a[:, None, :2] - b[None, :, :2], axis=2) / scale
            wa, wb = np.maximum(a[:, None, 2:], 1e-6), np.maximum(b[None, :, 2:], 1e-6)
            ratio = np.maximum(wa / wb, wb / wa).max(axis=2)
            limit = self.config.max_centre_distance
            near = same_class & (dist <= limit) & (ratio <= self.config.max_size_ratio) & (out == _NO_MATCH)
            out = np.where(near, 1.0 - dist / (limit + 1e-6), out)
        return out.astype(np.float32)

    def _observe(
        self, track: _TrackState, frame_index: int, xyxy: FloatArray, score: float, outline: FloatArray | None
    ) -> int:
        box = _ordered(xyxy)
        measured = _to_cxcywh(box)[0]
        dt = frame_index - track.last_frame
        step = (measured - track.cxcywh) / float(dt)
        if track.hits == 1:
            track.velocity = step
        else:
            w = self.config.velocity_weight
            track.velocity = (w * step + (1.0 - w) * track.velocity).astype(np.float32)
        track.cxcywh = measured
        track.last_frame = frame_index
        track.hits += 1
        track.frames.append(frame_index)
        track.boxes.append(box)
        track.scores.append(score)
        track.outlines.append(outline)
        return track.track_id

    def _start(
        self, frame_index: int, xyxy: FloatArray, class_id: int, score: float, outline: FloatArray | None
    ) -> int:
        box = _ordered(xyxy)
        state = _TrackState(
            track_id=self._next_id,
            class_id=class_id,
            last_frame=frame_index,
            cxcywh=_to_cxcywh(box)[0],
            velocity=np.zeros(4, dtype=np.float32),
            frames=[frame_index],
            boxes=[box],
            scores=[score],
            outlines=[outline],
        )
        self._next_id += 1
        self._live.append(state)
        return state.track_id


def _outline_row(detections: Detections, index: int) -> FloatArray | None:
    """Row ``index``'s polygon as a (1, K, 2) block (NaN if it has none), or None without outlines."""
    return None if detections.outline is None else detections.outline[index : index + 1]


def _greedy_pairs(affinity: FloatArray) -> list[tuple[int, int]]:
    """(track, detection) pairs, highest affinity first, each index used once."""
    if affinity.size == 0:
        return []
    ti, di = np.nonzero(affinity > _NO_MATCH)
    if ti.size == 0:
        return []
    order = np.argsort(-affinity[ti, di], kind="stable")
    used_t: set[int] = set()
    used_d: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for k in order:
        t, d = int(ti[k]), int(di[k])
        if t in used_t or d in used_d:
            continue
        used_t.add(t)
        used_d.add(d)
        pairs.append((t, d))
    return pairs
