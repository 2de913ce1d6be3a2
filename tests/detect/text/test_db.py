"""DB post-processing on probability maps whose lines are known exactly."""

from __future__ import annotations

import cv2
import numpy as np

from veil.detect.text.db import DBParams, db_quads, order_quad


def _map_with(
    rects: list[tuple[tuple[float, float], tuple[float, float], float]], size: int = 400
) -> np.ndarray:
    prob = np.zeros((size, size), dtype=np.float32)
    for rect in rects:
        cv2.fillPoly(prob, [cv2.boxPoints(rect).round().astype(np.int32)], 0.9)
    return prob


def test_a_rotated_core_comes_back_as_a_rotated_quad_grown_by_the_unclip_offset() -> None:
    core = ((200.0, 200.0), (160.0, 20.0), 25.0)
    quads, scores = db_quads(_map_with([core]), DBParams(dilate=False))
    assert quads.shape == (1, 4, 2) and scores[0] > 0.85
    (_, _), (w, h), _ = cv2.minAreaRect(quads[0])
    long_side, short_side = max(w, h), min(w, h)
    offset = 160 * 20 * 1.6 / (2 * (160 + 20))  # DB's unclip distance for this core
    assert abs(long_side - (160 + 2 * offset)) < 4
    assert abs(short_side - (20 + 2 * offset)) < 4
    edge = quads[0][1] - quads[0][0]
    assert abs(abs(np.degrees(np.arctan2(edge[1], edge[0]))) - 25) < 3, "the quad keeps the line's slant"


def test_weak_and_tiny_regions_are_dropped() -> None:
    prob = _map_with([((100.0, 100.0), (120.0, 16.0), 0.0)])
    prob[300:302, 50:150] = 0.9  # two pixels thin: noise
    prob[250:270, 250:350] = 0.35  # above the pixel threshold, below the box score
    quads, _ = db_quads(prob, DBParams())
    assert len(quads) == 1


def test_an_empty_map_gives_no_quads() -> None:
    quads, scores = db_quads(np.zeros((64, 64), np.float32), DBParams())
    assert quads.shape == (0, 4, 2) and scores.shape == (0,)


def test_corners_are_clockwise_from_the_top_left() -> None:
    quad = order_quad([[10, 50], [110, 50], [110, 10], [10, 10]])  # counter-clockwise, from bottom-left
    assert quad.tolist() == [[10, 10], [110, 10], [110, 50], [10, 50]]
