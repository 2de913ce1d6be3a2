"""Carry tracks through the frames their detector misses by following the picture, forwards and backwards.

Between two sightings ``finalize_tracks`` fills a track in by moving the last box with the camera
(``veil.track.motion``). That model is one similarity for the whole picture: it cannot follow an
object that moves on its own, nor one near the edge of a fisheye or wide-angle frame, where the lens
bends the motion. There a coasting box drifts off the object, even out of the picture, while the
object is still in plain view (``plates_fisheye_audio.mp4``: a rear plate the plate model scores
below its weak threshold in 20 of 24 frames).

``TrackCarrier`` follows each track of the chosen classes from every sighting with the template
matcher of ``veil.track.follow`` (normalized cross-correlation on a grey copy of the frame):
forwards, frame by frame, until the next sighting re-anchors it, the match is lost or weak twice in
a row, the scene cuts, or ``forward_frames`` pass; and backwards, once, from a track's first
sighting, through the frames kept in a buffer of ``back_frames`` (we process files, so a track may
reach back before it was first detected). ``finalize_tracks`` widens each finished box to take in
the carried box of its frame: it adds to the camera-carried box and never replaces it, since a
template match can slip off an object that leaves the picture (video-dev clip04: a plate leaving at
the bottom, followed onto the car body), where the camera-carried box still covers it. On the
fisheye clip this masks the rear plate in all 24 frames (before: 14), with the INT8 plate model and
with the fp32 one that CPUs without VNNI run (which first scores it above the threshold 5 frames
later: before ``BACK_FRAMES`` and the weak-step rule, 10 frames of it were left unmasked).
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
BACK_FRAMES = 24
"""Frames a track is followed back from its first sighting. Backwards there is no next sighting to
re-anchor on, and a plate is often first detected late, once it is near and bright enough: on the fisheye
clip with the fp32 plate model (CPUs without VNNI) the rear plate is first scored above the video
threshold in frame 15 of 24, and following reaches back to frame 1 at 0.91-0.98 a step (one 0.55 step
where the plate touches the frame's edge). A grey 1280x720 frame costs 0.9 MB in the buffer."""
CONTINUE_SCORE = 0.7
"""A match scoring between ``FollowLimits.min_score`` (0.5) and this is weak: its box is kept, but its
template is not (the next step matches the last strong one), and a second weak step in a row ends the
follow without being kept. In video-dev clips 00 and 04 a follow slipped off a plate leaving the
picture on steps scoring 0.54-0.70, while plates in view matched at 0.85-0.99 (the fisheye rear plate,
pressed against the frame's edge: 0.55-0.76, then 0.91 again once it moves back in)."""

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
        back_frames: int = BACK_FRAMES,
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
        self._forward: dict[int, _Follow] = {}
        self._seen: dict[int, set[int]] = {}  # track id -> frames with a sighting
        self._carried: dict[int, dict[int, npt.NDArray[np.float64]]] = {}  # track id -> frame -> box

    def add_frame(self, index: int, gray: Gray) -> None:
        """The next decoded frame, grey at ``work_wh``: every forward matcher steps onto it."""
        if gray.shape != (self.work_wh[1], self.work_wh[0]):
            raise ValueError(f"gray must be {self.work_wh[0]}x{self.work_wh[1]}, got {gray.shape[::-1]}")
        frame = _Frame(gray)
        for track_id, follow in list(self._forward.items()):
            box = follow.step(frame) if index - follow.anchor <= self.forward_frames else None
            if box is None:
                del self._forward[track_id]
                continue
            self._carried[track_id][index] = box / self.scale
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
            self._forward[track_id] = _Follow(
                BoxMatcher(frame.level(level), box, self.limits, self.fps), index, level
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
        follow = _Follow(BoxMatcher(frame.level(level), box, self.limits, self.fps), 0, level)
        for index, earlier in list(self._buffer)[-2::-1]:
            found = follow.step(earlier)
            if found is None:
                return
            self._carried[track_id][index] = found / self.scale


class _Follow:
    """One direction of one track's template matching, at pyramid ``level``, since frame ``anchor``.

    A weak match (under ``CONTINUE_SCORE``) keeps its box but not its template, so that a plate that
    touches the frame's edge or passes a glare is picked up again by the last strong template, and a
    follow that slipped onto something else is not taught to follow that. A second weak match in a
    row ends it."""

    def __init__(self, matcher: BoxMatcher, anchor: int, level: int) -> None:
        self.matcher, self.anchor, self.level = matcher, anchor, level
        self.weak = False

    def step(self, frame: _Frame) -> npt.NDArray[np.float64] | None:
        """The box in ``frame`` (work pixels), or None where following ends."""
        step = self.matcher.step(frame.level(self.level), recut_from=CONTINUE_SCORE)
        if isinstance(step, str):
            return None
        box, score = step
        if score < CONTINUE_SCORE and self.weak:
            return None
        self.weak = score < CONTINUE_SCORE
        return np.asarray(box * 2**self.level, dtype=np.float64)


def _level(box: npt.NDArray[np.float64]) -> int:
    """The coarsest halving (0 = the work frame) where ``box`` keeps ``MIN_SIDE_PX`` on its shorter side."""
    side = float(min(box[2] - box[0], box[3] - box[1]))
    level = 0
    while level < MAX_LEVEL and side / 2 ** (level + 1) >= MIN_SIDE_PX:
        level += 1
    return level
