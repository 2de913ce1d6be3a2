"""Track stitching across segment borders: one id per object, a box in every frame, no swaps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from veil.detections import Detections
from veil.track.stitch import stitch_segment_tracks
from veil.track.tracker import IoUTracker
from veil.track.tracks import Track, finalize_tracks

RESOLUTION_WH = (640, 360)
FACE, PLATE = 0, 1

Path = Callable[[int], "np.ndarray | None"]
"""Ground truth: global frame -> xyxy box, or None where the object is not in view."""


def _segment_tracks(
    paths: list[Path], *, start: int, length: int, overlap: int, total: int, miss_every: int = 0
) -> list[Track]:
    """What one segment worker produces: the real tracker and finalize over its frames plus the overlap."""
    tracker = IoUTracker()
    local_count = min(length + overlap, total - start)
    for local in range(local_count):
        g = start + local
        boxes = [b for b in (p(g) for p in paths) if b is not None]
        if miss_every and g % miss_every == 0:
            boxes = boxes[1:]  # the detector misses one face now and then
        dets = Detections(
            xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            confidence=np.full(len(boxes), 0.9, dtype=np.float32),
            class_id=np.zeros(len(boxes), dtype=np.int64),
        )
        tracker.update(dets, frame_index=local)
    return finalize_tracks(
        tracker.history(),
        frame_count=local_count,
        gap_frames=5,
        pad_before=0,
        pad_after=0,
        smooth=0.0,
        resolution_wh=RESOLUTION_WH,
    )


def _box(x: float, y: float, w: float = 40, h: float = 48) -> np.ndarray:
    return np.asarray([x, y, x + w, y + h], dtype=np.float32)


def _contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    return bool(np.all(outer[:2] <= inner[:2] + 1e-3) and np.all(outer[2:] >= inner[2:] - 1e-3))


def test_face_crossing_four_borders_keeps_one_id_and_a_box_in_every_frame() -> None:
    total, length, overlap = 200, 40, 8
    first, last = 5, 190

    def face(g: int) -> np.ndarray | None:
        return _box(10 + 3 * (g - first), 100 + 20 * np.sin(g / 15)) if first <= g <= last else None

    starts = list(range(0, total, length))  # 5 segments, 4 borders
    segments = [
        (s, _segment_tracks([face], start=s, length=length, overlap=overlap, total=total, miss_every=13))
        for s in starts
    ]
    assert all(len(tracks) == 1 for _, tracks in segments)  # each worker saw the face once

    stitched = stitch_segment_tracks(segments)
    assert len(stitched) == 1
    track = stitched[0]
    assert track.track_id == 1
    assert track.frames.tolist() == list(range(first, last + 1))  # no frame left unmasked
    for g, box in zip(track.frames.tolist(), track.xyxy, strict=True):
        truth = face(g)
        assert truth is not None
        if g % 13:  # frames the detector saw are covered exactly
            assert _contains(box, truth)


def test_shared_frames_take_the_union_of_both_views() -> None:
    a = Track(
        track_id=4,
        class_id=FACE,
        frames=np.arange(30, 50),
        xyxy=np.tile(_box(100, 100), (20, 1)),
        score=np.full(20, 0.9),
    )
    b = Track(
        track_id=1,
        class_id=FACE,
        frames=np.arange(0, 30),
        xyxy=np.tile(_box(104, 98), (30, 1)),
        score=np.full(30, 0.8),
    )
    [track] = stitch_segment_tracks([(0, [a]), (40, [b])])
    assert track.frames.tolist() == list(range(30, 70))
    shared = (track.frames >= 40) & (track.frames < 50)
    np.testing.assert_allclose(track.xyxy[shared], np.tile([100, 98, 144, 148], (10, 1)))
    np.testing.assert_allclose(track.score[shared], 0.9)
    np.testing.assert_allclose(track.xyxy[track.frames < 40], np.tile(_box(100, 100), (10, 1)))
    np.testing.assert_allclose(track.xyxy[track.frames >= 50], np.tile(_box(104, 98), (20, 1)))


def test_two_faces_crossing_at_a_border_do_not_swap() -> None:
    """A walks right, B walks left; their boxes meet exactly inside the overlap window."""
    border, overlap, speed = 40, 8, 6.0
    meet = border + 3

    def a(g: int) -> np.ndarray:
        return _box(300 + speed * (g - meet), 120)

    def b(g: int) -> np.ndarray:
        return _box(300 - speed * (g - meet), 120)

    def track(tid: int, path: Callable[[int], np.ndarray], frames: range, start: int, jitter: float) -> Track:
        boxes = np.stack([path(g) + np.float32(jitter) for g in frames]).astype(np.float32)
        return Track(
            track_id=tid,
            class_id=FACE,
            frames=np.asarray(frames) - start,
            xyxy=boxes,
            score=np.full(len(frames), 0.9),
        )

    seg0 = [track(1, a, range(0, border + overlap), 0, 0.0), track(2, b, range(0, border + overlap), 0, 0.0)]
    # The second worker numbered them the other way round and saw slightly different boxes.
    seg1 = [track(1, b, range(border, 90), border, 1.5), track(2, a, range(border, 90), border, -1.5)]
    stitched = stitch_segment_tracks([(0, seg0), (border, seg1)])

    assert [t.track_id for t in stitched] == [1, 2]
    for t in stitched:
        assert t.frames.tolist() == list(range(0, 90))
        x1 = t.xyxy[:, 0]
        direction = np.sign(x1[-1] - x1[0])
        # Each merged track moves one way only; a swap would turn it around at the border.
        steps = np.diff(x1)
        shared = (t.frames[1:] >= border) & (t.frames[1:] < border + overlap)
        assert np.all(np.sign(steps[~shared]) == direction)
        assert np.all(np.abs(steps[~shared]) <= speed + 3.5)
    finals = sorted(float(t.xyxy[-1, 0]) for t in stitched)
    assert finals == pytest.approx([300 - speed * (89 - meet) + 1.5, 300 + speed * (89 - meet) - 1.5])


def test_unmatched_tracks_keep_separate_ids_numbered_by_first_frame() -> None:
    def still(tid: int, cls: int, frames: range, box: np.ndarray) -> Track:
        return Track(
            track_id=tid,
            class_id=cls,
            frames=np.asarray(frames),
            xyxy=np.tile(box, (len(frames), 1)),
            score=np.full(len(frames), 0.9),
        )

    seg0 = [
        still(1, FACE, range(0, 20), _box(10, 10)),  # leaves before the border
        still(2, FACE, range(5, 48), _box(200, 50)),  # reaches into the overlap
    ]
    seg1 = [
        still(1, PLATE, range(0, 30), _box(200, 50)),  # same place, other class: not the same object
        still(2, FACE, range(0, 30), _box(500, 200)),  # same class, elsewhere: IoU 0
        still(3, FACE, range(20, 40), _box(10, 10)),  # appears after the overlap
    ]
    stitched = stitch_segment_tracks([(0, seg0), (40, seg1)])
    summary = [(t.track_id, t.class_id, t.first_frame, t.last_frame) for t in stitched]
    assert summary == [
        (1, FACE, 0, 19),
        (2, FACE, 5, 47),
        (3, FACE, 40, 69),
        (4, PLATE, 40, 69),
        (5, FACE, 60, 79),
    ]


@pytest.mark.parametrize(("threshold", "merged"), [(0.2, True), (0.3, False)])
def test_iou_threshold_decides_on_the_mean_over_shared_frames(threshold: float, merged: bool) -> None:
    # Boxes shifted by 24 of 40 px: IoU = 16*48 / (2*40*48 - 16*48) = 0.25 on every shared frame.
    a = Track(
        track_id=1,
        class_id=FACE,
        frames=np.arange(0, 50),
        xyxy=np.tile(_box(100, 100), (50, 1)),
        score=np.full(50, 0.9),
    )
    b = Track(
        track_id=1,
        class_id=FACE,
        frames=np.arange(0, 30),
        xyxy=np.tile(_box(124, 100), (30, 1)),
        score=np.full(30, 0.9),
    )
    stitched = stitch_segment_tracks([(0, [a]), (40, [b])], iou_threshold=threshold)
    assert len(stitched) == (1 if merged else 2)


def test_empty_inputs_and_bad_starts() -> None:
    assert stitch_segment_tracks([]) == []
    assert stitch_segment_tracks([(0, []), (40, [])]) == []
    t = Track(
        track_id=9,
        class_id=FACE,
        frames=np.arange(3),
        xyxy=np.tile(_box(0, 0), (3, 1)),
        score=np.ones(3, np.float32),
    )
    [only] = stitch_segment_tracks([(100, [t])])
    assert only.track_id == 1 and only.frames.tolist() == [100, 101, 102]
    with pytest.raises(ValueError):
        stitch_segment_tracks([(40, [t]), (0, [t])])
    with pytest.raises(ValueError):
        stitch_segment_tracks([(0, [t]), (0, [t])])
    with pytest.raises(ValueError):
        stitch_segment_tracks([(0, [t])], iou_threshold=0.0)
