"""Weak detections that keep coming back become tracks, from their first sighting.

A face the detector scores just under its threshold in frame after frame (a small,
distant face; one half covered by a mask; a motion-blurred one) is still a face,
and masking it is the point. Weak candidates may only extend a track
(``IoUTracker``), so such a face, never once confident, stays unmasked for a whole
scene. Single false positives rarely persist, so ``ConfirmingTracker`` follows
the weak candidates that extended nothing with a second tracker of their own and,
when the file is done, keeps each of its tracks seen in at least ``min_hits``
detected frames. We process files, not streams, so a confirmed track masks from
its first sighting (and the padding of ``finalize_tracks`` reaches back before it).
"""

from __future__ import annotations

import numpy as np

from veil.boxes import box_iou_xyxy
from veil.detections import Detections
from veil.track.tracker import IoUTracker, TrackerConfig
from veil.track.tracks import Track

__all__ = ["ConfirmingTracker"]

_DUPLICATE_IOU = 0.3
"""A weak candidate overlapping a tracked box this much is a second view of it, not a new face."""


class ConfirmingTracker:
    """``IoUTracker`` for confident detections, plus tentative tracks of persistent weak ones.

    ``update`` returns what the main tracker returns (the detection schedule sees only those);
    ``history`` adds the tentative tracks with at least ``min_hits`` sightings, numbered
    after the main ones. One instance per stream; not thread-safe.
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        *,
        min_hits: int = 3,
        class_ids: frozenset[int] | None = None,
    ) -> None:
        """``class_ids``: the classes whose weak candidates may be confirmed (None: every class)."""
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        self.min_hits = min_hits
        self.class_ids = class_ids
        self._main = IoUTracker(config)
        self._tentative = IoUTracker(config)

    def update(
        self, detections: Detections, *, frame_index: int, weak: Detections | None = None
    ) -> Detections:
        """As ``IoUTracker.update``; weak candidates it leaves out feed the tentative tracks."""
        tracked = self._main.update(detections, frame_index=frame_index, weak=weak)
        leftover = Detections.empty() if weak is None else weak
        if len(leftover) and self.class_ids is not None:
            leftover = leftover[np.isin(leftover.class_id, sorted(self.class_ids))]
        if len(leftover) and len(tracked):
            overlap = box_iou_xyxy(leftover.xyxy, tracked.xyxy)
            same = leftover.class_id[:, None] == tracked.class_id[None, :]
            leftover = leftover[~np.any(same & (overlap > _DUPLICATE_IOU), axis=1)]
        self._tentative.update(leftover, frame_index=frame_index)
        return tracked

    def history(self) -> list[Track]:
        """The main tracker's histories, then the confirmed tentative ones (ids continue)."""
        main, confirmed = self.split_history()
        return main + confirmed

    def split_history(self) -> tuple[list[Track], list[Track]]:
        """``history`` in its two parts: the main tracker's tracks, and those made of weak sightings only."""
        main = self._main.history()
        next_id = max((t.track_id for t in main), default=0) + 1
        tentative = [t for t in self._tentative.history() if len(t) >= self.min_hits]
        confirmed = [
            Track(track_id=next_id + i, class_id=t.class_id, frames=t.frames, xyxy=t.xyxy, score=t.score)
            for i, t in enumerate(tentative)
        ]
        return main, confirmed
