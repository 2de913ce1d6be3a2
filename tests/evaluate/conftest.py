"""Fixtures for the evaluation tests: the face detector, and small labelled subsets of the
shared dev sets written to tmp (labels only; images stay in place)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cores import ort_runtime
from veil.detect import Detector
from veil.detect.models import ModelStore
from veil.detect.registry import build_detector
from veil.settings import Settings


@pytest.fixture(scope="session")
def face_detector() -> Detector:
    store = ModelStore(Settings().model_dir)
    store.pull(["centerface"])
    return build_detector("face", store=store, runtime=ort_runtime())


@pytest.fixture(scope="session")
def faces_dev(shared_data: Path) -> Path:
    return shared_data / "faces-dev"


@pytest.fixture(scope="session")
def faces_subset(faces_dev: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The VOC labels of the first 12 faces-dev images (sorted by name)."""
    labels = tmp_path_factory.mktemp("faces-subset")
    for xml in sorted((faces_dev / "annotations").glob("*.xml"))[:12]:
        shutil.copyfile(xml, labels / xml.name)
    return labels
