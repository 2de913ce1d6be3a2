"""The text detector on rendered lines: upright and tilted lines found, as tilted polygons."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.detect.text.conftest import iou_xyxy
from tests.textset import text_set_tool
from veil.detect import Detector
from veil.detect.text import TextDetector
from veil.media import read_image


def _scene(media_dir: Path, angle: float) -> tuple[np.ndarray, list[np.ndarray]]:
    tool = text_set_tool()
    rng = random.Random(3)
    background, _, _ = tool.photo(rng, media_dir, (1280, 720))
    layer = tool.Layer(np.zeros((90, 700, 4), dtype=np.uint8))
    text = "Visitor pass 4711 valid today"
    tool.draw_line(layer, text, (20, 20), size=44, color=(250, 250, 250), pii=False, stroke=(0, 0, 0))
    quads = tool.place(background, layer, centre=(640, 360), angle_deg=angle, scale=1.0)
    return background, quads


def test_is_a_detector(text_detector: TextDetector) -> None:
    assert isinstance(text_detector, Detector)
    assert text_detector.model_name == "ppocrv4_det"


def test_an_upright_line_is_found_with_a_tight_box(text_detector: TextDetector, media_dir: Path) -> None:
    frame, (quad,) = _scene(media_dir, 0.0)
    found = text_detector.detect(frame)
    truth = np.concatenate([quad.min(axis=0), quad.max(axis=0)])
    assert max(iou_xyxy(box, truth) for box in found.xyxy) > 0.6


def test_a_tilted_line_is_masked_as_a_tilted_polygon(text_detector: TextDetector, media_dir: Path) -> None:
    frame, (quad,) = _scene(media_dir, 30.0)
    found = text_detector.detect(frame)
    truth = np.concatenate([quad.min(axis=0), quad.max(axis=0)])
    best = int(np.argmax([iou_xyxy(box, truth) for box in found.xyxy]))
    assert iou_xyxy(found.xyxy[best], truth) > 0.5
    polygon = found.polygons()[best]
    assert polygon is not None
    edge = polygon[1] - polygon[0]
    assert abs(abs(np.degrees(np.arctan2(edge[1], edge[0]))) - 30) < 5
    box_area = float(np.prod(found.xyxy[best, 2:] - found.xyxy[best, :2]))
    x, y = polygon[:, 0], polygon[:, 1]
    polygon_area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    assert polygon_area < 0.5 * box_area, "the polygon hugs the line; its upright box would not"


def test_photos_without_added_text_give_few_boxes(text_detector: TextDetector, media_dir: Path) -> None:
    found = text_detector.detect(read_image(media_dir / "faces_2560.png"))
    assert len(found) <= 1


@pytest.mark.parametrize(
    "size_wh",
    [
        (3840, 2160),  # shrunk by the whole factor 3 with pixel averaging, then bilinearly to 1280x704
        (2561, 1441),  # a factor of 2 that does not divide the sides: one INTER_AREA step
        (1919, 1079),  # less than twice the network size: bilinear only
    ],
)
def test_the_line_is_found_where_it_is_at_any_frame_size(
    text_detector: TextDetector, media_dir: Path, size_wh: tuple[int, int]
) -> None:
    frame, (quad,) = _scene(media_dir, 0.0)
    scale = np.array([size_wh[0] / frame.shape[1], size_wh[1] / frame.shape[0]], dtype=np.float32)
    large = cv2.resize(frame, size_wh, interpolation=cv2.INTER_CUBIC)
    truth = np.concatenate([quad.min(axis=0) * scale, quad.max(axis=0) * scale])
    found = text_detector.detect(large)
    assert max(iou_xyxy(box, truth) for box in found.xyxy) > 0.6
