"""Box geometry (``veil.boxes``): IoU, non-maximum suppression, clipping to the frame and growing about
the centre, as the detectors, trackers and redactors rely on them."""

from __future__ import annotations

import numpy as np
import pytest

from veil.boxes import box_iou_xyxy, clip_xyxy, nms_xyxy, scale_xyxy


def _boxes(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [2, 2, 8, 8], 36 / 100),  # one inside the other
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges share no area
        ([0, 0, 10, 10], [50, 50, 60, 60], 0.0),
        ([5, 5, 5, 5], [5, 5, 5, 5], 0.0),  # zero-area boxes: no division by zero
    ],
    ids=["same", "half-shifted", "nested", "touching", "apart", "degenerate"],
)
def test_iou_of_two_boxes(a: list[float], b: list[float], iou: float) -> None:
    assert box_iou_xyxy(_boxes(a), _boxes(b))[0, 0] == pytest.approx(iou, abs=1e-6)
    assert box_iou_xyxy(_boxes(b), _boxes(a))[0, 0] == pytest.approx(iou, abs=1e-6), "symmetric"


def test_iou_is_pairwise_and_handles_empty_sides() -> None:
    a = _boxes([0, 0, 10, 10], [20, 20, 30, 30])
    b = _boxes([0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 30, 30])
    table = box_iou_xyxy(a, b)
    assert table.shape == (2, 3) and table.dtype == np.float32
    assert table[0, 0] == table[1, 1] == 1.0 and table[0, 1] == table[1, 0] == 0.0
    assert box_iou_xyxy(a, _boxes()).shape == (2, 0) and box_iou_xyxy(_boxes(), b).shape == (0, 3)


def test_nms_keeps_the_best_of_each_cluster_highest_score_first() -> None:
    boxes = _boxes([0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [51, 50, 61, 60], [100, 0, 110, 10])
    scores = np.array([0.6, 0.9, 0.7, 0.3, 0.8], dtype=np.float32)
    keep = nms_xyxy(boxes, scores, iou_threshold=0.5)
    assert keep.dtype == np.int64 and keep.tolist() == [1, 4, 2]


@pytest.mark.parametrize(("threshold", "kept"), [(0.0, [0]), (0.3, [0]), (0.4, [0, 1]), (0.9, [0, 1])])
def test_nms_threshold_decides_how_much_overlap_survives(threshold: float, kept: list[int]) -> None:
    boxes = _boxes([0, 0, 10, 10], [5, 0, 15, 10])  # IoU 1/3
    assert nms_xyxy(boxes, np.array([0.9, 0.8], dtype=np.float32), iou_threshold=threshold).tolist() == kept


def test_nms_of_nothing_is_nothing_and_ties_keep_input_order() -> None:
    assert nms_xyxy(_boxes(), np.zeros(0, dtype=np.float32), iou_threshold=0.5).tolist() == []
    apart = _boxes([0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10])
    assert nms_xyxy(apart, np.full(3, 0.5, dtype=np.float32), iou_threshold=0.5).tolist() == [0, 1, 2]


def test_clip_keeps_boxes_inside_the_frame_and_leaves_the_input_alone() -> None:
    boxes = _boxes([-5, -5, 10, 10], [90, 70, 120, 95], [10, 10, 20, 20])
    clipped = clip_xyxy(boxes, resolution_wh=(100, 80))
    assert clipped.tolist() == [[0, 0, 10, 10], [90, 70, 100, 80], [10, 10, 20, 20]]
    assert boxes[0, 0] == -5, "a new array; the caller's boxes are not changed"


@pytest.mark.parametrize(
    ("factor", "expected"),
    [(1.0, [10, 20, 30, 60]), (2.0, [0, 0, 40, 80]), (0.5, [15, 30, 25, 50])],
)
def test_scale_grows_or_shrinks_about_the_centre(factor: float, expected: list[float]) -> None:
    box = _boxes([10, 20, 30, 60])
    scaled = scale_xyxy(box, factor)
    assert scaled.tolist() == [expected] and scaled.dtype == np.float32
    assert box.tolist() == [[10, 20, 30, 60]]


def test_a_least_margin_grows_small_boxes_more_than_the_factor_and_large_ones_not_at_all() -> None:
    small, large = [0, 0, 10, 10], [0, 0, 100, 100]
    grown = scale_xyxy(_boxes(small, large), 1.3, min_margin=6.0)
    assert grown[0].tolist() == [-6, -6, 16, 16], "1.3x would add 1.5 px a side; the margin adds 6"
    assert grown[1].tolist() == pytest.approx([-15, -15, 115, 115]), "1.3x adds 15 px, more than the margin"
