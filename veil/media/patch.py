"""Edit a few rectangles of an 8-bit 4:2:0 frame in RGB and leave every other pixel bit-exact.

Why: a video frame usually needs masking in a few small boxes. Converting the whole
frame to RGB and back costs more than encoding it, and the round trip nudges the
colour of every pixel. Here only the rectangles are converted (with OpenCV's I420
conversions, the same matrix both ways, so untouched pixels inside a rectangle come
back within rounding) and written back into a copy of the decoded planes.
"""

from __future__ import annotations

from collections.abc import Sequence

import av
import cv2
import numpy as np
import numpy.typing as npt

from veil.frames import RGBFrame

__all__ = ["I420Patch", "Rect", "patchable"]

Rect = tuple[int, int, int, int]
"""``(x1, y1, x2, y2)`` in pixels, end-exclusive."""


def patchable(frame: av.VideoFrame) -> bool:
    """Whether ``frame`` can take the patch path: 8-bit 4:2:0, limited range, even size.
    (Full-range JPEG YUV would need other conversion constants.)"""
    return (
        frame.format.name == "yuv420p"
        and frame.color_range != 2  # 2 = JPEG/full range
        and frame.width % 2 == 0
        and frame.height % 2 == 0
    )


class I420Patch:
    """A writable copy of a 4:2:0 frame plus an RGB canvas holding the picture inside ``rects``."""

    def __init__(self, frame: av.VideoFrame, rects: Sequence[Rect]) -> None:
        w, h = frame.width, frame.height
        self.width, self.height = w, h
        self._source = frame
        self._i420 = np.ascontiguousarray(frame.to_ndarray(), dtype=np.uint8)  # (h*3/2, w): Y, U, V
        self.rects = [r for r in (_even(rect, w, h) for rect in rects) if r is not None]
        self.canvas: RGBFrame = np.zeros((h, w, 3), dtype=np.uint8)
        for x1, y1, x2, y2 in self.rects:
            crop = _i420_crop(self._planes(), x1, y1, x2, y2)
            self.canvas[y1:y2, x1:x2] = cv2.cvtColor(crop, cv2.COLOR_YUV2RGB_I420)

    def to_frame(self) -> av.VideoFrame:
        """The decoded frame with ``rects`` replaced by the canvas's pixels."""
        y, u, v = self._planes()
        for x1, y1, x2, y2 in self.rects:
            rgb = np.ascontiguousarray(self.canvas[y1:y2, x1:x2])
            packed = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
            rh, rw = y2 - y1, x2 - x1
            quarter = (rh // 2) * (rw // 2)
            y[y1:y2, x1:x2] = packed[: rh * rw].reshape(rh, rw)
            u[y1 // 2 : y2 // 2, x1 // 2 : x2 // 2] = packed[rh * rw : rh * rw + quarter].reshape(
                rh // 2, rw // 2
            )
            v[y1 // 2 : y2 // 2, x1 // 2 : x2 // 2] = packed[rh * rw + quarter :].reshape(rh // 2, rw // 2)
        out = av.VideoFrame.from_ndarray(self._i420, format="yuv420p")
        out.colorspace = self._source.colorspace
        out.color_range = self._source.color_range
        return out

    def _planes(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        w, h = self.width, self.height
        flat = self._i420.reshape(-1)
        luma, chroma = w * h, (w // 2) * (h // 2)
        return (
            flat[:luma].reshape(h, w),
            flat[luma : luma + chroma].reshape(h // 2, w // 2),
            flat[luma + chroma : luma + 2 * chroma].reshape(h // 2, w // 2),
        )


def _even(rect: Rect, width: int, height: int) -> Rect | None:
    """``rect`` grown to even corners (chroma samples cover 2x2 pixels) and clipped; None if empty."""
    x1, y1, x2, y2 = rect
    x1, y1 = max(0, x1 - x1 % 2), max(0, y1 - y1 % 2)
    x2, y2 = min(width, x2 + x2 % 2), min(height, y2 + y2 % 2)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _i420_crop(
    planes: tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
    x1: int,
    y1: int,
    x2: int,
    y2: int,
) -> npt.NDArray[np.uint8]:
    """The rectangle as one packed I420 buffer, the layout OpenCV's conversions take."""
    y, u, v = planes
    rh, rw = y2 - y1, x2 - x1
    return np.concatenate(
        [
            y[y1:y2, x1:x2].reshape(-1),
            u[y1 // 2 : y2 // 2, x1 // 2 : x2 // 2].reshape(-1),
            v[y1 // 2 : y2 // 2, x1 // 2 : x2 // 2].reshape(-1),
        ]
    ).reshape(rh * 3 // 2, rw)
