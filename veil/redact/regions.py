"""Where a mask goes: integer pixel regions for boxes, and the shape masks inside them.

A box is grown by ``mask_scale`` about its centre, and by at least ``mask_margin``
pixels on every side; then the pixels it touches (``floor`` of its top-left to
``ceil`` of its bottom-right) form its region.
Only the part inside the frame is ever touched. Shape masks are laid over
the whole (unclipped) region and sliced to the visible part,
so a box half outside the frame keeps the same ellipse as a box inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from veil.boxes import scale_xyxy
from veil.spec import Shape

__all__ = ["MaskRegion", "ShapeMask", "mask_regions", "polygon_mask", "polygon_points", "shape_mask"]

Weights = npt.NDArray[np.uint8]
Alpha = npt.NDArray[np.float32]

_CACHE_MAX_PIXELS = 512 * 512
"""Masks up to this size go in the main cache: faces recur at similar sizes
frame after frame."""
_BIG_CACHE_MAX_PIXELS = 2560 * 1440
"""Bigger masks (manual regions, close-ups) get a cache of their own that holds
only a couple, since a manual region has the same size in every frame; beyond
this size masks are computed each time rather than pinning tens of MB."""


@dataclass(frozen=True, slots=True)
class MaskRegion:
    """One scaled box in integer pixels.

    ``box_*`` is the whole region the shape is laid over, possibly reaching
    outside the frame; ``x1..y2`` is its visible part (non-empty, inside the
    frame); ``index`` is the box's row in the input.
    """

    index: int
    box_x1: int
    box_y1: int
    box_x2: int
    box_y2: int
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def box_wh(self) -> tuple[int, int]:
        return self.box_x2 - self.box_x1, self.box_y2 - self.box_y1

    @property
    def window(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the visible part inside the frame."""
        return slice(self.y1, self.y2), slice(self.x1, self.x2)

    @property
    def mask_window(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the visible part inside the region's shape mask."""
        return (
            slice(self.y1 - self.box_y1, self.y2 - self.box_y1),
            slice(self.x1 - self.box_x1, self.x2 - self.box_x1),
        )


def mask_regions(
    xyxy: npt.NDArray[np.float32],
    *,
    mask_scale: float,
    resolution_wh: tuple[int, int],
    mask_margin: float = 0.0,
) -> list[MaskRegion]:
    """Regions of ``xyxy`` grown by ``mask_scale`` (and by at least ``mask_margin`` pixels a side),
    clipped to ``resolution_wh``.

    Boxes that do not reach into the frame, or are not finite, yield no region.
    """
    if xyxy.shape[0] == 0:
        return []
    w, h = resolution_wh
    with np.errstate(invalid="ignore"):  # inf - inf is NaN here, and dropped as not finite below
        scaled = scale_xyxy(xyxy, mask_scale, min_margin=mask_margin).astype(np.float64)
    finite = np.all(np.isfinite(scaled), axis=1)
    # Clamp far-out coordinates so absurd boxes cannot allocate absurd masks.
    limit = 4.0 * max(w, h) + 4.0
    scaled = np.clip(np.nan_to_num(scaled), -limit, limit)
    lo = np.floor(np.minimum(scaled[:, :2], scaled[:, 2:])).astype(np.int64)
    hi = np.ceil(np.maximum(scaled[:, :2], scaled[:, 2:])).astype(np.int64)
    hi = np.maximum(hi, lo + 1)  # a degenerate box still covers the pixel it sits on
    vis_lo = np.maximum(lo, 0)
    vis_hi = np.minimum(hi, np.array([w, h], dtype=np.int64))
    ok = finite & np.all(vis_hi > vis_lo, axis=1)
    return [
        MaskRegion(
            index=int(i),
            box_x1=int(lo[i, 0]),
            box_y1=int(lo[i, 1]),
            box_x2=int(hi[i, 0]),
            box_y2=int(hi[i, 1]),
            x1=int(vis_lo[i, 0]),
            y1=int(vis_lo[i, 1]),
            x2=int(vis_hi[i, 0]),
            y2=int(vis_hi[i, 1]),
        )
        for i in np.flatnonzero(ok)
    ]


@dataclass(frozen=True, slots=True)
class ShapeMask:
    """Where and how strongly a region is masked.

    ``binary`` is 255 wherever the effect shows at all and 0 elsewhere. For a
    feathered shape, ``alpha`` (float32, 1 at the centre) and ``inverse``
    (1 - alpha) give the blend weights; for a hard-edged one both are ``None``.
    Arrays are read-only because they are cached and shared.
    """

    binary: Weights
    alpha: Alpha | None = None
    inverse: Alpha | None = None

    def window(self, rows: slice, cols: slice) -> ShapeMask:
        """The same mask restricted to a sub-rectangle (views, no copies)."""
        return ShapeMask(
            binary=self.binary[rows, cols],
            alpha=None if self.alpha is None else self.alpha[rows, cols],
            inverse=None if self.inverse is None else self.inverse[rows, cols],
        )


def shape_mask(width: int, height: int, *, shape: Shape, feather: float) -> ShapeMask | None:
    """The mask of a ``shape`` filling a ``width`` x ``height`` region, or
    ``None`` where every pixel is fully masked (a hard-edged rectangle).

    With ``feather`` f > 0 the weight falls from 1 to 0 over the outer fraction
    f of the shape's half-size, so blending happens only inside the shape; the
    centre always has weight 1. Masks of common sizes are cached.
    """
    if shape == "rect" and feather <= 0.0:
        return None
    pixels = width * height
    if pixels <= _CACHE_MAX_PIXELS:
        return _cached_mask(width, height, shape, round(feather, 4))
    if pixels <= _BIG_CACHE_MAX_PIXELS:
        return _cached_big_mask(width, height, shape, round(feather, 4))
    return _mask(width, height, shape, feather)


def polygon_points(outline: npt.NDArray[np.float32], region: MaskRegion) -> npt.NDArray[np.int32]:
    """A polygon given in unit coordinates of its box (``Detections.outline``), laid over the
    region's whole (grown) box, in pixels of that box (origin at ``box_x1, box_y1``)."""
    width, height = region.box_wh
    scaled = np.asarray(outline, dtype=np.float64) * np.array([width, height], dtype=np.float64)
    return np.round(scaled).astype(np.int32).reshape(-1, 1, 2)


def polygon_mask(outline: npt.NDArray[np.float32], region: MaskRegion) -> ShapeMask:
    """The hard-edged mask of a polygon (unit coordinates of its box) over a region's whole box.

    Every pixel the polygon touches is masked (anti-aliased edges count as inside), and so is the
    region's central pixel, as for the other shapes. Polygons change from box to box, so these
    masks are not cached."""
    width, height = region.box_wh
    binary = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(binary, [polygon_points(outline, region)], 255, lineType=cv2.LINE_8)
    cv2.polylines(binary, [polygon_points(outline, region)], True, 255, thickness=1, lineType=cv2.LINE_8)
    binary[(height - 1) // 2 : height // 2 + 1, (width - 1) // 2 : width // 2 + 1] = 255
    return ShapeMask(binary=binary)


@lru_cache(maxsize=256)
def _cached_mask(width: int, height: int, shape: Shape, feather: float) -> ShapeMask:
    return _mask(width, height, shape, feather)


@lru_cache(maxsize=2)
def _cached_big_mask(width: int, height: int, shape: Shape, feather: float) -> ShapeMask:
    return _mask(width, height, shape, feather)


def _mask(width: int, height: int, shape: Shape, feather: float) -> ShapeMask:
    # Normalized pixel-centre coordinates in (-1, 1).
    dx = (np.arange(width, dtype=np.float32) + 0.5) / (width / 2) - 1
    dy = (np.arange(height, dtype=np.float32) + 0.5) / (height / 2) - 1
    if shape == "ellipse":
        radius = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    else:
        radius = np.maximum(np.abs(dy)[:, None], np.abs(dx)[None, :])
    # Every region masks at least its central pixel, however small the box.
    centre = (slice((height - 1) // 2, height // 2 + 1), slice((width - 1) // 2, width // 2 + 1))
    radius[centre] = 0.0
    if feather <= 0.0:
        binary = np.where(radius <= 1.0, 255, 0).astype(np.uint8)
        binary.setflags(write=False)
        return ShapeMask(binary=binary)
    alpha = np.clip((1.0 - radius) / feather, 0.0, 1.0).astype(np.float32)
    inverse = (1.0 - alpha).astype(np.float32)
    binary = np.where(alpha > 0.0, 255, 0).astype(np.uint8)
    for array in (binary, alpha, inverse):
        array.setflags(write=False)
    return ShapeMask(binary=binary, alpha=alpha, inverse=inverse)
