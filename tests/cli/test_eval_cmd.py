"""``veil eval`` as a user runs it, on labelled subsets of faces-dev and a cut of a video-dev clip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.video import first_frames
from veil.cli import app
from veil.detect.models import ModelStore
from veil.detect.runtime import cpu_runs_int8_exactly
from veil.settings import Settings

FACE_MODEL = "centerface-int8" if cpu_runs_int8_exactly() else "centerface"
"""The face model ``veil eval`` reports: INT8 only on CPUs that run it exactly."""

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
    assert doc["category"] == "face" and doc["model"] == FACE_MODEL and doc["images"] == 8
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


@pytest.fixture(scope="module")
def labelled_clips(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 30 frames of video-dev's clip00 with their labels, and a video without labels."""
    folder = tmp_path_factory.mktemp("clips")
    source = shared_data / "video-dev" / "clip00"
    first_frames(source.with_suffix(".mp4"), folder / "cut.mp4", 30)
    lines = source.with_suffix(".gt.txt").read_text().splitlines()
    (folder / "cut.gt.txt").write_text("\n".join(ln for ln in lines if int(ln.split(",")[0]) <= 30) + "\n")
    first_frames(source.with_suffix(".mp4"), folder / "unlabelled.mp4", 2)
    return folder


@pytest.mark.slow
@pytest.mark.usefixtures("use_cache")
def test_eval_video_scores_the_masks_of_labelled_clips(labelled_clips: Path) -> None:
    result = runner.invoke(app, ["eval", "--video", str(labelled_clips), "--categories", "face", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["clips"] == 1 and doc["frames"] == 30 and doc["unlabelled"] == ["unlabelled.mp4"]
    assert set(doc["categories"]) == {"face"}  # plates are labelled too, but not analysed here
    face = doc["categories"]["face"]
    assert face["boxes"] == 90 and face["objects"] == 3  # three faces large enough, in all 30 frames
    assert face["masked"] >= 75 and face["recall"] == round(face["masked"] / face["boxes"], 4)
    assert 0.0 < doc["false_mask"]["face"]["false_mask_share"] < 0.8
    assert doc["fps"] > 0 and doc["settings"]["method"] == {"face": "blur"}
    leaks = doc["per_clip"]["cut"].get("leaks", [])  # every leaked object, named, with its frames
    assert len(leaks) == face["objects_leaked"]
    assert sum(leak["leaked_frames"] for leak in leaks) == face["boxes"] - face["masked"]
    assert all(1 <= a <= b <= 30 for leak in leaks for a, b in leak["runs"])

    table = runner.invoke(app, ["eval", "--video", str(labelled_clips), "--categories", "face"])
    assert table.exit_code == 0, table.output
    assert "objects leaked" in table.stdout and "\nface " in table.stdout
    assert "not scored, no .gt.txt beside: unlabelled.mp4" in table.stderr


@pytest.mark.slow
@pytest.mark.usefixtures("use_cache")
def test_eval_video_scores_the_face_mask_margin_a_render_would_paint(labelled_clips: Path) -> None:
    def run(*extra: str) -> dict[str, Any]:
        args = ["eval", "--video", str(labelled_clips), "--categories", "face", "--method", "black", "--json"]
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    # at --mask-scale 1.0 the margin is all the growth, so it shows on the cut's large faces too
    default, none = run("--mask-scale", "1.0"), run("--mask-scale", "1.0", "--mask-margin", "face=0")
    assert default["settings"]["mask_margin"] == {"face": 8.0} and none["settings"]["mask_margin"] == {
        "face": 0.0
    }
    grown, plain = (doc["false_mask"]["face"]["masked_px"] for doc in (default, none))
    assert grown > plain, "the default face masks reach 8 px beyond their boxes"
    assert default["categories"]["face"]["masked"] >= none["categories"]["face"]["masked"]


@pytest.mark.slow
@pytest.mark.usefixtures("use_cache")
def test_eval_video_saves_a_picture_of_every_leak(labelled_clips: Path, tmp_path: Path) -> None:
    """A label over plain jacket, which no mask covers, leaks in frames 1-10: its picture is frame 5."""
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "cut.mp4").symlink_to(labelled_clips / "cut.mp4")
    lines = [
        ln for ln in (labelled_clips / "cut.gt.txt").read_text().splitlines() if int(ln.split(",")[0]) <= 10
    ]
    lines += [f"{f},900,30,340,40,40,1,1,1.0" for f in range(1, 11)]
    (clips / "cut.gt.txt").write_text("\n".join(lines) + "\n")
    shots = tmp_path / "shots"
    result = runner.invoke(
        app, ["eval", "--video", str(clips), "--categories", "face", "--leak-shots", str(shots), "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    leaks = doc["per_clip"]["cut"]["leaks"]
    jacket = next(leak for leak in leaks if leak["object_id"] == 900)
    assert jacket["runs"] == [[1, 10]] and jacket["core_hidden"] == 0.0
    longest = [max(leak["runs"], key=lambda run: run[1] - run[0]) for leak in leaks]
    expected = {
        f"cut-face-{leak['object_id']}-frame{(a + b) // 2}.png"
        for leak, (a, b) in zip(leaks, longest, strict=True)
    }
    assert {Path(p).name for p in doc["leak_shots"]} == expected  # one per leak, its longest run's middle
    assert (shots / "cut-face-900-frame5.png").is_file()

    table = runner.invoke(
        app, ["eval", "--video", str(clips), "--categories", "face", "--leak-shots", str(shots)]
    )
    assert table.exit_code == 0, table.output
    assert (
        "#900: 10 of 10 frames unmasked (frames 1-10), median side 40 px, 0 % of its core hidden"
        in table.stdout
    )
    assert f"leak pictures in {shots}" in table.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--video", "{tmp}", "--images", "{tmp}"], "--video takes no --images"),
        (
            ["--images", "{tmp}", "--labels", "{tmp}", "--format", "voc", "--leak-shots", "{tmp}"],
            "only apply",
        ),
        (["--video", "{tmp}/missing"], "does not exist"),
        (["--video", "{tmp}", "--leak-shots", "/dev/null"], "--leak-shots /dev/null is not a folder"),
        (["--video", "{tmp}"], "no labelled clips in"),
        (["--images", "{tmp}", "--labels", "{tmp}", "--format", "voc", "--detect-every", "2"], "only apply"),
        (["--images", "{tmp}", "--labels", "{tmp}", "--format", "voc", "--follow-camera"], "--follow-camera"),
        (["--images", "{tmp}"], "give --images, --labels and --format"),
    ],
)
def test_eval_video_refuses_what_it_cannot_score(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["eval", *(a.format(tmp=tmp_path) for a in args)])
    assert result.exit_code == 1
    assert message in result.stderr and "[invalid_spec]" in result.stderr
