"""``veil redact`` and ``veil detect`` as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.media.synthetic import export_clip, loudness, make_clip
from veil.cli import app
from veil.media import probe

runner = CliRunner()


def test_detect_json_image_line(media_dir: Path) -> None:
    result = runner.invoke(app, ["detect", str(media_dir / "city_crowd.jpg"), "--json"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[0])
    assert line["kind"] == "image" and line["width"] > 0 and line["height"] > 0
    faces = [d for d in line["detections"] if d["category"] == "face"]
    assert len(faces) >= 5
    x1, y1, x2, y2 = faces[0]["box"]
    assert 0 <= x1 < x2 <= line["width"] and 0 <= y1 < y2 <= line["height"]
    assert 0 < faces[0]["score"] <= 1


def test_detect_json_video_tracks(media_dir: Path) -> None:
    result = runner.invoke(
        app, ["detect", str(media_dir / "faces_2560x1920_audio.mp4"), "--json", "--categories", "face"]
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip())
    assert line["kind"] == "video" and line["tracks"]
    track = line["tracks"][0]
    assert track["category"] == "face" and isinstance(track["id"], int)
    assert {"frame", "box", "score"} <= set(track["frames"][0])


def test_video_only_options_on_a_still_are_warned_about_not_ignored(media_dir: Path, tmp_path: Path) -> None:
    still = str(media_dir / "street.jpg")
    asked = ["--detect-every", "3", "--follow-camera"]
    result = runner.invoke(app, ["redact", still, "-o", str(tmp_path / "street.jpg"), *asked])
    assert result.exit_code == 0, result.output
    warning = f"warning: {still} is a still; --detect-every and --follow-camera apply to video only"
    assert warning in result.stderr
    detected = runner.invoke(app, ["detect", still, "--json", "--follow-camera"])
    assert detected.exit_code == 0 and json.loads(detected.stdout)["kind"] == "image"
    assert "--follow-camera applies to video only" in detected.stderr
    plain = runner.invoke(app, ["redact", still, "-o", str(tmp_path / "plain.jpg")])
    assert plain.exit_code == 0 and "warning" not in plain.stderr


def test_the_stills_search_option_on_a_video_is_warned_about(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size_wh=(64, 48), frames=6)
    result = runner.invoke(app, ["detect", str(clip), "--json", "--image-search", "fast"])
    assert result.exit_code == 0, result.output
    assert f"warning: {clip} is a video; --image-search applies to stills only" in result.stderr


def test_redact_directory_skips_corrupt_file_and_fails_overall(media_dir: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(media_dir / "street.jpg", inputs / "street.jpg")
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["redact", str(inputs), "-o", str(tmp_path / "out"), "--report", str(report)])
    assert result.exit_code == 1
    assert (tmp_path / "out" / "street.jpg").exists()
    assert "broken.jpg" in result.stderr and "Traceback" not in result.output
    files = json.loads(report.read_text())["files"]
    assert len(files) == 1 and files[0]["input_sha256"] and "face" in files[0]["counts"]


def test_per_category_methods_and_categories(media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "street.png"
    result = runner.invoke(
        app,
        [
            "redact",
            str(media_dir / "street.jpg"),
            "-o",
            str(out),
            "--categories",
            "face,license_plate,qr_code",
            "--method",
            "license_plate=black,face=pixelate",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip())
    assert set(line["counts"]) == {"face", "license_plate", "qr_code"}
    assert probe(out).container == "png"


def test_mask_margin_option_sets_the_spec_default_or_one_category() -> None:
    from veil.cli.redact_cmd import build_spec

    spec = build_spec(mode="redact", mask_margin="2,face=9")
    assert (spec.mask_margin_for("face"), spec.mask_margin_for("license_plate")) == (9.0, 2.0)
    assert build_spec(mode="redact", mask_margin="0").mask_margin_for("face") == 0.0  # 0 is a value
    assert build_spec(mode="redact").mask_margin_for("face") == 8.0


def test_follow_camera_is_off_unless_asked() -> None:
    from veil.cli.redact_cmd import build_spec

    assert not build_spec(mode="redact").detection.follow_camera
    assert build_spec(mode="redact", follow_camera=True).detection.follow_camera


@pytest.mark.parametrize(
    ("value", "error"),
    [("wide", "mask margin must be a number"), ("qr_code=4", "not enabled"), ("face=99", "mask_margin")],
)
def test_a_bad_mask_margin_is_refused_before_any_work(
    media_dir: Path, tmp_path: Path, value: str, error: str
) -> None:
    out = tmp_path / "out.jpg"
    result = runner.invoke(
        app, ["redact", str(media_dir / "street.jpg"), "-o", str(out), "--mask-margin", value]
    )
    assert result.exit_code != 0 and not out.exists()
    assert error in result.output


def test_mute_takes_spans_in_seconds_or_minutes_and_remove_audio_drops_the_sound() -> None:
    from veil.cli.redact_cmd import build_spec

    spec = build_spec(mode="redact", mute="12.5-14, 1:02-1:05.5,0:01:00-0:01:01")
    assert [(m.start, m.end) for m in spec.audio.mute] == [(12.5, 14.0), (62.0, 65.5), (60.0, 61.0)]
    assert build_spec(mode="redact", remove_audio=True).audio.remove
    assert build_spec(mode="redact", mute="1-2", bleep=True).audio.fill == "bleep"


def test_a_body_camera_clip_with_a_spoken_name_silenced(media_dir: Path, tmp_path: Path) -> None:
    """The face is masked and 0.3-0.6 s of the sound is silent; the sound around it is kept."""
    clip = export_clip(media_dir / "selfie_portrait_noaudio.mp4", tmp_path / "bodycam.mp4", frames=30)
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["redact", str(clip), "-o", str(out), "--mute", "0.3-0.6", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["face"] >= 1
    assert loudness(out, 0.33, 0.57) < 0.002
    assert loudness(out, 0.05, 0.27) > 0.1 and loudness(out, 0.63, 0.95) > 0.1


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--mute", "12"], "--mute takes START-END spans"),
        (["--mute", "1:xx-2"], "a --mute time must be a number, got 'xx'"),
        (["--mute", "5-3"], "end must be after start"),
        (["--mute", "1-2", "--remove-audio"], "mute needs the sound kept"),
        (["--bleep"], "fill says what the `mute` spans hold"),
        (["--mute", "1-2"], "audio.mute applies to videos, but the input is an image"),
    ],
    ids=["no-end", "not-a-time", "backwards", "both", "bleep-alone", "on-a-photo"],
)
def test_a_mute_that_cannot_be_done_is_refused(
    media_dir: Path, tmp_path: Path, args: list[str], error: str
) -> None:
    out = tmp_path / "out.jpg"
    result = runner.invoke(app, ["redact", str(media_dir / "street.jpg"), "-o", str(out), *args])
    assert result.exit_code != 0 and not out.exists()
    assert error in " ".join(result.output.split()), result.output


@pytest.mark.parametrize(("option", "what"), [("--threshold", "threshold"), ("--mask-scale", "mask scale")])
def test_a_number_option_that_is_not_a_number_is_a_usage_error(
    media_dir: Path, tmp_path: Path, option: str, what: str
) -> None:
    out = tmp_path / "out.jpg"
    result = runner.invoke(app, ["redact", str(media_dir / "street.jpg"), "-o", str(out), option, "face=abc"])
    assert result.exit_code == 2 and not out.exists()
    assert f"{what} must be a number, got 'abc'" in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "content", [b"hello, not media", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64], ids=["text", "stub-mp4"]
)
def test_bad_file_gives_one_line_and_nonzero_exit(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "veil", "redact", str(bad), "-o", str(tmp_path / "o.mp4")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "clip.mp4" in errors[0]


def test_qr_code_in_a_photo_is_masked_and_unreadable(media_dir: Path, tmp_path: Path) -> None:
    """A QR code pasted into a real photo: `veil redact --categories qr_code` leaves it undecodable."""
    import cv2
    import numpy as np

    code = cv2.QRCodeEncoder.create().encode("https://example.org/personal-id/12345")
    code = cv2.resize(code, None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
    code = cv2.copyMakeBorder(code, 24, 24, 24, 24, cv2.BORDER_CONSTANT, value=255)
    photo = cv2.imread(str(media_dir / "street.jpg"))
    photo[1200 : 1200 + code.shape[0], 300 : 300 + code.shape[1]] = code[:, :, None]
    src = tmp_path / "with_qr.png"
    cv2.imwrite(str(src), photo)
    assert cv2.QRCodeDetector().detectAndDecode(photo)[0], "the pasted code is readable before"

    out = tmp_path / "out.png"
    result = runner.invoke(app, ["redact", str(src), "-o", str(out), "--categories", "qr_code", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"qr_code": 1}
    redacted = cv2.imread(str(out))
    assert cv2.QRCodeDetector().detectAndDecode(redacted)[0] == ""
    outside = np.ones(photo.shape[:2], dtype=bool)
    outside[1100 : 1300 + code.shape[0], 200 : 400 + code.shape[1]] = False
    assert np.array_equal(photo[outside], redacted[outside]), "nothing else in the picture changed"


@pytest.mark.parametrize(
    "names",
    [
        ["c1/x.jpg", "c2/x.jpg"],  # same base name from two folders
        ["c1", "c2"],  # two directories holding the same relative path
    ],
)
def test_redact_refuses_two_inputs_writing_one_output(
    media_dir: Path, tmp_path: Path, names: list[str]
) -> None:
    for folder in ("c1", "c2"):
        (tmp_path / folder).mkdir()
        shutil.copy(media_dir / "street.jpg", tmp_path / folder / "x.jpg")
    out = tmp_path / "out"
    result = runner.invoke(app, ["redact", *(str(tmp_path / n) for n in names), "-o", str(out), "--json"])
    assert result.exit_code == 1
    assert "output_clash" in result.stderr and "c1" in result.stderr and "c2" in result.stderr
    assert not out.exists() or not any(out.iterdir()), "nothing may be written when outputs clash"
    assert '"ok": true' not in result.stdout


def test_redact_refuses_an_output_that_is_another_input(media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(media_dir / "street.jpg", tmp_path / "x.jpg")
    shutil.copy(media_dir / "street.jpg", out / "x.jpg")
    before = (out / "x.jpg").read_bytes()
    result = runner.invoke(app, ["redact", str(tmp_path / "x.jpg"), str(out / "x.jpg"), "-o", str(out)])
    assert result.exit_code == 1 and "output_clash" in result.stderr
    assert (out / "x.jpg").read_bytes() == before


@pytest.mark.parametrize(
    ("spec", "args"),
    [
        ({"regions": [{"box": [float("nan"), 0, 300, 300]}]}, []),
        ({}, ["--detect-scale", "0.1"]),
    ],
)
def test_redact_refuses_a_spec_that_would_mask_nothing(
    media_dir: Path, tmp_path: Path, spec: dict[str, object], args: list[str]
) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    out = tmp_path / "out.jpg"
    result = runner.invoke(
        app, ["redact", str(media_dir / "street.jpg"), "-o", str(out), "--spec", str(spec_file), *args]
    )
    assert result.exit_code != 0 and not out.exists()
    assert "finite" in result.output or "detect_scale" in result.output
