"""``veil jobs …`` against a real ``veil serve`` on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.live_server import LiveServer, free_port
from veil.cli import app

pytestmark = pytest.mark.slow  # real jobs on the session's server


@pytest.fixture(scope="module")
def api_key(live_server: LiveServer) -> str:
    return str(live_server.create_key(name="cli-tests", tenant="cli")["key"])


@pytest.fixture(scope="module")
def small_photo(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The crowd photo at half size: real faces, a quicker job."""
    dst = tmp_path_factory.mktemp("small") / "crowd_400.jpg"
    with Image.open(media_dir / "city_crowd.jpg") as photo:
        photo.resize((400, 282)).save(dst, quality=92)
    return dst


@pytest.fixture
def veil(live_server: LiveServer, api_key: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose environment points ``veil jobs`` at the test server, as a user's shell would."""
    monkeypatch.setenv("VEIL_API_URL", live_server.url)
    monkeypatch.setenv("VEIL_API_KEY", api_key)
    return CliRunner()


def test_submit_wait_and_download(veil: CliRunner, media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "masked.jpg"
    result = veil.invoke(app, ["jobs", "submit", str(media_dir / "city_crowd.jpg"), "--wait", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["state"] == "succeeded" and job["counts"]["face"] > 0
    with Image.open(out) as image:
        assert image.size == (800, 564)

    got = veil.invoke(app, ["jobs", "get", job["id"]])
    assert got.exit_code == 0 and json.loads(got.stdout)["id"] == job["id"]

    listed = veil.invoke(app, ["jobs", "list", "--state", "succeeded"])
    assert listed.exit_code == 0
    assert any(line.split("\t")[:2] == [job["id"], "succeeded"] for line in listed.stdout.splitlines())

    again = tmp_path / "again.jpg"
    downloaded = veil.invoke(app, ["jobs", "download", job["id"], "-o", str(again)])
    assert downloaded.exit_code == 0, downloaded.stderr
    assert again.read_bytes() == out.read_bytes()


def test_spec_from_a_file(veil: CliRunner, small_photo: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"mode": "detect", "categories": {"face": {"threshold": 0.5}}}))
    result = veil.invoke(app, ["jobs", "submit", str(small_photo), "--spec", f"@{spec}", "--wait"])
    assert result.exit_code == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["mode"] == "detect" and job["state"] == "succeeded" and set(job["counts"]) <= {"face"}


def test_submit_without_wait_prints_the_queued_job(veil: CliRunner, small_photo: Path) -> None:
    result = veil.invoke(app, ["jobs", "submit", str(small_photo), "--spec", '{"mode":"detect"}'])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["state"] in {"queued", "running", "succeeded"}


def test_api_errors_are_one_line_with_the_code(veil: CliRunner) -> None:
    result = veil.invoke(app, ["jobs", "get", "job_doesnotexist"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: HTTP 404 not_found")


def test_a_bad_spec_is_refused_by_the_server(veil: CliRunner, media_dir: Path) -> None:
    result = veil.invoke(
        app, ["jobs", "submit", str(media_dir / "city_crowd.jpg"), "--spec", '{"method": "smudge"}']
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: HTTP 422 invalid_spec")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ("@/nonexistent/spec.json", "cannot read the spec"),
    ],
)
def test_bad_spec_arguments_fail_before_uploading(
    spec: str, message: str, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "VEIL_API_URL", f"http://127.0.0.1:{free_port()}"
    )  # nothing listens: no request is made
    monkeypatch.setenv("VEIL_API_KEY", "veil_unused")
    result = CliRunner().invoke(app, ["jobs", "submit", str(media_dir / "city_crowd.jpg"), "--spec", spec])
    assert result.exit_code == 1 and message in result.stderr


def test_missing_key_and_unreachable_server() -> None:
    runner = CliRunner()
    no_key = runner.invoke(app, ["jobs", "list"])
    assert no_key.exit_code == 1 and "VEIL_API_KEY" in no_key.stderr
    down = runner.invoke(app, ["jobs", "list", "--url", f"http://127.0.0.1:{free_port()}", "--key", "veil_x"])
    assert down.exit_code == 1 and down.stderr.startswith(
        "error: connection_error: cannot reach the Veil API"
    )
