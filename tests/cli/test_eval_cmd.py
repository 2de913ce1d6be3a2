"""``veil eval`` as a user runs it, on labelled subsets of faces-dev."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from veil.cli import app
from veil.detect.models import ModelStore
from veil.settings import Settings

runner = CliRunner()


@pytest.fixture(scope="module")
def cache() -> Path:
    store = ModelStore(Settings().model_dir)
    store.pull(["centerface"])
    return store.root


@pytest.fixture
def use_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("VEIL_MODEL_DIR", str(cache))


@pytest.mark.slow
@pytest.mark.usefixtures("use_cache")
def test_eval_scores_the_fast_search_and_the_fp32_model(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = _subset(shared_data, tmp_path / "labels", [f"maksssksksss{i}" for i in range(8)])
    images = shared_data / "faces-dev" / "images"
    monkeypatch.setenv("VEIL_INT8", "false")
    args = ["eval", "--images", str(images), "--labels", str(labels), "--format", "voc", "--json"]
    result = runner.invoke(app, [*args, "--image-search", "fast", "--detect-scale", "0.5"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["model"] == "centerface" and doc["image_search"] == "fast" and doc["detect_scale"] == 0.5
    assert doc["tp"] + doc["fn"] == 35 and doc["recall"] >= 0.6


def _subset(shared_data: Path, dst: Path, names: list[str]) -> Path:
    dst.mkdir()
    for name in names:
        shutil.copyfile(shared_data / "faces-dev" / "annotations" / f"{name}.xml", dst / f"{name}.xml")
    return dst


def _one_line_error(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.slow
@pytest.mark.usefixtures("use_cache")
def test_eval_json(shared_data: Path, tmp_path: Path) -> None:
    labels = _subset(shared_data, tmp_path / "labels", [f"maksssksksss{i}" for i in range(8)])
    images = shared_data / "faces-dev" / "images"
    result = runner.invoke(
        app, ["eval", "--images", str(images), "--labels", str(labels), "--format", "voc", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["category"] == "face" and doc["model"] == "centerface-int8" and doc["images"] == 8
    assert doc["image_search"] == "thorough"
    assert doc["tp"] + doc["fn"] == 35  # labelled faces in these 8 photos
    assert doc["recall"] >= 0.85 and doc["precision"] >= 0.6
    assert doc["images_per_second"] > 0


@pytest.mark.usefixtures("use_cache")
def test_eval_text_report(shared_data: Path, tmp_path: Path) -> None:
    labels = _subset(shared_data, tmp_path / "labels", ["maksssksksss0"])
    result = runner.invoke(
        app,
        ["eval", "--images", str(shared_data / "faces-dev"), "--labels", str(labels), "--format", "voc",
         "--category", "face", "--iou", "0.3", "--threshold", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for word in ("recall", "precision", "F1", "TP", "FP", "FN", "images/s", "on 1 images"):
        assert word in result.stdout


def test_missing_model_says_to_pull(
    monkeypatch: pytest.MonkeyPatch, shared_data: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("VEIL_MODEL_DIR", str(tmp_path / "empty"))
    faces = shared_data / "faces-dev"
    result = runner.invoke(app, ["eval", "--images", str(faces), "--labels", str(faces), "--format", "voc"])
    assert result.exit_code == 1
    _one_line_error(result.stderr, "run `veil models pull`", "[model_missing]")


@pytest.mark.usefixtures("use_cache")
def test_unknown_category_lists_the_available_ones(shared_data: Path) -> None:
    faces = shared_data / "faces-dev"
    result = runner.invoke(
        app,
        ["eval", "--images", str(faces), "--labels", str(faces), "--format", "voc", "--category", "unicorn"],
    )
    assert result.exit_code == 1
    _one_line_error(result.stderr, "available:", "face", "[invalid_spec]")


@pytest.mark.usefixtures("use_cache")
def test_missing_label_directory(shared_data: Path, tmp_path: Path) -> None:
    faces = shared_data / "faces-dev"
    result = runner.invoke(
        app, ["eval", "--images", str(faces), "--labels", str(tmp_path / "nope"), "--format", "voc"]
    )
    assert result.exit_code == 1
    _one_line_error(result.stderr, "does not exist", "[invalid_spec]")


def test_unknown_format_is_a_usage_error(shared_data: Path) -> None:
    faces = shared_data / "faces-dev"
    result = runner.invoke(app, ["eval", "--images", str(faces), "--labels", str(faces), "--format", "kitti"])
    assert result.exit_code == 2
    assert "kitti" in result.stderr
