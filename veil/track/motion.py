"""The camera's own motion between consecutive frames, so that boxes can coast with the picture.

When the detector loses a face for a few frames (a whip pan blurs it, a scene zooms), the boxes that
tracking fills in were held still or moved at the face's last speed; but in a pan the face moves with
the whole picture, often faster than it ever did while it was detected. Estimating the picture's
motion between frames (sparse Lucas-Kanade optical flow on a small grey copy, fitted with OpenCV's
RANSAC similarity ``estimateAffinePartial2D``; phase correlation for a translation when too few
corners survive heavy blur) lets a coasting box move with it, forwards and backwards.

Frames where no motion can be trusted (a hard cut, a flat or wholly new picture) get ``None``; the
motion is unknown there and nothing is carried across. Nothing here knows about media or detectors:
the caller hands in grey arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["CameraPath", "MotionEstimator", "Similarity", "estimate_motion"]

Gray = npt.NDArray[np.uint8]
Similarity = npt.NDArray[np.float64]
"""A 2x3 matrix mapping pixel coordinates of one frame to those of the next."""

MOTION_WIDTH = 320
"""Width of the grey copy the motion is estimated on (its height keeps the frame's aspect)."""
_MAX_CORNERS = 200
_MIN_INLIERS = 12
_MIN_INLIER_SHARE = 0.4
_MIN_PHASE_RESPONSE = 0.08
"""Phase correlation peaks this high or higher are a real shift; a cut's peak is flat (~0.02-0.05)."""
_CUT_CORRELATION = 0.5
"""Consecutive frames whose grey histograms correlate less than this are a cut (as ``follow.py``)."""
_MAX_SCALE_STEP = 0.15
"""A frame-to-frame zoom beyond this share is not a camera move but a bad fit."""


def estimate_motion(previous: Gray, current: Gray) -> Similarity | None:
    """The similarity (scale, rotation, shift) taking ``previous``'s pixels to ``current``'s, in the
    pixels of these arrays, or None when the two frames share no trustworthy motion (a cut)."""
    if previous.shape != current.shape or min(previous.shape) < 16:
        return None
    if _histogram_correlation(previous, current) < _CUT_CORRELATION:
        return None
    corners = cv2.goodFeaturesToTrack(previous, _MAX_CORNERS, 0.01, 6, blockSize=5)
    if corners is not None and len(corners) >= _MIN_INLIERS:
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            previous,
            current,
            corners,
            None,
            winSize=(21, 21),
            maxLevel=4,  # type: ignore[call-overload,unused-ignore]  # typed in some opencv releases
        )
        ok = status.reshape(-1) == 1
        if int(ok.sum()) >= _MIN_INLIERS:
            matrix, inliers = cv2.estimateAffinePartial2D(
                corners[ok], moved[ok], method=cv2.RANSAC, ransacReprojThreshold=1.5
            )
            if matrix is not None and inliers is not None:
                count = int(inliers.sum())
                scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
                if (
                    count >= _MIN_INLIERS
                    and count >= _MIN_INLIER_SHARE * len(corners)
                    and abs(scale - 1.0) <= _MAX_SCALE_STEP
                ):
                    return np.asarray(matrix, dtype=np.float64)
    window = cv2.createHanningWindow(previous.shape[::-1], cv2.CV_64F)
    (dx, dy), response = cv2.phaseCorrelate(previous.astype(np.float64), current.astype(np.float64), window)
    if response < _MIN_PHASE_RESPONSE:
        return None
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float64)


class MotionEstimator:
    """Feed every frame's grey copy in order (``add``); ``motions`` then holds, per frame, the motion
    from the frame before it to it, in source pixels (None for the first frame and at cuts)."""

    def __init__(self, resolution_wh: tuple[int, int]) -> None:
        width, height = resolution_wh
        self.work_wh = (MOTION_WIDTH, max(16, round(MOTION_WIDTH * height / max(width, 1))))
        self._to_source = width / self.work_wh[0], height / self.work_wh[1]
        self._previous: Gray | None = None
        self.motions: list[Similarity | None] = []

    def add(self, gray: Gray) -> None:
        """Add the next frame, as a grey array of ``work_wh`` (e.g. ``VideoFrame.gray_thumbnail``)."""
        found = None if self._previous is None else estimate_motion(self._previous, gray)
        self._previous = gray
        if found is not None:
            sx, sy = self._to_source
            found = found.copy()
            found[0, 2] *= sx
            found[1, 2] *= sy
            found[0, 1] *= sx / sy
            found[1, 0] *= sy / sx
        self.motions.append(found)


@dataclass(frozen=True)
class CameraPath:
    """Composed camera motions of a stream: where a box at frame ``a`` would be at frame ``b``.

    Frames are grouped into shots, split where the motion is unknown; within a shot, ``_to_shot[i]``
    maps frame i's pixels to those of the shot's first frame."""

    shot: npt.NDArray[np.int64]
    _to_shot: npt.NDArray[np.float64]  # (n, 3, 3)

    @classmethod
    def from_motions(cls, motions: Sequence[Similarity | None]) -> CameraPath:
        n = len(motions)
        shot = np.zeros(n, dtype=np.int64)
        from_shot = np.tile(np.eye(3), (max(n, 0), 1, 1))  # shot's first frame -> frame i
        for i in range(1, n):
            step = motions[i]
            if step is None:
                shot[i] = shot[i - 1] + 1
                continue
            shot[i] = shot[i - 1]
            from_shot[i] = np.vstack([step, [0.0, 0.0, 1.0]]) @ from_shot[i - 1]
        to_shot = np.asarray(np.linalg.inv(from_shot) if n else from_shot, dtype=np.float64)
        return cls(shot=shot, _to_shot=to_shot)

    def __len__(self) -> int:
        return int(self.shot.shape[0])

    def connected(self, a: int, b: int) -> bool:
        """Whether frames ``a`` and ``b`` lie in one shot (the motion between them is known)."""
        return 0 <= a < len(self) and 0 <= b < len(self) and bool(self.shot[a] == self.shot[b])

    def move(
        self, xyxy: npt.NDArray[np.float32], a: int, targets: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """The box ``xyxy`` of frame ``a`` carried by the camera to each frame of ``targets`` (all in
        ``a``'s shot): the bounding box of its moved corners, (len(targets), 4)."""
        to_target = np.linalg.inv(self._to_shot[targets]) @ self._to_shot[a]  # (k, 3, 3)
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        corners = np.array([[x1, y1, 1.0], [x2, y1, 1.0], [x1, y2, 1.0], [x2, y2, 1.0]]).T  # (3, 4)
        moved = to_target @ corners  # (k, 3, 4)
        xs, ys = moved[:, 0, :], moved[:, 1, :]
        return np.stack([xs.min(axis=1), ys.min(axis=1), xs.max(axis=1), ys.max(axis=1)], axis=1).astype(
            np.float32
        )


def _histogram_correlation(a: Gray, b: Gray) -> float:
    ha = cv2.calcHist([a], [0], None, [32], [0, 256])
    hb = cv2.calcHist([b], [0], None, [32], [0, 256])
    return float(cv2.compareHist(ha, hb, cv2.HISTCMP_CORREL))
