"""Geometry of a multi-scale, tiled still-image search, kept apart from any model.

Why: small faces vanish below a detector's stride, so stills are searched at
several scales; large working images are cut into overlapping tiles so memory
stays bounded. A face no larger than the overlap lies whole inside some tile,
and larger faces are found whole by a coarser pass, so boxes touching an
interior tile edge can be dropped (they are partial views) without losing a
face. Everything here is pure: no model, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "STRIDE",
    "Tile",
    "letterbox_rgb",
    "planar_blob",
    "pass_scales",
    "resize_rgb",
    "tile_grid",
    "touches_interior_edge_xyxy",
]

STRIDE = 32
"""Input sides must be multiples of this (the network downsamples 32x)."""


@dataclass(frozen=True)
class Tile:
    """One window of a working image, in working pixels, with which of its edges are interior."""

    x0: int
    y0: int
    x1: int
    y1: int
    interior_ltrb: tuple[bool, bool, bool, bool]
    """True for an edge that borders another tile (not the image border)."""


def pass_scales(
    resolution_wh: tuple[int, int],
    *,
    scales: tuple[float, ...],
    max_megapixels: float,
    max_upscaled_long_side: int | None = None,
    min_ratio: float = 1.25,
) -> list[float]:
    """The scales actually run for an image: each clamped so the working image stays under
    ``max_megapixels``, upscaled passes (scale > 1) also so their long side stays under
    ``max_upscaled_long_side``, then near-duplicates (closer than ``min_ratio``) dropped. Ascending.

    Upscaling exists to find faces a few pixels tall in small photos; on an image that is already
    large, the faces it would add are too small to identify, and the pass costs four times the first.
    """
    w, h = resolution_wh
    pixels = max(1, w * h)
    cap = math.sqrt(max_megapixels * 1e6 / pixels)
    if max_upscaled_long_side is not None:
        upscale_cap = max(1.0, max_upscaled_long_side / max(1, w, h))
        scales = tuple(min(s, upscale_cap) if s > 1.0 else s for s in scales)
    chosen: list[float] = []
    for s in sorted({min(float(s), cap) for s in scales}):
        if not chosen or s / chosen[-1] >= min_ratio:
            chosen.append(s)
    return chosen


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    count = math.ceil((length - tile) / step) + 1
    # Spread the tiles evenly so the last one ends exactly at the border.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_grid(resolution_wh: tuple[int, int], *, tile_size: int, overlap: int) -> list[Tile]:
    """Overlapping tiles covering a ``resolution_wh`` working image; one tile if it fits."""
    w, h = resolution_wh
    xs = _starts(w, tile_size, overlap)
    ys = _starts(h, tile_size, overlap)
    tiles: list[Tile] = []
    for y0 in ys:
        for x0 in xs:
            x1, y1 = min(w, x0 + tile_size), min(h, y0 + tile_size)
            tiles.append(Tile(x0, y0, x1, y1, (x0 > 0, y0 > 0, x1 < w, y1 < h)))
    return tiles


def touches_interior_edge_xyxy(
    xyxy: npt.NDArray[np.float32], *, tile: Tile, margin_px: float
) -> npt.NDArray[np.bool_]:
    """Which boxes (tile-local working pixels) reach within ``margin_px`` of an interior edge."""
    boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    w, h = tile.x1 - tile.x0, tile.y1 - tile.y0
    left, top, right, bottom = tile.interior_ltrb
    hit = np.zeros(len(boxes), dtype=bool)
    if left:
        hit |= boxes[:, 0] <= margin_px
    if top:
        hit |= boxes[:, 1] <= margin_px
    if right:
        hit |= boxes[:, 2] >= w - margin_px
    if bottom:
        hit |= boxes[:, 3] >= h - margin_px
    return hit


def resize_rgb(rgb: npt.NDArray[np.uint8], *, scale: float) -> npt.NDArray[np.uint8]:
    """Resize keeping the aspect ratio (area filter down, bilinear up)."""
    if scale == 1.0:
        return rgb
    h, w = rgb.shape[:2]
    size_wh = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(rgb, size_wh, interpolation=interpolation), dtype=np.uint8)


def letterbox_rgb(rgb: npt.NDArray[np.uint8], *, stride: int = STRIDE) -> npt.NDArray[np.float32]:
    """(1, 3, H', W') float32 blob with the image top-left and black padding to a multiple of ``stride``.

    Padding bottom/right keeps box coordinates unchanged, and nothing is stretched.
    """
    h, w = rgb.shape[:2]
    return planar_blob(rgb, (-(-h // stride) * stride, -(-w // stride) * stride))


def planar_blob(
    rgb: npt.NDArray[np.uint8], shape_hw: tuple[int, int], *, fill: float = 0.0, multiplier: float = 1.0
) -> npt.NDArray[np.float32]:
    """A (1, 3, H, W) float32 network input: ``rgb`` top-left, times ``multiplier``, the rest ``fill``.

    Copies plane by plane (``cv2.split``), which is about twice as fast as a strided
    NumPy transpose on a 1080p frame.
    """
    h, w = rgb.shape[:2]
    blob = np.full((1, 3, *shape_hw), fill, dtype=np.float32)
    for channel, plane in enumerate(cv2.split(rgb)):
        target = blob[0, channel, :h, :w]
        target[...] = plane
        if multiplier != 1.0:
            target *= np.float32(multiplier)
    return blob
