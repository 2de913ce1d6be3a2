"""Outline ("box" method): a review overlay that scales with the frame and shows track ids."""

from __future__ import annotations

import numpy as np
import pytest

from veil.detections import Detections
from veil.redact import Outline


def dets(boxes: list[list[float]], track_id: list[int] | None = None) -> Detections:
    n = len(boxes)
    return Detections(
        xyxy=np.asarray(boxes, np.float32),
        confidence=np.ones(n, np.float32),
        class_id=np.zeros(n, np.int64),
        track_id=track_id,
    )


@pytest.mark.parametrize(
    ("resolution_wh", "expected"), [((640, 360), 1), ((1920, 1080), 3), ((3840, 2160), 6)]
)
def test_line_width_scales_with_frame_size(resolution_wh: tuple[int, int], expected: int) -> None:
    assert Outline().line_px(resolution_wh) == expected
    assert Outline(thickness=2).line_px(resolution_wh) == 2


def test_rect_outline_is_drawn_inside_the_box_and_leaves_the_face_visible() -> None:
    frame = np.zeros((1080, 1920, 3), dtype=np.uint8)
    Outline(shape="rect", show_track_id=False).apply(frame, dets([[100, 100, 300, 400]]))
    drawn = np.any(frame != 0, axis=2)
    ys, xs = np.nonzero(drawn)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (100, 399, 100, 299)
    assert drawn[100:103, 200].all() and not drawn[103, 200]  # 3 px line at 1080p
    assert not drawn[110:390, 110:290].any()  # the inside is untouched


def test_track_id_is_drawn_only_when_asked() -> None:
    box = [[100, 100, 300, 400]]
    with_id = Outline(shape="rect").apply(np.zeros((1080, 1920, 3), np.uint8), dets(box, [42]))
    without = Outline(shape="rect", show_track_id=False).apply(
        np.zeros((1080, 1920, 3), np.uint8), dets(box, [42])
    )
    corner = np.s_[104:140, 104:160]
    assert np.any(with_id[corner] != 0) and not np.any(without[corner] != 0)


def test_ellipse_outline_stays_inside_its_box() -> None:
    frame = np.zeros((200, 200, 3), dtype=np.uint8)
    Outline(shape="ellipse", thickness=4).apply(frame, dets([[50, 40, 150, 160]]))
    ys, xs = np.nonzero(np.any(frame != 0, axis=2))
    assert ys.min() >= 40 and ys.max() < 160 and xs.min() >= 50 and xs.max() < 150
    assert frame[100, 100].tolist() == [0, 0, 0]
