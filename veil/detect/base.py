"""The detector interface. Every category (faces, plates, QR codes, custom
YOLOv8 models) sits behind it, so the pipeline never knows which model runs."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from veil.detections import Detections
from veil.frames import RGBFrame

__all__ = ["MAX_UPSCALE", "MIN_FRAME_SIDE_PX", "Detector", "RGBFrame", "too_small_to_search"]

MAX_UPSCALE = 4.0
"""Single-pass (video) detectors enlarge a small frame to their working size at most this much. A
1x1 frame scaled to 960x960 cost a quarter of a second per frame and found only noise; at 4x, a
frame of 240 px or more (any real camera) is searched exactly as before."""

MIN_FRAME_SIDE_PX = 2
"""A frame whose shorter side is under this holds no face or plate a detector can find: even enlarged
``MAX_UPSCALE`` times it stays under the 7 working pixels of CenterFace's smallest face
(``centerface.SMALLEST_FACE_PX``), and YOLOv8's finest grid cell is 8."""


def too_small_to_search(frame: RGBFrame) -> bool:
    """Whether ``frame`` cannot hold anything to find (see ``MIN_FRAME_SIDE_PX``): skip it."""
    return min(int(frame.shape[0]), int(frame.shape[1])) < MIN_FRAME_SIDE_PX


@runtime_checkable
class Detector(Protocol):
    """Finds one category in a frame.

    ``detect`` returns boxes in the frame's own pixels with ``class_id`` set to
    the id the detector was constructed with. Detectors warm up in their
    constructor so the first real frame is not slow, and are not thread-safe
    unless they say so.
    """

    model_name: str
    """Stable model identifier that the report records (e.g. ``centerface``)."""

    def detect(self, frame: RGBFrame) -> Detections: ...
