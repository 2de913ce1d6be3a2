"""``/v1/jobs`` through the real app in-process: every status code a client can meet."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.jobs.factories import GateRunner
from veil.auth.keys import revoke_api_key
from veil.clock import utcnow
from veil.jobs import store
from veil.jobs.states import JobState


def wait_state(api: Api, headers: dict[str, str], job_id: str, *states: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"{job_id} stayed {job['state']}")


def test_submit_returns_202_location_and_the_job(api: Api) -> None:
    h = api.key()
    r = api.submit(h)
    assert r.status_code == 202
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] in ("queued", "running", "succeeded") and job["mode"] == "redact"
    assert job["input"]["sha256"] == hashlib.sha256((api.media / "street.jpg").read_bytes()).hexdigest()
    assert job["input"]["media"]["kind"] == "image"


def test_wait_returns_200_with_the_finished_job(api: Api) -> None:
    h = api.key()
    r = api.submit(h, params={"wait": 10})
    assert r.status_code == 200 and r.json()["state"] == "succeeded"
    assert r.json()["result_url"].endswith(f"/v1/jobs/{r.json()['id']}/result")


def test_prefer_wait_is_honoured_and_acknowledged(api: Api) -> None:
    r = api.submit(api.key(), extra_headers={"Prefer": "respond-async, wait=10"})
    assert r.status_code == 200 and r.headers["preference-applied"] == "wait=10"


def test_wait_gives_202_when_the_job_is_still_running(make_api: Callable[..., Api]) -> None:
    api = make_api(runner=GateRunner(hold=True))
    h = api.key()
    started = time.monotonic()
    r = api.submit(h, params={"wait": 0.5})
    assert r.status_code == 202 and r.json()["state"] in ("queued", "running")
    assert time.monotonic() - started < 5
    api.runner.release()


def test_result_supports_ranges_and_report_is_json(api: Api) -> None:
    h = api.key()
    job = api.submit(h, params={"wait": 10}).json()
    original = (api.media / "street.jpg").read_bytes()
    whole = api.client.get(f"/v1/jobs/{job['id']}/result", headers=h)
    assert whole.status_code == 200 and whole.content == original  # GateRunner copies
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "image/jpeg"
    part = api.client.get(f"/v1/jobs/{job['id']}/result", headers={**h, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == original[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(original)}"
    head = api.client.head(f"/v1/jobs/{job['id']}/result", headers=h)
    assert (
        head.status_code == 200
        and head.content == b""
        and head.headers["content-length"] == str(len(original))
    )
    tail = api.client.get(f"/v1/jobs/{job['id']}/result", headers={**h, "Range": "bytes=-5"})
    assert tail.content == original[-5:]
    beyond = api.client.get(f"/v1/jobs/{job['id']}/result", headers={**h, "Range": f"bytes={len(original)}-"})
    assert beyond.status_code == 416 and beyond.json()["error"]["code"] == "range_not_satisfiable"
    report = api.client.get(f"/v1/jobs/{job['id']}/report", headers=h)
    assert report.status_code == 200 and report.json()["counts"] == {"face": 1}


def test_detect_job_has_thumbnails_and_no_result(api: Api) -> None:
    h = api.key()
    job = api.submit(h, spec='{"mode": "detect"}', params={"wait": 10}).json()
    thumb = api.client.get(f"/v1/jobs/{job['id']}/tracks/1/thumbnail", headers=h)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert api.client.get(f"/v1/jobs/{job['id']}/tracks/2/thumbnail", headers=h).status_code == 404
    no_result = api.client.get(f"/v1/jobs/{job['id']}/result", headers=h)
    assert no_result.status_code == 409 and no_result.json()["error"]["code"] == "conflict"


def test_redact_from_a_detect_job_reuses_its_input(api: Api) -> None:
    h = api.key()
    detect = api.submit(h, spec='{"mode": "detect"}', params={"wait": 10}).json()
    spec = {"mode": "redact", "source_job": detect["id"], "filter": {"track_ids": [1], "scope": "include"}}
    redact = api.submit(h, spec=json.dumps(spec), file=None, params={"wait": 10})
    assert redact.status_code == 200, redact.text
    assert redact.json()["source_job"] == detect["id"]
    assert redact.json()["input"]["sha256"] == detect["input"]["sha256"]
    other = api.submit(h, spec=json.dumps(spec), file="city_crowd.jpg")
    assert other.status_code == 422 and "source_job" in other.json()["error"]["message"]


def test_source_job_must_be_a_finished_detect_job_of_the_tenant(make_api: Callable[..., Api]) -> None:
    api = make_api(runner=GateRunner(hold=True))
    h = api.key()
    pending = api.submit(h, spec='{"mode": "detect"}').json()
    spec = {"source_job": pending["id"]}
    assert api.submit(h, spec=json.dumps(spec), file=None).status_code == 409
    missing = api.submit(h, spec=json.dumps({"source_job": "job_unknown"}), file=None)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "invalid_spec"
    stranger = api.key(tenant="other")
    assert api.submit(stranger, spec=json.dumps(spec), file=None).status_code == 422
    api.runner.release()


def test_cancel_queued_running_and_finished(make_api: Callable[..., Api]) -> None:
    api = make_api(runner=GateRunner(hold=True))
    h = api.key()
    running = api.submit(h).json()
    assert api.runner.started.wait(10)
    quick_lane = api.submit(h).json()  # the images-only lane takes the second one
    wait_state(api, h, quick_lane["id"], "running")
    queued = api.submit(h).json()

    r = api.client.post(f"/v1/jobs/{queued['id']}/cancel", headers=h)
    assert (
        r.status_code == 200 and r.json()["state"] == "canceled" and r.json()["error"]["code"] == "canceled"
    )
    r = api.client.post(f"/v1/jobs/{running['id']}/cancel", headers=h)
    assert r.status_code == 202 and r.json()["cancel_requested"] is True
    assert wait_state(api, h, running["id"], "canceled")["state"] == "canceled"
    again = api.client.post(f"/v1/jobs/{running['id']}/cancel", headers=h)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_delete_removes_blobs_and_the_job(make_api: Callable[..., Api]) -> None:
    api = make_api()
    h = api.key()
    done = api.submit(h, params={"wait": 10}).json()
    assert done["state"] == "succeeded"
    assert any(k.startswith(f"jobs/{done['id']}/") for k in api.storage.keys())
    assert api.client.delete(f"/v1/jobs/{done['id']}", headers=h).status_code == 204
    assert not any(k.startswith(f"jobs/{done['id']}/") for k in api.storage.keys())
    assert api.client.get(f"/v1/jobs/{done['id']}", headers=h).status_code == 404
    assert api.client.delete(f"/v1/jobs/{done['id']}", headers=h).status_code == 404


def _stored_row(api: Api, job_id: str) -> Any:
    with api.services.db.begin() as session:
        return store.get_job(session=session, job_id=job_id, include_deleted=True)


def test_delete_works_on_a_running_job_and_its_worker_removes_the_blobs(make_api: Callable[..., Api]) -> None:
    api = make_api(runner=GateRunner(hold=True))
    h = api.key()
    running = api.submit(h).json()
    assert api.runner.started.wait(10)
    assert api.client.delete(f"/v1/jobs/{running['id']}", headers=h).status_code == 204
    assert api.client.get(f"/v1/jobs/{running['id']}", headers=h).status_code == 404
    deadline = time.monotonic() + 10
    while _stored_row(api, running["id"]).state is not JobState.CANCELED:
        assert time.monotonic() < deadline, "the worker did not stop"
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while any(k.startswith(f"jobs/{running['id']}/") for k in api.storage.keys()):
        assert time.monotonic() < deadline, "the blobs of the deleted job stayed"
        time.sleep(0.05)


def test_cancel_and_delete_work_on_a_running_job_whose_worker_is_gone(make_api: Callable[..., Api]) -> None:
    """A job left ``running`` by a worker that died or cannot write (a full disk) is not stuck:
    once its heartbeat is older than VEIL_JOB_STALE_S, cancel and delete act at once."""
    api = make_api(workers=0, job_stale_s=5)
    h = api.key()
    ids = [api.submit(h).json()["id"] for _ in range(2)]
    with api.services.db.begin() as session:
        for job_id in ids:
            claim = store.claim_job(
                session=session, job_id=job_id, worker_id="dead", now=utcnow() - timedelta(seconds=60)
            )
            assert claim is not None
    canceled = api.client.post(f"/v1/jobs/{ids[0]}/cancel", headers=h)
    assert canceled.status_code == 200 and canceled.json()["state"] == "canceled"
    assert api.client.delete(f"/v1/jobs/{ids[1]}", headers=h).status_code == 204
    assert _stored_row(api, ids[1]).state is JobState.CANCELED
    assert not any(k.startswith(f"jobs/{ids[1]}/") for k in api.storage.keys())


def test_list_paginates_with_a_cursor_and_filters(api: Api) -> None:
    h = api.key()
    ids = [api.submit(h, params={"wait": 10}).json()["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        page = api.client.get(
            "/v1/jobs", headers=h, params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        seen += [j["id"] for j in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert api.client.get("/v1/jobs", headers=h, params={"state": "failed"}).json()["data"] == []
    assert len(api.client.get("/v1/jobs", headers=h, params={"mode": "redact"}).json()["data"]) == 5
    bad = api.client.get("/v1/jobs", headers=h, params={"cursor": "garbage!"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"


def test_idempotency_key_replays_and_detects_misuse(api: Api) -> None:
    h = api.key()
    first = api.submit(h, extra_headers={"Idempotency-Key": "order-42"})
    again = api.submit(h, extra_headers={"Idempotency-Key": "order-42"})
    assert first.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(api.client.get("/v1/jobs", headers=h).json()["data"]) == 1
    misuse = api.submit(h, file="city_crowd.jpg", extra_headers={"Idempotency-Key": "order-42"})
    assert misuse.status_code == 409 and misuse.json()["error"]["code"] == "conflict"
    other_tenant = api.submit(api.key(tenant="t2"), extra_headers={"Idempotency-Key": "order-42"})
    assert other_tenant.json()["id"] != first.json()["id"], "keys are scoped to the tenant"


def test_tenants_never_see_each_other(api: Api) -> None:
    mine, theirs = api.key(), api.key(tenant="acme")
    job = api.submit(mine, params={"wait": 10}).json()
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}/result"),
        ("GET", f"/v1/jobs/{job['id']}/report"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("POST", f"/v1/jobs/{job['id']}/links"),
        ("DELETE", f"/v1/jobs/{job['id']}"),
    ]:
        r = api.client.request(method, path, headers=theirs)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path)
    assert api.client.get("/v1/jobs", headers=theirs).json()["data"] == []


@pytest.mark.parametrize(
    ("scopes", "method", "path", "status"),
    [
        (("jobs:read",), "POST", "/v1/jobs", 403),
        (("jobs:write",), "GET", "/v1/jobs", 403),
        (("jobs:read", "jobs:write"), "GET", "/v1/audit", 403),
        (("admin",), "GET", "/v1/audit", 200),
        (("admin",), "GET", "/v1/jobs", 200),
        (("jobs:write",), "GET", "/v1/account", 200),
    ],
)
def test_scopes_are_enforced_per_route(
    api: Api, scopes: tuple[str, ...], method: str, path: str, status: int
) -> None:
    r = api.client.request(method, path, headers=api.key(scopes))
    assert r.status_code == status
    if status == 403:
        assert r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer veil_not_a_key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
)
def test_missing_or_unknown_keys_get_401(api: Api, headers: dict[str, str]) -> None:
    r = api.client.get("/v1/jobs", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


def test_revoked_keys_get_401_at_once(api: Api) -> None:
    from veil.clock import utcnow

    h = api.key()
    assert api.client.get("/v1/jobs", headers=h).status_code == 200
    key_id = api.client.get("/v1/account", headers=h).json()["key"]["id"]
    with api.services.db.begin() as session:
        revoke_api_key(session=session, key_id=key_id, now=utcnow())
    assert api.client.get("/v1/jobs", headers=h).status_code == 401


def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    h = api.key(rate=3)
    codes = [api.client.get("/v1/jobs", headers=h).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = api.client.get("/v1/jobs", headers=h)
    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    assert api.client.get("/v1/jobs", headers=api.key()).status_code == 200, "limits are per key"


@pytest.mark.parametrize(
    ("spec", "file", "status", "code"),
    [
        ('{"mode": "paint"}', "street.jpg", 422, "invalid_spec"),
        ('{"categories": {"tattoo": {}}}', "street.jpg", 422, "invalid_spec"),
        ("{not json", "street.jpg", 422, "invalid_spec"),
        ('{"regions": [{"box": [NaN, 0, 300, 300]}]}', "street.jpg", 422, "invalid_spec"),
        ('{"exclusion_zones": [{"box": [0, 0, Infinity, 300]}]}', "street.jpg", 422, "invalid_spec"),
        ('{"categories": {"face": {"threshold": NaN}}}', "street.jpg", 422, "invalid_spec"),
        ('{"detection": {"detect_scale": 0.1}}', "street.jpg", 422, "invalid_spec"),
        ('{"webhook": {"url": "http://127.0.0.1:9/hook"}}', "street.jpg", 422, "webhook_url_refused"),
        ('{"webhook": {"url": "http://169.254.169.254/latest"}}', "street.jpg", 422, "webhook_url_refused"),
        (None, b"plain text, not media" * 10, 415, "unsupported_media"),
        (None, b"", 415, "unsupported_media"),
        (None, None, 400, "bad_request"),
    ],
)
def test_bad_submissions(
    api: Api, spec: str | None, file: str | bytes | None, status: int, code: str
) -> None:
    r = api.submit(api.key(), spec=spec, file=file)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_media_over_the_pixel_limit_is_422(make_api: Callable[..., Api]) -> None:
    api = make_api(max_pixels=100_000)
    r = api.submit(api.key(), file="street.jpg")
    assert r.status_code == 422 and r.json()["error"]["code"] == "media_too_large"


def test_upload_over_the_size_limit_is_413(make_api: Callable[..., Api]) -> None:
    api = make_api(max_upload_mb=1)
    r = api.submit(api.key(), file=b"\xff\xd8" + b"\0" * (1 << 20))
    assert r.status_code == 413 and r.json()["error"]["code"] == "upload_too_large"
    assert list((api.services.ctx.scratch_dir).iterdir()) == [], "the partial upload is removed"


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        (
            {"content": b"{}", "headers": {"Content-Type": "application/json"}},
            "unsupported_content_type",
            415,
        ),
        ({"files": {"image": ("a.jpg", b"x")}}, "unknown_parameter", 400),
        (
            {"content": b"--xx\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=xx"}},
            "bad_request",
            400,
        ),
    ],
)
def test_malformed_bodies(api: Api, kwargs: dict, code: str, status: int) -> None:
    headers = {**api.key(), **kwargs.pop("headers", {})}
    r = api.client.post("/v1/jobs", headers=headers, **kwargs)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_full_queue_answers_503_with_retry_after(make_api: Callable[..., Api]) -> None:
    api = make_api(workers=0, queue_max=2)
    h = api.key()
    assert [api.submit(h).status_code for _ in range(2)] == [202, 202]
    r = api.submit(h)
    assert r.status_code == 503 and r.json()["error"]["code"] == "queue_full" and r.headers["retry-after"]


def test_unknown_job_and_unknown_route_are_404_json(api: Api) -> None:
    h = api.key()
    for path in ("/v1/jobs/job_nope", "/v1/nothing-here"):
        r = api.client.get(path, headers=h)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_webhook_deliveries_are_listed(api: Api) -> None:
    h = api.key()
    job = api.submit(h, params={"wait": 10}).json()
    r = api.client.get(f"/v1/jobs/{job['id']}/webhooks", headers=h)
    assert r.json() == {"status": "none", "next_attempt_at": None, "data": []}


def test_an_unexpected_failure_is_a_500_json_error_without_details(api: Api) -> None:
    from sqlalchemy import text

    from tests.api.conftest import TestClient

    h = api.key()
    with api.services.db.begin() as session:  # the job store loses a table under the running service
        session.execute(text("ALTER TABLE jobs RENAME TO jobs_gone"))
    client = TestClient(api.client.app, raise_server_exceptions=False)
    r = client.get("/v1/jobs", headers=h)
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error" and r.json()["error"]["message"] == "internal error"
    assert r.headers["x-request-id"] == r.json()["error"]["request_id"]
    with api.services.db.begin() as session:
        session.execute(text("ALTER TABLE jobs_gone RENAME TO jobs"))


@pytest.mark.parametrize(
    ("limit", "words"),
    [({"max_frames": 10}, "frames; the limit is 10"), ({"max_decode_gigapixels": 0.01}, "gigapixels")],
)
def test_video_over_the_frame_or_decode_cost_limit_is_422(
    make_api: Callable[..., Api], limit: dict[str, float], words: str
) -> None:
    api = make_api(**limit)
    r = api.submit(api.key(), file="selfie_portrait_noaudio.mp4")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "media_too_large")
    assert words in r.json()["error"]["message"]


def test_the_default_cost_limits_keep_an_hour_of_1080p30() -> None:
    from veil.settings import Settings

    defaults = Settings()
    frames = 3600 * 30
    assert defaults.max_frames >= frames and defaults.max_duration_s >= 3600
    assert defaults.max_decode_gigapixels * 1e9 >= frames * 1920 * 1080
