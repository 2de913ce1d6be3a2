"""Finished tracks: what gets masked in pass 2 and what a ``detect`` job returns.

The online tracker (``veil.track.tracker``) only records what it saw. This
module turns those raw histories into the boxes that are actually masked:

1. **split** a history wherever it went unseen for longer than ``gap_frames``
   (each piece becomes its own track);
2. **bridge** the frames between two sightings by linear interpolation (this
   also fills the frames that were never run through the detector when it ran
   on every Nth frame only);
3. **smooth** the boxes over time, then take the union with the unsmoothed box,
   so smoothing can only grow a box and never uncover a detected pixel;
4. **pad** ``pad_before``/``pad_after`` frames at both ends (a face is usually
   visible a few frames before the detector is sure of it), holding the end box,
   also covering where it would be if it kept moving, and growing it;
5. **renumber** track ids 1..n in order of first frame, then class.

Filled-in frames carry score 0, so a reviewer can tell them from detections.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veil.boxes import clip_xyxy
from veil.detections import Detections, merge_outlines
from veil.track.motion import CameraPath

__all__ = ["Track", "finalize_tracks", "track_from_frames", "tracks_at_frames"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

PAD_GROWTH_PER_FRAME = 0.03
"""A padded box grows by this fraction of its size for each frame away from the
nearest sighting: the further from evidence, the less we know where the face is."""
PAD_GROWTH_MAX = 1.6
"""Upper bound of the padding growth factor, so long pads do not cover the whole frame."""
COAST_FRAMES = 60
"""With the camera's motion known, every track pads (coasts) this many frames at each end, within its
shot, carried by the camera: a face the detector loses in a pan, at the frame's edge or behind a
mask is still where the camera took it. On video-dev (replayed detections, defaults) it lifts face box
recall from 0.945 to 0.972 and halves the leaked faces (14 to 7 of 88), at a false-mask share of 0.547
against 0.500 (deface's: 0.559)."""

WEAK_COAST_FRAMES = 20
"""Coasting of a track made of weak sightings only (``ConfirmingTracker``): a third of ``COAST_FRAMES``.
Such a track is more often background than a face, and a false one masks 121 frames of it for a few
sightings; a third as much coasting gives the false-mask share room for the face mask margin
(``veil.spec.FACE_MASK_MARGIN``) that hides more faces. Measured in the README's accuracy section."""

CAMERA_GROWTH_PER_FRAME = 0.01
"""A camera-carried pad grows this much per frame away from its sighting: the camera's motion is
measured, so it needs less slack than a held box (``PAD_GROWTH_PER_FRAME``)."""
CAMERA_GROWTH_MAX = 1.1
"""Upper bound of that growth. 1.3 masked more background for no face: on video-dev (INT8) 1.1 keeps
recall and leaks (0.981, 5 of 88) and lowers the face false-mask share by about 0.01 (with
``analysis.CONFIRM_HITS``; both together 0.583 to 0.554)."""
VELOCITY_WINDOW = 5
"""Sightings used to estimate the velocity that padding extrapolates with."""


@dataclass(frozen=True)
class Track:
    """One object over time: a box for each frame in ``frames``.

    ``frames`` is sorted and unique; ``xyxy`` holds boxes in source-frame pixels;
    ``score`` is the detector's score, or 0 for frames filled in by tracking
    (gaps, padding). Raw histories from ``IoUTracker.history()`` use the same
    type, and there every frame is a detection. Arrays are converted and
    validated on construction, so lists are fine as input.

    ``outline`` (optional, (k, K, 2)) is each frame's polygon in unit
    coordinates of its box, as in ``Detections.outline`` (NaN rows: none).
    Frames filled in by tracking take the polygon of the nearest sighting.
    """

    track_id: int
    class_id: int
    frames: IntArray
    xyxy: FloatArray
    score: FloatArray
    outline: FloatArray | None = None
    label: int | None = None
    """The detector's label for the object (``Detections.label``; e.g. a text line's PII pattern)."""

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        k = frames.shape[0]
        if k == 0:
            raise ValueError("a track needs at least one frame")
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.shape != (k, 4):
            raise ValueError(f"xyxy must have shape ({k}, 4), got {xyxy.shape}")
        score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        if score.shape != (k,):
            raise ValueError(f"score must have shape ({k},), got {score.shape}")
        if frames[0] < 0 or (k > 1 and bool(np.any(np.diff(frames) <= 0))):
            raise ValueError("frames must be non-negative, sorted and unique")
        if not bool(np.all(np.isfinite(xyxy))):
            raise ValueError("xyxy must be finite")
        if bool(np.any(xyxy[:, 2] < xyxy[:, 0])) or bool(np.any(xyxy[:, 3] < xyxy[:, 1])):
            raise ValueError("boxes must satisfy x1 <= x2 and y1 <= y2")
        object.__setattr__(self, "track_id", int(self.track_id))
        object.__setattr__(self, "class_id", int(self.class_id))
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", score)
        if self.outline is not None:
            outline = np.asarray(self.outline, dtype=np.float32)
            if outline.ndim != 3 or outline.shape[0] != k or outline.shape[2] != 2:
                raise ValueError(f"outline must have shape ({k}, K, 2), got {outline.shape}")
            object.__setattr__(self, "outline", outline)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def first_frame(self) -> int:
        return int(self.frames[0])

    @property
    def last_frame(self) -> int:
        return int(self.frames[-1])


def track_from_frames(
    *,
    track_id: int,
    class_id: int,
    frames: Sequence[int] | IntArray,
    xyxy: Sequence[Sequence[float]] | FloatArray,
    score: Sequence[float] | FloatArray | None = None,
) -> Track:
    """Build a ``Track`` from per-frame rows in any order (e.g. a JSON report).

    Rows are sorted by frame. A frame listed twice keeps the union of its boxes
    and the higher score, so nothing that was to be masked is lost. ``score``
    defaults to 0 (filled in) for every frame.
    """
    f = np.asarray(frames, dtype=np.int64).reshape(-1)
    b = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    s = (
        np.zeros(f.shape, dtype=np.float32)
        if score is None
        else np.asarray(score, dtype=np.float32).reshape(-1)
    )
    if b.shape[0] != f.shape[0] or s.shape[0] != f.shape[0]:
        raise ValueError(
            f"frames, xyxy and score must have the same length, got {f.shape[0]}, {b.shape[0]}, {s.shape[0]}"
        )
    order = np.argsort(f, kind="stable")
    f, b, s = f[order], b[order], s[order]
    uniq, start = np.unique(f, return_index=True)
    if uniq.shape[0] != f.shape[0]:
        b = np.concatenate(
            [np.minimum.reduceat(b[:, :2], start), np.maximum.reduceat(b[:, 2:], start)], axis=1
        )
        s = np.maximum.reduceat(s, start)
        f = uniq
    return Track(track_id=track_id, class_id=class_id, frames=f, xyxy=b, score=s)


def finalize_tracks(
    raw: Sequence[Track],
    *,
    frame_count: int,
    gap_frames: int,
    pad_before: int,
    pad_after: int,
    smooth: float,
    resolution_wh: tuple[int, int],
    detect_every: int = 1,
    camera: CameraPath | None = None,
    carried: Mapping[int, tuple[IntArray, FloatArray]] | None = None,
    weak_ids: Collection[int] = (),
) -> list[Track]:
    """Turn raw tracker histories into the tracks that are masked (see module docstring).

    ``frame_count`` is the number of decoded frames; every raw frame must be
    below it. ``gap_frames`` is the longest run of unseen frames that is bridged;
    the step of ``detect_every`` (frames skipped by the detector) is always
    bridged, whatever ``gap_frames`` says. ``smooth`` in [0, 1) is the strength
    of a centred moving average (0 = off; 0.5 averages 3 frames, 0.9 averages
    19). Boxes are clipped to ``resolution_wh``. Returns tracks with ids
    1..n, each covering a contiguous run of frames.

    With ``camera`` (the stream's composed camera motion, one entry per frame), filled-in
    boxes move with the picture: a bridged box blends the last sighting carried forwards
    with the next one carried backwards, and a padded box is the end sighting carried by
    the camera (plus the object's own motion). Padding stops at a cut, and a gap across a
    cut is not bridged: nothing carries over into a different shot.

    ``weak_ids`` are raw tracks made of weak sightings only; they coast ``WEAK_COAST_FRAMES``.

    ``carried`` (raw track id -> frames and boxes, as ``TrackCarrier.carried``) are boxes that
    followed the object in the picture; each widens the finished box of its frame to take it in.
    They add to the bridged and padded boxes, never replace them: a template match can slip off
    an object that leaves the picture, where the camera-carried box still covers it.
    """
    if frame_count < 0:
        raise ValueError(f"frame_count must be >= 0, got {frame_count}")
    if gap_frames < 0 or pad_before < 0 or pad_after < 0:
        raise ValueError("gap_frames, pad_before and pad_after must be >= 0")
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    if camera is not None and len(camera) != frame_count:
        raise ValueError(f"camera has {len(camera)} frames, expected frame_count {frame_count}")
    max_missing = max(gap_frames, detect_every - 1)
    half_window = round(smooth / (1.0 - smooth))

    pieces: list[tuple[int, int, int, Track]] = []  # (first frame, class, order, track)
    for raw_index, track in enumerate(raw):
        if track.last_frame >= frame_count:
            raise ValueError(f"track frame {track.last_frame} is beyond frame_count {frame_count}")
        for seg_index, (lo, hi) in enumerate(_segments(track.frames, max_missing=max_missing)):
            frames, xyxy, score = _fill(
                track.frames[lo:hi], track.xyxy[lo:hi], track.score[lo:hi], camera=camera
            )
            xyxy = _smooth_union(xyxy, half_window=half_window)
            coast = 0 if camera is None else WEAK_COAST_FRAMES if track.track_id in weak_ids else COAST_FRAMES
            frames, xyxy, score = _pad(
                frames,
                xyxy,
                score,
                pad_before=max(pad_before, coast),
                pad_after=max(pad_after, coast),
                asked_before=pad_before,
                asked_after=pad_after,
                frame_count=frame_count,
                camera=camera,
            )
            extra = None if carried is None else carried.get(track.track_id)
            if extra is not None:
                xyxy = _unite(frames, xyxy, *extra)
            outline = _nearest_outline(track, lo, hi, frames)
            clipped = clip_xyxy(xyxy, resolution_wh)
            if outline is not None:
                outline = _reframe_outline(outline, xyxy, clipped)
            piece = Track(
                track_id=0,
                class_id=track.class_id,
                frames=frames,
                xyxy=clipped,
                score=score,
                outline=outline,
                label=track.label,
            )
            pieces.append((piece.first_frame, piece.class_id, raw_index * 1_000_003 + seg_index, piece))
    pieces.sort(key=lambda p: p[:3])
    return [
        Track(
            track_id=i,
            class_id=t.class_id,
            frames=t.frames,
            xyxy=t.xyxy,
            score=t.score,
            outline=t.outline,
            label=t.label,
        )
        for i, (_, _, _, t) in enumerate(pieces, start=1)
    ]


def _unite(frames: IntArray, xyxy: FloatArray, extra_frames: IntArray, extra_xyxy: FloatArray) -> FloatArray:
    """``xyxy`` (one box per frame of ``frames``, sorted) each grown to hold the box of ``extra_frames``
    at the same frame, where there is one."""
    rows = np.searchsorted(frames, extra_frames)
    inside = (rows < frames.shape[0]) & (frames[np.minimum(rows, frames.shape[0] - 1)] == extra_frames)
    if not inside.any():
        return xyxy
    out = xyxy.copy()
    rows, boxes = rows[inside], extra_xyxy[inside]
    out[rows, :2] = np.minimum(out[rows, :2], boxes[:, :2])
    out[rows, 2:] = np.maximum(out[rows, 2:], boxes[:, 2:])
    return out


def _nearest_outline(track: Track, lo: int, hi: int, frames: IntArray) -> FloatArray | None:
    """For each of ``frames``, the polygon of the nearest sighting among rows [lo, hi) of ``track``."""
    if track.outline is None:
        return None
    seen = track.frames[lo:hi]
    right = np.clip(np.searchsorted(seen, frames), 0, len(seen) - 1)
    left = np.clip(right - 1, 0, len(seen) - 1)
    nearer_left = np.abs(frames - seen[left]) < np.abs(seen[right] - frames)
    pick = np.where(nearer_left, left, right) + lo
    return np.asarray(track.outline[pick], dtype=np.float32)


def _reframe_outline(outline: FloatArray, old_xyxy: FloatArray, new_xyxy: FloatArray) -> FloatArray:
    """Polygons in unit coordinates of ``old_xyxy``, clamped into and re-expressed in ``new_xyxy``
    (the same boxes clipped to the frame), so clipping a box does not squeeze its polygon."""
    old_lo, old_size = old_xyxy[:, None, :2], (old_xyxy[:, 2:] - old_xyxy[:, :2])[:, None, :]
    new_lo, new_hi = new_xyxy[:, None, :2], new_xyxy[:, None, 2:]
    absolute = np.clip(old_lo + outline * old_size, new_lo, new_hi)
    size = np.maximum(new_hi - new_lo, 1e-6)
    return np.asarray((absolute - new_lo) / size, dtype=np.float32)


def _segments(
    frames: IntArray, *, max_missing: int, camera: CameraPath | None = None
) -> list[tuple[int, int]]:
    """Index ranges [lo, hi) of runs whose consecutive frames miss at most ``max_missing`` (and,
    with ``camera``, lie in one shot)."""
    apart = np.diff(frames) - 1 > max_missing
    breaks = np.flatnonzero(apart) + 1
    bounds = [0, *breaks.tolist(), int(frames.shape[0])]
    return list(zip(bounds[:-1], bounds[1:], strict=False))


def _fill(
    frames: IntArray, xyxy: FloatArray, score: FloatArray, *, camera: CameraPath | None = None
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Every frame from first to last; missing ones interpolated linearly with score 0, or with
    ``camera`` blended from the sightings either side carried by the camera's motion."""
    dense = np.arange(frames[0], frames[-1] + 1, dtype=np.int64)
    if dense.shape[0] == frames.shape[0]:
        return dense, xyxy.copy(), score.copy()
    boxes = np.stack([np.interp(dense, frames, xyxy[:, j]) for j in range(4)], axis=1).astype(np.float32)
    if camera is not None:
        for k in np.flatnonzero(np.diff(frames) > 1).tolist():
            a, b = int(frames[k]), int(frames[k + 1])
            if not camera.connected(a, b):
                continue
            between = np.arange(a + 1, b, dtype=np.int64)
            weight = ((between - a) / (b - a)).astype(np.float32)[:, None]
            forward = camera.move(xyxy[k], a, between)
            backward = camera.move(xyxy[k + 1], b, between)
            blend = (1 - weight) * forward + weight * backward
            rows = between - dense[0]  # the union with the straight line: a face may move on its own
            boxes[rows, :2] = np.minimum(boxes[rows, :2], blend[:, :2])
            boxes[rows, 2:] = np.maximum(boxes[rows, 2:], blend[:, 2:])
    scores = np.zeros(dense.shape, dtype=np.float32)
    scores[frames - frames[0]] = score
    return dense, boxes, scores


def _smooth_union(xyxy: FloatArray, *, half_window: int) -> FloatArray:
    """Centred moving average (window shrinks at the ends), united with the input box."""
    k = xyxy.shape[0]
    if half_window <= 0 or k < 2:
        return xyxy
    csum = np.concatenate([np.zeros((1, 4)), np.cumsum(xyxy, axis=0, dtype=np.float64)])
    idx = np.arange(k)
    lo = np.clip(idx - half_window, 0, k)
    hi = np.clip(idx + half_window + 1, 0, k)
    mean = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
    out = np.empty_like(xyxy)
    out[:, :2] = np.minimum(mean[:, :2], xyxy[:, :2])
    out[:, 2:] = np.maximum(mean[:, 2:], xyxy[:, 2:])
    return out


def _pad_boxes(
    end: FloatArray, velocity: FloatArray, steps: IntArray, *, carried: FloatArray | None = None
) -> FloatArray:
    """Boxes ``steps`` frames away from ``end``: the union of the held box and the
    box moved on with ``velocity`` (the face either stopped or kept going), grown.
    ``carried`` (one box per step) is ``end`` moved by the camera instead: that box,
    grown more slowly. (The object's own velocity is left out there: measured on a few
    blurred detections in a pan it is mostly noise, and extrapolated it masks background.)"""
    if carried is None:
        held = np.broadcast_to(end, (steps.shape[0], 4))
        moved = held + velocity[None, :] * steps[:, None].astype(np.float32)
        union = np.concatenate(
            [np.minimum(held[:, :2], moved[:, :2]), np.maximum(held[:, 2:], moved[:, 2:])], axis=1
        )
        grow = np.minimum(1.0 + PAD_GROWTH_PER_FRAME * steps.astype(np.float32), PAD_GROWTH_MAX)
    else:
        union = carried
        grow = np.minimum(1.0 + CAMERA_GROWTH_PER_FRAME * steps.astype(np.float32), CAMERA_GROWTH_MAX)
    centre = (union[:, :2] + union[:, 2:]) / 2
    half = (union[:, 2:] - union[:, :2]) / 2 * grow[:, None]
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def _pad(
    frames: IntArray,
    xyxy: FloatArray,
    score: FloatArray,
    *,
    pad_before: int,
    pad_after: int,
    frame_count: int,
    camera: CameraPath | None = None,
    asked_before: int = 0,
    asked_after: int = 0,
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Pad ``pad_before``/``pad_after`` frames. With ``camera``, the first ``asked_before``/``asked_after``
    of them are also the held, extrapolated and grown box of old (a face moving on its own, e.g. in a
    selfie where the background moves the other way), the rest camera-carried only."""
    first, last = int(frames[0]), int(frames[-1])
    n_before = min(pad_before, first)
    n_after = min(pad_after, frame_count - 1 - last)
    if camera is not None:  # coast only within the shot; the asked pads as ever
        while n_before > asked_before and not camera.connected(first - n_before, first):
            n_before -= 1
        while n_after > asked_after and not camera.connected(last, last + n_after):
            n_after -= 1
    if n_before <= 0 and n_after <= 0:
        return frames, xyxy, score
    w = min(VELOCITY_WINDOW, xyxy.shape[0] - 1)
    if w >= 1:
        v_start = (xyxy[0] - xyxy[w]) / w  # per frame, going back in time
        v_end = (xyxy[-1] - xyxy[-1 - w]) / w
    else:
        v_start = v_end = np.zeros(4, dtype=np.float32)
    parts_f, parts_b = [], []
    if n_before > 0:
        steps = np.arange(n_before, 0, -1, dtype=np.int64)
        parts_f.append(first - steps)
        parts_b.append(_pad_part(xyxy[0], v_start, steps, first - steps, first, camera, asked=asked_before))
    parts_f.append(frames)
    parts_b.append(xyxy)
    if n_after > 0:
        steps = np.arange(1, n_after + 1, dtype=np.int64)
        parts_f.append(last + steps)
        parts_b.append(_pad_part(xyxy[-1], v_end, steps, last + steps, last, camera, asked=asked_after))
    new_frames = np.concatenate(parts_f)
    new_score = np.zeros(new_frames.shape, dtype=np.float32)
    new_score[max(n_before, 0) : max(n_before, 0) + score.shape[0]] = score
    return new_frames, np.concatenate(parts_b).astype(np.float32), new_score


def _pad_part(
    end: FloatArray,
    velocity: FloatArray,
    steps: IntArray,
    targets: IntArray,
    origin: int,
    camera: CameraPath | None,
    *,
    asked: int,
) -> FloatArray:
    """Pad boxes at ``targets`` (``steps`` frames from ``origin``, whose box is ``end``)."""
    held = _pad_boxes(end, velocity, steps)
    if camera is None:
        return held
    linked = np.array([camera.connected(origin, int(t)) for t in targets], dtype=bool)
    if not linked.any():
        return held
    carried = held.copy()
    carried[linked] = _pad_boxes(
        end, velocity, steps[linked], carried=camera.move(end, origin, targets[linked])
    )
    near = (steps <= asked)[:, None]
    union = np.concatenate(
        [np.minimum(held[:, :2], carried[:, :2]), np.maximum(held[:, 2:], carried[:, 2:])], axis=1
    )
    return np.where(near, union, carried).astype(np.float32)


def tracks_at_frames(tracks: Sequence[Track], frame_count: int) -> list[Detections]:
    """Per-frame view of ``tracks``: element i holds the boxes to mask in frame i,
    with ``track_id`` and ``class_id`` set and ``confidence`` = the track score.

    Built with one sort over all rows, so 100k frames cost well under a second;
    frames outside [0, frame_count) are ignored. Frames without tracks share
    one empty ``Detections`` (it is immutable).
    """
    empty = Detections(
        xyxy=np.zeros((0, 4), dtype=np.float32),
        confidence=np.zeros((0,), dtype=np.float32),
        class_id=np.zeros((0,), dtype=np.int64),
        track_id=np.zeros((0,), dtype=np.int64),
    )
    if frame_count <= 0:
        return []
    if not tracks:
        return [empty] * frame_count
    frames = np.concatenate([t.frames for t in tracks])
    keep = (frames >= 0) & (frames < frame_count)
    order = np.argsort(frames, kind="stable")
    order = order[keep[order]]
    frames = frames[order]
    xyxy = np.concatenate([t.xyxy for t in tracks])[order]
    score = np.concatenate([t.score for t in tracks])[order]
    class_id = np.concatenate([np.full(len(t), t.class_id, dtype=np.int64) for t in tracks])[order]
    track_id = np.concatenate([np.full(len(t), t.track_id, dtype=np.int64) for t in tracks])[order]
    outlines = merge_outlines([t.outline for t in tracks], [len(t) for t in tracks])
    outline = None if outlines is None else outlines[order]
    bounds = np.searchsorted(frames, np.arange(frame_count + 1, dtype=np.int64))
    out: list[Detections] = []
    for i in range(frame_count):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        if lo == hi:
            out.append(empty)
        else:
            out.append(
                Detections(
                    xyxy=xyxy[lo:hi],
                    confidence=score[lo:hi],
                    class_id=class_id[lo:hi],
                    track_id=track_id[lo:hi],
                    outline=None if outline is None else outline[lo:hi],
                )
            )
    return out
