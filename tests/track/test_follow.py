"""Following a drawn box: forward and backward, until the object is lost or the scene cuts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from veil.track.follow import FollowLimits, follow_box, simplify_keyframes

W, H = 320, 240
OBJ = 40


def _scene(seed: int, *, low: int = 0, high: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(low, high, (H // 8, W // 8), dtype=np.uint8)
    return cv2.resize(noise, (W, H), interpolation=cv2.INTER_LINEAR)


OBJECT = np.random.default_rng(99).integers(0, 256, (OBJ, OBJ), dtype=np.uint8)


def _position(index: int) -> tuple[int, int]:
    return 40 + 3 * index, 60 + index


def _frame(index: int, *, cut_at: int | None, hide_after: int | None) -> np.ndarray:
    if cut_at is not None and index >= cut_at:
        return _scene(7, low=0, high=100)  # another place, darker: its histogram differs
    frame = _scene(1, low=60, high=256).copy()
    if hide_after is None or index <= hide_after:
        x, y = _position(index)
        frame[y : y + OBJ, x : x + OBJ] = OBJECT
    return frame


def _frames(
    count: int, *, cut_at: int | None = None, hide_after: int | None = None
) -> Iterator[tuple[int, Callable[[int, int], np.ndarray]]]:
    for i in range(count):
        frame = _frame(i, cut_at=cut_at, hide_after=hide_after)
        yield i, lambda w, h, f=frame: cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)


def _box(index: int) -> tuple[float, float, float, float]:
    x, y = _position(index)
    return (float(x), float(y), float(x + OBJ), float(y + OBJ))


def test_follows_a_moving_object_both_ways_until_the_scene_cuts() -> None:
    result = follow_box(_frames(40, cut_at=30), start_frame=10, xyxy=_box(10), resolution_wh=(W, H))
    assert result.frames[0] == 0 and result.frames[-1] == 29
    assert result.stopped == {"backward": "video_end", "forward": "scene_cut"}
    for frame, box in zip(result.frames, result.xyxy, strict=True):
        assert np.abs(box - np.array(_box(int(frame)))).max() <= 2.0, (frame, box)


def test_stops_where_the_object_disappears() -> None:
    result = follow_box(_frames(30, hide_after=20), start_frame=5, xyxy=_box(5), resolution_wh=(W, H))
    assert result.frames[-1] == 20 and result.stopped["forward"] == "lost"


def test_limits_frames_and_time() -> None:
    limited = follow_box(
        _frames(40), start_frame=20, xyxy=_box(20), resolution_wh=(W, H), limits=FollowLimits(max_frames=5)
    )
    assert (limited.frames[0], limited.frames[-1]) == (15, 25)
    assert limited.stopped == {"backward": "frame_limit", "forward": "frame_limit"}

    ticks = iter(range(1000))
    timed = follow_box(
        _frames(40),
        start_frame=0,
        xyxy=_box(0),
        resolution_wh=(W, H),
        limits=FollowLimits(deadline_s=10),
        clock=lambda: float(next(ticks)),
    )
    assert timed.stopped["forward"] == "time_limit" and timed.frames[-1] < 39


def test_a_start_frame_past_the_end_is_an_error() -> None:
    with pytest.raises(ValueError, match="no frame 50"):
        follow_box(_frames(10), start_frame=50, xyxy=_box(0), resolution_wh=(W, H))


def test_simplified_keyframes_interpolate_within_tolerance() -> None:
    frames = np.arange(50, dtype=np.int64)
    xyxy = np.stack([frames * 2.0, frames * 0, frames * 2.0 + 10, 10 + (frames > 25) * 5.0], axis=1).astype(
        np.float32
    )
    keep = simplify_keyframes(frames, xyxy, tolerance_px=1.0)
    assert keep[0] == 0 and keep[-1] == 49 and len(keep) <= 5
    kept_f, kept = frames[keep], xyxy[keep]
    for k in range(4):
        assert np.abs(np.interp(frames, kept_f, kept[:, k]) - xyxy[:, k]).max() <= 1.0
