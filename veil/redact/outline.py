"""The ``box`` method: draw an outline around each box instead of hiding it.

For review, not for publishing: it shows what would be masked (and, with
``show_track_id``, which track each box belongs to), so a reviewer can
include or exclude tracks before rendering the real mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from veil.detections import Detections
from veil.frames import RGBFrame
from veil.redact.base import check_frame, check_growth, touched_rects
from veil.redact.regions import mask_regions, polygon_points
from veil.spec import Shape

__all__ = ["Outline"]

_FONT = cv2.FONT_HERSHEY_SIMPLEX


class Outline:
    """Outline each box (grown by ``mask_scale``, and by ``mask_margin`` pixels at least) with a
    rectangle or an ellipse.

    Lines are ``thickness`` pixels wide; ``None`` scales them with the frame
    (about 3 px at 1080p). Everything is drawn inside the grown box, so
    nothing outside it changes; the track id, if shown, sits in its top-left
    corner. Changes the frame in place and returns it.
    """

    def __init__(
        self,
        *,
        shape: Shape = "rect",
        mask_scale: float = 1.0,
        color: tuple[int, int, int] = (0, 255, 0),
        thickness: int | None = None,
        show_track_id: bool = True,
        mask_margin: float = 0.0,
    ) -> None:
        if shape not in ("ellipse", "rect"):
            raise ValueError(f"shape must be 'ellipse' or 'rect', got {shape!r}")
        check_growth(mask_scale, mask_margin)
        if len(color) != 3 or not all(0 <= int(c) <= 255 for c in color):
            raise ValueError(f"color must be three integers in [0, 255], got {color}")
        if thickness is not None and not 1 <= thickness <= 64:
            raise ValueError(f"thickness must be in [1, 64], got {thickness}")
        self.shape: Shape = shape
        self.mask_scale = float(mask_scale)
        self.mask_margin = float(mask_margin)
        self.color = tuple(int(c) for c in color)
        self.thickness = thickness
        self.show_track_id = show_track_id

    def touched(
        self, detections: Detections, *, resolution_wh: tuple[int, int]
    ) -> list[tuple[int, int, int, int]]:
        return touched_rects(
            detections, mask_scale=self.mask_scale, resolution_wh=resolution_wh, mask_margin=self.mask_margin
        )

    def line_px(self, resolution_wh: tuple[int, int]) -> int:
        """Line width for a frame of this size: fixed, or 1/640 of its long side."""
        if self.thickness is not None:
            return self.thickness
        return max(1, round(max(resolution_wh) / 640))

    def apply(self, frame: RGBFrame, detections: Detections) -> RGBFrame:
        """Draw each box's outline in ``frame``, in place; returns ``frame``."""
        check_frame(frame)
        if len(detections) == 0:
            return frame
        height, width = frame.shape[:2]
        line = self.line_px((width, height))
        track_ids = detections.track_id if self.show_track_id else None
        polygons = detections.has_outline
        for region in mask_regions(
            detections.xyxy,
            mask_scale=self.mask_scale,
            resolution_wh=(width, height),
            mask_margin=self.mask_margin,
        ):
            view = frame[region.window]
            bw, bh = region.box_wh
            t = max(1, min(line, bw // 3, bh // 3))
            ox, oy = region.box_x1 - region.x1, region.box_y1 - region.y1  # box origin in view coordinates
            if polygons[region.index]:
                assert detections.outline is not None
                points = polygon_points(detections.outline[region.index], region) + np.array(
                    [ox, oy], dtype=np.int32
                )
                cv2.polylines(view, [points], True, self.color, thickness=t)
            elif self.shape == "rect":
                # Four filled strips: exactly t pixels wide, all inside the box
                # (a thick cv2.rectangle straddles its path and rounds up).
                x2, y2 = ox + bw - 1, oy + bh - 1
                for a, b in (
                    ((ox, oy), (x2, oy + t - 1)),
                    ((ox, y2 - t + 1), (x2, y2)),
                    ((ox, oy), (ox + t - 1, y2)),
                    ((x2 - t + 1, oy), (x2, y2)),
                ):
                    cv2.rectangle(view, a, b, self.color, thickness=-1)
            else:
                centre = (ox + bw // 2, oy + bh // 2)
                axes = (max(0, (bw - t) // 2), max(0, (bh - t) // 2))
                cv2.ellipse(view, centre, axes, 0, 0, 360, self.color, t)
            if track_ids is not None:
                self._label(
                    view,
                    str(int(track_ids[region.index])),
                    origin=(ox + t + 1, oy + t + 1),
                    t=t,
                    box_wh=(bw, bh),
                )
        return frame

    def _label(
        self, view: RGBFrame, text: str, *, origin: tuple[int, int], t: int, box_wh: tuple[int, int]
    ) -> None:
        """Write ``text`` inside the box's top-left corner, if it fits there."""
        scale = max(0.35, t / 3.5)
        weight = max(1, t // 2)
        (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, weight)
        if tw + 2 * t + 2 > box_wh[0] or th + baseline + 2 * t + 2 > box_wh[1]:
            return
        cv2.putText(view, text, (origin[0], origin[1] + th), _FONT, scale, self.color, weight)
