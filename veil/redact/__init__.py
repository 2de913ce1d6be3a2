"""Masking effects: blur, pixelate, solid fill, box outline, in ellipse or rectangle shape.

Every redactor has one method, ``apply(frame, detections)``, which changes the
frame in place and returns it.
"""

from veil.redact.base import MaskedEffect, Redactor
from veil.redact.effects import Blur, Fill, Pixelate
from veil.redact.factory import build_redactor
from veil.redact.outline import Outline
from veil.redact.regions import MaskRegion, ShapeMask, mask_regions, shape_mask

__all__ = [
    "Blur",
    "Fill",
    "MaskRegion",
    "MaskedEffect",
    "Outline",
    "Pixelate",
    "Redactor",
    "build_redactor",
    "ShapeMask",
    "mask_regions",
    "shape_mask",
]
