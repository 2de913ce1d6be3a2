"""``evaluate`` end to end: the real face detector on a subset of faces-dev."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.detect import Detector
from veil.errors import SpecError
from veil.evaluate import evaluate


@pytest.mark.slow
def test_face_detector_on_a_faces_dev_subset(
    face_detector: Detector, faces_dev: Path, faces_subset: Path
) -> None:
    result = evaluate(face_detector, images_dir=faces_dev / "images", labels_dir=faces_subset, fmt="voc")
    assert result.images == 12
    assert result.model == "centerface"
    assert result.tp + result.fn == 46  # labelled faces in these 12 images
    assert result.recall >= 0.85
    assert result.precision >= 0.65
    assert result.images_per_second > 0 and result.seconds > 0


def test_an_empty_label_set_is_refused(face_detector: Detector, faces_dev: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no labelled images"):
        evaluate(face_detector, images_dir=faces_dev, labels_dir=tmp_path, fmt="voc")
