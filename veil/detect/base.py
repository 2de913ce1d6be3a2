"""The detector interface. Every category (faces, plates, QR codes, custom
YOLOv8 models) sits behind it, so the pipeline never knows which model runs."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from veil.detections import Detections
from veil.frames import RGBFrame

__all__ = ["Detector", "RGBFrame"]


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
