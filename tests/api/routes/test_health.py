from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.api.conftest import Api


def test_health_ready_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "database": "ok",
        "storage": "ok",
        "disk": "ok",
        "models": "ok",
    }
    h = api.key()
    api.submit(h, params={"wait": 10})
    text = api.client.get("/metrics").text
    assert 'veil_jobs{state="succeeded"} 1.0' in text
    assert "veil_queue_depth 0.0" in text
    assert 'veil_job_processing_seconds_count{kind="image",mode="redact"} 1.0' in text
    assert 'veil_http_requests_total{method="POST",route="/v1/jobs",status="200"} 1.0' in text
    assert not re.search(r"job_[0-9a-f]{24}", text), "no job ids in metric labels"


def test_every_response_carries_a_request_id(api: Api) -> None:
    r = api.client.get("/healthz")
    assert r.headers["x-request-id"].startswith("req_")
    echoed = api.client.get("/healthz", headers={"X-Request-ID": "client-trace-0001"})
    assert echoed.headers["x-request-id"] == "client-trace-0001"
    hostile = api.client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert hostile.headers["x-request-id"].startswith("req_")


def test_openapi_documents_the_multipart_upload(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    body = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"] == {"$ref": "#/components/schemas/JobCreate"}
    upload = schema["components"]["schemas"]["JobCreate"]
    assert upload["properties"]["file"]["format"] == "binary"
    assert "RedactionSpec" in schema["components"]["schemas"]
    assert "ErrorResponse" in schema["components"]["schemas"]
    assert api.client.get("/docs").status_code == 200


def test_review_page_is_served(api: Api) -> None:
    page = api.client.get("/review")
    assert page.status_code == 200 and "review.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert api.client.get("/review/review.js").headers["content-type"].startswith("text/javascript")
    assert api.client.get("/review/../secret_key").status_code == 404


def test_a_full_disk_is_not_ready_gives_507_on_submit_and_does_not_break_reads(
    make_api: Callable[..., Api], small_disk: Any
) -> None:
    """The data disk (job database and scratch) fills up: /readyz says so, a submission is a 507
    ``storage_full`` (not a 500), and authenticated reads still work although the key's once-a-minute
    ``last_used_at`` write fails. Once space returns, everything works again."""
    api = make_api(data_dir=small_disk.root / "data", min_free_mb=0)
    fresh = api.key()  # never used: its first request wants to record last_used_at
    assert api.client.get("/readyz").status_code == 200
    small_disk.fill()

    ready = api.client.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"] == "full" and checks["disk"] == "full", checks
    r = api.submit(fresh)
    assert (r.status_code, r.json()["error"]["code"]) == (507, "storage_full"), r.text
    assert int(r.headers["retry-after"]) > 0
    assert api.client.get("/v1/jobs", headers=fresh).status_code == 200

    small_disk.free()
    assert api.client.get("/readyz").status_code == 200
    assert api.submit(fresh, params={"wait": 10}).json()["state"] == "succeeded"


def test_submissions_below_the_free_space_floor_get_507_before_the_upload(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(min_free_mb=1 << 40)
    r = api.submit(api.key())
    assert (r.status_code, r.json()["error"]["code"]) == (507, "storage_full")
    assert "VEIL_MIN_FREE_MB" in r.json()["error"]["message"]
    assert api.client.get("/readyz").json()["checks"]["disk"] == "full"
