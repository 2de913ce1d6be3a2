"""Accepting a job (``veil.api.submit``): the spec parsed with errors that name only the bad fields, the input
stored once under what it is, and a refused submission that leaves nothing behind: no blob, no job."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.api.conftest import Api
from veil.api.submit import parse_spec
from veil.auth.audit import list_audit
from veil.errors import SpecError
from veil.jobs.schemas import spec_warnings


def test_no_spec_or_an_empty_one_is_every_default() -> None:
    assert parse_spec(None) == parse_spec("") == parse_spec("{}")
    assert parse_spec(None).enabled_categories() == ["face", "license_plate"]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("{not json", ["invalid spec: spec: Invalid JSON"]),
        ('{"method": "smudge"}', ["method: Input should be"]),
        (
            '{"categories": {"face": {"threshold": 2}}}',
            ["categories.face.threshold: Input should be less than"],
        ),
        (
            '{"blurringKind": "HighBlur"}',
            ["blurringKind: Extra inputs are not permitted", '(Veil: spec `"method"`'],
        ),
        ('{"callbackUrl": "https://example.org"}', ['(Veil: spec `"webhook": {"url": "https://..."}`)']),
        ("[1, 2]", ["invalid spec: spec: Input should be an object"]),
    ],
    ids=["not-json", "bad-method", "threshold-bound", "seed-name", "seed-webhook", "not-an-object"],
)
def test_a_bad_spec_names_what_is_wrong(text: str, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message


def test_a_spec_with_many_mistakes_lists_five_and_never_echoes_values() -> None:
    spec = {f"field_{i}": "s3cr3t-value" for i in range(8)}
    with pytest.raises(SpecError) as info:
        parse_spec(json.dumps(spec))
    message = info.value.message
    assert message.count("Extra inputs are not permitted") == 5
    assert "s3cr3t-value" not in message


def test_the_input_is_stored_once_under_what_it_is_whatever_its_name(api: Api) -> None:
    jpeg = (api.media / "street.jpg").read_bytes()
    h = api.key()
    r = api.client.post(
        "/v1/jobs", headers=h, files={"file": ("street.bin", jpeg, "application/octet-stream")}
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["input"]["media"]["kind"] == "image" and job["input"]["size"] == len(jpeg)
    assert job["input"]["sha256"] == hashlib.sha256(jpeg).hexdigest()
    inputs = [k for k in api.storage.keys() if k.startswith(f"jobs/{job['id']}/input")]
    assert len(inputs) == 1 and "street" not in inputs[0], "stored under the job id, not the client's name"
    with api.services.db.begin() as session:
        audit = list_audit(session=session, tenant_id="default", job_id=job["id"], limit=10)
    created = [e for e in audit if e.action == "job.create"]
    assert len(created) == 1 and created[0].input_sha256 == job["input"]["sha256"]


def test_video_only_detection_options_sent_for_a_still_are_named_in_the_job(api: Api) -> None:
    jpeg = (api.media / "street.jpg").read_bytes()
    h = api.key()
    video_only = json.dumps({"detection": {"detect_every": 3, "follow_camera": True}})
    asked = api.client.post("/v1/jobs", headers=h, files={"file": ("s.jpg", jpeg)}, data={"spec": video_only})
    assert asked.status_code == 202, asked.text
    [warning] = asked.json()["warnings"]
    assert warning.startswith("detection.detect_every and detection.follow_camera apply to video only")
    assert api.client.get(f"/v1/jobs/{asked.json()['id']}", headers=h).json()["warnings"] == [warning]
    plain = api.client.post("/v1/jobs", headers=h, files={"file": ("s.jpg", jpeg)})
    assert plain.status_code == 202 and plain.json()["warnings"] == []


def test_each_kind_is_warned_of_the_other_kinds_detection_options_only() -> None:
    video_only = {"detection": {"detect_every": 3, "follow_camera": True}}
    assert spec_warnings(video_only, "video") == []
    assert spec_warnings({"detection": {"detect_every": 2}}, "image") == [], "the default is not a request"
    assert spec_warnings({"detection": {"image_search": "fast"}}, "video") == [
        "detection.image_search applies to stills only; this input is a video"
    ]
    assert spec_warnings({"detection": {"image_search": "fast"}}, "image") == []


def test_an_idempotent_replay_stores_nothing_new(api: Api) -> None:
    h = api.key()
    first = api.submit(h, extra_headers={"Idempotency-Key": "k-1"})
    blobs_after_first = api.storage.keys()
    again = api.submit(h, extra_headers={"Idempotency-Key": "k-1"})
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert [k for k in api.storage.keys() if "/input" in k] == [k for k in blobs_after_first if "/input" in k]
    other_spec = api.submit(h, spec='{"method": "black"}', extra_headers={"Idempotency-Key": "k-1"})
    assert (other_spec.status_code, other_spec.json()["error"]["code"]) == (409, "conflict")


@pytest.mark.parametrize(
    ("spec", "file", "status", "code"),
    [
        (
            '{"categories": {"face": {"enabled": false}, "license_plate": {"enabled": false}}}',
            "street.jpg",
            422,
            "invalid_spec",
        ),
        ('{"source_job": "job_doesnotexist"}', None, 422, "invalid_spec"),
        ('{"mode": "detect"}', b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 422, "corrupt_media"),
        ('{"mode": "detect"}', b"hello", 415, "unsupported_media"),
        ('{"audio": {"mute": [{"start": 1, "end": 2}]}}', "street.jpg", 422, "invalid_spec"),
        (
            '{"audio": {"mute": [{"start": 1, "end": 2}]}}',
            "selfie_portrait_noaudio.mp4",  # a video without sound: nothing to silence
            422,
            "invalid_spec",
        ),
        ('{"mode": "detect", "audio": {"remove": true}}', "street.jpg", 422, "invalid_spec"),
    ],
    ids=[
        "masks-nothing",
        "unknown-source",
        "truncated-png",
        "not-media",
        "mute-a-photo",
        "mute-a-silent-video",
        "detect-with-audio",
    ],
)
def test_a_refused_submission_leaves_no_blob_and_no_job(
    api: Api, spec: str, file: str | bytes | None, status: int, code: str
) -> None:
    h = api.key()
    r = api.submit(h, spec=spec, file=file)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert api.storage.keys() == []
    assert api.client.get("/v1/jobs", headers=h).json()["data"] == []


def test_with_source_job_a_different_file_is_refused(api: Api) -> None:
    h = api.key()
    detect = api.submit(h, spec='{"mode": "detect"}', params={"wait": 10}).json()
    assert detect["state"] == "succeeded", detect
    spec = json.dumps({"source_job": detect["id"]})
    same = api.submit(h, spec=spec, file="street.jpg", params={"wait": 10})
    assert same.status_code == 200 and same.json()["input"]["sha256"] == detect["input"]["sha256"]
    other = api.submit(h, spec=spec, file="city_crowd.jpg")
    assert (other.status_code, other.json()["error"]["code"]) == (422, "invalid_spec")
    assert "omit `file`" in other.json()["error"]["message"]
