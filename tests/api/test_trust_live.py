"""Issue 15 end to end against a real ``veil serve``: nothing is a silent no-op, and every finished job has
a signed receipt that verifies offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.live import Server, bearer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    live = Server(tmp_path_factory.mktemp("trust"), {"VEIL_WORKERS": "1"})
    try:
        yield live.start()
    finally:
        live.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def h(server: Server) -> dict[str, str]:
    return bearer(server.create_key("jobs:read,jobs:write"))


def test_seed_style_query_parameters_are_refused_with_the_veil_equivalent(
    client: httpx.Client, h: dict[str, str], media_dir: Path
) -> None:
    with (media_dir / "street.jpg").open("rb") as fh:
        r = client.post(
            "/v1/jobs?face=false&method=pixelate&callbackUrl=https://example.org/hook",
            headers=h,
            files={"file": ("street.jpg", fh, "image/jpeg")},
        )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "unknown_parameter"
    assert "`callbackUrl` (Veil: spec `\"webhook\": {\"url\": \"https://...\"}`)" in error["message"]
    assert "`face` (Veil: spec `\"categories\"`" in error["message"]
    assert "`method` (Veil: spec `\"method\"`" in error["message"]
    assert client.get("/v1/jobs", headers=h).json()["data"] == [], "no job was made"


def test_unknown_form_fields_are_named(client: httpx.Client, h: dict[str, str], media_dir: Path) -> None:
    r = client.post(
        "/v1/jobs",
        headers=h,
        files={"image": ("street.jpg", (media_dir / "street.jpg").read_bytes()), "blacken": (None, "1")},
    )
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "`image` (Veil: the multipart field `file`)" in message and "`blacken`" in message


def test_a_spec_that_masks_nothing_is_refused_and_detect_is_explicit(
    client: httpx.Client, h: dict[str, str], media_dir: Path
) -> None:
    def submit(spec: dict[str, Any]) -> httpx.Response:
        with (media_dir / "street.jpg").open("rb") as fh:
            return client.post(
                "/v1/jobs",
                params={"wait": 60},
                headers=h,
                files={"file": ("street.jpg", fh, "image/jpeg"), "spec": (None, json.dumps(spec))},
            )

    nothing = submit({"categories": {"face": {"enabled": False}, "license_plate": {"enabled": False}}})
    assert nothing.status_code == 422 and "masks nothing" in nothing.json()["error"]["message"]
    assert '"mode": "detect"' in nothing.json()["error"]["message"]
    look = submit({"mode": "detect", "categories": {"face": {}}})
    assert look.status_code == 200 and look.json()["state"] == "succeeded", look.text
    again = client.get(f"/v1/jobs/{look.json()['id']}", params={"wait": 5, "verbose": 1}, headers=h)
    assert again.status_code == 400 and "`verbose`" in again.json()["error"]["message"]
    assert client.get(f"/v1/jobs/{look.json()['id']}", params={"wait": 5}, headers=h).status_code == 200


VEIL = [sys.executable, "-m", "veil"]


def _verify(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``veil verify`` as someone on another machine runs it: a fresh, empty data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    env["VEIL_DATA_DIR"] = str(cwd / "no-veil-here")
    return subprocess.run(
        [*VEIL, "verify", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_job_receipt_verifies_offline_with_only_the_public_key(
    client: httpx.Client, h: dict[str, str], media_dir: Path, tmp_path: Path
) -> None:
    spec = {
        "categories": {"face": {"method": "pixelate"}, "license_plate": {}},
        "regions": [{"box": [10, 10, 60, 40]}],
    }
    with (media_dir / "street.jpg").open("rb") as fh:
        r = client.post(
            "/v1/jobs",
            params={"wait": 60},
            headers=h,
            files={"file": ("street.jpg", fh, "image/jpeg"), "spec": (None, json.dumps(spec))},
        )
    job = r.json()
    assert r.status_code == 200 and job["state"] == "succeeded", r.text
    assert job["receipt_url"].endswith(f"/v1/jobs/{job['id']}/receipt")
    got = client.get(job["receipt_url"], headers=h)
    assert got.status_code == 200, got.text
    again = client.get(job["receipt_url"], headers=h)
    assert again.content == got.content, "the same job gives the same receipt"
    stated = got.json()["receipt"]
    assert stated["job_id"] == job["id"] and stated["input"]["sha256"] == job["input"]["sha256"]
    assert stated["output"]["sha256"] == job["output"]["sha256"] and stated["counts"] == job["counts"]
    assert {m["category"] for m in stated["models"]} == {"face", "license_plate"}
    assert all(len(m["sha256"]) == 64 for m in stated["models"])
    assert stated["spec"]["categories"]["face"]["method"] == "pixelate"
    assert "box" not in got.text and "street" not in got.text, "no boxes, no file names"
    keys = client.get("/v1/receipt-keys")  # public: no API key needed
    assert keys.status_code == 200 and keys.json()["keys"][0]["current"] is True
    assert client.get(f"/v1/jobs/{job['id']}/receipt").status_code == 401

    elsewhere = tmp_path / "another-machine"
    elsewhere.mkdir()
    (elsewhere / "receipt.json").write_bytes(got.content)
    (elsewhere / "veil-keys.json").write_bytes(keys.content)
    (elsewhere / "street.jpg").write_bytes((media_dir / "street.jpg").read_bytes())
    output = client.get(job["result_url"], headers=h).content
    (elsewhere / "redacted.jpg").write_bytes(output)
    common = ["receipt.json", "--public-key", "veil-keys.json", "--input", "street.jpg"]

    ok = _verify(elsewhere, *common, "--output", "redacted.jpg")
    assert ok.returncode == 0, ok.stderr
    assert f"OK: receipt of job {job['id']}" in ok.stdout and "output: sha256" in ok.stdout

    changed = bytearray(output)
    changed[len(changed) // 2] ^= 0x01
    (elsewhere / "changed.jpg").write_bytes(bytes(changed))
    bad_output = _verify(elsewhere, *common, "--output", "changed.jpg")
    assert bad_output.returncode == 1
    assert "FAILED: the output file does not match the receipt: its sha256 is" in bad_output.stderr

    tampered = json.loads(got.content)
    tampered["receipt"]["spec"]["categories"]["face"]["method"] = "box"
    (elsewhere / "tampered.json").write_text(json.dumps(tampered))
    bad_spec = _verify(elsewhere, "tampered.json", "--public-key", "veil-keys.json")
    assert bad_spec.returncode == 1
    assert "FAILED: the spec in the receipt was changed after signing" in bad_spec.stderr

