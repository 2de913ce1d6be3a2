"""The analyse stage's schedule. Detection passes come every other frame while the picture holds still,
and on every frame while it changes fast (a pan or a cut); the plate model runs on every other pass
while the picture holds still, and on every pass while it changes fast or when the spec asks to detect
every frame; the face passes run on every one. With ``follow_camera``, a pan that the camera's motion
explains counts as a still picture for both. What the plate model skips, the plate carrier follows:
``tests/test_pipeline_plates.py`` checks that every hand-labelled plate frame of a real clip is masked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.media.synthetic import make_clip
from veil.detect.base import Detector
from veil.media import probe
from veil.pipeline import Engine, Plan, analyse
from veil.spec import RedactionSpec

BOTH = RedactionSpec(categories={"face": {}, "license_plate": {}})


def _still(index: int, width: int, height: int) -> np.ndarray:
    """The same grey ramp in every frame: a fixed camera on an empty scene."""
    ramp = np.linspace(40, 200, width, dtype=np.uint8)
    return np.repeat(np.broadcast_to(ramp, (height, width))[..., None], 3, axis=2).copy()


def _count_detector_runs(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    runs: Counter[str] = Counter()
    borrow = engine.detector

    @contextmanager
    def counting(category: str, **options: Any) -> Iterator[Detector]:
        runs[category] += 1
        with borrow(category, **options) as detector:
            yield detector

    monkeypatch.setattr(engine, "detector", counting)
    return runs


def _detector_runs(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    picture: Callable[[int, int, int], np.ndarray],
    spec: RedactionSpec = BOTH,
) -> Counter[str]:
    """How often each category's detector ran while ``spec`` analysed 24 frames of ``picture``."""
    clip = make_clip(tmp_path / "clip.mp4", size_wh=(160, 96), frames=24, picture=picture)
    runs = _count_detector_runs(engine, monkeypatch)
    _, frames = analyse(engine, Plan.build(spec, engine=engine), [clip], info=probe(clip))
    assert frames == 24
    return runs


def _new_picture(index: int, width: int, height: int) -> np.ndarray:
    """A different picture in every frame, which no camera motion explains: a cut on every frame."""
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _panning(index: int, width: int, height: int) -> np.ndarray:
    """A fixed, textured scene that the camera pans across, 3 px a frame."""
    rng = np.random.default_rng(5)
    coarse = rng.integers(0, 256, (height // 8 + 1, (width + 3 * 24) // 8 + 1, 3), dtype=np.uint8)
    scene = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))
    return np.ascontiguousarray(scene[:height, 3 * index : 3 * index + width])


def test_on_a_still_picture_plates_are_detected_on_every_other_pass(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _detector_runs(engine, tmp_path, monkeypatch, _still)
    assert runs == {"face": 12, "license_plate": 6}  # detect_every 2: frames 0, 2, 4...; plates 0, 4, 8...


def test_while_the_picture_changes_fast_plates_are_detected_on_every_pass(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _detector_runs(engine, tmp_path, monkeypatch, _new_picture)
    assert runs["face"] >= 12
    assert runs["license_plate"] == runs["face"]


def test_a_pan_is_detected_on_every_frame_by_default(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _detector_runs(engine, tmp_path, monkeypatch, _panning) == {"face": 24, "license_plate": 24}


def test_following_the_camera_a_pan_keeps_the_interval_and_the_plate_stride(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RedactionSpec(categories=BOTH.categories, detection={"follow_camera": True})
    runs = _detector_runs(engine, tmp_path, monkeypatch, _panning, spec)
    assert runs == {"face": 12, "license_plate": 6}  # as on a still picture: the boxes move with the camera


def test_detecting_every_frame_runs_the_plate_model_on_every_frame(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RedactionSpec(categories=BOTH.categories, detection={"detect_every": 1})
    assert _detector_runs(engine, tmp_path, monkeypatch, _still, spec) == {"face": 24, "license_plate": 24}
