"""Webhook integration: a finished job's JobPublic is POSTed, signed with the key's webhook secret,
retried, and every attempt recorded. The receiver is a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.jobs.conftest import make_ctx
from tests.jobs.factories import GateRunner, add_job
from veil.auth.secrets import load_server_secret, webhook_secret
from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.notify import WebhookNotifier
from veil.jobs.states import JobState
from veil.jobs.webhooks import verify
from veil.jobs.worker import execute_job
from veil.settings import Settings
from veil.storage import MemoryStorage


class Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=abc"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([500, 200])
    yield r
    r.close()


def run_job_with_webhook(
    settings: Settings, db: Database, storage: MemoryStorage, media: Path, url: str
) -> tuple[str, WebhookNotifier]:
    notifier = WebhookNotifier(settings=settings, db=db, server_secret=load_server_secret(settings))
    job = add_job(db, storage, media_path=media, spec={"webhook": {"url": url}})
    ctx = make_ctx(settings, db, storage, GateRunner(), notifier=notifier)
    assert execute_job(job.id, ctx=ctx) is JobState.SUCCEEDED
    return job.id, notifier


def wait_status(db: Database, job_id: str, status: str) -> None:
    for _ in range(200):
        with db.begin() as session:
            if store.get_job(session=session, job_id=job_id).webhook_status == status:
                return
        time.sleep(0.05)
    raise AssertionError(f"webhook of {job_id} never became {status}")


def test_finished_job_is_posted_signed_and_retried(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path, receiver: Receiver
) -> None:
    job_id, notifier = run_job_with_webhook(settings, db, storage, media_dir / "street.jpg", receiver.url)
    wait_status(db, job_id, "delivered")
    notifier.stop()

    assert len(receiver.requests) == 2, "the 500 was retried"
    headers, body = receiver.requests[-1]
    secret = webhook_secret(load_server_secret(settings), "key_test").encode()
    assert verify(secret, headers["veil-signature"], body)
    assert not verify(b"another secret", headers["veil-signature"], body)
    assert headers["veil-event"] == "job.succeeded"
    payload = json.loads(body)
    assert payload["id"] == job_id and payload["state"] == "succeeded"
    with db.begin() as session:
        attempts = store.list_webhook_deliveries(session=session, job_id=job_id)
    assert [(a.attempt, a.status_code, a.delivered) for a in attempts] == [(1, 500, False), (2, 200, True)]


def test_a_receiver_that_keeps_failing_is_recorded_as_failed(
    tmp_path: Path, db: Database, storage: MemoryStorage, media_dir: Path
) -> None:
    receiver = Receiver([503] * 10)
    settings = Settings(data_dir=tmp_path, webhook_allow_private=True, webhook_retry_schedule_s=(0.01, 0.01))
    try:
        job_id, notifier = run_job_with_webhook(settings, db, storage, media_dir / "street.jpg", receiver.url)
        wait_status(db, job_id, "failed")
        notifier.stop()
    finally:
        receiver.close()
    with db.begin() as session:
        assert len(store.list_webhook_deliveries(session=session, job_id=job_id)) == 3


def test_pending_webhooks_are_sent_after_a_restart(
    settings: Settings, db: Database, storage: MemoryStorage, media_dir: Path, receiver: Receiver
) -> None:
    receiver.statuses = []
    job = add_job(db, storage, media_path=media_dir / "street.jpg", spec={"webhook": {"url": receiver.url}})
    execute_job(job.id, ctx=make_ctx(settings, db, storage, GateRunner()))  # no notifier: the process "died"
    with db.begin() as session:
        assert store.get_job(session=session, job_id=job.id).webhook_status == "pending"
    notifier = WebhookNotifier(settings=settings, db=db, server_secret=load_server_secret(settings))
    assert notifier.resume_pending() == 1
    wait_status(db, job.id, "delivered")
    notifier.stop()
    assert len(receiver.requests) == 1
