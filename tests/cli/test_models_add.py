"""``veil models add``: a site's own YOLOv8 checkpoint becomes a category."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from veil.cli import app
from veil.detect.models import ModelStore
from veil.settings import get_settings

runner = CliRunner()


@pytest.fixture()
def private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model dir of this test's own, holding the pinned plate checkpoint to act as a 'custom' model."""
    shared = ModelStore(get_settings().model_dir)
    root = tmp_path / "models"
    root.mkdir()
    (root / "centerface.onnx").symlink_to(shared.path("centerface"))
    monkeypatch.setenv("VEIL_MODEL_DIR", str(root))
    return shared.path("plate_yolov8_pt")


def test_added_checkpoint_becomes_a_category(private_store: Path, media_dir: Path) -> None:
    added = runner.invoke(app, ["models", "add", "--category", "my_plates", "--yolov8", str(private_store)])
    assert added.exit_code == 0, added.output
    found = runner.invoke(
        app, ["detect", str(media_dir / "plates_fisheye.png"), "--categories", "my_plates", "--json"]
    )
    assert found.exit_code == 0, found.output
    line = json.loads(found.stdout)
    assert [d["category"] for d in line["detections"]] and {d["category"] for d in line["detections"]} == {
        "my_plates"
    }


@pytest.mark.parametrize("name", ["face", "Bad-Name", "license_plate"])
def test_bad_or_builtin_names_are_refused(private_store: Path, name: str) -> None:
    result = runner.invoke(app, ["models", "add", "--category", name, "--yolov8", str(private_store)])
    assert result.exit_code == 1
    assert "error:" in result.stderr and "Traceback" not in result.output


COCO = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck"] + [
    f"c{i}" for i in range(8, 80)
]


def _coco_shaped_model(path: Path) -> Path:
    """A stand-in for a user's COCO YOLOv8 export (no such weights ship in a wheel on the package index):
    80 classes with COCO's names, and a fixed answer: a person at (60..140, 20..180) and a car at
    (300..500, 250..350), whatever the image."""
    import onnx
    from onnx import TensorProto, helper

    out = np.zeros((1, 84, 2), dtype=np.float32)
    out[0, :4, 0] = [100, 100, 80, 160]
    out[0, 4 + 0, 0] = 0.9  # person
    out[0, :4, 1] = [400, 300, 200, 100]
    out[0, 4 + 2, 1] = 0.9  # car
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
            helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
            helper.make_node("Add", ["fixed", "nothing"], ["output0"]),
        ],
        "coco_stand_in",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 84, 2])],
        initializer=[
            helper.make_tensor("fixed", TensorProto.FLOAT, out.shape, out.reshape(-1).tolist()),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"names": str(dict(enumerate(COCO)))})
    onnx.save(model, str(path))
    return path


def test_one_coco_model_serves_person_and_vehicle_through_classes(
    private_store: Path, tmp_path: Path
) -> None:
    """The documented path for whole people and vehicles: a site's own COCO YOLOv8 model, added twice
    with --classes; each category then masks only its own classes."""
    import cv2

    model = _coco_shaped_model(tmp_path / "coco.onnx")
    for category, classes in (("person", "person"), ("vehicle", "car,bus,truck,motorcycle,bicycle")):
        added = runner.invoke(
            app, ["models", "add", "--category", category, "--yolov8", str(model), "--classes", classes]
        )
        assert added.exit_code == 0, added.output
    image = tmp_path / "street.png"
    cv2.imwrite(str(image), np.full((640, 640, 3), 128, np.uint8))
    found = runner.invoke(
        app, ["detect", str(image), "--categories", "person,vehicle", "--image-search", "fast", "--json"]
    )
    assert found.exit_code == 0, found.output
    boxes = {d["category"]: d["box"] for d in json.loads(found.stdout)["detections"]}
    assert set(boxes) == {"person", "vehicle"}
    assert np.allclose(boxes["person"], [60, 20, 140, 180], atol=1)
    assert np.allclose(boxes["vehicle"], [300, 250, 500, 350], atol=1)


def test_classes_the_model_does_not_have_are_refused(private_store: Path, tmp_path: Path) -> None:
    model = _coco_shaped_model(tmp_path / "coco.onnx")
    result = runner.invoke(
        app, ["models", "add", "--category", "vehicle", "--yolov8", str(model), "--classes", "car,tractor"]
    )
    assert result.exit_code == 1
    assert "no class 'tractor'" in result.stderr
