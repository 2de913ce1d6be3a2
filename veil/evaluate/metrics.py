"""Detection metrics for redaction: one-to-one matching, then recall first.

Matching is greedy by score (as Pascal VOC does): predictions are taken from the
most confident down, and each claims the still-unmatched ground-truth box it
overlaps most, if that IoU reaches the threshold. A second prediction on an
already-claimed face is a false positive, so duplicates are not free.
Redaction reads the figures differently from a leaderboard: a false negative
is an unmasked face, a false positive only an extra blur.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veil.boxes import box_iou_xyxy

__all__ = ["MatchCounts", "match_greedy"]


@dataclass(frozen=True)
class MatchCounts:
    """TP/FP/FN totals and the rates derived from them.

    With nothing to find, recall is 1.0 (nothing was missed); with nothing
    reported, precision is 1.0 (nothing was wrong).
    """

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: MatchCounts) -> MatchCounts:
        return MatchCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def f1(self) -> float:
        r, p = self.recall, self.precision
        return 2 * r * p / (r + p) if r + p else 0.0


def match_greedy(
    pred_xyxy: npt.NDArray[np.float32],
    pred_scores: npt.NDArray[np.float32],
    gt_xyxy: npt.NDArray[np.float32],
    *,
    iou_threshold: float,
) -> MatchCounts:
    """Counts for one image after one-to-one greedy matching (highest score first)."""
    preds = np.asarray(pred_xyxy, dtype=np.float32).reshape(-1, 4)
    gts = np.asarray(gt_xyxy, dtype=np.float32).reshape(-1, 4)
    if len(preds) == 0 or len(gts) == 0:
        return MatchCounts(tp=0, fp=len(preds), fn=len(gts))
    order = np.argsort(-np.asarray(pred_scores, dtype=np.float32).reshape(-1), kind="stable")
    ious = box_iou_xyxy(preds[order], gts)
    claimed = np.zeros(len(gts), dtype=bool)
    tp = 0
    for row in ious:
        candidates = np.where(claimed, -1.0, row)
        best = int(candidates.argmax())
        if candidates[best] >= iou_threshold:
            claimed[best] = True
            tp += 1
    return MatchCounts(tp=tp, fp=len(preds) - tp, fn=len(gts) - tp)
