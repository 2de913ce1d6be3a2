"""Masking effects that hide what is in a box: blur, pixelate, solid fill.

Each ``apply`` changes the frame **in place** and returns it (see
``veil.redact.base.MaskedEffect``). Strength is tied to the box size, not to
the frame: a face is unrecognisable after masking whether it is 20 or 800
pixels tall.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from veil.frames import RGBFrame
from veil.redact.base import MaskedEffect
from veil.redact.regions import MaskRegion
from veil.spec import Shape

__all__ = ["Blur", "Fill", "Pixelate"]

MIN_BLUR_KERNEL_FRACTION = 2.0 / 3.0
"""A blur kernel narrower than this fraction of the box leaves faces recognisable."""


def _odd(n: int) -> int:
    return n if n % 2 else n + 1


class Blur(MaskedEffect):
    """Blur each box so strongly that its contents cannot be recognised.

    Two passes of a box filter ``kernel`` x the box size wide (at least 2/3 of
    it) run on the box's region. For speed the region is first shrunk with
    area averaging so that the box is about ``work_px`` pixels across, blurred
    there with the kernel scaled down to match, and enlarged again smoothly;
    the blur is as wide, relative to the box, as at full size. Edges are
    feathered inside the box by ``feather``. Changes the frame in place.
    """

    def __init__(
        self,
        *,
        shape: Shape = "ellipse",
        mask_scale: float = 1.3,
        kernel: float = 0.75,
        feather: float = 0.1,
        work_px: int = 32,
        mask_margin: float = 0.0,
    ) -> None:
        super().__init__(shape=shape, mask_scale=mask_scale, feather=feather, mask_margin=mask_margin)
        if not MIN_BLUR_KERNEL_FRACTION <= kernel <= 3.0:
            raise ValueError(f"kernel must be in [{MIN_BLUR_KERNEL_FRACTION:.3f}, 3], got {kernel}")
        if not 8 <= work_px <= 256:
            raise ValueError(f"work_px must be in [8, 256], got {work_px}")
        self.kernel = float(kernel)
        self.work_px = int(work_px)

    def _render(self, view: RGBFrame, region: MaskRegion) -> npt.NDArray[np.uint8]:
        vh, vw = view.shape[:2]
        bw, bh = region.box_wh
        # An integer shrink factor keeps OpenCV on its fast area-averaging path
        # (3x faster than a fractional one); the view is padded by edge
        # replication to a multiple of it and the padding cropped at the end.
        factor = max(1, math.ceil(max(bw, bh) / self.work_px))
        sw, sh = math.ceil(vw / factor), math.ceil(vh / factor)
        if factor > 1:
            padded = cv2.copyMakeBorder(view, 0, sh * factor - vh, 0, sw * factor - vw, cv2.BORDER_REPLICATE)
            small = cv2.resize(padded, (sw, sh), interpolation=cv2.INTER_AREA)
        else:
            small = np.ascontiguousarray(view)
        kx = _odd(max(3, math.ceil(self.kernel * bw / factor)))
        ky = _odd(max(3, math.ceil(self.kernel * bh / factor)))
        for _ in range(2):
            small = cv2.blur(small, (kx, ky), borderType=cv2.BORDER_REPLICATE)
        if factor > 1:
            small = cv2.resize(small, (sw * factor, sh * factor), interpolation=cv2.INTER_LINEAR)[:vh, :vw]
        return np.asarray(small, dtype=np.uint8)


class Pixelate(MaskedEffect):
    """Replace each box with coarse blocks: at most ``blocks`` blocks across the
    scaled box (so about 8 across a face inside a box grown by 1.3), and blocks
    never smaller than ``min_block_px``. Block colours are area averages.
    Changes the frame in place."""

    def __init__(
        self,
        *,
        shape: Shape = "ellipse",
        mask_scale: float = 1.3,
        blocks: int = 10,
        min_block_px: int = 2,
        feather: float = 0.0,
        mask_margin: float = 0.0,
    ) -> None:
        super().__init__(shape=shape, mask_scale=mask_scale, feather=feather, mask_margin=mask_margin)
        if not 2 <= blocks <= 32:
            raise ValueError(f"blocks must be in [2, 32], got {blocks}")
        if not 1 <= min_block_px <= 64:
            raise ValueError(f"min_block_px must be in [1, 64], got {min_block_px}")
        self.blocks = int(blocks)
        self.min_block_px = int(min_block_px)

    def _render(self, view: RGBFrame, region: MaskRegion) -> npt.NDArray[np.uint8]:
        vh, vw = view.shape[:2]
        block = max(self.min_block_px, math.ceil(max(region.box_wh) / self.blocks))
        nx, ny = math.ceil(vw / block), math.ceil(vh / block)
        # Pad to whole blocks (edge replication) so every block is exactly
        # block x block and OpenCV takes its fast integer area-averaging path.
        padded = cv2.copyMakeBorder(view, 0, ny * block - vh, 0, nx * block - vw, cv2.BORDER_REPLICATE)
        small = cv2.resize(padded, (nx, ny), interpolation=cv2.INTER_AREA)
        big = cv2.resize(small, (nx * block, ny * block), interpolation=cv2.INTER_NEAREST)
        return np.asarray(big[:vh, :vw], dtype=np.uint8)


class Fill(MaskedEffect):
    """Paint each box one solid ``color`` (RGB; black by default). Changes the frame in place."""

    def __init__(
        self,
        *,
        shape: Shape = "ellipse",
        mask_scale: float = 1.3,
        color: tuple[int, int, int] = (0, 0, 0),
        feather: float = 0.0,
        mask_margin: float = 0.0,
    ) -> None:
        super().__init__(shape=shape, mask_scale=mask_scale, feather=feather, mask_margin=mask_margin)
        if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
            raise ValueError(f"color must be three integers in [0, 255], got {color}")
        self.color = (int(color[0]), int(color[1]), int(color[2]))

    def _render(self, view: RGBFrame, region: MaskRegion) -> npt.NDArray[np.uint8]:
        vh, vw = view.shape[:2]
        solid = np.empty((vh, vw, 3), dtype=np.uint8)
        # cv2's fill is ~30x faster than NumPy broadcasting a 3-vector.
        cv2.rectangle(solid, (0, 0), (vw - 1, vh - 1), self.color, thickness=-1)
        return solid
