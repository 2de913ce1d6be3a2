"""QR codes and barcodes, found with OpenCV's built-in detectors (no weights).

A QR code or barcode can carry personal data (a ticket, a parcel label, a
badge), so Veil masks the code itself: it only needs where the code is,
never what it says, and nothing here decodes or logs the payload.

OpenCV returns each code as a quadrilateral; the detectors return its
axis-aligned bounding box, which covers a rotated code fully. OpenCV gives
no score, so every box has confidence 1.0.

OpenCV's barcode detector boxes any patch of parallel stripes: window blinds,
fences, railings, crosswalks, striped shirts (on the media stills and faces-dev
photos it masked 16 such patches, and no barcode). ``_has_barcode_bars`` checks
each box without decoding it: across its bars, a 1-D barcode has at least 9 dark
bars whose widths vary (one to four modules, so neighbouring bars often differ by
half or more), where blinds and fences repeat one width. Boxes failing the check
are dropped.
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
_MIN_BARS = 9
"""Fewest dark bars a box must show across its stripes (EAN-8 has 22, UPC-E 17; blur may merge some)."""
_UNEVEN_RATIO = 1.75
_MIN_UNEVEN_SHARE = 0.3
"""Share of neighbouring same-colour bars (dark and light each) whose widths differ by ``_UNEVEN_RATIO``x
or more. Synthetic EAN-13 codes, upright, tilted and blurred: 0.41-0.77; blinds, fences and striped
shirts in the dev photos: at most 0.22."""


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


def _uneven_share(widths: npt.NDArray[np.int64]) -> float:
    if len(widths) < 2:
        return 0.0
    ratio = np.maximum(widths[1:], widths[:-1]) / np.maximum(np.minimum(widths[1:], widths[:-1]), 1)
    return float((ratio >= _UNEVEN_RATIO).mean())


def _has_barcode_bars(gray: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]) -> bool:
    """Whether the stripes in ``xyxy`` (pixels of ``gray``) look like a barcode's bars, not blinds.

    The dominant gradient direction of the patch runs across the stripes; the pixels of a band through
    the middle, averaged per position along it, give one profile across the bars, split into dark and
    light runs at mid-grey. Patches too small to judge are kept: a missed code is a leak.
    """
    x1, y1 = (int(v) for v in np.floor(xyxy[:2]))
    x2, y2 = (int(v) for v in np.ceil(xyxy[2:]))
    patch = gray[max(0, y1) : y2, max(0, x1) : x2].astype(np.float32)
    if min(patch.shape) < 8:
        return True
    gx, gy = cv2.Sobel(patch, cv2.CV_32F, 1, 0), cv2.Sobel(patch, cv2.CV_32F, 0, 1)
    across = 0.5 * np.arctan2(2 * (gx * gy).sum(), (gx * gx).sum() - (gy * gy).sum())
    h, w = patch.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs, ys = xs - w / 2, ys - h / 2
    t = xs * np.cos(across) + ys * np.sin(across)  # position across the bars
    along = -xs * np.sin(across) + ys * np.cos(across)
    middle = np.abs(along) <= min(h, w) / 4
    bins = np.round(t[middle] - t[middle].min()).astype(np.int64)
    counts = np.bincount(bins)
    profile = np.bincount(bins, weights=patch[middle])[counts > 0] / counts[counts > 0]
    dark = profile < (profile.max() + profile.min()) / 2
    edges = np.flatnonzero(np.diff(dark.astype(np.int8)))
    widths = np.diff(edges).astype(np.int64)  # whole runs only: the cut runs at both ends are left out
    is_dark = dark[edges[:-1] + 1]
    bars, gaps = widths[is_dark], widths[~is_dark]
    return bool(len(bars) >= _MIN_BARS and min(_uneven_share(bars), _uneven_share(gaps)) >= _MIN_UNEVEN_SHARE)


class BarcodeDetector:
    """1-D barcodes via ``cv2.barcode.BarcodeDetector``, minus stripes that are not bars. Not thread-safe."""

    model_name = "opencv_barcode"

    def __init__(self, config: BarcodeConfig, *, class_id: int = 0) -> None:
        self.config = config
        self.class_id = class_id
        self._detector: _Multi = cv2.barcode.BarcodeDetector()

    def detect(self, frame: RGBFrame) -> Detections:
        gray, scale = _gray(frame, self.config.max_side)
        found = _run(self._detector, gray, scale)
        bars = [_has_barcode_bars(gray, box * np.float32(scale)) for box in found]
        return _detections([found[np.asarray(bars, dtype=bool).reshape(-1)]], frame, self.class_id)
