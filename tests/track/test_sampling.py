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


# --- camera-aware: given the camera's motion, a pan it explains keeps the interval ----------------------

FRAME_WH = (640, 480)
"""Frame size of the camera-aware cases; their thumbnails are 64x48, a tenth of it."""


def _scene() -> np.ndarray:
    """A textured scene larger than the view, smooth enough to be sampled at sub-pixel shifts."""
    import cv2

    noise = np.random.default_rng(7).integers(0, 256, (60, 80)).astype(np.float32)
    return np.clip(cv2.resize(noise, (320, 240), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def _view(scene: np.ndarray, x: int) -> np.ndarray:
    """The 64x48 thumbnail of a camera looking at ``scene`` from ``x`` thumbnail pixels to the right."""
    return scene[100:148, 100 + x : 164 + x].copy()


def _pan(dx_frame: float) -> np.ndarray:
    """The camera's motion of one frame in which the picture moves ``dx_frame`` frame pixels right."""
    return np.array([[1.0, 0.0, dx_frame], [0.0, 1.0, 0.0]])


def test_a_pan_the_camera_explains_keeps_the_interval() -> None:
    scene = _scene()
    camera_aware = DetectionSchedule(every=2, frame_wh=FRAME_WH)
    plain = DetectionSchedule(every=2)
    detected: dict[str, list[int]] = {"aware": [], "plain": []}
    for i in range(12):
        thumb = _view(scene, -2 * i)  # the view moves left, so the picture moves 2 px (20 frame px) right
        if camera_aware.due(i, thumbnail=thumb, motion=None if i == 0 else _pan(20.0)):
            detected["aware"].append(i)
            camera_aware.observe(i, Detections.empty(), thumbnail=thumb)
        if plain.due(i, thumbnail=thumb):
            detected["plain"].append(i)
            plain.observe(i, Detections.empty(), thumbnail=thumb)
    assert detected["aware"] == list(range(0, 12, 2))
    assert detected["plain"] == list(range(12)), "without the camera's motion, the pan is a changed picture"


def test_a_change_the_camera_does_not_explain_is_detected_at_once() -> None:
    scene = _scene()
    schedule = DetectionSchedule(every=4, frame_wh=FRAME_WH)
    assert schedule.due(0, thumbnail=_view(scene, 0))
    schedule.observe(0, Detections.empty(), thumbnail=_view(scene, 0))
    assert not schedule.due(1, thumbnail=_view(scene, -1), motion=_pan(10.0))
    assert schedule.due(2, thumbnail=_view(scene, -2), motion=_pan(-10.0)), "the camera said the other way"
    assert schedule.picture_changed


def test_a_cut_with_unknown_motion_is_compared_as_it_is() -> None:
    scene = _scene()
    schedule = DetectionSchedule(every=4, frame_wh=FRAME_WH)
    schedule.due(0, thumbnail=_view(scene, 0))
    schedule.observe(0, Detections.empty(), thumbnail=_view(scene, 0))
    assert not schedule.due(1, thumbnail=_view(scene, 0), motion=None), "unknown motion, same picture"
    assert schedule.due(2, thumbnail=255 - _view(scene, 0), motion=None) and schedule.picture_changed


def test_a_fast_pan_that_reveals_a_fifth_of_the_picture_is_detected() -> None:
    scene = _scene()
    schedule = DetectionSchedule(every=4, frame_wh=FRAME_WH)
    schedule.due(0, thumbnail=_view(scene, 0))
    schedule.observe(0, Detections.empty(), thumbnail=_view(scene, 0))
    assert not schedule.due(1, thumbnail=_view(scene, -6), motion=_pan(60.0)), "a tenth revealed"
    assert schedule.due(2, thumbnail=_view(scene, -14), motion=_pan(80.0)), "more than a fifth revealed"


def test_a_box_carried_by_the_camera_keeps_the_interval_and_one_moving_against_it_does_not() -> None:
    def run(box_step: float) -> list[int]:
        schedule = DetectionSchedule(every=3, frame_wh=FRAME_WH)
        detected = []
        for i in range(12):
            if schedule.due(i, motion=None if i == 0 else _pan(20.0)):
                detected.append(i)
                schedule.observe(i, _one(100 + box_step * i))
        return detected

    assert run(20.0) == [0, 3, 6, 9], "the face moves with the picture: 20 px a frame, half its size"
    assert run(-20.0)[:5] == [0, 3, 4, 5, 6], "against the pan, it moves a box a frame"
