"""End to end against a real ``veil serve`` (Uvicorn on loopback, SQLite, local blobs, in-process worker)
running the real pipeline on real media: the session's ``live_server`` (one worker), and servers of their own
for a full queue and a SIGKILL. Keys come from ``veil keys create``; the README session's from a shell."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.live_server import LiveServer, bearer, wait_for
from tests.video import selfie_head
from veil.api.signed_links import sign_link
from veil.auth.secrets import load_server_secret
from veil.jobs.webhooks import verify
from veil.settings import Settings

pytestmark = pytest.mark.slow

FAST_VIDEO = {
    "categories": {"face": {}},
    "detection": {"detect_scale": 0.7, "detect_every": 10},
    "output": {"preset": "ultrafast"},
}


class Receiver:
    """A webhook receiver: answers 500 to the first POST of each job, then 200."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                job_id = json.loads(body)["id"]
                first = not any(json.loads(b)["id"] == job_id for _, b in receiver.posts)
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/veil-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def writer(live_server: LiveServer) -> dict[str, Any]:
    return live_server.create_key("jobs:read,jobs:write", shell=True)  # typed in a shell, as in the README


def rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float32)


def centre_diff(a: np.ndarray, b: np.ndarray, box: list[float]) -> float:
    """Mean absolute difference in the central half of ``box``, where every mask shape covers."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    ys, xs = slice(int(y1 + h / 4), int(y2 - h / 4)), slice(int(x1 + w / 4), int(x2 - w / 4))
    return float(np.abs(a[ys, xs] - b[ys, xs]).mean())


def boxes(report: dict[str, Any]) -> dict[int, list[float]]:
    return {t["id"]: t["frames"][0]["box"] for t in report["tracks"]}


@pytest.fixture(scope="module")
def city_job(client: httpx.Client, writer: dict[str, Any], media_dir: Path) -> dict[str, Any]:
    """The README session: upload with ?wait=30, get the finished job."""
    with (media_dir / "city_crowd.jpg").open("rb") as fh:
        r = client.post(
            "/v1/jobs",
            params={"wait": 30},
            headers={**bearer(writer), "Idempotency-Key": "readme-city"},
            files={"file": ("city_crowd.jpg", fh, "image/jpeg")},
        )
    assert r.status_code in (200, 202), r.text
    job = (
        r.json()
        if r.status_code == 200
        else wait_for(client, bearer(writer), r.json()["id"], "succeeded", "failed")
    )
    assert job["state"] == "succeeded", job
    return dict(job)


def test_readme_session_masks_the_faces(
    client: httpx.Client, writer: dict[str, Any], city_job: dict[str, Any], media_dir: Path
) -> None:
    h = bearer(writer)
    result = client.get(city_job["result_url"], headers=h)
    assert result.status_code == 200 and result.headers["content-type"] == "image/jpeg"
    report = client.get(city_job["report_url"], headers=h).json()
    assert city_job["counts"]["face"] >= 10 and report["counts"] == city_job["counts"]
    original, redacted = rgb((media_dir / "city_crowd.jpg").read_bytes()), rgb(result.content)
    assert original.shape == redacted.shape
    faces = [b for t, b in boxes(report).items() if report["tracks"][t - 1]["category"] == "face"]
    changed = [centre_diff(original, redacted, box) > 15 for box in faces]
    assert all(changed), f"{changed.count(False)} of {len(faces)} faces left unmasked"

    again = client.post(
        "/v1/jobs",
        headers={**h, "Idempotency-Key": "readme-city"},
        files={"file": ("city_crowd.jpg", (media_dir / "city_crowd.jpg").read_bytes(), "image/jpeg")},
    )
    assert again.json()["id"] == city_job["id"] and again.headers["idempotent-replayed"] == "true"


def test_range_requests_and_signed_links(
    live_server: LiveServer, client: httpx.Client, writer: dict[str, Any], city_job: dict[str, Any]
) -> None:
    h = bearer(writer)
    whole = client.get(city_job["result_url"], headers=h).content
    part = client.get(city_job["result_url"], headers={**h, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert client.get(city_job["result_url"], headers={**h, "Range": "bytes=99999999-"}).status_code == 416

    link = client.post(f"/v1/jobs/{city_job['id']}/links", headers=h, json={"expires_in": 2}).json()
    assert httpx.get(link["url"]).content == whole, "works without a key"
    url = urlsplit(link["url"])
    sig = parse_qs(url.query)["sig"][0]
    tampered = link["url"].replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    assert (
        httpx.get(tampered).status_code == 403
        and httpx.get(tampered).json()["error"]["code"] == "link_invalid"
    )
    # The same link as the server signs it, with its expiry a second ago (no sleeping until it expires)
    secret = load_server_secret(Settings(data_dir=live_server.data_dir))  # the server's own secret file
    past = int(time.time()) - 1
    stale = sign_link(secret, job_id=city_job["id"], expires=past)
    expired = httpx.get(f"{url.scheme}://{url.netloc}{url.path}?expires={past}&sig={stale}")
    assert expired.status_code == 403 and expired.json()["error"]["code"] == "link_expired"
    default = client.post(f"/v1/jobs/{city_job['id']}/links", headers=h).json()
    assert 86000 < int(parse_qs(urlsplit(default["url"]).query)["expires"][0]) - time.time() <= 86400


def test_scopes_tenants_revocation_and_errors(
    live_server: LiveServer,
    client: httpx.Client,
    writer: dict[str, Any],
    city_job: dict[str, Any],
    media_dir: Path,
) -> None:
    reader = live_server.create_key("jobs:read")
    admin = live_server.create_key("admin")
    stranger = live_server.create_key("jobs:read,jobs:write", tenant="acme")
    job_url = f"/v1/jobs/{city_job['id']}"
    jpeg = (media_dir / "city_crowd.jpg").read_bytes()

    def post(key: dict[str, Any], *, data: bytes = jpeg, spec: str | None = None) -> httpx.Response:
        files: dict[str, Any] = {"file": ("x.jpg", data, "image/jpeg")}
        if spec is not None:
            files["spec"] = (None, spec, "application/json")
        return client.post("/v1/jobs", headers=bearer(key), files=files)

    def code(r: httpx.Response) -> tuple[int, str]:
        assert r.headers["x-request-id"] == r.json()["error"]["request_id"]
        return r.status_code, r.json()["error"]["code"]

    assert client.get(job_url, headers=bearer(reader)).status_code == 200
    assert code(post(reader)) == (403, "forbidden")
    assert code(client.get("/v1/audit", headers=bearer(writer))) == (403, "forbidden")
    audit = client.get("/v1/audit", headers=bearer(admin), params={"job_id": city_job["id"]}).json()["data"]
    assert {"job.create", "job.succeeded", "result.download"} <= {e["action"] for e in audit}
    assert code(client.get(job_url)) == (401, "unauthorized")
    assert code(client.get(job_url, headers={"Authorization": "Bearer veil_wrong"})) == (401, "unauthorized")
    assert code(client.get(job_url, headers=bearer(stranger))) == (404, "not_found")
    assert code(client.get(f"{job_url}/result", headers=bearer(stranger))) == (404, "not_found")
    assert city_job["id"] not in {
        j["id"] for j in client.get("/v1/jobs", headers=bearer(stranger)).json()["data"]
    }

    assert code(post(writer, data=b"\0" * (6 << 20))) == (413, "upload_too_large")
    assert code(post(writer, data=b"hello, this is text and not an image\n" * 20)) == (
        415,
        "unsupported_media",
    )
    assert code(post(writer, spec='{"method": "smudge"}')) == (422, "invalid_spec")
    assert code(post(writer, spec='{"output": {"format": "mp4"}}')) == (422, "invalid_spec")
    too_big = io.BytesIO()  # 5.2 MP, over the server's 5 MP limit, in a few kB
    Image.new("RGB", (2600, 2000), (90, 120, 150)).save(too_big, format="PNG")
    assert code(post(writer, data=too_big.getvalue())) == (422, "media_too_large")
    assert code(client.post(f"{job_url}/cancel", headers=bearer(writer))) == (409, "conflict")
    assert code(client.get("/v1/jobs", headers=bearer(writer), params={"cursor": "??"})) == (
        400,
        "bad_request",
    )
    assert code(client.get("/v1/jobs/job_doesnotexist", headers=bearer(writer))) == (404, "not_found")

    limited = live_server.create_key("jobs:read", rate_limit=2)
    statuses = [client.get("/v1/account", headers=bearer(limited)) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert int(statuses[-1].headers["retry-after"]) >= 1 and code(statuses[-1]) == (429, "rate_limited")

    revoked = live_server.cli("keys", "revoke", reader["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert code(client.get(job_url, headers=bearer(reader))) == (401, "unauthorized")
    listed = json.loads(live_server.cli("keys", "list", "--json").stdout)["data"]
    assert {k["id"]: bool(k["revoked_at"]) for k in listed}[reader["id"]] is True
    assert all("key" not in k for k in listed), "keys are never listed, only their ids"


@pytest.fixture(scope="module")
def detect_job(client: httpx.Client, writer: dict[str, Any], media_dir: Path) -> dict[str, Any]:
    with (media_dir / "city_crowd.jpg").open("rb") as fh:
        r = client.post(
            "/v1/jobs",
            params={"wait": 60},
            headers=bearer(writer),
            files={
                "file": ("a.jpg", fh, "image/jpeg"),
                "spec": (None, '{"mode": "detect"}', "application/json"),
            },
        )
    job = r.json()
    if job["state"] not in ("succeeded", "failed"):
        job = wait_for(client, bearer(writer), job["id"], "succeeded", "failed")
    assert job["state"] == "succeeded" and job["output"] is None and job["result_url"] is None
    return dict(job)


def test_detect_review_redact_with_include_exclude_and_a_manual_region(
    client: httpx.Client, writer: dict[str, Any], detect_job: dict[str, Any], media_dir: Path
) -> None:
    h = bearer(writer)
    report = client.get(detect_job["report_url"], headers=h).json()
    faces = {t["id"]: t["frames"][0]["box"] for t in report["tracks"] if t["category"] == "face"}
    assert len(faces) >= 5
    left = min(faces, key=lambda t: faces[t][0])
    right = max(faces, key=lambda t: faces[t][0])
    thumb = client.get(f"/v1/jobs/{detect_job['id']}/tracks/{left}/thumbnail", headers=h)
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"

    region = [10.0, 480.0, 110.0, 550.0]  # bottom-left pavement, far from every face
    original = rgb((media_dir / "city_crowd.jpg").read_bytes())

    def render(spec: dict[str, Any]) -> np.ndarray:
        spec = {"mode": "redact", "source_job": detect_job["id"], **spec}
        r = client.post(
            "/v1/jobs",
            params={"wait": 60},
            headers=h,
            files={"spec": (None, json.dumps(spec), "application/json")},
        )
        job = r.json() if r.status_code == 200 else wait_for(client, h, r.json()["id"], "succeeded", "failed")
        assert job["state"] == "succeeded", job
        assert "detect" not in job["timings"] or job["timings"]["detect"] < 1.0, "no detection ran again"
        return rgb(client.get(job["result_url"], headers=h).content)

    only_left = render({"filter": {"track_ids": [left], "scope": "include"}, "regions": [{"box": region}]})
    assert centre_diff(original, only_left, faces[left]) > 15
    assert centre_diff(original, only_left, faces[right]) < 6, "a track left out of `include` stays visible"
    assert centre_diff(original, only_left, region) > 5, "the manual region is masked"

    all_but_left = render({"filter": {"track_ids": [left], "scope": "exclude"}})
    assert centre_diff(original, all_but_left, faces[left]) < 6, "an excluded track stays visible"
    assert centre_diff(original, all_but_left, faces[right]) > 15
    assert centre_diff(original, all_but_left, region) < 6


def test_states_cancel_failure_and_signed_webhooks(
    client: httpx.Client,
    writer: dict[str, Any],
    detect_job: dict[str, Any],
    receiver: Receiver,
    media_dir: Path,
) -> None:
    """One worker: a video job runs (observed `running` with progress), a redact job waits `queued` behind
    it, its source job is deleted, the video is canceled, and the redact job then fails with a code.
    Both terminal states are POSTed to the receiver, signed, after one retry each."""
    h = bearer(writer)
    video_spec = {**FAST_VIDEO, "webhook": {"url": receiver.url}}
    with (media_dir / "selfie_portrait_noaudio.mp4").open("rb") as fh:
        video = client.post(
            "/v1/jobs",
            headers=h,
            files={
                "file": ("v.mp4", fh, "video/mp4"),
                "spec": (None, json.dumps(video_spec), "application/json"),
            },
        ).json()
    running = wait_for(client, h, video["id"], "running", timeout=120)
    deadline = time.monotonic() + 120
    while running["progress"] <= 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        running = client.get(f"/v1/jobs/{video['id']}", headers=h).json()
    assert running["state"] == "running" and 0 < running["progress"] < 100

    redact_spec = {"source_job": detect_job["id"], "webhook": {"url": receiver.url}}
    queued = client.post(
        "/v1/jobs", headers=h, files={"spec": (None, json.dumps(redact_spec), "application/json")}
    )
    assert queued.status_code == 202 and queued.json()["state"] == "queued"
    assert client.delete(f"/v1/jobs/{detect_job['id']}", headers=h).status_code == 204
    assert client.get(f"/v1/jobs/{detect_job['id']}", headers=h).status_code == 404

    cancel = client.post(f"/v1/jobs/{video['id']}/cancel", headers=h)
    assert cancel.status_code == 202 and cancel.json()["cancel_requested"] is True
    canceled = wait_for(client, h, video["id"], "canceled", timeout=60)
    assert canceled["error"]["code"] == "canceled" and canceled["output"] is None
    failed = wait_for(client, h, queued.json()["id"], "failed", timeout=60)
    assert failed["error"]["code"] == "job_error" and "no longer stored" in failed["error"]["message"]

    secret = writer["webhook_secret"].encode()
    for job_id, event in ((video["id"], "job.canceled"), (failed["id"], "job.failed")):
        deliveries: dict[str, Any] = {}
        for _ in range(100):
            deliveries = client.get(f"/v1/jobs/{job_id}/webhooks", headers=h).json()
            if deliveries["status"] != "pending":
                break
            time.sleep(0.1)
        assert deliveries["status"] == "delivered"
        assert [(d["attempt"], d["status_code"]) for d in deliveries["data"]] == [(1, 500), (2, 200)]
        posts = [(hd, body) for hd, body in receiver.posts if json.loads(body)["id"] == job_id]
        assert len(posts) == 2 and all(hd["veil-event"] == event for hd, _ in posts)
        assert all(verify(secret, hd["veil-signature"], body) for hd, body in posts)


def test_observability(live_server: LiveServer, client: httpx.Client, city_job: dict[str, Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    metrics = client.get("/metrics").text
    assert 'veil_jobs{state="succeeded"}' in metrics and "veil_queue_depth" in metrics
    assert "veil_job_processing_seconds_bucket" in metrics
    log = live_server.log.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("msg") == "job finished" for line in lines)
    assert "city_crowd" not in log and "a.jpg" not in log, "no file names in the logs"
    assert "sig=" not in log, "signed-link tokens stay out of the logs"


@pytest.fixture
def full_queue_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server of its own: the queue limit counts every tenant's queued jobs."""
    with LiveServer(tmp_path / "idle", {"VEIL_WORKERS": "0", "VEIL_QUEUE_MAX": "2"}) as server:
        yield server


def test_queued_jobs_queue_full_and_cancel_before_start(
    full_queue_server: LiveServer, media_dir: Path
) -> None:
    key = bearer(full_queue_server.create_key())
    jpeg = (media_dir / "city_crowd.jpg").read_bytes()
    with httpx.Client(base_url=full_queue_server.url, timeout=60) as c:
        jobs = [c.post("/v1/jobs", headers=key, files={"file": ("x.jpg", jpeg)}).json() for _ in range(2)]
        assert [j["state"] for j in jobs] == ["queued", "queued"]
        full = c.post("/v1/jobs", headers=key, files={"file": ("x.jpg", jpeg)})
        assert full.status_code == 503 and full.json()["error"]["code"] == "queue_full"
        assert int(full.headers["retry-after"]) > 0
        canceled = c.post(f"/v1/jobs/{jobs[0]['id']}/cancel", headers=key)
        assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
        assert c.delete(f"/v1/jobs/{jobs[1]['id']}", headers=key).status_code == 204
        assert c.post("/v1/jobs", headers=key, files={"file": ("x.jpg", jpeg)}).status_code == 202
        assert c.get("/readyz").json()["checks"] == {"database": "ok", "storage": "ok", "disk": "ok"}


def test_a_video_job_survives_sigkill_of_the_server(tmp_path: Path, media_dir: Path) -> None:
    live = LiveServer(tmp_path / "restart", {"VEIL_WORKERS": "1"})
    try:
        live.start()
        key = bearer(live.create_key())
        with selfie_head(media_dir, tmp_path).open("rb") as fh:
            job = httpx.post(
                f"{live.url}/v1/jobs",
                headers=key,
                files={"file": ("v.mp4", fh), "spec": (None, json.dumps(FAST_VIDEO), "application/json")},
                timeout=60,
            ).json()
        with httpx.Client(base_url=live.url, timeout=60) as c:
            deadline = time.monotonic() + 120
            while (state := c.get(f"/v1/jobs/{job['id']}", headers=key).json())["progress"] < 5:
                assert state["state"] in ("queued", "running") and time.monotonic() < deadline
                time.sleep(0.2)
        live.kill()  # mid-job, no shutdown handler runs

        live.start()  # same data dir: the job table and the blobs survived
        with httpx.Client(base_url=live.url, timeout=60) as c:
            done = wait_for(c, key, job["id"], "succeeded", "failed", timeout=600)
            assert done["state"] == "succeeded", done
            assert done["frames"] == 250 and done["output"]["content_type"] == "video/mp4"
            result = c.get(done["result_url"], headers=key)
            assert result.status_code == 200 and len(result.content) == done["output"]["size"]
        out = tmp_path / "out.mp4"
        out.write_bytes(result.content)
        from veil.media import probe

        assert probe(out).frame_count == 250
        log = live.log.read_text()
        assert "interrupted jobs requeued" in log
    finally:
        live.stop()
