"""The INT8 plate model: derived once per cache from the converted fp32 model, rebuilt when
tampered with, picked by default on the CPU, and as good as fp32 on plates-dev."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cores import ort_runtime
from veil.boxes import box_iou_xyxy
from veil.detect import runtime as detect_runtime
from veil.detect.models import ModelStore, sha256_file
from veil.detect.registry import build_detector, default_threshold, model_sha256
from veil.detect.yolov8.detector import YoloV8Detector
from veil.detect.yolov8.int8 import plate_int8_path
from veil.detect.yolov8.provision import plate_model_path
from veil.errors import ModelMissing
from veil.evaluate import evaluate

INT8 = ort_runtime(int8=True)


@pytest.fixture(scope="module")
def store(model_store: ModelStore, tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A cache of its own holding only the verified plate checkpoint, so the builds are this test's."""
    root = tmp_path_factory.mktemp("models")
    shutil.copyfile(model_store.path("plate_yolov8_pt"), root / "plate_yolov8.pt")
    return ModelStore(root)


def test_built_once_from_the_converted_model(store: ModelStore) -> None:
    path = plate_int8_path(store)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["source_sha256"] == sha256_file(plate_model_path(store))
    built = path.stat().st_mtime_ns
    assert plate_int8_path(store) == path and path.stat().st_mtime_ns == built  # reused, not rebuilt


def test_a_tampered_model_is_rebuilt(store: ModelStore) -> None:
    path = plate_int8_path(store)
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"0123456789")
    assert plate_int8_path(store).read_bytes() == good


def test_without_the_checkpoint_it_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="veil models pull"):
        plate_int8_path(ModelStore(tmp_path))


def test_registry_picks_int8_on_the_cpu_with_its_own_threshold(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detect_runtime, "cpu_runs_int8_exactly", lambda: True)  # a VNNI CPU
    det = build_detector("license_plate", store=store, runtime=INT8, mode="video")
    assert isinstance(det, YoloV8Detector) and det.model_name == "yolov8_plate-int8"
    assert det.config.threshold == default_threshold("license_plate", store=store, runtime=INT8) == 0.15
    assert build_detector("license_plate", store=store, runtime=INT8, threshold=0.4).config.threshold == 0.4
    fp32 = build_detector("license_plate", store=store, runtime=ort_runtime(), mode="video")
    assert fp32.model_name == "yolov8_plate" and not fp32.config.int8  # type: ignore[attr-defined]
    assert default_threshold("license_plate", store=store, runtime=ort_runtime()) == 0.2
    for runtime in (INT8, ort_runtime()):  # stills: one threshold above the hands' scores
        assert build_detector("license_plate", store=store, runtime=runtime).config.threshold == 0.25  # type: ignore[attr-defined]
    assert model_sha256("license_plate", store=store, runtime=INT8) == sha256_file(plate_int8_path(store))


def test_finds_the_labelled_plates_at_any_shape(store: ModelStore, labelled_plates: list) -> None:
    """Portrait, landscape and square inputs: the quantized graph must run and find each plate."""
    det = build_detector("license_plate", store=store, runtime=INT8)
    for name, rgb, plate in labelled_plates:
        for crop in (rgb, rgb[:, : rgb.shape[1] // 2 + 200], rgb[: rgb.shape[0] // 2 + 200]):
            inside = plate[:, 2] <= crop.shape[1] and plate[:, 3] <= crop.shape[0]
            found = det.detect(crop.copy())
            if inside.all():
                assert len(found) and box_iou_xyxy(found.xyxy, plate).max() >= 0.5, (name, crop.shape)


@pytest.mark.slow
def test_int8_recall_on_plates_dev_matches_fp32(store: ModelStore, shared_data: Path) -> None:
    """fp32 scores recall 1.000 on both sets (openalpr-eu precision 0.939); INT8 must miss no plate."""
    det = build_detector("license_plate", store=store, runtime=INT8)
    alpr = shared_data / "plates-dev" / "openalpr-eu"
    result = evaluate(det, images_dir=alpr, labels_dir=alpr, fmt="openalpr", iou=0.3)
    assert result.images == 108 and result.recall == 1.0 and result.precision >= 0.90
    ccpd = shared_data / "plates-dev" / "ccpd"
    assert evaluate(det, images_dir=ccpd, labels_dir=ccpd, fmt="ccpd", iou=0.3).recall == 1.0


def test_scores_rank_plates_instead_of_collapsing(store: ModelStore, labelled_plates: list) -> None:
    """The head's output convolutions stay in float: quantized, every plate scored the same 0.5929
    (the top of the calibrated range), so no threshold could separate plates from tail lights."""
    int8 = build_detector("license_plate", store=store, runtime=INT8)
    fp32 = build_detector("license_plate", store=store, runtime=ort_runtime())
    best: list[tuple[float, float]] = []
    for _name, rgb, plate in labelled_plates:
        pair = []
        for det in (int8, fp32):
            found = det.detect(rgb)
            pair.append(float(found.confidence[box_iou_xyxy(found.xyxy, plate)[:, 0] >= 0.5].max()))
        best.append((pair[0], pair[1]))
    int8_scores = [round(a, 3) for a, _ in best]
    assert len(set(int8_scores)) == len(best), int8_scores
    assert all(abs(a - b) < 0.2 for a, b in best), best
