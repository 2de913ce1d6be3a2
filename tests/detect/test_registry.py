"""The detector registry: categories map to tuned detectors, per-request knobs reach them,
and unknown names or missing weights fail with an error that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cores import ort_runtime
from veil.detect.centerface import CenterFace, CenterFaceConfig
from veil.detect.models import MODELS, ModelStore
from veil.detect.registry import (
    available_categories,
    build_detector,
    build_from_config,
    model_sha256,
    parse_detector_config,
)
from veil.errors import ModelMissing, SpecError
from veil.settings import Settings

RUNTIME = ort_runtime()


@pytest.fixture(scope="module")
def store() -> ModelStore:
    store = ModelStore(Settings().model_dir)
    store.pull(["centerface"])
    return store


def test_face_uses_the_tuned_multiscale_search_for_images(store: ModelStore) -> None:
    det = build_detector("face", store=store, runtime=RUNTIME, class_id=2)
    assert isinstance(det, CenterFace)
    assert det.config == CenterFaceConfig(mode="image")
    assert det.class_id == 2


@pytest.mark.parametrize(("detect_scale", "side"), [(1.0, 960), (2.0, 1920), (0.5, 480), (0.01, 64)])
def test_video_resolution_follows_detect_scale(store: ModelStore, detect_scale: float, side: int) -> None:
    det = build_detector("face", store=store, runtime=RUNTIME, mode="video", detect_scale=detect_scale)
    assert isinstance(det, CenterFace)
    assert det.config.mode == "video"
    assert det.config.input_long_side == side


def test_threshold_overrides_the_tuned_one(store: ModelStore) -> None:
    det = build_detector("face", store=store, runtime=RUNTIME, threshold=0.6)
    assert isinstance(det, CenterFace) and det.config.threshold == 0.6


def test_out_of_range_threshold_is_a_spec_error(store: ModelStore) -> None:
    with pytest.raises(SpecError, match="face"):
        build_detector("face", store=store, runtime=RUNTIME, threshold=1.5)


def test_unknown_category_names_the_available_ones(store: ModelStore) -> None:
    with pytest.raises(SpecError, match="available: .*face"):
        build_detector("unicorn", store=store, runtime=RUNTIME)
    assert "face" in available_categories()


def test_missing_weights_say_to_pull(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="run `veil models pull`"):
        build_detector("face", store=ModelStore(tmp_path), runtime=RUNTIME)


def test_model_sha256_is_the_pinned_one(store: ModelStore) -> None:
    assert model_sha256("face", store=store) == MODELS["centerface"].sha256


def test_configs_are_chosen_by_their_type_field(store: ModelStore) -> None:
    config = parse_detector_config({"type": "centerface", "mode": "video", "input_long_side": 640})
    det = build_from_config(config, store=store, runtime=RUNTIME)
    assert isinstance(det, CenterFace) and det.config.input_long_side == 640
    with pytest.raises(SpecError):
        parse_detector_config({"type": "no_such_detector"})
    with pytest.raises(SpecError):
        parse_detector_config({"type": "centerface", "threshold": 7})
