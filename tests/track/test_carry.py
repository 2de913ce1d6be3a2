"""Carrying tracks through detector misses: the box stays on the object, forwards and backwards."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from veil.detections import Detections
from veil.track.carry import TrackCarrier
from veil.track.tracks import Track, finalize_tracks

W, H = 320, 240
OBJ = 32
OBJECT = np.random.default_rng(99).integers(0, 256, (OBJ, OBJ), dtype=np.uint8)
BACKGROUND = cv2.resize(
    np.random.default_rng(1).integers(60, 256, (H // 8, W // 8), dtype=np.uint8),
    (W, H),
    interpolation=cv2.INTER_LINEAR,
)


def _position(index: int) -> tuple[int, int]:
    """The object moves on its own, against a still background (no camera motion would carry it)."""
    return 40 + 6 * index, 60 + 2 * index


def _frame(index: int, *, gone_after: int = 10_000) -> np.ndarray:
    frame = BACKGROUND.copy()
    if index <= gone_after:
        x, y = _position(index)
        frame[y : y + OBJ, x : x + OBJ] = OBJECT
    return frame


def _box(index: int) -> np.ndarray:
    x, y = _position(index)
    return np.array([x, y, x + OBJ, y + OBJ], dtype=np.float32)


def _seen(index: int, *, track_id: int = 1, class_id: int = 0) -> Detections:
    return Detections(
        xyxy=_box(index)[None],
        confidence=np.array([0.3], dtype=np.float32),
        class_id=np.array([class_id], dtype=np.int64),
        track_id=np.array([track_id], dtype=np.int64),
    )


def _run(
    count: int, sightings: dict[int, Detections], *, gone_after: int = 10_000, **kwargs: int
) -> TrackCarrier:
    carrier = TrackCarrier((W, H), class_ids=frozenset({0}), **kwargs)
    for i in range(count):
        carrier.add_frame(i, _frame(i, gone_after=gone_after))
        if i in sightings:
            carrier.observe(i, sightings[i])
    return carrier


def test_a_track_seen_once_is_carried_both_ways_while_the_object_is_in_view() -> None:
    carried = _run(30, {12: _seen(12)}, gone_after=24, back_frames=20, forward_frames=20).carried()
    frames, boxes = carried[1]
    assert frames[0] == 0 and frames[-1] == 24  # back to the start, forward until the object is gone
    assert 12 not in frames.tolist()  # the sighting stays the detector's
    for frame, box in zip(frames.tolist(), boxes, strict=True):
        assert np.abs(box - _box(frame)).max() <= 2.0, (frame, box)


def test_reach_is_limited_each_way_and_other_classes_are_left_alone() -> None:
    sightings = {10: Detections.merge([_seen(10), _seen(10, track_id=2, class_id=1)])}
    carried = _run(30, sightings, back_frames=4, forward_frames=5).carried()
    assert list(carried) == [1]
    assert carried[1][0].tolist() == [6, 7, 8, 9, 11, 12, 13, 14, 15]


def test_observe_must_follow_its_frame() -> None:
    carrier = TrackCarrier((W, H), class_ids=frozenset({0}))
    carrier.add_frame(0, _frame(0))
    with pytest.raises(ValueError, match="must follow"):
        carrier.observe(1, _seen(1))


def test_carried_boxes_widen_the_finished_boxes_and_never_shrink_them() -> None:
    raw = [Track(track_id=7, class_id=0, frames=[2, 6], xyxy=[_box(2), _box(6)], score=[0.4, 0.5])]
    settings = dict(
        frame_count=12, gap_frames=15, pad_before=0, pad_after=2, smooth=0.0, resolution_wh=(W, H)
    )
    plain = finalize_tracks(raw, **settings)[0]
    elsewhere = np.array([200, 150, 232, 182], dtype=np.float32)  # where the object really went
    carried = {
        7: (np.array([1, 4, 8, 11], dtype=np.int64), np.stack([_box(1), elsewhere, elsewhere, _box(11)]))
    }
    (track,) = finalize_tracks(raw, **settings, carried=carried)
    assert track.frames.tolist() == plain.frames.tolist() == list(range(2, 9))  # no frame is added
    at = {f: track.xyxy[k] for k, f in enumerate(track.frames.tolist())}
    was = {f: plain.xyxy[k] for k, f in enumerate(plain.frames.tolist())}
    for frame in (4, 8):  # the bridged and the padded box both take the carried one in
        assert np.all(at[frame][:2] <= np.minimum(was[frame][:2], elsewhere[:2]))
        assert np.all(at[frame][2:] >= np.maximum(was[frame][2:], elsewhere[2:]))
    for frame in (2, 3, 5, 6, 7):
        assert np.array_equal(at[frame], was[frame])


def _glare(index: int, *, at: frozenset[int]) -> np.ndarray:
    """The object, with its left third washed out (a glare, the frame's edge) in the frames ``at``:
    it still matches, but weakly (0.59 against 1.0)."""
    frame = _frame(index)
    if index in at:
        x, y = _position(index)
        frame[y : y + OBJ, x : x + 10] = 255
    return frame


def _run_glare(count: int, sightings: dict[int, Detections], glare: frozenset[int]) -> TrackCarrier:
    carrier = TrackCarrier((W, H), class_ids=frozenset({0}), back_frames=30, forward_frames=30)
    for i in range(count):
        carrier.add_frame(i, _glare(i, at=glare))
        if i in sightings:
            carrier.observe(i, sightings[i])
    return carrier


@pytest.mark.parametrize("sighting", [2, 22], ids=["forwards", "backwards"])
def test_one_weak_match_does_not_end_the_follow(sighting: int) -> None:
    frames, boxes = _run_glare(25, {sighting: _seen(sighting)}, frozenset({12})).carried()[1]
    assert frames.tolist() == [f for f in range(25) if f != sighting]  # past the glare, both ways
    for frame, box in zip(frames.tolist(), boxes, strict=True):
        assert np.abs(box - _box(frame)).max() <= 2.0, (frame, box)


def test_two_weak_matches_in_a_row_end_the_follow_after_the_first() -> None:
    frames, _ = _run_glare(25, {2: _seen(2)}, frozenset({12, 13})).carried()[1]
    assert frames.tolist() == [f for f in range(13) if f != 2]
