"""Issue 15 end to end against a real ``veil serve``: nothing is a silent no-op, and every finished job has
a signed receipt that verifies offline."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.idp import AUDIENCE, ISSUER, IdentityProvider
from tests.live_server import LiveServer, bearer

pytestmark = pytest.mark.slow

PUBLIC_URL = "https://veil.example.test"
"""What clients would reach the API at behind a proxy; job URLs carry it, the tests call the paths."""


def path(url: str) -> str:
    assert url.startswith(PUBLIC_URL + "/v1/"), url
    return url[len(PUBLIC_URL) :]


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, idp: IdentityProvider) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("trust"),
        {
            "VEIL_OIDC_ISSUER": ISSUER,
            "VEIL_OIDC_AUDIENCE": AUDIENCE,
            "VEIL_OIDC_JWKS_URL": idp.jwks_url,
            "VEIL_WORKERS": "1",
            "VEIL_PUBLIC_URL": PUBLIC_URL,
            "VEIL_WEBHOOK_ALLOW_PRIVATE": "true",
            "VEIL_WEBHOOK_RETRY_SCHEDULE_S": "[0.3, 0.3]",
        },
    )
    try:
        yield live.start()
    finally:
        live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def h(server: LiveServer) -> dict[str, str]:
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
    assert '`callbackUrl` (Veil: spec `"webhook": {"url": "https://..."}`)' in error["message"]
    assert '`face` (Veil: spec `"categories"`' in error["message"]
    assert '`method` (Veil: spec `"method"`' in error["message"]
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
    assert job["receipt_url"] == f"{PUBLIC_URL}/v1/jobs/{job['id']}/receipt"
    got = client.get(path(job["receipt_url"]), headers=h)
    assert got.status_code == 200, got.text
    again = client.get(path(job["receipt_url"]), headers=h)
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
    output = client.get(path(job["result_url"]), headers=h).content
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


class Receiver:
    """A webhook receiver on loopback: answers each status of ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.arrived.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_posts(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count:
            self.arrived.clear()
            assert self.arrived.wait(max(0.0, deadline - time.monotonic())), f"{len(self.posts)} posts"


def test_webhooks_carry_custom_headers_the_same_urls_as_get_and_can_be_redelivered(
    server: LiveServer, client: httpx.Client, h: dict[str, str], media_dir: Path
) -> None:
    receiver = Receiver([500])
    token = "Bearer receiver-secret-42"
    spec = {"webhook": {"url": receiver.url, "headers": {"Authorization": token}}}
    try:
        with (media_dir / "street.jpg").open("rb") as fh:
            job = client.post(
                "/v1/jobs",
                params={"wait": 60},
                headers=h,
                files={"file": ("street.jpg", fh, "image/jpeg"), "spec": (None, json.dumps(spec))},
            ).json()
        assert job["state"] == "succeeded"
        receiver.wait_posts(2)  # one 500, then the retry
        sent, body = receiver.posts[-1]
        assert sent["authorization"] == token
        assert json.loads(body) == client.get(f"/v1/jobs/{job['id']}", headers=h).json()
        assert json.loads(body)["result_url"] == f"{PUBLIC_URL}/v1/jobs/{job['id']}/result"

        deliveries = client.get(f"/v1/jobs/{job['id']}/webhooks", headers=h).json()
        for _ in range(100):
            if deliveries["status"] != "pending":
                break
            receiver.arrived.wait(0.1)
            deliveries = client.get(f"/v1/jobs/{job['id']}/webhooks", headers=h).json()
        assert deliveries["status"] == "delivered"
        assert [(d["attempt"], d["status_code"]) for d in deliveries["data"]] == [(1, 500), (2, 200)]

        again = client.post(f"/v1/jobs/{job['id']}/webhooks/redeliver", headers=h)
        assert again.status_code == 202 and again.json()["status"] == "pending"
        receiver.wait_posts(3)
        assert receiver.posts[2][0]["authorization"] == token
        assert receiver.posts[2][0]["veil-delivery"] != receiver.posts[0][0]["veil-delivery"]
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    log = server.log.read_text()
    assert "receiver-secret-42" not in log and "receiver-secret-42" not in json.dumps(job)
    assert token not in client.get(f"/v1/jobs/{job['id']}/webhooks", headers=h).text
    assert client.post("/v1/jobs/job_nope/webhooks/redeliver", headers=h).status_code == 404


def test_oidc_tokens_work_beside_api_keys(
    server: LiveServer, client: httpx.Client, h: dict[str, str], idp: IdentityProvider, media_dir: Path
) -> None:
    token = {"Authorization": f"Bearer {idp.token(veil_tenant='sso-tenant')}"}
    with (media_dir / "street.jpg").open("rb") as fh:
        made = client.post(
            "/v1/jobs",
            params={"wait": 60},
            headers=token,
            files={"file": ("street.jpg", fh, "image/jpeg"), "spec": (None, '{"mode":"detect"}')},
        )
    assert made.status_code == 200 and made.json()["state"] == "succeeded", made.text
    listed = client.get("/v1/jobs", headers=token).json()["data"]
    assert [j["id"] for j in listed] == [made.json()["id"]], "the token's tenant sees only its jobs"
    assert made.json()["id"] not in [j["id"] for j in client.get("/v1/jobs", headers=h).json()["data"]]
    assert client.get("/v1/jobs", headers=h).status_code == 200, "API keys keep working"

    read_only = {"Authorization": f"Bearer {idp.token(scope='jobs:read')}"}
    refused = client.post("/v1/jobs", headers=read_only, files={"spec": (None, "{}")})
    assert refused.status_code == 403 and "jobs:write" in refused.json()["error"]["message"]

    for bad, reason in (
        (idp.token(exp=int(time.time()) - 120), "expired"),
        (idp.token(aud="another-api"), "another audience"),
        (idp.token(iss="https://evil.example.test"), "another issuer"),
        (idp.forged_none(), "'none' is not accepted"),
        (idp.forged_hs256_with_public_key(), "'HS256' is not accepted"),
        (idp.token(kid="rotated-away"), "key id (kid)"),
    ):
        r = client.get("/v1/jobs", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and reason in r.json()["error"]["message"], (reason, r.text)
        assert r.headers["www-authenticate"] == "Bearer"

    assert "user-7f3a" not in server.log.read_text(), "the subject is never logged"


def test_a_batch_has_one_status_one_webhook_and_one_zip(
    server: LiveServer, client: httpx.Client, h: dict[str, str], media_dir: Path, tmp_path: Path
) -> None:
    receiver = Receiver([])
    spec = {"categories": {"face": {}}, "webhook": {"url": receiver.url}}
    names = ["street.jpg", "city_crowd.jpg"]
    try:
        made = client.post(
            "/v1/batches",
            headers=h,
            files=[("file", (n, (media_dir / n).read_bytes(), "image/jpeg")) for n in names]
            + [("spec", (None, json.dumps(spec)))],
        )
        assert made.status_code == 202, made.text
        batch = made.json()
        assert made.headers["location"] == f"/v1/batches/{batch['id']}" and len(batch["jobs"]) == 2
        status = batch
        deadline = time.monotonic() + 240
        while status["state"] != "finished" and time.monotonic() < deadline:
            receiver.arrived.wait(0.5)
            status = client.get(f"/v1/batches/{batch['id']}", headers=h).json()
        assert status["state"] == "finished" and status["counts"] == {"succeeded": 2}
        receiver.wait_posts(1)
        receiver.arrived.wait(1.0)  # a second webhook would come at once; none may
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert len(receiver.posts) == 1, "one webhook for the whole batch, none per job"
    sent, body = receiver.posts[0]
    assert sent["veil-event"] == "batch.completed" and json.loads(body)["id"] == batch["id"]
    assert json.loads(body)["counts"] == {"succeeded": 2}

    archive = client.get(path(status["results_url"]), headers=h)
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        listed = json.loads(zipped.read("batch.json"))
        assert [j["job"] for j in listed["jobs"]] == [j["id"] for j in status["jobs"]]
        for entry, job in zip(listed["jobs"], status["jobs"], strict=True):
            data = zipped.read(entry["file"])
            assert entry["file"].startswith(("001-", "002-")) and entry["file"].endswith(".jpg")
            assert hashlib.sha256(data).hexdigest() == job["output"]["sha256"] == entry["sha256"]
        assert not any("street" in n or "city" in n for n in zipped.namelist()), "no uploaded file names"


def test_a_batch_with_one_bad_file_is_refused_whole(
    client: httpx.Client, h: dict[str, str], media_dir: Path
) -> None:
    before = len(client.get("/v1/jobs", headers=h, params={"limit": 100}).json()["data"])
    refused = client.post(
        "/v1/batches",
        headers=h,
        files=[
            ("file", ("street.jpg", (media_dir / "street.jpg").read_bytes(), "image/jpeg")),
            ("file", ("notes.jpg", b"this is not an image at all", "image/jpeg")),
        ],
    )
    assert refused.status_code in (415, 422), refused.text
    assert refused.json()["error"]["message"].startswith("file 2 of 2: ")
    assert len(client.get("/v1/jobs", headers=h, params={"limit": 100}).json()["data"]) == before
    assert client.get("/v1/batches/bat_nope", headers=h).status_code == 404


def test_jobs_submit_takes_a_folder_as_one_batch(
    server: LiveServer, h: dict[str, str], media_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("street.jpg", "city_crowd.jpg"):
        (folder / name).write_bytes((media_dir / name).read_bytes())
    (folder / "README.txt").write_text("not media: skipped")
    env = {**server.env, "VEIL_API_URL": server.url, "VEIL_API_KEY": h["Authorization"].split()[1]}
    done = subprocess.run(
        [*VEIL, "jobs", "submit", str(folder), "--spec", '{"categories":{"face":{}}}', "-o", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["counts"] == {"succeeded": 2}
    outputs = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".jpg")
    assert len(outputs) == 2 and outputs[0].startswith("001-") and outputs[1].startswith("002-")
    assert "city_crowd.jpg -> " in done.stderr and "street.jpg -> " in done.stderr
