"""When to run the detector on a video frame.

Detecting every Nth frame and interpolating between is safe while objects
move little between detections. When they move fast (a panning dashcam, a
person running past) a box interpolated over N frames lags the object and
leaves part of it unmasked, so the schedule falls back to every frame until
the motion calms down.
"""

from __future__ import annotations

import numpy as np

from veil.detect.detections import Detections

__all__ = ["DetectionSchedule"]


class DetectionSchedule:
    """Adaptive "every Nth frame" schedule, one instance per stream.

    ``max_motion`` is the largest movement, in box sizes, that the boxes may make
    over one detection interval before every frame is detected.
    """

    def __init__(self, *, every: int, max_motion: float = 0.25) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.max_motion = max_motion
        self._last: int | None = None
        self._dense = False
        self._seen: dict[int, tuple[int, float, float]] = {}

    def due(self, frame_index: int) -> bool:
        if self._last is None:
            return True
        step = 1 if self._dense else self.every
        return frame_index - self._last >= step

    def observe(self, frame_index: int, detections: Detections) -> None:
        """Record the tracked boxes found at ``frame_index`` (``track_id`` must be set)."""
        self._last = frame_index
        if self.every == 1 or detections.track_id is None or not len(detections):
            self._dense = False
            return
        centres = (detections.xyxy[:, :2] + detections.xyxy[:, 2:]) / 2
        sizes = np.maximum((detections.xyxy[:, 2:] - detections.xyxy[:, :2]).max(axis=1), 1.0)
        fastest = 0.0
        for track_id, (cx, cy), size in zip(
            detections.track_id.tolist(), centres.tolist(), sizes.tolist(), strict=True
        ):
            previous = self._seen.get(track_id)
            if previous is not None:
                f0, x0, y0 = previous
                per_frame = float(np.hypot(cx - x0, cy - y0)) / max(frame_index - f0, 1) / size
                fastest = max(fastest, per_frame)
            self._seen[track_id] = (frame_index, cx, cy)
        self._dense = fastest * self.every > self.max_motion
