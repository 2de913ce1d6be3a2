"""``veil models add``: a site's own YOLOv8 checkpoint becomes a category."""

from __future__ import annotations

import json
from pathlib import Path

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
