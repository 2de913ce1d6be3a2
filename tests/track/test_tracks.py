"""Track and finalize_tracks: gaps bridged, padding, smoothing that only grows, splitting, per-frame view."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil.detections import Detections
from veil.track import IoUTracker, Track, finalize_tracks, track_from_frames, tracks_at_frames

RES = (1920, 1080)


def raw(
    frames: list[int], boxes: list[list[float]] | None = None, *, track_id: int = 1, class_id: int = 0
) -> Track:
    if boxes is None:
        boxes = [[100, 100, 140, 150]] * len(frames)
    return Track(track_id=track_id, class_id=class_id, frames=frames, xyxy=boxes, score=[0.9] * len(frames))


def finalize(tracks: list[Track], **kw: object) -> list[Track]:
    args: dict[str, object] = dict(
        frame_count=1000, gap_frames=15, pad_before=0, pad_after=0, smooth=0.0, resolution_wh=RES
    )
    args.update(kw)
    return finalize_tracks(tracks, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("frames", "boxes", "scores", "message"),
    [
        ([], np.zeros((0, 4)), [], "at least one frame"),
        ([3, 1], [[0, 0, 1, 1]] * 2, [1, 1], "sorted and unique"),
        ([1, 1], [[0, 0, 1, 1]] * 2, [1, 1], "sorted and unique"),
        ([-1], [[0, 0, 1, 1]], [1], "non-negative"),
        ([1, 2], [[0, 0, 1, 1]], [1, 1], "xyxy must have shape"),
        ([1], [[0, 0, 1, 1]], [1, 1], "score must have shape"),
        ([1], [[5, 0, 1, 1]], [1], "x1 <= x2"),
        ([1], [[0, 0, np.nan, 1]], [1], "finite"),
    ],
)
def test_track_validates_its_arrays(
    frames: list[int], boxes: object, scores: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Track(track_id=1, class_id=0, frames=frames, xyxy=boxes, score=scores)  # type: ignore[arg-type]


def test_track_from_frames_sorts_and_unites_duplicate_frames() -> None:
    t = track_from_frames(
        track_id=4,
        class_id=1,
        frames=[7, 5, 7],
        xyxy=[[0, 0, 10, 10], [1, 1, 2, 2], [5, -2, 12, 8]],
        score=[0.5, 0.0, 0.8],
    )
    assert t.frames.tolist() == [5, 7]
    assert t.xyxy[1].tolist() == [0, -2, 12, 10]
    assert t.score.tolist() == pytest.approx([0.0, 0.8])


def test_gap_is_bridged_by_linear_interpolation_with_zero_score() -> None:
    (t,) = finalize([raw([0, 10], [[0, 0, 10, 10], [100, 50, 120, 70]])], gap_frames=15)
    assert t.frames.tolist() == list(range(11))
    assert t.xyxy[5].tolist() == pytest.approx([50, 25, 65, 40])
    assert t.score[0] == pytest.approx(0.9) and t.score[10] == pytest.approx(0.9)
    assert not np.any(t.score[1:10])


def test_detection_step_is_bridged_even_when_gap_frames_is_smaller() -> None:
    frames = list(range(0, 50, 5))
    (t,) = finalize([raw(frames)], gap_frames=0, detect_every=5)
    assert t.frames.tolist() == list(range(46))


def test_long_gap_splits_the_track_and_ids_follow_first_frame() -> None:
    late = raw([500, 501], track_id=1)
    split = raw([10, 11, 12, 40, 41], track_id=2)
    out = finalize([late, split], gap_frames=15)
    assert [(t.track_id, t.first_frame, t.last_frame) for t in out] == [
        (1, 10, 12),
        (2, 40, 41),
        (3, 500, 501),
    ]


def test_same_first_frame_orders_by_class() -> None:
    out = finalize([raw([3], class_id=2, track_id=1), raw([3], class_id=0, track_id=2)])
    assert [(t.track_id, t.class_id) for t in out] == [(1, 0), (2, 2)]


def test_padding_extends_both_ends_with_growing_boxes_clamped_to_the_video() -> None:
    box = [100, 100, 140, 150]
    (t,) = finalize([raw([2, 3, 4], [box] * 3)], pad_before=5, pad_after=6, frame_count=8)
    assert t.frames.tolist() == list(range(8))  # 2 - 5 clamps at 0, 4 + 6 clamps at 7
    assert t.score.tolist() == pytest.approx([0, 0, 0.9, 0.9, 0.9, 0, 0, 0])
    widths = t.xyxy[:, 2] - t.xyxy[:, 0]
    assert widths[0] > widths[1] > widths[2] == pytest.approx(40)
    assert widths[7] > widths[6] > widths[5] > widths[4] == pytest.approx(40)
    for i in (0, 1, 5, 6, 7):  # the held box is always inside the padded one
        assert t.xyxy[i, :2].tolist() <= box[:2] and all(t.xyxy[i, 2:] >= box[2:])


def test_padding_follows_a_moving_box() -> None:
    frames = list(range(10, 20))
    boxes = [[10 * f, 100, 10 * f + 40, 140] for f in frames]
    (t,) = finalize([raw(frames, boxes)], pad_after=5)
    last = t.xyxy[-1]
    assert last[2] >= 10 * 24 + 40  # where the box would be 5 frames on
    assert last[0] <= 190  # and still where it was last seen


def test_boxes_are_clipped_to_the_frame() -> None:
    (t,) = finalize([raw([0], [[-20, -10, 50, 2000]])], resolution_wh=(640, 480))
    assert t.xyxy[0].tolist() == [0, 0, 50, 480]


def test_smoothing_evens_out_jitter_without_shrinking() -> None:
    rng = np.random.default_rng(1)
    frames = list(range(100))
    jitter = rng.normal(0, 6, size=(100, 1)).astype(np.float32)
    boxes = np.array([[200, 200, 260, 280]] * 100, dtype=np.float32) + jitter
    (plain,) = finalize([raw(frames, boxes.tolist())], smooth=0.0)
    (smooth,) = finalize([raw(frames, boxes.tolist())], smooth=0.8)
    assert np.allclose(plain.xyxy, boxes)
    assert np.all(smooth.xyxy[:, :2] <= boxes[:, :2] + 1e-4) and np.all(
        smooth.xyxy[:, 2:] >= boxes[:, 2:] - 1e-4
    )
    assert np.any(smooth.xyxy != plain.xyxy)


@st.composite
def raw_tracks(draw: st.DrawFn) -> list[Track]:
    out = []
    for tid in range(1, draw(st.integers(1, 4)) + 1):
        frames = sorted(draw(st.sets(st.integers(0, 199), min_size=1, max_size=30)))
        boxes = []
        for _ in frames:
            x, y = draw(st.floats(-50, 1900, width=32)), draw(st.floats(-50, 1050, width=32))
            w, h = draw(st.floats(0, 300, width=32)), draw(st.floats(0, 300, width=32))
            boxes.append([x, y, x + w, y + h])
        out.append(raw(frames, boxes, track_id=tid, class_id=draw(st.integers(0, 1))))
    return out


@settings(max_examples=80, deadline=None)
@given(
    raw_tracks(),
    st.integers(0, 20),
    st.integers(0, 10),
    st.integers(0, 10),
    st.floats(0, 0.95),
    st.integers(1, 6),
)
def test_every_detected_box_is_covered_by_the_final_tracks(
    tracks: list[Track], gap: int, before: int, after: int, smooth: float, every: int
) -> None:
    """Fail closed: at each detected frame, the raw box (clipped to the frame) lies inside
    the final box of that frame, whatever gap, padding and smoothing were asked for."""
    out = finalize(
        tracks,
        gap_frames=gap,
        pad_before=before,
        pad_after=after,
        smooth=smooth,
        detect_every=every,
        frame_count=200,
    )
    assert [t.track_id for t in out] == list(range(1, len(out) + 1))
    per_frame = tracks_at_frames(out, 200)
    for t in tracks:
        clipped = np.clip(t.xyxy, 0, [RES[0], RES[1], RES[0], RES[1]])
        for f, box in zip(t.frames.tolist(), clipped, strict=True):
            here = per_frame[f]
            here = here.xyxy[here.class_id == t.class_id]
            inside = np.all(here[:, :2] <= box[:2] + 1e-3, axis=1) & np.all(
                here[:, 2:] >= box[2:] - 1e-3, axis=1
            )
            assert inside.any(), (f, box, here)
    for t in out:
        assert np.all(np.diff(t.frames) == 1)  # each final track covers a contiguous run


def test_tracks_at_frames_lists_every_track_on_its_frames() -> None:
    a = Track(track_id=1, class_id=0, frames=[0, 1, 2], xyxy=[[0, 0, 1, 1]] * 3, score=[1, 0, 1])
    b = Track(track_id=2, class_id=1, frames=[2, 3, 9], xyxy=[[5, 5, 6, 6]] * 3, score=[1, 1, 1])
    per = tracks_at_frames([a, b], 5)
    assert len(per) == 5
    assert [len(d) for d in per] == [1, 1, 2, 1, 0]
    assert per[2].track_id.tolist() == [1, 2] and per[2].class_id.tolist() == [0, 1]  # type: ignore[union-attr]
    assert per[1].confidence.tolist() == [0]
    assert per[4].track_id is not None


def test_tracks_at_frames_handles_a_long_video_quickly() -> None:
    """100k frames with 40 tracks of 5000 frames each (~200k boxes)."""
    rng = np.random.default_rng(0)
    tracks = []
    for tid in range(1, 41):
        start = int(rng.integers(0, 95_000))
        frames = np.arange(start, start + 5000)
        xy = rng.uniform(0, 1800, size=(1, 2)).astype(np.float32)
        boxes = np.concatenate([np.repeat(xy, 5000, 0), np.repeat(xy + 50, 5000, 0)], axis=1)
        tracks.append(Track(track_id=tid, class_id=0, frames=frames, xyxy=boxes, score=np.ones(5000)))
    started = time.perf_counter()
    per = tracks_at_frames(tracks, 100_000)
    elapsed = time.perf_counter() - started
    assert sum(len(d) for d in per) == 200_000
    assert elapsed < 20.0  # ~1-2 s on a loaded 2-core machine; a per-frame scan takes minutes


def test_tracker_history_round_trips_through_finalize() -> None:
    """Every-3rd-frame detection of a moving face: one track, every frame masked."""
    tracker = IoUTracker()
    for f in range(0, 90, 3):
        det = Detections(
            xyxy=np.array([[100 + 4 * f, 200, 150 + 4 * f, 260]], dtype=np.float32),
            confidence=np.array([0.8], dtype=np.float32),
            class_id=np.zeros(1, dtype=np.int64),
        )
        tracker.update(det, frame_index=f)
    (t,) = finalize(tracker.history(), gap_frames=2, pad_before=3, pad_after=6, smooth=0.5, frame_count=95)
    assert t.frames.tolist() == list(range(0, 94))
    assert t.xyxy[40, 0] <= 100 + 4 * 40 and t.xyxy[40, 2] >= 150 + 4 * 40


def test_polygons_follow_their_track_through_gaps_padding_and_the_per_frame_view() -> None:
    """A tilted text line's polygon (unit coordinates of its box) rides along with the box: frames
    filled in by tracking take the nearest sighting's polygon."""
    slant = np.array([[[0.0, 0.8], [0.9, 0.0], [1.0, 0.2], [0.1, 1.0]]], dtype=np.float32)
    square = np.array([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]], dtype=np.float32)
    track = Track(
        track_id=1,
        class_id=0,
        frames=[10, 14],
        xyxy=[[100, 100, 300, 160], [120, 100, 320, 160]],
        score=[0.9, 0.9],
        outline=np.concatenate([slant, square]),
    )
    (done,) = finalize([track], pad_before=2, pad_after=2)
    assert done.frames.tolist() == list(range(8, 17))
    assert done.outline is not None
    np.testing.assert_allclose(done.outline[done.frames.tolist().index(11)], slant[0], atol=1e-5)
    np.testing.assert_allclose(done.outline[done.frames.tolist().index(13)], square[0], atol=1e-5)
    per_frame = tracks_at_frames([done], 20)
    assert per_frame[9].outline is not None and per_frame[9].has_outline.all()
    assert per_frame[5].outline is None


def test_a_polygon_clipped_at_the_frame_edge_keeps_its_place() -> None:
    slant = np.array([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]], dtype=np.float32)
    track = Track(track_id=1, class_id=0, frames=[0], xyxy=[[-100, 10, 100, 50]], score=[0.9], outline=slant)
    (done,) = finalize([track], frame_count=1)
    assert done.xyxy[0].tolist() == [0, 10, 100, 50]
    assert done.outline is not None
    np.testing.assert_allclose(done.outline[0], slant[0], atol=1e-5)


def test_the_tracker_keeps_each_sighting_polygon() -> None:
    tracker = IoUTracker()
    quad = np.array([[[10, 40], [200, 10], [210, 30], [20, 60]]], dtype=np.float32)
    for i in range(3):
        tracker.update(Detections.from_polygons(quad + i, np.ones(1, np.float32)), frame_index=i)
    (history,) = tracker.history()
    assert history.outline is not None and history.outline.shape == (3, 4, 2)


def test_a_track_keeps_the_label_its_detections_carry() -> None:
    tracker = IoUTracker()
    box = np.array([[100, 100, 300, 140]], dtype=np.float32)
    for i, label in enumerate([-1, 2, 3]):
        dets = Detections(xyxy=box + i, confidence=np.ones(1), class_id=np.zeros(1), label=np.array([label]))
        tracker.update(dets, frame_index=i)
    (history,) = tracker.history()
    assert history.label == 2, "the first real label wins; -1 means none"
    (done,) = finalize([history], frame_count=3)
    assert done.label == 2
