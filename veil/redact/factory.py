"""Build the redactor for a spec's masking method: one place maps names to effects."""

from __future__ import annotations

from veil.redact.base import Redactor
from veil.redact.effects import Blur, Fill, Pixelate
from veil.redact.outline import Outline
from veil.spec import Method, Shape

__all__ = ["build_redactor"]


def build_redactor(method: Method, *, shape: Shape, mask_scale: float) -> Redactor:
    """The effect for ``method`` with its default strength.

    ``blur``, ``pixelate`` and ``black`` hide the box; ``box`` only outlines
    it (with the track id) for review.
    """
    if method == "blur":
        return Blur(shape=shape, mask_scale=mask_scale)
    if method == "pixelate":
        return Pixelate(shape=shape, mask_scale=mask_scale)
    if method == "black":
        return Fill(shape=shape, mask_scale=mask_scale, color=(0, 0, 0))
    if method == "box":
        return Outline(shape=shape, mask_scale=mask_scale)
    raise ValueError(f"unknown masking method {method!r}")
