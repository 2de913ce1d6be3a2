"""Which pixels a redactor hides: the painted area of its masks, as a boolean image.

Scoring video recall by the boxes a tracker reports would flatter it: an
ellipse covers less than its box, and a box grown by ``mask_scale`` more. So
``veil eval --video`` scores this raster instead, built from the same regions
and shape masks ``apply`` paints with. A feathered pixel counts as hidden where
the effect weighs at least half (``HIDDEN_WEIGHT``); the ``box`` method hides
nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from veil.detections import Detections
from veil.redact.base import MaskedEffect, Redactor
from veil.redact.regions import mask_regions

__all__ = ["HIDDEN_WEIGHT", "hidden_mask"]

HIDDEN_WEIGHT = 0.5
"""A feathered pixel is hidden where the effect weighs at least this (less than half the original shows)."""


def hidden_mask(
    redactor: Redactor, detections: Detections, *, resolution_wh: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    """(H, W) bool: True where ``redactor.apply`` would hide the picture for ``detections``."""
    width, height = resolution_wh
    hidden = np.zeros((height, width), dtype=np.bool_)
    if not isinstance(redactor, MaskedEffect) or len(detections) == 0:
        return hidden
    regions = mask_regions(
        detections.xyxy,
        mask_scale=redactor.mask_scale,
        resolution_wh=resolution_wh,
        mask_margin=redactor.mask_margin,
    )
    for region in regions:
        mask = redactor.region_mask(detections, region)
        view = hidden[region.window]
        if mask is None:
            view[...] = True
            continue
        part = mask.window(*region.mask_window)
        if part.alpha is None:
            view |= part.binary > 0
        else:
            view |= part.alpha >= HIDDEN_WEIGHT
    return hidden
