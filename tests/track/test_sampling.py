"""The adaptive detection schedule: every Nth frame while things are calm, every frame when they move fast."""

from __future__ import annotations

import numpy as np
import pytest

from veil.detections import Detections
from veil.track import DetectionSchedule, PassStrides


def _one(x: float, track_id: int = 1, size: float = 40.0) -> Detections:
    return Detections(
        xyxy=np.array([[x, 100, x + size, 100 + size]], dtype=np.float32),
        confidence=np.ones(1, np.float32),
        class_id=np.zeros(1, np.int64),
        track_id=np.array([track_id]),
    )


def _run(schedule: DetectionSchedule, positions: dict[int, float], frames: int) -> list[int]:
    detected = []
    for i in range(frames):
        if schedule.due(i):
            detected.append(i)
            schedule.observe(i, _one(positions.get(i, positions[max(k for k in positions if k <= i)])))
    return detected


def test_slow_motion_keeps_the_interval() -> None:
    positions = {i: 100 + i * 1.0 for i in range(30)}  # 1 px per frame on a 40 px box
    assert _run(DetectionSchedule(every=3), positions, 30) == list(range(0, 30, 3))


def test_fast_motion_detects_every_frame_until_calm() -> None:
    positions = {i: 100 + i * 20.0 if i < 12 else 100 + 11 * 20.0 for i in range(30)}  # half a box per frame
    detected = _run(DetectionSchedule(every=3), positions, 30)
    assert set(range(3, 13)) <= set(detected), "once motion is seen, every frame is detected"
    assert detected[-3:] == [21, 24, 27], "the schedule returns to the interval once the box stops"


def test_every_one_detects_every_frame() -> None:
    assert _run(DetectionSchedule(every=1), {0: 0.0}, 5) == [0, 1, 2, 3, 4]


def test_a_scene_change_is_detected_at_once() -> None:
    schedule = DetectionSchedule(every=4)
    still = np.full((48, 64), 100, dtype=np.uint8)
    assert schedule.due(0, thumbnail=still)
    schedule.observe(0, _one(10.0), thumbnail=still)
    assert not schedule.due(1, thumbnail=still + 2), "sensor noise does not trigger detection"
    assert schedule.due(2, thumbnail=still + 40), "a pan or a cut does"


def test_a_category_with_stride_two_sits_out_every_other_pass() -> None:
    strides = PassStrides({1: 2})
    assert [strides.skip() for _ in range(5)] == [frozenset(), {1}, frozenset(), {1}, frozenset()]


def test_a_fast_changing_picture_runs_every_category_and_restarts_its_stride() -> None:
    strides = PassStrides({1: 3, 2: 2})
    assert strides.skip() == frozenset()
    assert strides.skip() == {1, 2}
    assert strides.skip(picture_changed=True) == frozenset()
    assert strides.skip() == {1, 2}
    assert strides.skip() == {1}
    assert strides.skip() == {2}


def test_a_stride_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="strides must be >= 1"):
        PassStrides({0: 0})


def test_the_schedule_says_when_the_picture_changed_fast_since_the_last_detected_frame() -> None:
    schedule = DetectionSchedule(every=2)
    dark, light = np.full((9, 16), 20, np.uint8), np.full((9, 16), 200, np.uint8)
    assert schedule.due(0, thumbnail=dark) and not schedule.picture_changed
    schedule.observe(0, Detections.empty(), thumbnail=dark)
    assert not schedule.due(1, thumbnail=dark) and not schedule.picture_changed
    assert schedule.due(2, thumbnail=dark) and not schedule.picture_changed
    schedule.observe(2, Detections.empty(), thumbnail=dark)
    assert schedule.due(3, thumbnail=light) and schedule.picture_changed  # a cut, between two due frames
