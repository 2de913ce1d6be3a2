"""Fixtures for the text tests: the real model cache and a frame with known lines of text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cores import ort_runtime
from veil.detect.models import ModelStore
from veil.detect.text import TextConfig, TextDetector
from veil.settings import Settings


@pytest.fixture(scope="session")
def model_store() -> ModelStore:
    """The real model cache (filled by `veil models pull`)."""
    return ModelStore(Settings().model_dir)


@pytest.fixture(scope="session")
def text_detector(model_store: ModelStore) -> TextDetector:
    return TextDetector(
        TextConfig(long_side=1280), model_path=model_store.path("text_det"), runtime=ort_runtime()
    )


@pytest.fixture(scope="session")
def pii_detector(model_store: ModelStore) -> TextDetector:
    return TextDetector(
        TextConfig(long_side=1280, only="pii"),
        model_path=model_store.path("text_det"),
        recogniser_path=model_store.path("text_rec"),
        runtime=ort_runtime(),
    )


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> float:
    from veil.boxes import box_iou_xyxy

    return float(box_iou_xyxy(a.reshape(1, 4), b.reshape(1, 4))[0, 0])


def media_file(media_dir: Path, name: str) -> Path:
    return media_dir / name
