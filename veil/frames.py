"""The frame type every layer works on: media decodes into it, detect, track and redact read it.

It lives at the bottom of the package, beside ``Detections``, so that no layer
has to import another (or its model runtime) to name a frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["RGBFrame", "as_rgb_frame"]

RGBFrame = npt.NDArray[np.uint8]
"""An (H, W, 3) uint8 RGB frame, C-contiguous, in stored (unrotated) orientation."""


def as_rgb_frame(array: npt.NDArray[np.generic], *, resolution_wh: tuple[int, int] | None = None) -> RGBFrame:
    """Check that ``array`` is an RGB frame (of ``resolution_wh`` if given) and make it C-contiguous.

    Raises ``ValueError`` naming the expected and actual shape: a wrong frame
    handed to an encoder is a programming error, not bad input.
    """
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        got = f"shape {array.shape} dtype {array.dtype}"
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {got}")
    if resolution_wh is not None:
        width, height = resolution_wh
        if array.shape[0] != height or array.shape[1] != width:
            raise ValueError(f"expected frame shape ({height}, {width}, 3), got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.uint8)
