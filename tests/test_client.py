"""``veil.client.Client`` against a real ``veil serve`` on loopback."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.live_server import LiveServer, free_port
from veil.client import Client, Job, JobWaitTimeout, VeilAPIError, VeilConnectionError
from veil.spec import CategorySpec, RedactionSpec

pytestmark = pytest.mark.slow  # real jobs on the session's server


@pytest.fixture(scope="module")
def api_key(live_server: LiveServer) -> str:
    return str(live_server.create_key(name="client-tests", tenant="client")["key"])


@pytest.fixture
def client(live_server: LiveServer, api_key: str) -> Iterator[Client]:
    with Client(live_server.url, api_key, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def idle_key(idle_server: LiveServer) -> str:
    return str(idle_server.create_key(name="idle", tenant="client")["key"])


@pytest.fixture
def idle(idle_server: LiveServer, idle_key: str) -> Iterator[Client]:
    with Client(idle_server.url, idle_key, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def small_photo(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The crowd photo at half size: real faces, a quicker job."""
    dst = tmp_path_factory.mktemp("small") / "crowd_400.jpg"
    with Image.open(media_dir / "city_crowd.jpg") as photo:
        photo.resize((400, 282)).save(dst, quality=92)
    return dst


@pytest.fixture(scope="module")
def finished(live_server: LiveServer, api_key: str, media_dir: Path) -> Job:
    """One redact job on a real crowd photo, waited for through ``?wait``."""
    with Client(live_server.url, api_key, timeout=60) as c:
        job = c.submit(media_dir / "city_crowd.jpg", wait=60)
        return job if job.terminal else c.wait(job.id, timeout=120)


def test_submit_with_wait_returns_the_finished_job(finished: Job) -> None:
    assert finished.state == "succeeded", finished.error
    assert finished.progress == 100
    assert finished.result_url is not None and finished.result_url.endswith(f"/v1/jobs/{finished.id}/result")
    assert finished.counts.get("face", 0) > 0
    assert finished.created_at is not None
    assert "input" in (finished.model_extra or {})  # fields the model does not name are kept


def test_download_is_a_masked_copy_of_the_input(
    client: Client, finished: Job, media_dir: Path, tmp_path: Path
) -> None:
    out = client.download(finished.id, tmp_path / "out.jpg")
    assert out == tmp_path / "out.jpg" and not (tmp_path / "out.jpg.part").exists()
    with Image.open(out) as result, Image.open(media_dir / "city_crowd.jpg") as original:
        assert result.size == original.size
        diff = np.abs(
            np.asarray(result.convert("RGB"), np.int16) - np.asarray(original.convert("RGB"), np.int16)
        )
    faces = [t["frames"][0]["box"] for t in client.report(finished.id)["tracks"] if t["category"] == "face"]
    inside = np.zeros(diff.shape[:2], bool)
    for x1, y1, x2, y2 in faces:
        inside[int(y1) : int(y2), int(x1) : int(x2)] = True
    assert faces and diff[inside].mean() > 4 * diff[~inside].mean()  # faces changed, the rest barely


def test_report_has_the_counts(client: Client, finished: Job) -> None:
    report = client.report(finished.id)
    assert report["counts"].get("face", 0) == finished.counts["face"]


def test_a_detect_job_gives_tracks_with_thumbnails(client: Client, small_photo: Path) -> None:
    submitted = client.submit(small_photo, {"mode": "detect", "categories": {"face": {}}})
    job = client.wait(submitted.id, timeout=120)
    tracks = client.report(job.id)["tracks"]
    assert job.state == "succeeded" and tracks
    assert client.thumbnail(job.id, tracks[0]["id"])[:3] == b"\xff\xd8\xff"  # a JPEG
    with pytest.raises(VeilAPIError) as missing:
        client.thumbnail(job.id, 99_999)
    assert missing.value.status == 404


def test_submit_without_wait_then_wait(client: Client, small_photo: Path) -> None:
    spec = RedactionSpec(categories={"face": CategorySpec()}, method="pixelate")
    job = client.submit(small_photo, spec)
    assert job.state in {"queued", "running", "succeeded"}
    done = client.wait(job.id, timeout=120, poll=0.2)
    assert done.id == job.id and done.state == "succeeded"
    assert set(done.counts) <= {"face"}


def test_wait_gives_up_with_the_last_state(idle: Client, small_photo: Path) -> None:
    job = idle.submit(small_photo, wait=1)  # nobody runs it: the server answers 202 at the deadline
    assert job.state == "queued"
    with pytest.raises(JobWaitTimeout) as info:
        idle.wait(job.id, timeout=1.0, poll=0.2)
    assert info.value.job.id == job.id and info.value.job.state == "queued"


def test_idempotency_key_returns_the_same_job(idle: Client, small_photo: Path) -> None:
    first = idle.submit(small_photo, idempotency_key="client-test-1")
    assert idle.submit(small_photo, idempotency_key="client-test-1").id == first.id
    with pytest.raises(VeilAPIError) as info:  # the same key for another request is a mistake
        idle.submit(small_photo, {"mode": "detect"}, idempotency_key="client-test-1")
    assert (info.value.status, info.value.code) == (409, "conflict")


def test_iter_jobs_follows_the_cursor(idle: Client, small_photo: Path) -> None:
    submitted = [idle.submit(small_photo, {"mode": "detect"}).id for _ in range(3)]
    seen = [job.id for job in idle.iter_jobs(limit=1)]
    assert len(seen) == len(set(seen))  # no page repeats a job
    assert set(submitted) <= set(seen)
    assert seen.index(submitted[2]) < seen.index(submitted[1]) < seen.index(submitted[0])  # newest first
    idle.cancel(submitted[1])
    assert [j.id for j in idle.iter_jobs(state="canceled", limit=2)] == [submitted[1]]


def test_cancel_a_queued_job_then_a_finished_one(idle: Client, small_photo: Path) -> None:
    job = idle.submit(small_photo)
    canceled = idle.cancel(job.id)
    assert canceled.state == "canceled" and idle.get(job.id).state == "canceled"
    with pytest.raises(VeilAPIError) as info:
        idle.cancel(job.id)
    assert (info.value.status, info.value.code) == (409, "conflict")


def test_signed_link_downloads_without_a_key(client: Client, finished: Job, live_server: LiveServer) -> None:
    link = client.create_link(finished.id)
    assert link.expires_at is not None
    url = link.url if link.url.startswith("http") else live_server.url + link.url
    response = httpx.get(url)  # no Authorization header
    assert response.status_code == 200
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (800, 564)


def test_delete_removes_the_job(idle: Client, small_photo: Path) -> None:
    job = idle.submit(small_photo)
    idle.delete(job.id)
    with pytest.raises(VeilAPIError) as info:
        idle.get(job.id)
    assert info.value.status == 404 and info.value.code == "not_found"


def test_unknown_job_maps_to_an_error_with_code_and_request_id(idle: Client) -> None:
    with pytest.raises(VeilAPIError) as info:
        idle.get("job_doesnotexist")
    error = info.value
    assert (error.status, error.code) == (404, "not_found")
    assert error.request_id and error.message
    assert "not_found" in str(error) and error.request_id in str(error)


def test_a_bad_spec_is_rejected_with_invalid_spec(idle: Client, small_photo: Path) -> None:
    with pytest.raises(VeilAPIError) as info:
        idle.submit(small_photo, {"method": "smudge"})
    assert (info.value.status, info.value.code) == (422, "invalid_spec")


def test_a_wrong_key_is_refused(idle_server: LiveServer) -> None:
    with Client(idle_server.url, "veil_notakey") as c, pytest.raises(VeilAPIError) as info:
        c.get("job_x")
    assert info.value.status == 401


def test_no_server_is_a_connection_error() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", "veil_x", timeout=5) as c,
        pytest.raises(VeilConnectionError),
    ):
        c.get("job_x")
