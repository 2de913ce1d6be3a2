"""Build the redactor for a spec's masking method: one place maps names and strengths to effects."""

from __future__ import annotations

from veil.redact.base import Redactor
from veil.redact.effects import MIN_BLUR_KERNEL_FRACTION, Blur, Fill, Pixelate
from veil.redact.outline import Outline
from veil.spec import Method, Shape

__all__ = ["DEFAULT_STRENGTH", "blur_kernel", "build_redactor", "pixelate_blocks"]

DEFAULT_STRENGTH = 50
"""``medium``: the blur and pixelation Veil always used."""

_BLUR_KERNEL = ((1, MIN_BLUR_KERNEL_FRACTION), (DEFAULT_STRENGTH, 0.75), (100, 1.5))
"""(strength, blur kernel as a fraction of the box), interpolated linearly between the points."""
_PIXELATE_BLOCKS = ((1, 12.0), (DEFAULT_STRENGTH, 10.0), (100, 5.0))
"""(strength, blocks across the box), interpolated linearly; fewer blocks hide more."""


def _interpolate(points: tuple[tuple[int, float], ...], strength: int) -> float:
    if not 1 <= strength <= 100:
        raise ValueError(f"strength must be in [1, 100], got {strength}")
    for (s0, v0), (s1, v1) in zip(points, points[1:], strict=False):
        if strength <= s1:
            return v0 + (strength - s0) / (s1 - s0) * (v1 - v0)
    return points[-1][1]


def blur_kernel(strength: int) -> float:
    """Blur kernel width as a fraction of the box for ``strength`` 1-100 (never below 2/3 of the box)."""
    return max(MIN_BLUR_KERNEL_FRACTION, _interpolate(_BLUR_KERNEL, strength))


def pixelate_blocks(strength: int) -> int:
    """Blocks across the box for ``strength`` 1-100: 12 at 1, 10 at 50, 5 at 100."""
    return round(_interpolate(_PIXELATE_BLOCKS, strength))


def build_redactor(
    method: Method,
    *,
    shape: Shape,
    mask_scale: float,
    strength: int = DEFAULT_STRENGTH,
    mask_margin: float = 0.0,
) -> Redactor:
    """The effect for ``method`` at ``strength`` (1-100, used by blur and pixelate), on boxes grown by
    ``mask_scale`` and by at least ``mask_margin`` pixels a side.

    ``blur``, ``pixelate`` and ``black`` hide the box; ``box`` only outlines
    it (with the track id) for review.
    """
    if method == "blur":
        return Blur(shape=shape, mask_scale=mask_scale, mask_margin=mask_margin, kernel=blur_kernel(strength))
    if method == "pixelate":
        return Pixelate(
            shape=shape, mask_scale=mask_scale, mask_margin=mask_margin, blocks=pixelate_blocks(strength)
        )
    if method == "black":
        return Fill(shape=shape, mask_scale=mask_scale, mask_margin=mask_margin, color=(0, 0, 0))
    if method == "box":
        return Outline(shape=shape, mask_scale=mask_scale, mask_margin=mask_margin)
    raise ValueError(f"unknown masking method {method!r}")
