from __future__ import annotations

import re

from tests.api.conftest import Api


def test_health_ready_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "database": "ok",
        "storage": "ok",
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
