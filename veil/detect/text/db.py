"""DB post-processing: from PP-OCR's text-probability map to rotated text quads.

PP-OCR's detector is a DB (Differentiable Binarization) network: it outputs, for every input pixel,
the probability that the pixel lies in the shrunk core of a text line. Turning that map into
lines takes four steps, all NumPy and OpenCV:

1. **threshold** the map at ``bin_threshold`` (optionally dilate it by one pixel, which joins
   characters of widely spaced lines);
2. take each connected region's **minimum-area rotated rectangle**, and drop regions whose short
   side is under ``min_size`` pixels;
3. **score** each rectangle by the mean probability inside it (DB's "fast" score) and drop those
   under ``box_threshold``;
4. **unclip**: the network was trained on lines shrunk by the Vatti offset
   ``d = area * (1 - 0.4^2) / perimeter``; DB undoes it by offsetting the polygon outwards by
   ``d' = area * unclip_ratio / perimeter``. For a rectangle that offset is the same rectangle
   grown by ``2 d'`` in both sides (the rounded corners that a polygon clipper would add lie
   inside the rectangle's own growth), so no polygon clipper is needed.

Quads come back in map pixels as (N, 4, 2) float32, corners in clockwise order from the one
nearest the top-left.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["DBParams", "db_quads", "order_quad"]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class DBParams:
    bin_threshold: float = 0.3
    """Pixels whose text probability exceeds this belong to a text core."""
    box_threshold: float = 0.5
    """Minimum mean probability inside a region's rectangle for it to count as a line."""
    unclip_ratio: float = 1.6
    """How far the shrunk core is grown back out (PaddleOCR's default 1.5-2.0)."""
    min_size: float = 3.0
    """Regions whose rectangle is thinner than this (map pixels) are noise."""
    dilate: bool = True
    max_candidates: int = 1000


def order_quad(points: npt.ArrayLike) -> FloatArray:
    """The corners of a convex quad (given in order around it) clockwise on screen (y down),
    starting at the one nearest the top-left."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    x, y = pts[:, 0], pts[:, 1]
    signed_area = float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    if signed_area < 0:  # counter-clockwise on screen
        pts = pts[::-1]
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return np.roll(pts, -start, axis=0).astype(np.float32)


def _box_score(prob: FloatArray, quad: FloatArray) -> float:
    """Mean probability inside ``quad`` (computed on its bounding window only)."""
    h, w = prob.shape
    x1 = int(np.clip(np.floor(quad[:, 0].min()), 0, w - 1))
    x2 = int(np.clip(np.ceil(quad[:, 0].max()), 0, w - 1))
    y1 = int(np.clip(np.floor(quad[:, 1].min()), 0, h - 1))
    y2 = int(np.clip(np.ceil(quad[:, 1].max()), 0, h - 1))
    mask = np.zeros((y2 - y1 + 1, x2 - x1 + 1), dtype=np.uint8)
    shifted = (quad - np.array([x1, y1], dtype=np.float32)).round().astype(np.int32)
    cv2.fillPoly(mask, [shifted], 1)
    return float(cv2.mean(prob[y1 : y2 + 1, x1 : x2 + 1], mask)[0])


def db_quads(prob: FloatArray, params: DBParams) -> tuple[FloatArray, FloatArray]:
    """Text quads (N, 4, 2) in ``prob``'s pixels and their scores (N,), from a DB probability map."""
    prob = np.ascontiguousarray(prob, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"prob must be a 2-D map, got shape {prob.shape}")
    binary = np.asarray(prob > params.bin_threshold, dtype=np.uint8)
    if params.dilate:
        binary = np.asarray(cv2.dilate(binary, np.ones((2, 2), dtype=np.uint8)), dtype=np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    quads: list[FloatArray] = []
    scores: list[float] = []
    for contour in contours[: params.max_candidates]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < params.min_size:
            continue
        core = cv2.boxPoints(((cx, cy), (rw, rh), angle)).astype(np.float32)
        score = _box_score(prob, core)
        if score < params.box_threshold:
            continue
        offset = rw * rh * params.unclip_ratio / (2.0 * (rw + rh))
        grown = cv2.boxPoints(((cx, cy), (rw + 2 * offset, rh + 2 * offset), angle))
        if min(rw, rh) + 2 * offset < params.min_size + 2:
            continue
        quads.append(order_quad(grown))
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), dtype=np.float32), np.zeros((0,), dtype=np.float32)
    return np.stack(quads).astype(np.float32), np.asarray(scores, dtype=np.float32)
