"""`veil eval` on the rendered text set: every line, and only the personal-data lines with --text-only pii."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.textset import text_set_tool
from veil.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def text_set(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("text-set")
    counts = text_set_tool().generate(out, seed=3, count=1, media=media_dir)
    assert counts["images"] == 4 and counts["pii_lines"] >= 3
    return out


def _eval(text_set: Path, labels: str, *extra: str) -> dict[str, float]:
    result = runner.invoke(
        app,
        ["eval", "--images", str(text_set / "images"), "--labels", str(text_set / labels), "--format", "coco",
         "--category", "text", "--json", *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_every_line_and_the_personal_data_lines_are_scored(text_set: Path) -> None:
    lines = _eval(text_set, "text.json")
    assert lines["recall"] >= 0.9 and lines["precision"] >= 0.8
    pii = _eval(text_set, "text_pii.json", "--text-only", "pii")
    assert pii["model"] == "ppocrv4_det+rec"
    assert pii["recall"] >= 0.8 and pii["precision"] >= 0.8


def test_text_only_needs_the_text_category(text_set: Path) -> None:
    images, labels = str(text_set / "images"), str(text_set / "text.json")
    result = runner.invoke(
        app,
        ["eval", "--images", images, "--labels", labels, "--format", "coco", "--category", "face",
         "--text-only", "pii"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--text-only" in result.stderr


def test_the_generator_is_deterministic(tmp_path: Path, media_dir: Path) -> None:
    tool = text_set_tool()
    tool.generate(tmp_path / "a", seed=4, count=1, media=media_dir)
    tool.generate(tmp_path / "b", seed=4, count=1, media=media_dir)
    assert (tmp_path / "a" / "text.json").read_bytes() == (tmp_path / "b" / "text.json").read_bytes()
    for image in (tmp_path / "a" / "images").iterdir():
        assert image.read_bytes() == (tmp_path / "b" / "images" / image.name).read_bytes()
