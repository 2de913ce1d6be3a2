"""Follow one drawn box through a video, forward and backward, until its object is lost or the scene cuts.

For a reviewer's box over something no detector covers (a badge, a screen, a missed plate). The
tracker is OpenCV's normalized cross-correlation template matching (``cv2.matchTemplate``,
``TM_CCOEFF_NORMED``) on small grayscale copies of the decoded frames: the opencv-python-headless
wheel Veil installs (5.x) ships no CSRT or KCF (they live in opencv-contrib), and its MIL tracker
gives no score to tell when the object is gone. Matching a few template sizes per frame also
follows an object that grows or shrinks.

Tracking stops in a direction at the first of: the match score falls below ``min_score`` (the object
left, or something covers it), the picture changes at once (a scene cut: the grayscale histograms of
two frames correlate below ``cut_correlation``), the start or end of the video, ``max_frames``, or
the ``deadline``. Nothing here knows about HTTP or jobs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "BoxMatcher",
    "FollowLimits",
    "FollowResult",
    "Gray",
    "StopReason",
    "follow_box",
    "simplify_keyframes",
]

Gray = npt.NDArray[np.uint8]
_BACKWARD_BUFFER_BYTES = 256 << 20
"""Frames before the drawn one are kept (small and gray) to be tracked in reverse; at most this much."""
_SCALE_PENALTY = 0.01
"""Score handicap of the resized templates, so that noise does not make the box creep in size."""
StopReason = Literal["lost", "scene_cut", "video_end", "frame_limit", "time_limit"]


@dataclass(frozen=True, slots=True)
class FollowLimits:
    """How far and how long to follow, and when to give up."""

    max_frames: int = 300
    """At most this many frames in each direction."""
    deadline_s: float = 20.0
    """Wall-clock budget for the whole call, decoding included."""
    work_px: int = 640
    """Frames are matched at this size on their longer side."""
    min_score: float = 0.5
    """Lowest normalized correlation that still counts as the same object."""
    cut_correlation: float = 0.5
    """Consecutive frames whose histograms correlate less than this are a scene cut."""
    scales: tuple[float, ...] = (0.96, 1.0, 1.04)
    """Template sizes tried per frame, relative to the last box."""
    max_speed: float = 1.0
    """Fastest motion searched for, in frame widths (the longer side) per second: at 30 fps the
    search reaches 1/30 of the frame beyond the box, at 10 fps 1/10."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_frames <= 100_000:
            raise ValueError(f"max_frames must be in [1, 100000], got {self.max_frames}")
        if not 0 < self.deadline_s <= 600:
            raise ValueError(f"deadline_s must be in (0, 600], got {self.deadline_s}")
        if not 64 <= self.work_px <= 4096:
            raise ValueError(f"work_px must be in [64, 4096], got {self.work_px}")


@dataclass(frozen=True, slots=True)
class FollowResult:
    """Boxes (source pixels, xyxy) at consecutive frames ``frames[0]..frames[-1]``."""

    frames: npt.NDArray[np.int64]
    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    stopped: dict[str, StopReason] = field(default_factory=dict)
    """Why tracking ended, per direction (``forward``, ``backward``)."""


class BoxMatcher:
    """One direction of template matching, frame by frame, in work-scale pixels: ``step`` takes the next
    frame (in either direction) and returns the box there and its score, or why it stopped."""

    def __init__(self, gray: Gray, xyxy: npt.NDArray[np.float64], limits: FollowLimits, fps: float) -> None:
        self.limits = limits
        self.reach = limits.max_speed * max(gray.shape) / fps
        self.box = xyxy.copy()
        self.template = _crop(gray, xyxy)
        self.hist = _hist(gray)

    def step(
        self, gray: Gray, *, recut_from: float = 0.0
    ) -> tuple[npt.NDArray[np.float64], float] | StopReason:
        """The box in ``gray`` and its score. The template is cut again from the new box only where the
        score reaches ``recut_from``, so that a weak match does not teach it what covered the object."""
        hist = _hist(gray)
        cut = float(cv2.compareHist(self.hist, hist, cv2.HISTCMP_CORREL)) < self.limits.cut_correlation
        self.hist = hist
        if cut:
            return "scene_cut"
        h, w = gray.shape
        x1, y1, x2, y2 = self.box
        bw, bh = x2 - x1, y2 - y1
        pad = 0.75 * max(bw, bh) + 8 + self.reach
        sx1, sy1 = max(0, math.floor(x1 - pad)), max(0, math.floor(y1 - pad))
        sx2, sy2 = min(w, math.ceil(x2 + pad)), min(h, math.ceil(y2 + pad))
        search = gray[sy1:sy2, sx1:sx2]
        best: tuple[float, npt.NDArray[np.float64]] | None = None
        for scale in self.limits.scales:
            tw, th = max(4, round(bw * scale)), max(4, round(bh * scale))
            if tw > search.shape[1] or th > search.shape[0]:
                continue
            template = cv2.resize(self.template, (tw, th), interpolation=cv2.INTER_AREA)
            if float(template.std()) < 1.0:  # a flat patch matches anything equally well
                template = template.copy()
                template[0, 0] ^= 1
            scores = cv2.matchTemplate(search, template, cv2.TM_CCOEFF_NORMED)
            _, score, _, (mx, my) = cv2.minMaxLoc(scores)
            if scale != 1.0:
                score -= _SCALE_PENALTY  # change size only when it matches clearly better
            if best is None or score > best[0]:
                box = np.array([sx1 + mx, sy1 + my, sx1 + mx + tw, sy1 + my + th], dtype=np.float64)
                best = (float(score), box)
        if best is None or not math.isfinite(best[0]) or best[0] < self.limits.min_score:
            return "lost"
        score, box = best
        self.box = box
        if score >= recut_from:
            self.template = _crop(gray, box)
        return box, score


def follow_box(
    frames: Iterable[tuple[int, Callable[[int, int], Gray]]],
    *,
    start_frame: int,
    xyxy: tuple[float, float, float, float],
    resolution_wh: tuple[int, int],
    fps: float = 30.0,
    limits: FollowLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FollowResult:
    """Follow ``xyxy`` (source pixels, drawn on ``start_frame``) backward then forward.

    ``frames`` yields ``(index, gray)`` for consecutive frame indices from 0 in order, where
    ``gray(width, height)`` returns that frame as a grayscale array of the asked size (decoding can
    be lazy: frames too early to matter are never converted). The result always holds the start
    frame with the drawn box. ``fps`` sets how far to search for the box in the next frame.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    limits = limits or FollowLimits()
    deadline = clock() + limits.deadline_s
    width, height = resolution_wh
    longest = max(width, height)
    smallest_side = max(1.0, min(xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]))
    # Work at ``work_px``, or finer (up to 2 x work_px) so that a small box keeps ~24 px to match.
    scale = min(1.0, max(limits.work_px / longest, min(24 / smallest_side, 2 * limits.work_px / longest)))
    ww, wh = max(1, round(width * scale)), max(1, round(height * scale))
    start_box = np.array(xyxy, dtype=np.float64) * scale
    max_back = min(limits.max_frames, _BACKWARD_BUFFER_BYTES // (ww * wh))
    first_needed = max(0, start_frame - max_back)

    before: list[Gray] = []
    results: dict[int, tuple[npt.NDArray[np.float64], float]] = {start_frame: (start_box, 1.0)}
    stopped: dict[str, StopReason] = {}
    forward: BoxMatcher | None = None
    last_index = -1
    for index, gray_at in frames:
        last_index = index
        if clock() > deadline:
            stopped.setdefault("backward", "time_limit")
            stopped["forward"] = "time_limit"
            break
        if index < first_needed:
            continue
        gray = gray_at(ww, wh)
        if index < start_frame:
            before.append(gray)
            continue
        if index == start_frame:
            stopped["backward"] = _backward(
                before, BoxMatcher(gray, start_box, limits, fps), start_frame, results, deadline, clock
            )
            forward = BoxMatcher(gray, start_box, limits, fps)
            continue
        assert forward is not None
        if index - start_frame > limits.max_frames:
            stopped["forward"] = "frame_limit"
            break
        step = forward.step(gray)
        if isinstance(step, str):
            stopped["forward"] = step
            break
        results[index] = step
    if last_index < start_frame:
        raise ValueError(f"the video has {last_index + 1} frames; there is no frame {start_frame}")
    stopped.setdefault("forward", "video_end")

    order = sorted(results)
    boxes = np.array([results[i][0] for i in order], dtype=np.float64) / scale
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    boxes[order.index(start_frame)] = np.array(xyxy, dtype=np.float64)
    return FollowResult(
        frames=np.array(order, dtype=np.int64),
        xyxy=boxes.astype(np.float32),
        score=np.array([results[i][1] for i in order], dtype=np.float32),
        stopped=stopped,
    )


def _backward(
    before: list[Gray],
    matcher: BoxMatcher,
    start_frame: int,
    results: dict[int, tuple[npt.NDArray[np.float64], float]],
    deadline: float,
    clock: Callable[[], float],
) -> StopReason:
    for k, gray in enumerate(reversed(before), start=1):
        if clock() > deadline:
            return "time_limit"
        step = matcher.step(gray)
        if isinstance(step, str):
            return step
        results[start_frame - k] = step
    return "video_end" if start_frame - len(before) == 0 else "frame_limit"


def simplify_keyframes(
    frames: npt.NDArray[np.int64], xyxy: npt.NDArray[np.float32], *, tolerance_px: float = 1.0
) -> list[int]:
    """Rows of ``xyxy`` to keep as keyframes so that linear interpolation between kept rows is within
    ``tolerance_px`` of every dropped box (Douglas-Peucker on the four corners). First and last are kept."""
    n = len(frames)
    if n <= 2:
        return list(range(n))
    keep = {0, n - 1}
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        t = (frames[a + 1 : b] - frames[a]) / max(1, frames[b] - frames[a])
        line = xyxy[a] + t[:, None] * (xyxy[b] - xyxy[a])
        error = np.abs(xyxy[a + 1 : b] - line).max(axis=1)
        worst = int(np.argmax(error))
        if error[worst] > tolerance_px:
            k = a + 1 + worst
            keep.add(k)
            stack.extend([(a, k), (k, b)])
    return sorted(keep)


def _crop(gray: Gray, xyxy: npt.NDArray[np.float64]) -> Gray:
    h, w = gray.shape
    x1, y1 = max(0, int(round(xyxy[0]))), max(0, int(round(xyxy[1])))
    x2, y2 = min(w, max(x1 + 1, int(round(xyxy[2])))), min(h, max(y1 + 1, int(round(xyxy[3]))))
    return np.ascontiguousarray(gray[y1:y2, x1:x2])


def _hist(gray: Gray) -> npt.NDArray[np.float32]:
    hist = cv2.calcHist([gray], [0], None, [32], [0, 256])
    cv2.normalize(hist, hist)
    return np.asarray(hist, dtype=np.float32)
