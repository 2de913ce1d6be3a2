"""QR codes and EAN-13 barcodes, generated in the test and placed inside a real street photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from veil.boxes import box_iou_xyxy
from veil.detect.base import Detector
from veil.detect.codes import BarcodeConfig, BarcodeDetector, QRCodeConfig, QRCodeDetector

# EAN-13 digit patterns (1 = bar): left odd (L), left even (G), right (R), and the first digit's L/G parity.
_L = [
    "0001101",
    "0011001",
    "0010011",
    "0111101",
    "0100011",
    "0110001",
    "0101111",
    "0111011",
    "0110111",
    "0001011",
]
_G = [
    "0100111",
    "0110011",
    "0011011",
    "0100001",
    "0011101",
    "0111001",
    "0000101",
    "0010001",
    "0001001",
    "0010111",
]
_R = [
    "1110010",
    "1100110",
    "1101100",
    "1000010",
    "1011100",
    "1001110",
    "1010000",
    "1000100",
    "1001000",
    "1110100",
]
_PARITY = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"]


def ean13(
    digits12: str, *, module_px: int = 3, height_px: int = 150
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """An EAN-13 barcode image (white quiet zone included) and the xyxy of its bars within it."""
    d = [int(c) for c in digits12]
    d.append((10 - sum(x * (3 if i % 2 else 1) for i, x in enumerate(d)) % 10) % 10)
    bits = "101"
    for i, x in enumerate(d[1:7]):
        bits += (_L if _PARITY[d[0]][i] == "L" else _G)[x]
    bits += "01010" + "".join(_R[x] for x in d[7:]) + "101"
    row = np.repeat(np.array([0 if b == "1" else 255 for b in bits], np.uint8), module_px)
    bars = np.tile(row, (height_px, 1))
    quiet_x, quiet_y = 11 * module_px, 20
    image = cv2.copyMakeBorder(bars, quiet_y, quiet_y, quiet_x, quiet_x, cv2.BORDER_CONSTANT, value=255)
    return image, (quiet_x, quiet_y, quiet_x + bars.shape[1], quiet_y + height_px)


def qr(text: str, *, module_px: int = 6) -> np.ndarray:
    code = cv2.QRCodeEncoder.create().encode(text)  # includes a small quiet zone
    code = cv2.resize(code, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)
    return cv2.copyMakeBorder(code, 24, 24, 24, 24, cv2.BORDER_CONSTANT, value=255)


@pytest.fixture(scope="module")
def street(media_dir: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(media_dir / "street.jpg")), cv2.COLOR_BGR2RGB))


def paste(photo: np.ndarray, gray: np.ndarray, x: int, y: int) -> np.ndarray:
    out = photo.copy()
    out[y : y + gray.shape[0], x : x + gray.shape[1]] = gray[:, :, None]
    return out


def test_the_plain_photo_has_no_codes(street: np.ndarray) -> None:
    assert len(QRCodeDetector(QRCodeConfig()).detect(street)) == 0
    assert len(BarcodeDetector(BarcodeConfig()).detect(street)) == 0


def test_qr_code_in_a_photo_is_boxed(street: np.ndarray) -> None:
    code = qr("https://example.org/ticket/12345")
    frame = paste(street, code, 200, 300)
    detector = QRCodeDetector(QRCodeConfig(), class_id=2)
    assert isinstance(detector, Detector) and detector.model_name == "opencv_qr"
    found = detector.detect(frame)
    placed = np.array([[200, 300, 200 + code.shape[1], 300 + code.shape[0]]], np.float32)
    assert len(found) == 1
    assert box_iou_xyxy(found.xyxy, placed)[0, 0] >= 0.4  # the modules, not the white margin
    inside = found.xyxy[0]
    assert (inside[:2] >= placed[0, :2]).all() and (inside[2:] <= placed[0, 2:]).all()
    assert found.class_id.tolist() == [2] and found.confidence.tolist() == [1.0]


def test_rotated_qr_code_gets_an_upright_box_covering_it(street: np.ndarray) -> None:
    code = qr("badge 0042")
    h, w = code.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0)
    size = int(np.ceil(np.hypot(h, w)))
    turn[:, 2] += (size - w) / 2, (size - h) / 2
    rotated = cv2.warpAffine(code, turn, (size, size), borderValue=255)
    found = QRCodeDetector(QRCodeConfig()).detect(paste(street, rotated, 500, 900))
    assert len(found) == 1
    # the code's four corners, rotated, must all lie inside the returned box
    m = 24 + 2 * 6  # our white border plus the encoder's own 2-module quiet zone
    corners = np.array([[m, m], [w - m, m], [m, h - m], [w - m, h - m]], np.float32)
    moved = corners @ turn[:, :2].T + turn[:, 2] + (500, 900)
    x1, y1, x2, y2 = found.xyxy[0]
    assert (moved[:, 0] >= x1 - 6).all() and (moved[:, 0] <= x2 + 6).all()
    assert (moved[:, 1] >= y1 - 6).all() and (moved[:, 1] <= y2 + 6).all()


def test_several_qr_codes_are_each_found(street: np.ndarray) -> None:
    frame = paste(paste(street, qr("one"), 100, 200), qr("two"), 600, 1300)
    found = QRCodeDetector(QRCodeConfig()).detect(frame)
    assert len(found) == 2


def test_ean13_barcode_in_a_photo_is_boxed(street: np.ndarray) -> None:
    image, (bx1, by1, bx2, by2) = ean13("400638133393")
    frame = paste(street, image, 500, 1200)
    detector = BarcodeDetector(BarcodeConfig(), class_id=3)
    assert isinstance(detector, Detector) and detector.model_name == "opencv_barcode"
    found = detector.detect(frame)
    bars = np.array([[500 + bx1, 1200 + by1, 500 + bx2, 1200 + by2]], np.float32)
    assert len(found) == 1
    assert box_iou_xyxy(found.xyxy, bars)[0, 0] >= 0.6
    assert found.class_id.tolist() == [3]


def test_large_frames_are_searched_downscaled_and_boxes_mapped_back(street: np.ndarray) -> None:
    image, (bx1, by1, bx2, by2) = ean13("590123412345", module_px=6, height_px=300)
    big = cv2.resize(street, (2160, 3840))
    frame = paste(big, image, 1000, 2500)
    found = BarcodeDetector(BarcodeConfig(max_side=1920)).detect(frame)
    bars = np.array([[1000 + bx1, 2500 + by1, 1000 + bx2, 2500 + by2]], np.float32)
    assert box_iou_xyxy(found.xyxy, bars).max() >= 0.6


@pytest.mark.parametrize(
    ("config", "bad"),
    [
        (QRCodeConfig, {"max_side": 100}),
        (QRCodeConfig, {"extra": 1}),
        (QRCodeConfig, {"type": "opencv_barcode"}),
        (BarcodeConfig, {"max_side": 100_000}),
        (BarcodeConfig, {"use_aruco": True}),
    ],
)
def test_configs_reject_bad_values(config: type, bad: dict) -> None:
    with pytest.raises(ValidationError):
        config(**bad)


def test_window_blinds_and_fences_are_not_barcodes(shared_data: Path) -> None:
    """OpenCV boxes any parallel stripes; before the bar check it masked the blinds of faces_2560.png
    (score 1.0), a fence, railings, a crosswalk and a striped shirt of faces-dev, and no barcode."""
    detector = BarcodeDetector(BarcodeConfig())
    photos = [
        shared_data / "media" / "faces_2560.png",  # window blinds
        *(shared_data / "faces-dev" / "images" / f"maksssksksss{n}.jpg" for n in (9, 41, 147, 8)),
    ]  # striped shirt, fence and railings, roller shutter, building edge
    for photo in photos:
        rgb = np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB))
        assert len(detector.detect(rgb)) == 0, photo.name


@pytest.mark.parametrize("angle", [90, 60, -40])
def test_turned_and_blurred_barcodes_keep_their_box(street: np.ndarray, angle: int) -> None:
    image, _ = ean13("400638133393")
    h, w = image.shape
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    size = int(np.hypot(h, w))
    turn[:, 2] += (size - w) / 2, (size - h) / 2
    turned = cv2.GaussianBlur(cv2.warpAffine(image, turn, (size, size), borderValue=255), (5, 5), 1.0)
    found = BarcodeDetector(BarcodeConfig()).detect(paste(street, turned, 200, 900))
    assert len(found) == 1
    x1, y1, x2, y2 = found.xyxy[0]
    centre = np.array([200 + size / 2, 900 + size / 2])
    assert np.abs(np.array([(x1 + x2) / 2, (y1 + y2) / 2]) - centre).max() <= size / 10  # on the code
    assert (x2 - x1) * (y2 - y1) >= 0.2 * size * size  # all of it, not a few bars
