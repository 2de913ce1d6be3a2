"""QR codes and barcodes, found with OpenCV's built-in detectors (no weights).

A QR code or barcode can carry personal data (a ticket, a parcel label, a
badge), so Veil masks the code itself: it only needs where the code is,
never what it says, and nothing here decodes or logs the payload.

OpenCV returns each code as a quadrilateral; the detectors return its
axis-aligned bounding box, which covers a rotated code fully. OpenCV gives
no score, so every box has confidence 1.0.
"""

from __future__ import annotations

from typing import Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from veil.boxes import clip_xyxy, nms_xyxy
from veil.detections import Detections
from veil.frames import RGBFrame

__all__ = ["BarcodeConfig", "BarcodeDetector", "QRCodeConfig", "QRCodeDetector"]

_MERGE_IOU = 0.3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QRCodeConfig(_Strict):
    """Settings of the QR-code detector."""

    type: Literal["opencv_qr"] = Field("opencv_qr", description="Detector kind (discriminator).")
    use_aruco: bool = Field(
        True,
        description="Also run OpenCV's ArUco-based QR detector (where this OpenCV has it) and merge both: "
        "finds more codes, costs about twice the time.",
    )
    max_side: int = Field(
        4096,
        ge=320,
        le=16_384,
        description="Frames whose long side exceeds this are downscaled before detection, bounding the time "
        "per frame; boxes are mapped back to the full frame.",
    )


class BarcodeConfig(_Strict):
    """Settings of the 1-D barcode detector (EAN, UPC, Code 128 and others OpenCV knows)."""

    type: Literal["opencv_barcode"] = Field("opencv_barcode", description="Detector kind (discriminator).")
    max_side: int = Field(
        4096,
        ge=320,
        le=16_384,
        description="Frames whose long side exceeds this are downscaled before detection, bounding the time "
        "per frame; boxes are mapped back to the full frame.",
    )


class _Multi(Protocol):
    def detectMulti(self, img: npt.NDArray[np.uint8]) -> tuple[bool, object]: ...  # noqa: N802 - OpenCV's name


def _gray(frame: RGBFrame, max_side: int) -> tuple[npt.NDArray[np.uint8], float]:
    """Grayscale copy, downscaled so its long side is at most ``max_side``; returns it and the scale."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}")
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(
            gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    return np.ascontiguousarray(gray), scale


def _quads_to_xyxy(points: object, scale: float) -> npt.NDArray[np.float32]:
    """Axis-aligned boxes of OpenCV's (N, 4, 2) quadrilaterals, in full-frame pixels."""
    if points is None:
        return np.zeros((0, 4), np.float32)
    quads = np.asarray(points, dtype=np.float32).reshape(-1, 4, 2)
    quads = quads[np.isfinite(quads).all(axis=(1, 2))]
    xyxy = np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1) / np.float32(scale)
    return xyxy.astype(np.float32)


def _run(detector: _Multi, gray: npt.NDArray[np.uint8], scale: float) -> npt.NDArray[np.float32]:
    try:
        found, points = detector.detectMulti(gray)
    except cv2.error:  # OpenCV raises on some degenerate inputs; treat as "no code here"
        return np.zeros((0, 4), np.float32)
    return _quads_to_xyxy(points, scale) if found else np.zeros((0, 4), np.float32)


def _detections(parts: list[npt.NDArray[np.float32]], frame: RGBFrame, class_id: int) -> Detections:
    h, w = frame.shape[:2]
    xyxy = clip_xyxy(np.concatenate(parts), resolution_wh=(w, h))
    xyxy = xyxy[(xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])]
    if len(xyxy) == 0:
        return Detections.empty()
    # Larger boxes first, so that merging keeps the one that covers the most.
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep = nms_xyxy(xyxy, area.astype(np.float32), _MERGE_IOU)
    return Detections(
        xyxy=xyxy[keep],
        confidence=np.ones(len(keep), np.float32),
        class_id=np.full(len(keep), class_id, np.int64),
    )


class QRCodeDetector:
    """QR codes via ``cv2.QRCodeDetector`` (plus ``cv2.QRCodeDetectorAruco`` when present).

    Not thread-safe: OpenCV detector objects keep state between calls.
    """

    model_name = "opencv_qr"

    def __init__(self, config: QRCodeConfig, *, class_id: int = 0) -> None:
        self.config = config
        self.class_id = class_id
        self._detectors: list[_Multi] = [cv2.QRCodeDetector()]
        aruco = getattr(cv2, "QRCodeDetectorAruco", None)
        if config.use_aruco and aruco is not None:
            self._detectors.append(aruco())

    def detect(self, frame: RGBFrame) -> Detections:
        gray, scale = _gray(frame, self.config.max_side)
        parts = [_run(d, gray, scale) for d in self._detectors]
        return _detections(parts, frame, self.class_id)


class BarcodeDetector:
    """1-D barcodes via ``cv2.barcode.BarcodeDetector``. Not thread-safe."""

    model_name = "opencv_barcode"

    def __init__(self, config: BarcodeConfig, *, class_id: int = 0) -> None:
        self.config = config
        self.class_id = class_id
        self._detector: _Multi = cv2.barcode.BarcodeDetector()

    def detect(self, frame: RGBFrame) -> Detections:
        gray, scale = _gray(frame, self.config.max_side)
        return _detections([_run(self._detector, gray, scale)], frame, self.class_id)
