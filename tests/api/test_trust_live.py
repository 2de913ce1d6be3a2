"""Issue 15 end to end against a real ``veil serve``: nothing is a silent no-op, and every finished job has
a signed receipt that verifies offline."""

from __future__ import annotations

import json
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
