"""Masking effects on real faces: strong enough, confined to the scaled box, in place."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

import veil.redact
from veil.boxes import scale_xyxy
from veil.detections import Detections
from veil.redact import Blur, Fill, MaskedEffect, Outline, Pixelate, Redactor, build_redactor

# Two faces in faces_2560.png (2560x1920), boxed by hand around hair line to chin.
FACES_2560 = np.array([[635, 610, 825, 820], [1375, 600, 1545, 800]], dtype=np.float32)
MASKING = ["blur", "pixelate", "black"]


def dets(xyxy: np.ndarray | list[list[float]], track_id: list[int] | None = None) -> Detections:
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    n = len(xyxy)
    return Detections(
        xyxy=xyxy, confidence=np.ones(n, np.float32), class_id=np.zeros(n, np.int64), track_id=track_id
    )


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="module")
def faces_2560(media_dir: Path) -> np.ndarray:
    return read_rgb(media_dir / "faces_2560.png")


def small_faces(shared_data: Path, name: str = "maksssksksss1") -> tuple[np.ndarray, np.ndarray]:
    """A street photo with small labelled faces (faces-dev), and its face boxes."""
    root = ET.parse(shared_data / "faces-dev" / "annotations" / f"{name}.xml").getroot()
    boxes = [
        [float(obj.findtext(f"bndbox/{k}", "0")) for k in ("xmin", "ymin", "xmax", "ymax")]
        for obj in root.iter("object")
    ]
    return read_rgb(shared_data / "faces-dev" / "images" / f"{name}.jpg"), np.asarray(boxes, np.float32)


def outside_scaled_box(shape: tuple[int, ...], xyxy: np.ndarray, mask_scale: float) -> np.ndarray:
    """True for pixels that do not touch any box grown by ``mask_scale``."""
    h, w = shape[:2]
    keep = np.ones((h, w), dtype=bool)
    for x1, y1, x2, y2 in scale_xyxy(xyxy, mask_scale):
        keep[
            max(0, math.floor(y1)) : max(0, math.ceil(y2)), max(0, math.floor(x1)) : max(0, math.ceil(x2))
        ] = False
    return keep


def laplacian_variance(rgb: np.ndarray, box: np.ndarray) -> float:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def test_public_names_are_exported() -> None:
    for name in veil.redact.__all__:
        assert hasattr(veil.redact, name), name


@pytest.mark.parametrize(
    ("method", "kind"), [("blur", Blur), ("pixelate", Pixelate), ("black", Fill), ("box", Outline)]
)
def test_build_redactor_maps_methods_to_effects(method: str, kind: type) -> None:
    redactor = build_redactor(method, shape="rect", mask_scale=1.2)  # type: ignore[arg-type]
    assert isinstance(redactor, kind) and isinstance(redactor, Redactor)
    assert redactor.mask_scale == pytest.approx(1.2)  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", [*MASKING, "box"])
@pytest.mark.parametrize("shape", ["ellipse", "rect"])
def test_only_pixels_in_the_scaled_box_change(faces_2560: np.ndarray, method: str, shape: str) -> None:
    frame = faces_2560.copy()
    out = build_redactor(method, shape=shape, mask_scale=1.3).apply(frame, dets(FACES_2560, [1, 2]))  # type: ignore[arg-type]
    assert out is frame  # in place
    outside = outside_scaled_box(frame.shape, FACES_2560, 1.3)
    assert np.array_equal(frame[outside], faces_2560[outside])
    assert not np.array_equal(frame, faces_2560)


@pytest.mark.parametrize("method", MASKING)
@pytest.mark.parametrize("shape", ["ellipse", "rect"])
def test_box_centre_is_masked(faces_2560: np.ndarray, method: str, shape: str) -> None:
    frame = build_redactor(method, shape=shape, mask_scale=1.3).apply(faces_2560.copy(), dets(FACES_2560))  # type: ignore[arg-type]
    for x1, y1, x2, y2 in FACES_2560.astype(int):
        cy, cx = (y1 + y2) // 2, (x1 + x2) // 2
        centre = np.s_[cy - 10 : cy + 10, cx - 10 : cx + 10]
        changed = np.any(frame[centre] != faces_2560[centre], axis=2)
        assert changed.mean() > 0.9


@pytest.mark.parametrize("shape", ["ellipse", "rect"])
def test_blur_removes_detail_from_real_faces(faces_2560: np.ndarray, shared_data: Path, shape: str) -> None:
    """High-frequency energy (Laplacian variance) inside the face drops by a large factor,
    for large faces and for small faces in a street photo."""
    small, small_boxes = small_faces(shared_data)
    for image, boxes in ((faces_2560, FACES_2560), (small, small_boxes)):
        blurred = Blur(shape=shape, mask_scale=1.3).apply(image.copy(), dets(boxes))  # type: ignore[arg-type]
        for box in scale_xyxy(boxes, 0.7):  # the face's core, inside the ellipse too
            before, after = laplacian_variance(image, box), laplacian_variance(blurred, box)
            assert after < before / 20, (box, before, after)


def test_blur_kernel_spans_at_least_two_thirds_of_the_box() -> None:
    """A sharp vertical edge through the box centre: with a kernel at least 2/3 of the
    box (two passes), even the pixels at the box's left and right edges see the other
    side of the edge; a kernel under half the box would leave them untouched."""
    frame = np.zeros((400, 600, 3), dtype=np.uint8)
    frame[:, 300:] = 255
    box = np.array([[200, 100, 400, 300]], dtype=np.float32)
    out = Blur(shape="rect", mask_scale=1.0, feather=0.0).apply(frame.copy(), dets(box))
    row = out[200, 200:400, 0].astype(int)
    assert np.all(row[:100] >= 5) and np.all(row[100:] <= 250)


def test_pixelate_shows_at_most_the_set_number_of_blocks(faces_2560: np.ndarray) -> None:
    box = FACES_2560[:1]
    out = Pixelate(shape="rect", mask_scale=1.0, blocks=10).apply(faces_2560.copy(), dets(box))
    x1, y1, x2, y2 = box[0].astype(int)
    row = out[(y1 + y2) // 2, x1:x2].astype(int)
    runs = 1 + int(np.count_nonzero(np.any(np.diff(row, axis=0) != 0, axis=1)))
    assert 3 <= runs <= 10


def test_fill_paints_the_colour_and_feathers_only_inside() -> None:
    frame = np.full((100, 100, 3), 200, dtype=np.uint8)
    out = Fill(shape="ellipse", mask_scale=1.0, color=(10, 20, 30), feather=0.3).apply(
        frame, dets([[20, 20, 80, 80]])
    )
    assert out[50, 50].tolist() == [10, 20, 30]  # centre fully masked
    assert 30 < out[50, 23, 0] < 200  # blended near the edge
    assert out[21, 21].tolist() == [200, 200, 200]  # box corner is outside the ellipse
    assert np.all(out[:20] == 200) and np.all(out[80:] == 200)


def test_ellipse_leaves_the_corners_rect_does_not() -> None:
    frame = np.full((100, 100, 3), 200, dtype=np.uint8)
    ellipse = Fill(shape="ellipse", mask_scale=1.0).apply(frame.copy(), dets([[20, 20, 80, 80]]))
    rect = Fill(shape="rect", mask_scale=1.0).apply(frame.copy(), dets([[20, 20, 80, 80]]))
    assert ellipse[22, 22].tolist() == [200, 200, 200] and rect[22, 22].tolist() == [0, 0, 0]
    assert ellipse[50, 21].tolist() == [0, 0, 0] and rect[50, 21].tolist() == [0, 0, 0]


@pytest.mark.parametrize("method", [*MASKING, "box"])
def test_boxes_partly_outside_the_frame_are_clipped(method: str) -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    original = frame.copy()
    boxes = np.array([[-30, -20, 40, 50], [130, 90, 200, 170], [-50, -50, -10, -10]], dtype=np.float32)
    build_redactor(method, shape="ellipse", mask_scale=1.2).apply(frame, dets(boxes))  # type: ignore[arg-type]
    outside = outside_scaled_box(frame.shape, boxes, 1.2)
    assert np.array_equal(frame[outside], original[outside])
    assert not np.array_equal(frame[:57, :47], original[:57, :47])  # visible part of the first box
    assert not np.array_equal(frame[82:, 123:], original[82:, 123:])  # and of the second


def test_clipped_ellipse_keeps_its_shape() -> None:
    """A box half outside the frame masks the same pixels as the visible half of the whole box."""
    big = np.full((200, 200, 3), 255, dtype=np.uint8)
    Fill(shape="ellipse", mask_scale=1.0).apply(big, dets([[20, 60, 120, 140]]))
    cut = np.full((200, 130, 3), 255, dtype=np.uint8)  # the same scene, cut at x = 70 (shifted by -70)
    Fill(shape="ellipse", mask_scale=1.0).apply(cut, dets([[-50, 60, 50, 140]]))
    assert np.array_equal(cut[:, :50], big[:, 70:120])


@pytest.mark.parametrize("method", [*MASKING, "box"])
def test_empty_detections_are_a_no_op(faces_2560: np.ndarray, method: str) -> None:
    frame = faces_2560[:100, :100].copy()
    out = build_redactor(method, shape="ellipse", mask_scale=1.3).apply(frame, Detections.empty())  # type: ignore[arg-type]
    assert out is frame and np.array_equal(frame, faces_2560[:100, :100])


def test_tiny_box_still_masks_its_pixel() -> None:
    frame = np.full((10, 10, 3), 255, dtype=np.uint8)
    Fill(shape="ellipse", mask_scale=1.0).apply(frame, dets([[4.2, 4.2, 4.8, 4.8]]))
    assert frame[4, 4].tolist() == [0, 0, 0]
    assert int(np.count_nonzero(np.any(frame != 255, axis=2))) == 1


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((10, 10, 3), dtype=np.float32),
        np.zeros((10, 10), dtype=np.uint8),
        np.zeros((10, 10, 4), dtype=np.uint8),
    ],
)
def test_refuses_frames_that_are_not_rgb_uint8(frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        Blur().apply(frame, dets([[1, 1, 5, 5]]))


def test_refuses_read_only_frames() -> None:
    frame = np.zeros((10, 10, 3), dtype=np.uint8)
    frame.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        Fill().apply(frame, dets([[1, 1, 5, 5]]))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: Blur(kernel=0.5), "kernel"),
        (lambda: Blur(shape="circle"), "shape"),  # type: ignore[arg-type]
        (lambda: Pixelate(blocks=100), "blocks"),
        (lambda: Fill(color=(0, 0, 300)), "color"),
        (lambda: Fill(mask_scale=0.1), "mask_scale"),
        (lambda: Fill(mask_margin=-1.0), "mask_margin"),
        (lambda: Blur(mask_margin=1000.0), "mask_margin"),
        (lambda: Outline(mask_margin=-0.5), "mask_margin"),
        (lambda: Outline(thickness=0), "thickness"),
    ],
)
def test_constructors_refuse_weak_or_invalid_parameters(factory: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()  # type: ignore[operator]


def test_masked_effects_share_the_base() -> None:
    assert all(issubclass(k, MaskedEffect) for k in (Blur, Pixelate, Fill))
