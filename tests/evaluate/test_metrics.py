"""One-to-one greedy matching: what counts as found, missed and false."""

from __future__ import annotations

import numpy as np
import pytest

from veil.evaluate.metrics import MatchCounts, match_greedy

FACE = [10.0, 10.0, 50.0, 50.0]
OTHER = [100.0, 100.0, 140.0, 140.0]
SHIFTED = [20.0, 20.0, 60.0, 60.0]  # IoU with FACE = 900 / 2300 = 0.39


def _a(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


@pytest.mark.parametrize(
    ("preds", "scores", "labels", "iou", "expected"),
    [
        ([FACE], [0.9], [FACE], 0.3, MatchCounts(1, 0, 0)),
        ([], [], [FACE, OTHER], 0.3, MatchCounts(0, 0, 2)),
        ([FACE, OTHER], [0.9, 0.8], [], 0.3, MatchCounts(0, 2, 0)),
        # a duplicate on an already-found face is a false positive
        ([FACE, SHIFTED], [0.9, 0.8], [FACE], 0.3, MatchCounts(1, 1, 0)),
        # IoU 0.39 matches at 0.3, not at 0.5
        ([SHIFTED], [0.9], [FACE], 0.3, MatchCounts(1, 0, 0)),
        ([SHIFTED], [0.9], [FACE], 0.5, MatchCounts(0, 1, 1)),
        ([FACE, OTHER], [0.5, 0.9], [OTHER, FACE], 0.3, MatchCounts(2, 0, 0)),
    ],
)
def test_match_greedy(
    preds: list[list[float]],
    scores: list[float],
    labels: list[list[float]],
    iou: float,
    expected: MatchCounts,
) -> None:
    got = match_greedy(_a(preds), np.asarray(scores, np.float32), _a(labels), iou_threshold=iou)
    assert got == expected


def test_the_most_confident_prediction_claims_a_contested_face() -> None:
    # The weak box overlaps FACE better, but the strong one claims it first; the weak one is then false.
    preds = _a([SHIFTED, [11.0, 11.0, 50.0, 50.0]])
    got = match_greedy(preds, np.asarray([0.9, 0.2], np.float32), _a([FACE]), iou_threshold=0.3)
    assert got == MatchCounts(1, 1, 0)


def test_rates() -> None:
    c = MatchCounts(tp=9, fp=3, fn=1)
    assert (c.recall, c.precision) == (0.9, 0.75)
    assert c.f1 == pytest.approx(2 * 0.9 * 0.75 / 1.65)
    assert MatchCounts(1, 0, 0) + MatchCounts(0, 2, 3) == MatchCounts(1, 2, 3)
    assert (MatchCounts().recall, MatchCounts().precision) == (1.0, 1.0)
