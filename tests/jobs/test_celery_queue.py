"""``CeleryQueue`` against a real Redis broker: what the API publishes, and what a client sees when the
broker is down (503, and no job left behind)."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu
import pytest
import redis

from tests.jobs.factories import GateRunner, add_job
from tests.scale.fleet import AMQP_URL, require_service
from veil.errors import QueueFull
from veil.jobs import store
from veil.jobs.celery_app import (
    CPU,
    GPU,
    TASK_ANALYSE,
    TASK_JOB,
    TOP_LEVEL,
    CeleryDispatcher,
    create_celery,
    message_priority,
    queue_name,
)
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
    client.delete(*_lists(ns, "gpu"), *_lists(ns, "cpu"))
    client.close()


def _lists(ns: str, role: str) -> list[str]:
    """kombu's Redis lists of one queue, one per priority level, first served first."""
    return [f"{ns}.{role}"] + [f"{ns}.{role}\x06\x16{p}" for p in range(1, TOP_LEVEL + 1)]


def _messages(ns: str, role: str = "gpu") -> list[dict[str, object]]:
    """Task name and arguments of every message waiting in a queue (Celery protocol 2, JSON)."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    try:
        raw = [json.loads(m) for name in _lists(ns, role) for m in client.lrange(name, 0, -1)]
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


@pytest.fixture(params=["rabbitmq", "redis"])
def broker_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a real broker with a namespace of this test's own; its queues are deleted after."""
    url = AMQP_URL if request.param == "rabbitmq" else "redis://127.0.0.1:6379/0"
    require_service(url, "RabbitMQ" if request.param == "rabbitmq" else "Redis")
    settings = Settings(
        data_dir=tmp_path, queue="celery", broker_url=url, celery_namespace=f"t{secrets.token_hex(6)}"
    )
    yield settings
    api: Any = kombu  # kombu is untyped
    with api.Connection(url, connect_timeout=5) as conn:
        for role in (GPU, CPU):
            name = queue_name(settings, role)
            api.Queue(name, api.Exchange(name, type="direct"), routing_key=name).bind(
                conn.default_channel
            ).delete()


def _drain(settings: Settings, role: str = GPU) -> list[tuple[str, list[Any], int | None]]:
    """Task, arguments and priority of every message in a queue, in the order the broker delivers them."""
    app = create_celery(settings)
    [queue] = [q for q in app.conf.task_queues if q.name == queue_name(settings, role)]
    taken = []
    try:
        with app.connection_for_read() as conn:
            bound = queue.bind(conn.default_channel)
            while (message := bound.get(no_ack=True)) is not None:
                args = message.decode()[0]
                taken.append((message.headers["task"], args, message.properties.get("priority")))
    finally:
        app.close()
    return taken


def test_the_brokers_serve_tenants_round_robin(broker_settings: Settings, db: Database) -> None:
    """Tenant A queued three videos before tenant B queued one: the broker hands B's out second, not
    fourth (as the embedded queue does), on RabbitMQ and on Redis alike."""
    queue = CeleryQueue.from_settings(broker_settings, db=db)
    a = [add_job(db, tenant_id="a", kind="video", created_delta_s=i) for i in range(3)]
    b = add_job(db, tenant_id="b", kind="video", created_delta_s=10)
    try:
        for job in [*a, b]:
            queue.enqueue(job.id)
    finally:
        queue.stop()
    taken = _drain(broker_settings)
    assert [args for _task, args, _priority in taken] == [[a[0].id], [b.id], [a[1].id], [a[2].id]]
    assert {task for task, _args, _priority in taken} == {TASK_JOB}


def test_the_steps_of_a_split_job_run_one_level_below_the_job_that_started_them(
    broker_settings: Settings, db: Database
) -> None:
    """A new tenant's job overtakes the queued segments of another tenant's long video: the segments a
    ``veil.job`` message at the top level dispatches carry the level below it."""
    from celery._state import _task_stack

    app = create_celery(broker_settings)
    started_by = app.tasks[TASK_JOB]
    top = message_priority(broker_settings, TOP_LEVEL)
    started_by.push_request(delivery_info={"priority": top})
    _task_stack.push(started_by)
    try:
        CeleryDispatcher(app, broker_settings).analyse("job_x", 1, 2)
    finally:
        _task_stack.pop()
        started_by.pop_request()
        if hasattr(app.backend, "result_consumer"):  # outside a worker, Redis chords subscribe to results
            # The chord's results unsubscribe when they are collected (AsyncResult.__del__, at any later
            # moment), which would reopen the closed pubsub connection and leak its socket into whichever
            # test runs then: forget the subscriptions first.
            app.backend.result_consumer.subscribed_to.clear()
            app.backend.result_consumer.stop()
            app.backend.client.connection_pool.disconnect()
        app.close()
    queue = CeleryQueue.from_settings(broker_settings, db=db)
    newcomer = add_job(db, tenant_id="b", kind="video")
    try:
        queue.enqueue(newcomer.id)
    finally:
        queue.stop()
    taken = _drain(broker_settings)
    assert [(task, args) for task, args, _p in taken] == [
        (TASK_JOB, [newcomer.id]),
        (TASK_ANALYSE, ["job_x", 1, 0]),
        (TASK_ANALYSE, ["job_x", 1, 1]),
    ]
    assert taken[1][2] == message_priority(broker_settings, TOP_LEVEL - 1)
