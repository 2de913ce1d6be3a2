"""Provisioning: the plate ONNX is derived once from the pulled .pt; bring-your-own models."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.cores import ort_runtime
from veil.boxes import box_iou_xyxy
from veil.detect.models import ModelStore
from veil.detect.yolov8 import YoloV8Config, YoloV8Detector
from veil.detect.yolov8.provision import add_custom_model, custom_models, plate_model_path
from veil.errors import ModelCorrupt, ModelError, ModelMissing, SpecError, UnsafeModelFile


@pytest.fixture
def own_store(tmp_path: Path, model_store: ModelStore) -> ModelStore:
    """A private store holding a copy of the pulled plate .pt, so tests may write and break things."""
    store = ModelStore(tmp_path / "models")
    store.root.mkdir()
    shutil.copyfile(model_store.path("plate_yolov8_pt"), store.file_for("plate_yolov8_pt"))
    return store


def test_plate_model_is_converted_once_and_reused(own_store: ModelStore) -> None:
    path = plate_model_path(own_store)
    assert path == own_store.root / "derived" / "license_plate.onnx"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["source_sha256"] == "13fe46504f4609387768cfa4270624a6d386c42efa496f1805df6305c14e597f"
    stamp = path.stat().st_mtime_ns
    assert plate_model_path(own_store) == path
    assert path.stat().st_mtime_ns == stamp  # not converted again
    assert not list(path.parent.glob("*.part"))


def test_plate_model_is_rebuilt_when_its_record_no_longer_matches(own_store: ModelStore) -> None:
    path = plate_model_path(own_store)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "source_sha256": "0" * 64}))
    path.write_bytes(b"damaged")
    assert plate_model_path(own_store) == path
    assert json.loads(meta_path.read_text())["source_sha256"] == meta["source_sha256"]
    onnx.checker.check_model(onnx.load(str(path)))


def test_plate_model_needs_the_pulled_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="veil models pull"):
        plate_model_path(ModelStore(tmp_path / "empty"))


@pytest.mark.parametrize("source", ["onnx", "pt"])
def test_custom_model_added_from_onnx_or_pt_detects_plates(
    source: str, own_store: ModelStore, plate_onnx: Path, plate_pt: Path, labelled_plates: list
) -> None:
    added = add_custom_model(
        own_store, category="parking_permit", source=plate_onnx if source == "onnx" else plate_pt
    )
    assert added.category == "parking_permit"
    assert added.path == own_store.root / "custom" / "parking_permit.onnx"
    assert added.names == {0: "License_Plate"}
    assert added.source_kind == source
    assert custom_models(own_store) == {"parking_permit": added}
    detector = YoloV8Detector(
        YoloV8Config(),
        model_path=added.path,
        runtime=ort_runtime(),
        class_id=4,
        model_name="parking_permit",
    )
    name, rgb, plate = labelled_plates[-1]
    found = detector.detect(rgb)
    assert box_iou_xyxy(found.xyxy, plate).max() >= 0.5, name


def test_custom_onnx_with_a_fixed_input_size_is_letterboxed_into_it(
    tmp_path: Path, own_store: ModelStore, plate_onnx: Path, labelled_plates: list
) -> None:
    # Many exported YOLOv8 ONNX files take exactly 640x640; frames must be letterboxed into that.
    model = onnx.load(str(plate_onnx))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = 640, 640
    fixed = tmp_path / "fixed.onnx"
    onnx.save(model, str(fixed))
    added = add_custom_model(own_store, category="fixed_size", source=fixed)
    detector = YoloV8Detector(YoloV8Config(), model_path=added.path, runtime=ort_runtime())
    for name, rgb, plate in labelled_plates[:2] + labelled_plates[-1:]:
        assert box_iou_xyxy(detector.detect(rgb).xyxy, plate).max() >= 0.5, name


@pytest.mark.parametrize(
    "category",
    [
        "face",
        "license_plate",
        "qr_code",
        "barcode",
        "Logo",
        "1logo",
        "lo-go",
        "",
        "a" * 41,
        "logo.onnx",
        "../x",
    ],
)
def test_bad_or_built_in_category_names_are_refused(
    category: str, own_store: ModelStore, plate_onnx: Path
) -> None:
    with pytest.raises(SpecError):
        add_custom_model(own_store, category=category, source=plate_onnx)
    assert custom_models(own_store) == {}


def test_hostile_pt_is_refused_and_nothing_is_stored(
    own_store: ModelStore,
    hostile_pickles: dict[str, bytes],
    hostile_pt: Callable[[bytes], Path],
    payload_marker: Path,
) -> None:
    with pytest.raises(UnsafeModelFile):
        add_custom_model(own_store, category="logo", source=hostile_pt(hostile_pickles["os.system"]))
    assert not payload_marker.exists()
    assert custom_models(own_store) == {}
    assert not list((own_store.root / "custom").glob("logo*"))


def _tiny_onnx(path: Path, out_shape: list[int]) -> Path:
    """A one-node model: not a detector, whatever its name says."""
    node = helper.make_node("ReduceMean", ["images"], ["out"], axes=[2, 3], keepdims=0)
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_onnx_that_is_not_a_yolov8_detector_is_refused(tmp_path: Path, own_store: ModelStore) -> None:
    with pytest.raises(ModelError, match=r"\[1, 4 \+ classes, anchors\]"):
        add_custom_model(own_store, category="logo", source=_tiny_onnx(tmp_path / "tiny.onnx", [1, 3]))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx" * 10)
    with pytest.raises(ModelCorrupt):
        add_custom_model(own_store, category="logo", source=garbage)
    with pytest.raises(ModelError, match=r"\.pt or \.onnx"):
        add_custom_model(own_store, category="logo", source=garbage.rename(tmp_path / "model.tflite"))
    assert custom_models(own_store) == {}


def test_damaged_custom_model_is_reported_not_skipped(own_store: ModelStore, plate_onnx: Path) -> None:
    added = add_custom_model(own_store, category="logo", source=plate_onnx)
    with added.path.open("r+b") as fh:
        fh.seek(-64, 2)
        fh.write(np.zeros(64, np.uint8).tobytes())
    with pytest.raises(ModelCorrupt, match="logo"):
        custom_models(own_store)
