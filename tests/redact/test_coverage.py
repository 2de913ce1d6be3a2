"""``hidden_mask``: the pixels a redactor hides, as the video score reads them."""

from __future__ import annotations

import numpy as np

from veil.detect import Detections
from veil.redact import Blur, Fill, Outline
from veil.redact.coverage import hidden_mask


def _dets(*xyxy: tuple[float, float, float, float]) -> Detections:
    n = len(xyxy)
    return Detections(
        xyxy=np.array(xyxy, dtype=np.float32).reshape(-1, 4),
        confidence=np.ones(n, np.float32),
        class_id=np.zeros(n, np.int64),
    )


def test_the_hidden_pixels_are_the_ones_apply_paints() -> None:
    dets = _dets((10, 8, 40, 30), (50, 0, 70, 12))
    fill = Fill(shape="ellipse", mask_scale=1.3, color=(255, 255, 255))
    frame = np.zeros((48, 80, 3), dtype=np.uint8)
    fill.apply(frame, dets)
    assert np.array_equal(hidden_mask(fill, dets, resolution_wh=(80, 48)), frame[..., 0] == 255)


def test_a_feathered_edge_counts_as_hidden_only_where_the_effect_weighs_half() -> None:
    dets = _dets((0, 0, 40, 40))
    hard = hidden_mask(Fill(shape="ellipse", mask_scale=1.0), dets, resolution_wh=(40, 40))
    soft = hidden_mask(Blur(shape="ellipse", mask_scale=1.0, feather=0.4), dets, resolution_wh=(40, 40))
    assert soft.sum() < hard.sum() and not (soft & ~hard).any()
    assert soft[20, 20] and hard[20, 1] and not soft[20, 1]


def test_an_outline_hides_nothing() -> None:
    hidden = hidden_mask(Outline(), _dets((0, 0, 40, 40)), resolution_wh=(40, 40))
    assert not hidden.any()


def test_a_margin_hides_the_core_of_a_small_face_whose_box_sits_a_few_pixels_off() -> None:
    """The near miss the margin is for: the detector's box of an 18 px face is 15 px and 4 px up-left
    of it (as CenterFace places small faces), so a 1.3x ellipse leaves a corner of the face's core
    (its central half) showing; 6 px of margin covers it, and the painted pixels still match."""
    face = (100, 100, 118, 118)
    core = (slice(105, 114), slice(105, 114))  # rows, columns of the central half
    box = _dets((96, 98, 111, 113))
    plain = hidden_mask(Fill(shape="ellipse", mask_scale=1.3), box, resolution_wh=(200, 200))
    margin = Fill(shape="ellipse", mask_scale=1.3, mask_margin=6.0, color=(255, 255, 255))
    widened = hidden_mask(margin, box, resolution_wh=(200, 200))
    assert not plain[core].all() and widened[core].all()
    frame = np.zeros((200, 200, 3), dtype=np.uint8)
    margin.apply(frame, box)
    assert np.array_equal(widened, frame[..., 0] == 255)
    assert not widened[face[1] - 10, :].any(), "the margin stays near the box"
