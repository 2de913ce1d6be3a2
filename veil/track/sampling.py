"""When to run the detector on a video frame.

Detecting every Nth frame and interpolating between is safe while objects
move little between detections. When they move fast (a panning dashcam, a
person running past) a box interpolated over N frames lags the object and
leaves part of it unmasked, so the schedule falls back to every frame until
the motion calms down.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from veil.detections import Detections

__all__ = ["DetectionSchedule", "PassStrides"]


class DetectionSchedule:
    """Adaptive "every Nth frame" schedule, one instance per stream.

    Two signals switch to every frame: tracked boxes that moved more than
    ``max_motion`` box sizes over one interval, and a whole picture that changed
    by more than ``max_scene_change`` (mean absolute difference, 0-255, of tiny
    grayscale thumbnails against the last detected frame) — a pan or a cut, which
    is seen before any detector runs, so the very first fast frame is not skipped.
    """

    def __init__(self, *, every: int, max_motion: float = 0.25, max_scene_change: float = 6.0) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.max_motion = max_motion
        self.max_scene_change = max_scene_change
        self._last: int | None = None
        self._last_thumb: npt.NDArray[np.int16] | None = None
        self._dense = False
        self._seen: dict[int, tuple[int, float, float]] = {}
        self.picture_changed = False
        """Whether the last ``due`` frame's picture changed fast since the last detected frame (a pan or
        a cut): the frames where following a box from frame to frame is least reliable."""

    def due(self, frame_index: int, *, thumbnail: npt.NDArray[np.uint8] | None = None) -> bool:
        """Whether to detect this frame. ``thumbnail`` is a tiny grayscale copy of it (optional)."""
        last = self._last_thumb
        self.picture_changed = (
            thumbnail is not None
            and last is not None
            and thumbnail.shape == last.shape
            and float(np.abs(thumbnail.astype(np.int16) - last).mean()) > self.max_scene_change
        )
        if self._last is None:
            return True
        step = 1 if self._dense else self.every
        return frame_index - self._last >= step or self.picture_changed

    def observe(
        self, frame_index: int, detections: Detections, *, thumbnail: npt.NDArray[np.uint8] | None = None
    ) -> None:
        """Record the tracked boxes found at ``frame_index`` (``track_id`` must be set)."""
        self._last = frame_index
        self._last_thumb = None if thumbnail is None else thumbnail.astype(np.int16)
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


class PassStrides:
    """Which categories sit out a detection pass: each class id in ``every`` runs on one pass in N, and
    on every pass whose picture changed fast (``DetectionSchedule.picture_changed``), where following
    a box from frame to frame is least reliable. Class ids not in ``every`` run on every pass."""

    def __init__(self, every: Mapping[int, int]) -> None:
        if any(n < 1 for n in every.values()):
            raise ValueError(f"strides must be >= 1, got {dict(every)}")
        self.every = dict(every)
        self._since: dict[int, int | None] = dict.fromkeys(self.every)

    def skip(self, *, picture_changed: bool = False) -> frozenset[int]:
        """The class ids to leave out of this pass (call once per pass)."""
        out = frozenset(
            c
            for c, n in self.every.items()
            if not picture_changed and (since := self._since[c]) is not None and since + 1 < n
        )
        for c in self.every:
            since = self._since[c]
            self._since[c] = since + 1 if c in out and since is not None else 0
        return out
