"""A scaled-out Veil on this machine, for integration tests and ``bench/scale.py``: the real API
(``veil serve`` with ``VEIL_QUEUE=celery``) and N real ``veil worker`` processes, on a throwaway
PostgreSQL database, a Redis or RabbitMQ broker and an S3 server.

Every service is checked first and a missing one fails with a message that names it (CI starts
them; a skip would hide a broken deployment). Workers run in their own process groups, so a test
can SIGKILL one exactly as a crashed machine would die.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

__all__ = [
    "AMQP_URL",
    "PG_ADMIN",
    "Fleet",
    "WorkerProcess",
    "postgres_database",
    "redis_url",
    "require_service",
    "start_worker",
    "wait_for_workers",
]

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
VEIL = [sys.executable, "-m", "veil"]


def require_service(url: str, name: str) -> None:
    """Fail (not skip) with a clear message when ``name`` does not accept connections at ``url``."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    assert port is not None, url
    try:
        with socket.create_connection((host, port), timeout=3):
            return
    except OSError as exc:
        raise RuntimeError(
            f"{name} is not reachable at {host}:{port} ({exc.strerror or exc}); the scale-out tests need the "
            f"real service running (CI starts it)"
        ) from exc


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (SQLAlchemy URL), dropped afterwards."""
    require_service(PG_ADMIN, "PostgreSQL")
    name = f"veil_scale_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_url() -> str:
    """The local Redis (checked first). Runs never flush it: each fleet has a namespace of its own."""
    require_service("redis://127.0.0.1:6379", "Redis")
    return "redis://127.0.0.1:6379/0"


@dataclass
class WorkerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, like a machine that lost power."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def start_worker(env: dict[str, str], log_dir: Path, name: str, *, concurrency: int = 1) -> WorkerProcess:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*VEIL, "worker", "--hostname", name, "--concurrency", str(concurrency), "--heartbeat-s", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(name=name, proc=proc, log_path=log_path)


def wait_for_workers(workers: list[WorkerProcess], data_dir: Path, *, timeout_s: float = 90.0) -> None:
    """Until every worker wrote its first heartbeat (it is consuming)."""
    deadline = time.monotonic() + timeout_s
    pending = {w.name for w in workers}
    while pending:
        for w in workers:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker {w.name} exited with {w.proc.returncode}:\n{w.log()[-3000:]}")
        for path in (data_dir / "workers").glob("*.json"):
            try:
                pending.discard(json.loads(path.read_text())["name"])
            except (OSError, ValueError, KeyError):
                continue
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"workers {sorted(pending)} did not start within {timeout_s:.0f} s")
        time.sleep(0.2)


@dataclass
class Fleet:
    """The environment every process of one scaled-out deployment shares, and its workers."""

    env: dict[str, str]
    data_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    @classmethod
    def environment(
        cls, data_dir: Path, *, database_url: str, broker_url: str, s3_env: dict[str, str], **extra: str
    ) -> Fleet:
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_") or k == "VEIL_MODEL_DIR"}
        env.update(
            {
                "VEIL_DATA_DIR": str(data_dir),
                "VEIL_QUEUE": "celery",
                "VEIL_DATABASE_URL": database_url,
                "VEIL_BROKER_URL": broker_url,
                "VEIL_SECRET_KEY": secrets.token_hex(32),
                "VEIL_LOG_FORMAT": "text",
                "VEIL_INTRA_OP_THREADS": "1",
                # queues and control exchange of this fleet alone: concurrent runs share the brokers
                "VEIL_CELERY_NAMESPACE": f"t{secrets.token_hex(6)}",
                **s3_env,
                **extra,
            }
        )
        return cls(env=env, data_dir=data_dir)

    def start_workers(self, count: int, *, prefix: str = "w") -> list[WorkerProcess]:
        started = [
            start_worker(self.env, self.data_dir, f"{prefix}{len(self.workers) + i + 1}@scale")
            for i in range(count)
        ]
        self.workers.extend(started)
        wait_for_workers(started, self.data_dir)
        return started

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self._drop_queues()

    def _drop_queues(self) -> None:
        """Delete this fleet's queues and exchanges from the broker (RabbitMQ keeps durable ones)."""
        import kombu

        api: Any = kombu  # kombu is untyped
        ns = self.env["VEIL_CELERY_NAMESPACE"]
        with api.Connection(self.env["VEIL_BROKER_URL"], connect_timeout=5) as conn:
            channel = conn.default_channel
            for role in ("gpu", "cpu"):
                name = f"{ns}.{role}"
                exchange = api.Exchange(name, type="direct")
                api.Queue(name, exchange, routing_key=name).bind(channel).delete()
                exchange.bind(channel).delete()

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.log()[-4000:]}" for w in self.workers)
