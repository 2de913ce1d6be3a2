"""Carry tracks through the frames their detector misses by following the picture, forwards and backwards.

Between two sightings ``finalize_tracks`` fills a track in by moving the last box with the camera
(``veil.track.motion``). That model is one similarity for the whole picture: it cannot follow an
object that moves on its own, nor one near the edge of a fisheye or wide-angle frame, where the lens
bends the motion. There a coasting box drifts off the object, even out of the picture, while the
object is still in plain view (``plates_fisheye_audio.mp4``: a rear plate the plate model scores
below its weak threshold in 20 of 24 frames).

``TrackCarrier`` follows each track of the chosen classes from every sighting with the template
matcher of ``veil.track.follow`` (normalized cross-correlation on a grey copy of the frame):
forwards, frame by frame, until the next sighting re-anchors it, the match is lost or weak, the
scene cuts, or ``forward_frames`` pass; and backwards, once, from a track's first sighting, through the
frames kept in a short buffer (we process files, so a track may reach back before it was first
detected). ``finalize_tracks`` widens each finished box to take in the carried box of its frame: it
adds to the camera-carried box and never replaces it, since a template match can slip off an object
that leaves the picture (video-dev clip04: a plate leaving at the bottom, followed onto the car body),
where the camera-carried box still covers it. On the fisheye clip this masks the rear plate in all 24
frames (before: 14).
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import numpy.typing as npt

from veil.detections import Detections
from veil.track.follow import BoxMatcher, FollowLimits, Gray

__all__ = ["TrackCarrier"]

FloatArray = npt.NDArray[np.float32]

CARRY_FRAMES = 8
"""Frames a track is followed past a sighting, each way. The template is re-cut from every matched box,
so a follow that slips off its object (one leaving the picture) stays on whatever it slipped onto:
on video-dev (detections replayed) 30 frames raised the plate false-mask share from 0.551 to 0.585,
8 frames to 0.561, 15 to 0.570, all at recall 1.000; 8 frames is 0.8 s of the 10 fps fisheye clip,
whose plate goes unseen for 8 frames."""
CONTINUE_SCORE = 0.7
"""A match scoring between ``FollowLimits.min_score`` (0.5) and this is kept, but following stops there.
In video-dev clips 00 and 04 a follow slipped off a plate leaving the picture on steps scoring
0.54-0.70, while plates in view matched at 0.85-0.99 (the fisheye rear plate, pressed against the
frame's edge: 0.59-0.76). Not tuned on its own: every figure above is with it."""

WORK_PX = 1280
"""Frames are matched at most this large on their longer side: a 76 px plate of a 2560 px fisheye
frame keeps 38 px to match on, and a grey 1280x720 copy costs 0.9 MB in the backward buffer."""


MIN_SIDE_PX = 24
"""A track is matched on the coarsest of the frame's halvings (at most ``MAX_LEVEL``) where its box
keeps this many pixels on its shorter side, as ``follow_box`` keeps for a drawn box: matching costs
the search area times the template's, so a large plate matched at full size cost most of the time."""
MAX_LEVEL = 2


class _Frame:
    """One grey frame and its halvings, made when first asked for."""

    def __init__(self, gray: Gray) -> None:
        self.levels = [gray]

    def level(self, k: int) -> Gray:
        while len(self.levels) <= k:
            self.levels.append(np.asarray(cv2.pyrDown(self.levels[-1]), dtype=np.uint8))
        return self.levels[k]


class TrackCarrier:
    """Follows the tracks of ``class_ids`` through frames where they were not detected; one per stream.

    Call ``add_frame`` for every decoded frame in order, then, on the frames the detector ran on,
    ``observe`` with what the tracker returned for that frame. ``carried`` returns the followed
    boxes per track id (source pixels), for frames without a sighting of that track.
    """

    def __init__(
        self,
        resolution_wh: tuple[int, int],
        *,
        class_ids: frozenset[int],
        fps: float = 30.0,
        back_frames: int = CARRY_FRAMES,
        forward_frames: int = CARRY_FRAMES,
        limits: FollowLimits | None = None,
        work_px: int = WORK_PX,
    ) -> None:
        width, height = resolution_wh
        self.scale = min(1.0, work_px / max(width, height, 1))
        self.work_wh = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        self.class_ids = class_ids
        self.fps = fps if fps > 0 else 30.0
        self.forward_frames = forward_frames
        self.limits = limits or FollowLimits()
        self._buffer: deque[tuple[int, _Frame]] = deque(maxlen=back_frames + 1)
        self._forward: dict[int, tuple[BoxMatcher, int, int]] = {}  # track id -> (matcher, anchor, level)
        self._seen: dict[int, set[int]] = {}  # track id -> frames with a sighting
        self._carried: dict[int, dict[int, npt.NDArray[np.float64]]] = {}  # track id -> frame -> box

    def add_frame(self, index: int, gray: Gray) -> None:
        """The next decoded frame, grey at ``work_wh``: every forward matcher steps onto it."""
        if gray.shape != (self.work_wh[1], self.work_wh[0]):
            raise ValueError(f"gray must be {self.work_wh[0]}x{self.work_wh[1]}, got {gray.shape[::-1]}")
        frame = _Frame(gray)
        for track_id, (matcher, anchor, level) in list(self._forward.items()):
            step = (
                matcher.step(frame.level(level)) if index - anchor <= self.forward_frames else "frame_limit"
            )
            if isinstance(step, str):
                del self._forward[track_id]
                continue
            self._carried[track_id][index] = step[0] * 2**level / self.scale
            if step[1] < CONTINUE_SCORE:
                del self._forward[track_id]
        self._buffer.append((index, frame))

    def observe(self, index: int, tracked: Detections) -> None:
        """The tracker's boxes at ``index`` (the frame last given to ``add_frame``): each sighting
        re-anchors its track's forward matcher; a track's first one also follows it backwards."""
        if not self._buffer or self._buffer[-1][0] != index:
            raise ValueError(f"observe({index}) must follow add_frame({index})")
        if tracked.track_id is None or not len(tracked):
            return
        frame = self._buffer[-1][1]
        for row in range(len(tracked)):
            track_id, class_id = int(tracked.track_id[row]), int(tracked.class_id[row])
            if track_id <= 0 or class_id not in self.class_ids:
                continue
            box = tracked.xyxy[row].astype(np.float64) * self.scale
            level = _level(box)
            box /= 2**level
            if track_id not in self._seen:
                self._seen[track_id] = set()
                self._carried[track_id] = {}
                self._follow_back(track_id, frame, box, level)
            self._seen[track_id].add(index)
            self._forward[track_id] = (
                BoxMatcher(frame.level(level), box, self.limits, self.fps),
                index,
                level,
            )

    def carried(self) -> dict[int, tuple[npt.NDArray[np.int64], FloatArray]]:
        """Per track id, the frames it was carried into (never one with a sighting) and the boxes there."""
        out: dict[int, tuple[npt.NDArray[np.int64], FloatArray]] = {}
        for track_id, boxes in self._carried.items():
            frames = sorted(f for f in boxes if f not in self._seen[track_id])
            if frames:
                out[track_id] = (
                    np.asarray(frames, dtype=np.int64),
                    np.stack([boxes[f] for f in frames]).astype(np.float32),
                )
        return out

    def _follow_back(self, track_id: int, frame: _Frame, box: npt.NDArray[np.float64], level: int) -> None:
        matcher = BoxMatcher(frame.level(level), box, self.limits, self.fps)
        for index, earlier in list(self._buffer)[-2::-1]:
            step = matcher.step(earlier.level(level))
            if isinstance(step, str):
                return
            self._carried[track_id][index] = step[0] * 2**level / self.scale
            if step[1] < CONTINUE_SCORE:
                return


def _level(box: npt.NDArray[np.float64]) -> int:
    """The coarsest halving (0 = the work frame) where ``box`` keeps ``MIN_SIDE_PX`` on its shorter side."""
    side = float(min(box[2] - box[0], box[3] - box[1]))
    level = 0
    while level < MAX_LEVEL and side / 2 ** (level + 1) >= MIN_SIDE_PX:
        level += 1
    return level
