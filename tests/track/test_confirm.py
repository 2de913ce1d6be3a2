"""ConfirmingTracker: weak detections that persist become tracks from their first sighting."""

from __future__ import annotations

import numpy as np
import pytest

from veil.detections import Detections
from veil.pipeline.analysis import CONFIRM_HITS
from veil.track import ConfirmingTracker, TrackerConfig


def _dets(*rows: tuple[float, float, float, float, float, int]) -> Detections:
    """Rows of (x1, y1, x2, y2, score, class_id)."""
    arr = np.array(rows, dtype=np.float32).reshape(-1, 6)
    return Detections(xyxy=arr[:, :4], confidence=arr[:, 4], class_id=arr[:, 5].astype(np.int64))


NONE = _dets()


def test_a_weak_face_seen_in_three_detected_frames_becomes_a_track_from_its_first_sighting() -> None:
    tracker = ConfirmingTracker(TrackerConfig(), min_hits=3)
    for frame in (4, 6, 8):
        shown = tracker.update(NONE, frame_index=frame, weak=_dets((10 + frame, 10, 40 + frame, 40, 0.15, 0)))
        assert len(shown) == 0  # the schedule sees only confident tracks
    (track,) = tracker.history()
    assert track.frames.tolist() == [4, 6, 8]
    assert track.xyxy[0].tolist() == [14, 10, 44, 40]


def test_a_weak_candidate_seen_twice_is_dropped() -> None:
    tracker = ConfirmingTracker(TrackerConfig(), min_hits=3)
    for frame in (0, 2):
        tracker.update(NONE, frame_index=frame, weak=_dets((10, 10, 40, 40, 0.15, 0)))
    tracker.update(NONE, frame_index=4)
    assert tracker.history() == []


def test_a_weak_second_view_of_a_tracked_face_starts_no_track_of_its_own() -> None:
    tracker = ConfirmingTracker(TrackerConfig(), min_hits=1)
    for frame in range(3):
        strong = _dets((10, 10, 40, 40, 0.9, 0))
        tracker.update(
            strong, frame_index=frame, weak=_dets((12, 12, 42, 42, 0.2, 0), (100, 10, 130, 40, 0.2, 0))
        )
    ids_and_starts = [(t.track_id, t.frames[0], t.xyxy[0, 0]) for t in tracker.history()]
    assert ids_and_starts == [(1, 0, 10), (2, 0, 100)]  # the far candidate is confirmed, numbered after
    main, weak = tracker.split_history()
    assert [t.track_id for t in weak] == [2]  # the weak-only track, numbered as history numbers it
    assert [t.track_id for t in main + weak] == [t.track_id for t in tracker.history()]


def test_only_the_chosen_classes_are_confirmed() -> None:
    tracker = ConfirmingTracker(TrackerConfig(), min_hits=2, class_ids=frozenset({0}))
    for frame in range(3):
        tracker.update(
            NONE, frame_index=frame, weak=_dets((10, 10, 40, 40, 0.2, 0), (100, 10, 160, 30, 0.1, 1))
        )
    assert [t.class_id for t in tracker.history()] == [0]


def test_min_hits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="min_hits"):
        ConfirmingTracker(min_hits=0)


def test_the_video_pipeline_masks_a_weak_face_after_five_sightings_but_not_a_four_frame_flicker() -> None:
    flicker, face = _dets((10, 10, 40, 40, 0.15, 0)), _dets((300, 10, 330, 40, 0.15, 0))
    tracker = ConfirmingTracker(TrackerConfig(), min_hits=CONFIRM_HITS)
    for frame in range(0, 10, 2):
        tracker.update(NONE, frame_index=frame, weak=Detections.merge([flicker, face]) if frame < 8 else face)
    (track,) = tracker.history()  # a false candidate coasts a second each way once kept: it needs more
    assert track.xyxy[0].tolist() == [300, 10, 330, 40] and track.frames.tolist() == [0, 2, 4, 6, 8]
