"""``Detections``, the one value type between detect, track and redact: shapes checked when it is made,
with the expected and actual shape in the error, and selections that keep every column together."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from veil.detections import Detections


def _three(track_id: Any = None) -> Detections:
    return Detections(
        xyxy=np.array([[0, 0, 10, 10], [5, 5, 20, 25], [30, 30, 40, 48]]),
        confidence=[0.9, 0.5, 0.7],
        class_id=[0, 1, 0],
        track_id=track_id,
    )


def test_inputs_are_converted_to_the_documented_dtypes() -> None:
    found = _three(track_id=[4, 5, 6])
    assert found.xyxy.dtype == np.float32 and found.xyxy.shape == (3, 4)
    assert found.confidence.dtype == np.float32 and found.confidence.shape == (3,)
    assert (
        found.class_id.dtype == np.int64 and found.track_id is not None and found.track_id.dtype == np.int64
    )
    assert len(found) == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"xyxy": np.zeros((2, 3)), "confidence": [1, 1], "class_id": [0, 0]},
            r"xyxy must have shape \(N, 4\), got \(2, 3\)",
        ),
        (
            {"xyxy": np.zeros(4), "confidence": [1], "class_id": [0]},
            r"xyxy must have shape \(N, 4\), got \(4,\)",
        ),
        (
            {"xyxy": np.zeros((2, 4)), "confidence": [1], "class_id": [0, 0]},
            r"confidence must have shape \(2,\), got \(1,\)",
        ),
        (
            {"xyxy": np.zeros((2, 4)), "confidence": [1, 1], "class_id": [0, 0, 0]},
            r"class_id must have shape \(2,\), got \(3,\)",
        ),
        (
            {"xyxy": np.zeros((2, 4)), "confidence": [1, 1], "class_id": [0, 0], "track_id": [7]},
            r"track_id must have shape \(2,\), got \(1,\)",
        ),
    ],
    ids=["xyxy-3-columns", "xyxy-flat", "confidence", "class-id", "track-id"],
)
def test_mismatched_shapes_are_refused_with_both_shapes(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Detections(**fields)


def test_no_boxes_in_any_shape_is_empty() -> None:
    for made in (Detections.empty(), Detections(xyxy=np.zeros((0,)), confidence=[], class_id=[])):
        assert len(made) == 0 and made.xyxy.shape == (0, 4) and made.track_id is None


def test_a_boolean_mask_selects_whole_rows() -> None:
    found = _three(track_id=[4, 5, 6])
    kept = found[found.confidence > 0.6]
    assert kept.xyxy.tolist() == [[0, 0, 10, 10], [30, 30, 40, 48]]
    assert kept.confidence.tolist() == pytest.approx([0.9, 0.7])
    assert kept.class_id.tolist() == [0, 0] and kept.track_id is not None and kept.track_id.tolist() == [4, 6]
    assert len(found[np.array([2, 0])]) == 2 and found[1:].class_id.tolist() == [1, 0]
    assert len(found) == 3, "selecting makes a new value; the original keeps its rows"


def test_merge_concatenates_and_keeps_track_ids_only_when_every_part_has_them() -> None:
    tracked = _three(track_id=[1, 2, 3])
    merged = Detections.merge([tracked, Detections.empty(), tracked[:1]])
    assert len(merged) == 4 and merged.track_id is not None and merged.track_id.tolist() == [1, 2, 3, 1]
    mixed = Detections.merge([tracked, _three()])
    assert len(mixed) == 6 and mixed.track_id is None
    assert len(Detections.merge([])) == 0 and len(Detections.merge([Detections.empty()])) == 0


def test_with_class_id_relabels_every_box_and_keeps_the_rest() -> None:
    found = _three(track_id=[1, 2, 3])
    relabelled = found.with_class_id(5)
    assert relabelled.class_id.tolist() == [5, 5, 5]
    assert np.array_equal(relabelled.xyxy, found.xyxy) and relabelled.track_id is not None
    assert found.class_id.tolist() == [0, 1, 0], "the original is unchanged"


def test_fields_cannot_be_reassigned() -> None:
    found = _three()
    with pytest.raises(AttributeError):
        found.confidence = np.ones(3, dtype=np.float32)  # type: ignore[misc]
