from __future__ import annotations

import json

from tests.api.conftest import Api


def test_audit_records_who_what_outcome_and_hashes_but_no_names(api: Api) -> None:
    admin = api.key(("admin",))
    writer = api.key()
    job = api.submit(writer, params={"wait": 10}).json()
    api.client.get(f"/v1/jobs/{job['id']}/result", headers=writer)
    api.submit(writer, file=b"not media at all" * 10)

    events = api.client.get("/v1/audit", headers=admin).json()["data"]
    actions = [(e["action"], e["outcome"]) for e in events]
    assert actions[:4] == [
        ("job.create", "unsupported_media"),
        ("result.download", "ok"),
        ("job.succeeded", "ok"),
        ("job.create", "ok"),
    ]
    created = events[3]
    assert created["job_id"] == job["id"] and created["input_sha256"] == job["input"]["sha256"]
    assert created["actor"].startswith("key_") and created["request_id"].startswith("req_")
    assert "street" not in json.dumps(events), "no file names in the audit log"

    page = api.client.get("/v1/audit", headers=admin, params={"limit": 2}).json()
    rest = api.client.get("/v1/audit", headers=admin, params={"cursor": page["next_cursor"]}).json()["data"]
    assert [e["id"] for e in page["data"] + rest] == [e["id"] for e in events]
    only = api.client.get("/v1/audit", headers=admin, params={"job_id": job["id"]}).json()["data"]
    assert {e["job_id"] for e in only} == {job["id"]}


def test_audit_is_per_tenant(api: Api) -> None:
    api.submit(api.key(), params={"wait": 10})
    assert api.client.get("/v1/audit", headers=api.key(("admin",), tenant="other")).json()["data"] == []
