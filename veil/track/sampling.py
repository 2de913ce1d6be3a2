"""When to run the detector on a video frame.

Detecting every Nth frame and interpolating between is safe while objects
move little between detections. When they move fast (a person running past, a
whip pan) a box interpolated over N frames lags the object and leaves part of
it unmasked, so the schedule falls back to every frame until the motion calms
down. Given the camera's own motion (``veil.track.motion``), a smooth pan is not
such a case: the boxes between two detections are carried by the camera
(``finalize_tracks``), so only motion the camera does not explain counts.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import numpy.typing as npt

from veil.detections import Detections
from veil.track.motion import Similarity

__all__ = ["DetectionSchedule", "PassStrides", "compensated_change"]


class DetectionSchedule:
    """Adaptive "every Nth frame" schedule, one instance per stream.

    Two signals switch to every frame: tracked boxes that moved more than
    ``max_motion`` box sizes over one interval, and a whole picture that changed
    by more than ``max_scene_change`` (mean absolute difference, 0-255, of tiny
    grayscale thumbnails against the last detected frame) — a pan or a cut, which
    is seen before any detector runs, so the very first fast frame is not skipped.

    With ``frame_wh`` the schedule is camera-aware: ``due`` then takes each frame's camera
    motion (``MotionEstimator.motions``), the last detected thumbnail is moved by the camera
    before it is compared, and a box's motion is measured against where the camera took it.
    A pan then triggers detection only where it blurs the picture or reveals more than
    ``max_revealed`` of it since the last detected frame. Where the motion is unknown (a cut,
    a flat picture) the thumbnails are compared as they are.
    """

    def __init__(
        self,
        *,
        every: int,
        max_motion: float = 0.25,
        max_scene_change: float = 6.0,
        max_revealed: float = 0.2,
        frame_wh: tuple[int, int] | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every = every
        self.max_motion = max_motion
        self.max_scene_change = max_scene_change
        self.max_revealed = max_revealed
        self.frame_wh = frame_wh
        self._last: int | None = None
        self._last_thumb: npt.NDArray[np.int16] | None = None
        self._camera: npt.NDArray[np.float64] | None = None
        """Camera-aware only: the camera's composed motion since the last detected frame (3x3); None where
        unknown, and always None for a schedule without ``frame_wh``."""
        self._dense = False
        self._seen: dict[int, tuple[int, float, float]] = {}
        self.picture_changed = False
        """Whether the last ``due`` frame's picture changed fast since the last detected frame (a pan or
        a cut): the frames where following a box's own pixels from frame to frame is least reliable."""
        self.unexplained_change = False
        """Whether it changed fast in a way the camera's motion does not explain (camera-aware schedules;
        else the same as ``picture_changed``): the frames that are detected out of turn."""

    def due(
        self,
        frame_index: int,
        *,
        thumbnail: npt.NDArray[np.uint8] | None = None,
        motion: Similarity | None = None,
    ) -> bool:
        """Whether to detect this frame. ``thumbnail`` is a tiny grayscale copy of it (optional);
        ``motion`` the camera's motion from the frame before (camera-aware schedules, every frame)."""
        if self._camera is not None:
            self._camera = None if motion is None else np.vstack([motion, [0.0, 0.0, 1.0]]) @ self._camera
        self.picture_changed = self._raw_changed(thumbnail)
        self.unexplained_change = self._unexplained(thumbnail)
        if self._last is None:
            return True
        step = 1 if self._dense else self.every
        return frame_index - self._last >= step or self.unexplained_change

    def observe(
        self, frame_index: int, detections: Detections, *, thumbnail: npt.NDArray[np.uint8] | None = None
    ) -> None:
        """Record the tracked boxes found at ``frame_index`` (``track_id`` must be set)."""
        last, camera = self._last, self._camera
        self._last = frame_index
        self._last_thumb = None if thumbnail is None else thumbnail.astype(np.int16)
        self._camera = None if self.frame_wh is None else np.eye(3)
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
                if f0 == last and camera is not None:
                    x0, y0 = (camera[:2, :2] @ (x0, y0) + camera[:2, 2]).tolist()  # where the camera took it
                per_frame = float(np.hypot(cx - x0, cy - y0)) / max(frame_index - f0, 1) / size
                fastest = max(fastest, per_frame)
            self._seen[track_id] = (frame_index, cx, cy)
        self._dense = fastest * self.every > self.max_motion

    def _raw_changed(self, thumbnail: npt.NDArray[np.uint8] | None) -> bool:
        last = self._last_thumb
        if thumbnail is None or last is None or thumbnail.shape != last.shape:
            return False
        return float(np.abs(thumbnail.astype(np.int16) - last).mean()) > self.max_scene_change

    def _unexplained(self, thumbnail: npt.NDArray[np.uint8] | None) -> bool:
        last = self._last_thumb
        if self.frame_wh is None or self._camera is None or not self.picture_changed:
            return self.picture_changed  # motion unknown (a cut, a flat picture), or nothing changed at all
        assert thumbnail is not None and last is not None
        residual, revealed = compensated_change(last, thumbnail, self._camera, frame_wh=self.frame_wh)
        return residual > self.max_scene_change or revealed > self.max_revealed


def compensated_change(
    before: npt.NDArray[np.int16],
    after: npt.NDArray[np.uint8],
    camera: npt.NDArray[np.float64],
    *,
    frame_wh: tuple[int, int],
) -> tuple[float, float]:
    """How much of ``after`` the camera's motion (3x3, frame pixels) from ``before`` does not explain:
    the mean absolute difference (0-255) where ``before``, moved by the camera, still covers the picture,
    and the share of the picture the camera revealed (1.0: nothing of ``before`` is left in view)."""
    th, tw = after.shape
    to_thumb = np.diag([tw / frame_wh[0], th / frame_wh[1], 1.0])
    matrix = (to_thumb @ camera @ np.linalg.inv(to_thumb))[:2]
    moved = cv2.warpAffine(before.astype(np.float32), matrix, (tw, th), flags=cv2.INTER_LINEAR)
    warped = cv2.warpAffine(np.ones((th, tw), np.uint8), matrix, (tw, th), flags=cv2.INTER_NEAREST)
    cover = cv2.erode(warped, np.ones((3, 3), np.uint8), borderValue=1) > 0  # edges interpolate badly
    if not cover.any():
        return float("inf"), 1.0
    residual = float(np.abs(after.astype(np.float32) - moved)[cover].mean())
    return residual, 1.0 - float(cover.mean())


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
