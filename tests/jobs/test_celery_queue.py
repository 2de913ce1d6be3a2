"""``CeleryQueue`` against a real Redis broker: what the API publishes, and what a client sees when the
broker is down (503, and no job left behind)."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.jobs.factories import GateRunner, add_job
from tests.scale.fleet import require_service
from veil.errors import QueueFull
from veil.jobs import store
from veil.jobs.celery_app import TASK_JOB
from veil.jobs.celery_queue import CeleryQueue
from veil.jobs.db import Database
from veil.jobs.queue import create_queue
from veil.jobs.states import JobState
from veil.jobs.worker import WorkerContext
from veil.settings import Settings
from veil.storage import MemoryStorage

pytestmark = pytest.mark.services


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace of this test's own, so that no other run's worker takes (or deletes) its messages."""
    require_service("redis://127.0.0.1:6379", "Redis")
    ns = f"t{secrets.token_hex(6)}"
    yield ns
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    client.delete(f"{ns}.gpu", f"{ns}.cpu")
    client.close()


def _messages(ns: str, role: str = "gpu") -> list[dict[str, object]]:
    """Task name and arguments of every message waiting in a queue (Celery protocol 2, JSON)."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    try:
        raw = [json.loads(m) for m in client.lrange(f"{ns}.{role}", 0, -1)]
    finally:
        client.close()
    return [{"task": m["headers"]["task"], "args": json.loads(base64.b64decode(m["body"]))[0]} for m in raw]


def test_the_api_publishes_the_job_id_on_the_gpu_queue_and_republishes_queued_jobs_at_start(
    tmp_path: Path, db: Database, namespace: str
) -> None:
    settings = Settings(
        data_dir=tmp_path, queue="celery", broker_url="redis://127.0.0.1:6379/0", celery_namespace=namespace
    )
    ctx = WorkerContext.from_settings(settings, db=db, storage=MemoryStorage(), runner=GateRunner())
    queue = create_queue(settings, ctx=ctx)
    assert isinstance(queue, CeleryQueue)
    job = add_job(db)
    try:
        queue.enqueue(job.id)
        [message] = _messages(namespace)
        assert (message["task"], message["args"]) == (TASK_JOB, [job.id])

        lost = add_job(db)  # committed, but its publish never happened (the API died in between)
        queue.start()
        assert [m["args"] for m in _messages(namespace)].count([lost.id]) == 1
    finally:
        queue.stop()


def test_an_unreachable_broker_answers_queue_full_and_leaves_no_job_behind(
    tmp_path: Path, db: Database
) -> None:
    settings = Settings(data_dir=tmp_path, queue="celery", broker_url="redis://127.0.0.1:9/0")
    queue = CeleryQueue.from_settings(settings, db=db)
    job = add_job(db)
    try:
        with pytest.raises(QueueFull):
            queue.enqueue(job.id)
    finally:
        queue.stop()
    with db.begin() as session:
        row = store.get_job(session=session, job_id=job.id)
    assert row is not None and row.state is JobState.CANCELED


def test_images_are_published_on_the_cpu_queue_so_they_do_not_wait_behind_videos(
    tmp_path: Path, db: Database, namespace: str
) -> None:
    settings = Settings(
        data_dir=tmp_path, queue="celery", broker_url="redis://127.0.0.1:6379/0", celery_namespace=namespace
    )
    queue = CeleryQueue.from_settings(settings, db=db)
    video, image = add_job(db, tenant_id="a", kind="video"), add_job(db, tenant_id="b", kind="image")
    try:
        queue.enqueue(video.id)
        queue.enqueue(image.id)
    finally:
        queue.stop()
    assert [m["args"] for m in _messages(namespace, "gpu")] == [[video.id]]
    assert [m["args"] for m in _messages(namespace, "cpu")] == [[image.id]]
