"""Scaled-out Veil end to end, on the real services: ``veil serve`` with ``VEIL_QUEUE=celery``, two or
more ``veil worker`` processes, PostgreSQL, Redis or RabbitMQ, and an S3 server.

* the full API flow (submit, wait, download, report) on a video that is split into 3 segments
  processed by both workers: the output has exactly the input's frames and duration, and the face
  that crosses every border keeps one track id, with a box in every frame;
* a worker killed with SIGKILL in the middle of a job: the job still finishes, once;
* ``veil worker --check`` reports the fleet.

The spec is the cheap end of the speed/recall knobs (faces, half-scale detection on every 5th frame,
ultrafast x264) to keep the suite inside its time budget on two shared cores; the full pipeline runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import httpx
import pytest

from tests.jobs.test_webhooks import Receiver
from tests.live_server import LiveServer
from tests.scale.fleet import AMQP_URL, VEIL, Fleet, postgres_database, redis_url, require_service
from tests.video import SELFIE
from veil.client import Client

if TYPE_CHECKING:
    from tests.s3server import S3Server

pytest_plugins = ["tests.s3server"]

pytestmark = [pytest.mark.slow, pytest.mark.services]

SPEC: dict[str, Any] = {
    "categories": {"face": {}},
    "detection": {"detect_scale": 0.7, "detect_every": 5},
    "output": {"preset": "ultrafast"},
}
JOB_TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def video(media_dir: Path) -> Path:
    """The selfie clip, real footage: 600 frames with keyframes at 0, 250 and 500, so 3 segments at
    ``VEIL_SEGMENT_SECONDS=5``, more than the 2 workers take at once."""
    return media_dir / SELFIE


def _frames_and_duration(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        pts = [frame.pts for frame in container.decode(stream)]
        assert all(p is not None for p in pts)
        step = pts[1] - pts[0]  # type: ignore[operator]
        return len(pts), float((pts[-1] - pts[0] + step) * stream.time_base)  # type: ignore[operator]


@pytest.fixture
def hook_receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback (the deployment allows private targets)."""
    receiver = Receiver()
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def deployment(
    tmp_path: Path, s3_server: S3Server, s3_bucket: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Fleet, LiveServer]]:
    """API + 2 workers; the broker comes from the test's ``broker`` parameter."""
    broker = request.param
    broker_url = redis_url() if broker == "redis" else AMQP_URL
    if broker == "rabbitmq":
        require_service(AMQP_URL, "RabbitMQ")
    with postgres_database() as database_url:
        fleet = Fleet.environment(
            tmp_path / "veil",
            database_url=database_url,
            broker_url=broker_url,
            s3_env=s3_server.env(s3_bucket, "deploy"),
            VEIL_SEGMENT_SECONDS="5",
            VEIL_JOB_STALE_S="5",
            VEIL_WEBHOOK_ALLOW_PRIVATE="true",
        )
        try:
            with LiveServer(fleet.data_dir, fleet.env) as server:
                fleet.start_workers(2)
                yield fleet, server
        finally:
            fleet.stop()


def _client(server: LiveServer) -> tuple[Client, str]:
    key = str(server.create_key("jobs:read,jobs:write,admin")["key"])
    return Client(server.url, api_key=key, timeout=60.0), key


def _task_ids(log: str, event: str) -> set[str]:
    """Ids of segment tasks a worker log reports as ``received`` or ``succeeded``."""
    found = re.findall(r"Task (veil\.segment\.\w+)\[([0-9a-f-]+)\] " + event, log)
    return {task_id for _name, task_id in found}


def _segment_tasks(log: str) -> int:
    return sum(
        1 for line in log.splitlines() if "veil.segment." in line and "succeeded" in line and "Task " in line
    )


@pytest.mark.parametrize("deployment", ["redis"], indirect=True)
def test_api_flow_splits_a_video_across_workers(
    hook_receiver: Receiver,
    deployment: tuple[Fleet, LiveServer],
    video: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    fleet, server = deployment
    client, key = _client(server)
    with client:
        job = client.submit(video, {**SPEC, "webhook": {"url": hook_receiver.url()}})
        assert job.state in ("queued", "running")
        job = client.wait(job.id, timeout=JOB_TIMEOUT_S)
        assert job.state == "succeeded", (job.error, fleet.logs())
        out = client.download(job.id, tmp_path / "out.mp4")
        report = client.report(job.id)

    # frame-exact: the same frames and duration as the input
    assert _frames_and_duration(out) == _frames_and_duration(video)
    assert report["input"]["frame_count"] == report["output"]["frame_count"] == 600
    assert report["timings"]["segments"] == 3  # borders at frames 250 and 500

    _assert_one_face_id_across_borders(report)

    # both workers took segments; the pieces are gone from the bucket, the result is there once
    logs = [w.log() for w in fleet.workers]
    assert all(_segment_tasks(log) >= 1 for log in logs), fleet.logs()
    listing = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix=f"deploy/jobs/{job.id}/")
    keys = sorted(o["Key"].rsplit("/", 1)[1] for o in listing.get("Contents", []))
    assert keys == ["input.mp4", "output.mp4", "report.json"]

    # the webhook went out from a worker (as a veil.webhook task), signed
    deadline = time.monotonic() + 60
    while not hook_receiver.received and time.monotonic() < deadline:
        time.sleep(0.2)
    [hook] = hook_receiver.received
    assert json.loads(hook.body)["state"] == "succeeded" and "v1=" in hook.headers["Veil-Signature"]

    # the fleet's health report sees both workers
    done = subprocess.run(
        [*VEIL, "worker", "--check", "--timeout", "5"],
        env=fleet.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    health = json.loads(done.stdout)
    assert done.returncode == 0 and health["healthy"], done.stdout + done.stderr
    assert {w["name"] for w in health["workers"]} == {w.name for w in fleet.workers}
    assert health["database"] == health["storage"] == health["broker"] == "ok"

    # the review loop on the fleet: a detect job splits too, and its tracks come with thumbnails
    with Client(server.url, api_key=key, timeout=60.0) as client:
        detect = client.wait(client.submit(video, {**SPEC, "mode": "detect"}).id, timeout=JOB_TIMEOUT_S)
        assert detect.state == "succeeded", (detect.error, fleet.logs())
        detected = client.report(detect.id)
        assert detected["timings"]["segments"] == 3 and detected["output"] is None
        track_id = _assert_one_face_id_across_borders(detected)
        assert client.thumbnail(detect.id, track_id)[:3] == b"\xff\xd8\xff"  # a JPEG
        # ... and the redaction of the reviewed track renders in parallel without detecting again
        reviewed = {**SPEC, "source_job": detect.id, "filter": {"track_ids": [track_id], "scope": "include"}}
        redo = client.wait(client.submit(video, reviewed).id, timeout=JOB_TIMEOUT_S)
        assert redo.state == "succeeded", (redo.error, fleet.logs())
        redone = client.report(redo.id)
        assert redone["timings"]["segments"] == 3 and redone["output"]["frame_count"] == 600
        assert [t["id"] for t in redone["tracks"]] == [track_id]


def _assert_one_face_id_across_borders(report: dict[str, Any]) -> int:
    """One face, one id across the borders at frames 250 and 500, a box in every frame; returns the id."""
    faces = [t for t in report["tracks"] if t["category"] == "face"]
    by_frame: dict[int, set[int]] = {}
    for track in faces:
        for f in track["frames"]:
            by_frame.setdefault(f["frame"], set()).add(track["id"])
    assert sorted(by_frame) == list(range(600))
    spanning = by_frame[0]
    assert len(spanning) == 1
    for border in (250, 500):
        reset = f"track id reset at frame {border}"
        assert spanning <= by_frame[border - 1] and spanning <= by_frame[border], reset
    assert all(spanning <= by_frame[f] for f in range(600)), "the face lost its box or its id inside the clip"
    # Weak faces seen in 3 detections become tracks (issue 12's recall change); at this coarse test setting
    # (detect_scale 0.7, every 5th frame) a few short, weak ones appear beside the face. They may be there,
    # but only as weak candidates: anything the detector was sure of must be the one face.
    (face_id,) = spanning
    others = [t for t in faces if t["id"] != face_id]
    assert all(max(f["score"] for f in t["frames"]) < 0.2 for t in others), "a second confident face"
    return face_id


@pytest.mark.parametrize("deployment", ["rabbitmq"], indirect=True)
def test_worker_killed_mid_job_the_job_still_finishes_once(
    deployment: tuple[Fleet, LiveServer],
    video: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    fleet, server = deployment
    client, key = _client(server)
    with client:
        job = client.submit(video, SPEC)
        # Kill whichever worker is analysing a segment first, in the middle of its work.
        victim = None
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while victim is None and time.monotonic() < deadline:
            for w in fleet.workers:
                # its own "Task veil.segment.analyse[...] received" line, not the [tasks] banner
                if re.search(r"Task veil\.segment\.analyse\[[0-9a-f-]+\] received", w.log()):
                    victim = w
                    break
            time.sleep(0.2)
        assert victim is not None, fleet.logs()
        time.sleep(2.0)
        assert client.get(job.id).state == "running"
        victim.kill()
        survivor = next(w for w in fleet.workers if w is not victim)

        job = client.wait(job.id, timeout=JOB_TIMEOUT_S)
        assert job.state == "succeeded", (job.error, fleet.logs())
        out = client.download(job.id, tmp_path / "out.mp4")
        report = client.report(job.id)
        audit = httpx.get(
            f"{server.url}/v1/audit",
            params={"job_id": job.id},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()

    assert _frames_and_duration(out) == _frames_and_duration(video)
    assert report["output"]["frame_count"] == 600 and report["timings"]["segments"] == 3
    # exactly once: one terminal transition, one output object
    finished = [
        e for e in audit["data"] if str(e["action"]).startswith("job.") and e["action"] != "job.create"
    ]
    assert [e["action"] for e in finished] == ["job.succeeded"], audit
    listing = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix=f"deploy/jobs/{job.id}/")
    keys = sorted(o["Key"].rsplit("/", 1)[1] for o in listing.get("Contents", []))
    assert keys == ["input.mp4", "output.mp4", "report.json"]
    # the task the victim died in was delivered again, and the survivor did it
    interrupted = _task_ids(victim.log(), "received") - _task_ids(victim.log(), "succeeded")
    assert interrupted, victim.log()
    assert interrupted <= _task_ids(survivor.log(), "succeeded"), fleet.logs()
