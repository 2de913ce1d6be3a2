"""Polygon masks: a box with an outline (a tilted text line) is masked inside the polygon only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from veil.detections import Detections
from veil.redact import build_redactor

# A line tilted by 30 degrees, 300 x 40 px, centred in a 600 x 400 frame.
QUAD = cv2.boxPoints(((300.0, 200.0), (300.0, 40.0), -30.0)).astype(np.float32)


def _frame() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (400, 600, 3), dtype=np.uint8)


def _inside(points: np.ndarray, shape: tuple[int, int], grow: int = 0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [points.round().astype(np.int32)], 1)
    if grow:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return mask.astype(bool)


@pytest.mark.parametrize("method", ["black", "blur", "pixelate"])
def test_only_the_tilted_polygon_is_masked(method: str) -> None:
    frame = _frame()
    before = frame.copy()
    dets = Detections.from_polygons(QUAD[None], np.ones(1, np.float32))
    build_redactor(method, shape="rect", mask_scale=1.0).apply(frame, dets)  # type: ignore[arg-type]
    changed = np.any(frame != before, axis=2)
    inside = _inside(QUAD, changed.shape)
    assert changed[_inside(QUAD, changed.shape)].mean() > 0.9, "the line itself is masked"
    outside = ~_inside(QUAD, changed.shape, grow=2)
    x1, y1 = QUAD.min(axis=0).astype(int)
    x2, y2 = QUAD.max(axis=0).astype(int)
    in_box = np.zeros_like(changed)
    in_box[y1:y2, x1:x2] = True
    assert not changed[outside & in_box].any(), "the corners of the upright box stay untouched"
    assert inside.sum() < 0.5 * in_box.sum()


def test_mask_scale_grows_the_polygon_about_its_centre() -> None:
    frame = _frame()
    before = frame.copy()
    dets = Detections.from_polygons(QUAD[None], np.ones(1, np.float32))
    build_redactor("black", shape="rect", mask_scale=1.5).apply(frame, dets)
    changed = np.any(frame != before, axis=2)
    grown = (QUAD - QUAD.mean(axis=0)) * 1.5 + QUAD.mean(axis=0)
    assert changed[_inside(grown, changed.shape)].mean() > 0.95
    assert not changed[~_inside(grown, changed.shape, grow=2)].any()


def test_boxes_without_a_polygon_keep_their_shape_beside_polygons() -> None:
    frame = np.full((400, 600, 3), 200, np.uint8)
    poly = Detections.from_polygons(QUAD[None], np.ones(1, np.float32))
    plain = Detections(
        xyxy=np.array([[20, 20, 80, 80]], np.float32), confidence=np.ones(1), class_id=np.zeros(1)
    )
    both = Detections.merge([plain, poly])
    assert both.has_outline.tolist() == [False, True]
    build_redactor("black", shape="rect", mask_scale=1.0).apply(frame, both)
    assert (frame[20:80, 20:80] == 0).all(), "the plain box is masked whole"


def test_outline_shows_the_polygon_for_review() -> None:
    frame = np.full((400, 600, 3), 200, np.uint8)
    dets = Detections.from_polygons(QUAD[None], np.ones(1, np.float32))
    build_redactor("box", shape="rect", mask_scale=1.0).apply(frame, dets)
    drawn = np.any(frame != 200, axis=2)
    x1, y1 = QUAD.min(axis=0).astype(int)
    corner = drawn[y1 : y1 + 15, x1 : x1 + 15]
    assert drawn.any() and not corner.any(), "the outline follows the tilted line, not the upright box"
