"""The Celery app's delivery guarantees and routing, and that the embedded default never loads Celery."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from veil.jobs.celery_app import (
    TASK_ANALYSE,
    TASK_FINISH,
    TASK_JOB,
    TASK_RENDER,
    TASK_STITCH,
    TASK_WEBHOOK,
    create_celery,
    result_backend_url,
)
from veil.settings import Settings


def test_tasks_are_acknowledged_late_redelivered_on_worker_loss_and_json_only(tmp_path: Path) -> None:
    app = create_celery(Settings(data_dir=tmp_path, queue="celery", broker_visibility_timeout_s=60))
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and list(conf.accept_content) == ["json"]
    assert conf.broker_transport_options["visibility_timeout"] == 60
    for name in (TASK_JOB, TASK_ANALYSE, TASK_STITCH, TASK_RENDER, TASK_FINISH, TASK_WEBHOOK):
        assert name in app.tasks
        assert app.tasks[name].max_retries is not None  # bounded
    app.close()


def test_detection_goes_to_the_gpu_queue_and_the_rest_to_the_cpu_queue_of_the_namespace(
    tmp_path: Path,
) -> None:
    app = create_celery(Settings(data_dir=tmp_path, queue="celery", celery_namespace="prod-eu"))
    route = app.amqp.router.route
    routed = {name: route({}, name) for name in app.tasks if name.startswith("veil.")}
    assert {name: r["queue"].name for name, r in routed.items()} == {
        TASK_JOB: "prod-eu.gpu",
        TASK_ANALYSE: "prod-eu.gpu",
        TASK_STITCH: "prod-eu.cpu",
        TASK_RENDER: "prod-eu.cpu",
        TASK_FINISH: "prod-eu.cpu",
        TASK_WEBHOOK: "prod-eu.cpu",
    }
    # each queue has an exchange of its own: no message is ever delivered to both queues
    assert {(r["queue"].exchange.name, r["queue"].routing_key) for r in routed.values()} == {
        ("prod-eu.gpu", "prod-eu.gpu"),
        ("prod-eu.cpu", "prod-eu.cpu"),
    }
    assert app.conf.control_exchange == "prod-eu"  # pings and inspections stay within the deployment
    app.close()


@pytest.mark.parametrize(
    ("broker", "database", "explicit", "expected"),
    [
        ("redis://h:6379/2", None, None, "redis://h:6379/2"),
        ("amqp://g:g@h:5672//", "postgresql+psycopg://u@h/veil", None, "db+postgresql+psycopg://u@h/veil"),
        ("amqp://g:g@h:5672//", "postgresql+psycopg://u@h/veil", "redis://r:6379/1", "redis://r:6379/1"),
    ],
)
def test_chords_get_a_result_backend_without_extra_configuration(
    broker: str, database: str | None, explicit: str | None, expected: str
) -> None:
    settings = Settings(broker_url=broker, database_url=database, result_backend=explicit)
    assert result_backend_url(settings) == expected


def test_the_embedded_default_never_loads_celery_or_the_scale_out_clients(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from veil.api import create_app\n"
        "from veil.cli import app\n"
        "from veil.settings import Settings\n"
        f"create_app(Settings(data_dir={str(tmp_path)!r}))\n"
        "loaded = sorted(m for m in ('celery', 'kombu', 'redis', 'psycopg', 'boto3') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""
