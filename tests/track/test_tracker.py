"""IoUTracker: stable ids, every-Nth-frame detection, weak detections, and never dropping a box."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import veil.track
from veil.detections import Detections
from veil.track import IoUTracker, TrackerConfig


def dets(boxes: list[list[float]], *, score: float = 0.9, class_id: int | list[int] = 0) -> Detections:
    n = len(boxes)
    classes = class_id if isinstance(class_id, list) else [class_id] * n
    return Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.full(n, score, dtype=np.float32),
        class_id=np.asarray(classes, dtype=np.int64),
    )


def box_at(x: float, y: float, size: float = 40.0) -> list[float]:
    return [x, y, x + size, y + size]


def test_public_names_are_exported() -> None:
    for name in veil.track.__all__:
        assert hasattr(veil.track, name), name


def test_config_refuses_unknown_fields_and_out_of_range_values() -> None:
    with pytest.raises(ValidationError):
        TrackerConfig(iou_treshold=0.3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        TrackerConfig(iou_threshold=1.5)
    with pytest.raises(ValidationError):
        TrackerConfig(max_age_frames=0)
    assert all(f.description for f in TrackerConfig.model_fields.values())


def test_moving_box_keeps_one_id() -> None:
    tracker = IoUTracker()
    ids = set()
    for f in range(60):
        out = tracker.update(dets([box_at(100 + 6 * f, 200 + 2 * f)]), frame_index=f)
        ids.add(int(out.track_id[0]))  # type: ignore[index]
    assert ids == {1}
    (track,) = tracker.history()
    assert track.frames.tolist() == list(range(60))


def test_fast_small_box_without_overlap_keeps_its_id() -> None:
    """A 16 px box moving 20 px per frame never overlaps its previous position."""
    tracker = IoUTracker()
    ids = [
        int(tracker.update(dets([box_at(50 + 20 * f, 300, size=16)]), frame_index=f).track_id[0])  # type: ignore[index]
        for f in range(30)
    ]
    assert set(ids) == {1}


def test_detection_every_nth_frame_keeps_one_id() -> None:
    """Detected every 6th frame, a 40 px box moves 30 px between calls (IoU 0.14)."""
    tracker = IoUTracker()
    ids = {
        int(tracker.update(dets([box_at(10 + 5 * f, 100)]), frame_index=f).track_id[0])  # type: ignore[index]
        for f in range(0, 180, 6)
    }
    assert ids == {1}


def test_motion_model_scales_with_the_frame_gap() -> None:
    """After a velocity is known, a 12-frame gap moves the box 84 px (twice its size);
    prediction scaled by the gap must still overlap it, even with IoU-only matching."""
    tracker = IoUTracker(TrackerConfig(max_centre_distance=0.0))
    frames = [0, 1, 2, 3, *range(15, 200, 12)]
    ids = {
        int(tracker.update(dets([box_at(10 + 7 * f, 100)]), frame_index=f).track_id[0])  # type: ignore[index]
        for f in frames
    }
    assert ids == {1}


def test_two_neighbours_keep_their_own_ids() -> None:
    tracker = IoUTracker()
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for f in range(40):
        out = tracker.update(dets([box_at(100 + 3 * f, 100), box_at(100 + 3 * f, 150)]), frame_index=f)
        for i in (0, 1):
            seen[i].add(int(out.track_id[i]))  # type: ignore[index]
    assert seen == {0: {1}, 1: {2}}


def test_classes_never_share_a_track() -> None:
    tracker = IoUTracker()
    tracker.update(dets([box_at(0, 0)], class_id=0), frame_index=0)
    out = tracker.update(dets([box_at(0, 0)], class_id=1), frame_index=1)
    assert out.track_id.tolist() == [2]  # type: ignore[union-attr]
    assert [t.class_id for t in tracker.history()] == [0, 1]


def test_weak_detection_alone_never_starts_a_track() -> None:
    tracker = IoUTracker()
    out = tracker.update(Detections.empty(), frame_index=0, weak=dets([box_at(10, 10)], score=0.2))
    assert len(out) == 0
    assert tracker.history() == []


def test_weak_detection_extends_an_unmatched_track_and_is_returned() -> None:
    tracker = IoUTracker()
    tracker.update(dets([box_at(100, 100)]), frame_index=0)
    tracker.update(dets([box_at(104, 100)]), frame_index=1)
    weak = dets([box_at(108, 100), box_at(500, 500)], score=0.2)
    out = tracker.update(Detections.empty(), frame_index=2, weak=weak)
    assert len(out) == 1
    assert out.track_id.tolist() == [1]  # type: ignore[union-attr]
    assert out.xyxy[0].tolist() == box_at(108, 100)
    assert out.confidence[0] == pytest.approx(0.2)
    (track,) = tracker.history()
    assert track.frames.tolist() == [0, 1, 2]


def test_weak_detection_does_not_take_a_track_a_strong_one_matched() -> None:
    tracker = IoUTracker()
    tracker.update(dets([box_at(100, 100)]), frame_index=0)
    out = tracker.update(dets([box_at(101, 100)]), frame_index=1, weak=dets([box_at(102, 100)], score=0.2))
    assert len(out) == 1 and out.track_id.tolist() == [1]  # type: ignore[union-attr]


def test_inputs_are_not_mutated() -> None:
    tracker = IoUTracker()
    tracker.update(dets([box_at(0, 0)]), frame_index=0)
    strong = dets([box_at(2, 0), box_at(300, 300)])
    weak = dets([box_at(600, 600)], score=0.1)
    before = (strong.xyxy.copy(), strong.confidence.copy(), strong.class_id.copy())
    out = tracker.update(strong, frame_index=1, weak=weak)
    assert strong.track_id is None
    assert np.array_equal(strong.xyxy, before[0]) and np.array_equal(strong.confidence, before[1])
    assert not np.shares_memory(out.xyxy, strong.xyxy)


def test_frame_index_must_increase() -> None:
    tracker = IoUTracker()
    tracker.update(dets([box_at(0, 0)]), frame_index=5)
    with pytest.raises(ValueError, match="increase"):
        tracker.update(dets([box_at(0, 0)]), frame_index=5)


def test_track_unseen_longer_than_max_age_is_retired() -> None:
    tracker = IoUTracker(TrackerConfig(max_age_frames=10))
    tracker.update(dets([box_at(0, 0)]), frame_index=0)
    assert tracker.update(dets([box_at(0, 0)]), frame_index=10).track_id.tolist() == [1]  # type: ignore[union-attr]
    assert tracker.update(dets([box_at(0, 0)]), frame_index=21).track_id.tolist() == [2]  # type: ignore[union-attr]


def test_reset_forgets_tracks_and_restarts_ids() -> None:
    tracker = IoUTracker()
    tracker.update(dets([box_at(0, 0), box_at(100, 0)]), frame_index=3)
    tracker.reset()
    assert tracker.history() == []
    assert tracker.update(dets([box_at(0, 0)]), frame_index=0).track_id.tolist() == [1]  # type: ignore[union-attr]


_coord = st.floats(min_value=0, max_value=400, allow_nan=False, width=32)
_box = st.tuples(_coord, _coord, st.floats(1, 120, width=32), st.floats(1, 120, width=32)).map(
    lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
)
_frame = st.tuples(
    st.lists(st.tuples(_box, st.integers(0, 2)), max_size=6),
    st.lists(st.tuples(_box, st.integers(0, 2)), max_size=4),
    st.integers(1, 4),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_frame, min_size=1, max_size=25))
def test_never_drops_a_detection(frames: list[tuple[list, list, int]]) -> None:
    """Whatever comes in, every confident box comes back, unchanged and with an id; weak
    ones only come back with an id of an existing track; ids are unique within a frame."""
    tracker = IoUTracker()
    index = 0
    returned = 0
    for strong_rows, weak_rows, step in frames:
        index += step
        strong = dets([b for b, _ in strong_rows], class_id=[c for _, c in strong_rows])
        weak = dets([b for b, _ in weak_rows], score=0.1, class_id=[c for _, c in weak_rows])
        known = {t.track_id for t in tracker.history()}
        out = tracker.update(strong, frame_index=index, weak=weak)
        n = len(strong)
        assert out.track_id is not None
        assert len(out) >= n
        assert np.array_equal(out.xyxy[:n], strong.xyxy)
        assert np.array_equal(out.class_id[:n], strong.class_id)
        assert bool(np.all(out.track_id > 0))
        assert len(set(out.track_id.tolist())) == len(out)
        assert set(out.track_id[n:].tolist()) <= known  # weak ones only extend existing tracks
        returned += len(out)
    assert sum(len(t) for t in tracker.history()) == returned


def test_flipped_box_is_kept_and_recorded_in_order() -> None:
    tracker = IoUTracker()
    out = tracker.update(dets([[50, 60, 10, 20]]), frame_index=0)
    assert out.xyxy[0].tolist() == [50, 60, 10, 20] and out.track_id.tolist() == [1]  # type: ignore[union-attr]
    (track,) = tracker.history()
    assert track.xyxy[0].tolist() == [10, 20, 50, 60]
