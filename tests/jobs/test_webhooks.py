"""Webhook delivery against a real HTTP receiver on loopback (allowed with ``allow_private=True``)."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from veil.errors import SpecError, WebhookRefused
from veil.jobs.webhooks import DeliveryAttempt, deliver, sign, validate_webhook_url, verify

SECRET = b"whsec-test-0123456789"
BODY = json.dumps({"id": "job_1", "state": "succeeded", "progress": 100}).encode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A scripted HTTP server: answers each POST with the next ``Reply`` (the last one repeats)."""

    def __init__(self) -> None:
        self.script: list[Reply] = [Reply(200)]
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                index = min(len(receiver.received), len(receiver.script)) - 1
                reply = receiver.script[index]
                time.sleep(reply.delay_s)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _deliver(url: str, **kwargs: object) -> list[DeliveryAttempt]:
    options: dict[str, object] = {"event": "job.succeeded", "secret": SECRET, "allow_private": True}
    options.update(kwargs)
    return deliver(url, BODY, **options)  # type: ignore[arg-type]


def test_delivery_is_signed_and_verifiable_by_the_receiver(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    attempts = _deliver(receiver.url(), sleep=Sleeps())
    assert [a.delivered for a in attempts] == [True]
    assert attempts[0].status_code == 200 and attempts[0].error is None
    (got,) = receiver.received
    assert got.body == BODY
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["Veil-Event"] == "job.succeeded"
    assert uuid.UUID(got.headers["Veil-Delivery"])
    assert got.headers["User-Agent"].startswith("Veil-Webhook/")
    assert verify(SECRET, got.headers["Veil-Signature"], got.body)
    assert not verify(b"another-secret", got.headers["Veil-Signature"], got.body)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("veil"))
    assert "delivery=" in logged
    for private in (SECRET.decode(), "job_1", "/hook", got.headers["Veil-Signature"]):
        assert private not in logged


def test_retries_on_500_then_succeeds_with_one_delivery_id(receiver: Receiver) -> None:
    receiver.script = [Reply(500), Reply(503), Reply(204)]
    sleeps = Sleeps()
    attempts = _deliver(receiver.url(), sleep=sleeps, base_delay_s=2.0, rng=random.Random(7))
    assert [(a.attempt, a.status_code, a.delivered) for a in attempts] == [
        (1, 500, False),
        (2, 503, False),
        (3, 204, True),
    ]
    assert attempts[0].error == "HTTP 500"
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 2.0 and 0 <= sleeps[1] <= 4.0  # full jitter under the cap
    assert len({r.headers["Veil-Delivery"] for r in receiver.received}) == 1
    assert all(verify(SECRET, r.headers["Veil-Signature"], r.body) for r in receiver.received)


def test_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.script = [Reply(502)]
    sleeps = Sleeps()
    attempts = _deliver(receiver.url(), sleep=sleeps, max_attempts=4, max_delay_s=3.0)
    assert len(attempts) == 4 and not any(a.delivered for a in attempts)
    assert len(receiver.received) == 4
    assert len(sleeps) == 3 and max(sleeps) <= 3.0


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_client_errors_are_not_retried(receiver: Receiver, status: int) -> None:
    receiver.script = [Reply(status)]
    attempts = _deliver(receiver.url(), sleep=Sleeps())
    assert [(a.status_code, a.delivered) for a in attempts] == [(status, False)]
    assert len(receiver.received) == 1


def test_429_waits_for_retry_after(receiver: Receiver) -> None:
    receiver.script = [Reply(429, {"Retry-After": "7"}), Reply(200)]
    sleeps = Sleeps()
    attempts = _deliver(receiver.url(), sleep=sleeps, base_delay_s=0.5)
    assert [a.status_code for a in attempts] == [429, 200]
    assert sleeps == [7.0]


def test_retry_after_is_capped_by_max_delay(receiver: Receiver) -> None:
    receiver.script = [Reply(503, {"Retry-After": "86400"}), Reply(200)]
    sleeps = Sleeps()
    _deliver(receiver.url(), sleep=sleeps, max_delay_s=30.0)
    assert sleeps == [30.0]


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.script = [Reply(307, {"Location": "/elsewhere"})]
    attempts = _deliver(receiver.url(), sleep=Sleeps())
    assert len(attempts) == 1 and not attempts[0].delivered
    assert attempts[0].error is not None and "redirect" in attempts[0].error
    assert [r.path for r in receiver.received] == ["/hook"]


def test_timeouts_are_retried(receiver: Receiver) -> None:
    receiver.script = [Reply(200, delay_s=1.0), Reply(200)]
    attempts = _deliver(receiver.url(), sleep=Sleeps(), timeout_s=0.2)
    assert [(a.error, a.delivered) for a in attempts] == [("timeout", False), (None, True)]


def test_loopback_is_refused_without_allow_private(receiver: Receiver) -> None:
    attempts = _deliver(receiver.url(), allow_private=False, sleep=Sleeps())
    assert len(attempts) == 1 and not attempts[0].delivered and attempts[0].status_code is None
    assert attempts[0].error is not None and attempts[0].error.startswith("webhook_url_refused")
    assert receiver.received == []
    with pytest.raises(WebhookRefused) as info:
        validate_webhook_url(receiver.url(), allow_private=False)
    assert info.value.code == "webhook_url_refused" and isinstance(info.value, SpecError)


def test_a_name_resolving_to_loopback_is_refused(receiver: Receiver) -> None:
    with pytest.raises(WebhookRefused, match="loopback"):
        validate_webhook_url(receiver.url(host="localhost"), allow_private=False)
    assert not _deliver(receiver.url(host="localhost"), allow_private=False, sleep=Sleeps())[0].delivered
    assert receiver.received == []


def test_connection_goes_to_the_checked_address_not_a_second_lookup(receiver: Receiver) -> None:
    """The name does not exist in real DNS; delivery works only because Veil connects to the address it
    checked, and the receiver still sees the original Host."""
    attempts = _deliver(
        receiver.url(host="hooks.example.invalid"),
        resolver=lambda host, port: ["127.0.0.1"] if host == "hooks.example.invalid" else [],
        sleep=Sleeps(),
    )
    assert attempts[-1].delivered
    assert receiver.received[0].headers["Host"] == f"hooks.example.invalid:{receiver.port}"


def test_dns_rebinding_after_validation_is_refused(receiver: Receiver) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])
    url = receiver.url(host="rebind.example.invalid")
    resolver = lambda host, port: next(answers)  # noqa: E731 - public at submit time, loopback at delivery
    validate_webhook_url(url, allow_private=False, resolver=resolver)
    attempts = _deliver(url, allow_private=False, resolver=resolver, sleep=Sleeps())
    assert attempts[0].error is not None and "loopback" in attempts[0].error
    assert receiver.received == []


def test_dual_stack_falls_back_to_the_next_address(receiver: Receiver) -> None:
    attempts = _deliver(
        receiver.url(host="dual.example.invalid"),
        resolver=lambda host, port: ["::1", "127.0.0.1"],
        sleep=Sleeps(),
    )
    assert [a.delivered for a in attempts] == [True]


@pytest.mark.parametrize(
    ("url", "allow_private", "reason"),
    [
        ("ftp://203.0.113.10/hook", False, "http or https"),
        ("http://user:pw@8.8.8.8/hook", False, "credentials"),
        ("http://10.1.2.3/hook", False, "private"),
        ("http://192.168.0.10:8080/hook", False, "private"),
        ("http://100.64.0.1/hook", False, "address"),
        ("http://169.254.10.10/hook", False, "link-local"),
        ("http://224.0.0.1/hook", False, "multicast"),
        ("http://240.0.0.1/hook", False, "address"),
        ("http://[::1]/hook", False, "loopback"),
        ("http://[fe80::1]/hook", False, "link-local"),
        ("http://[fc00::5]/hook", False, "private"),
        ("http://[::ffff:127.0.0.1]/hook", False, "loopback"),
        ("http://[::ffff:10.0.0.1]/hook", False, "private"),
        ("http://[64:ff9b::a00:1]/hook", False, "private"),
        ("http://[2002:7f00:1::]/hook", False, "loopback"),
        ("http://2130706433/hook", False, "loopback"),  # decimal form of 127.0.0.1
        ("http://169.254.169.254/latest/meta-data", True, "metadata"),
        ("http://[fd00:ec2::254]/", True, "metadata"),
        ("http://[::ffff:169.254.169.254]/", True, "metadata"),
        ("http://0.0.0.0:8000/hook", True, "resolves to an unspecified address"),
        ("http://255.255.255.255/hook", False, "resolves to the broadcast address"),
        ("http://10.1.2.3/hook", False, "resolves to a private address"),
        ("http://no-such-host.invalid/hook", True, "does not resolve"),
    ],
)
def test_refused_urls(url: str, allow_private: bool, reason: str) -> None:
    with pytest.raises(WebhookRefused, match=reason):
        validate_webhook_url(url, allow_private=allow_private)


@pytest.mark.parametrize(
    ("url", "allow_private"),
    [
        ("https://8.8.8.8/hook", False),
        ("http://[2001:4860:4860::8888]:8443/x", False),
        ("http://10.1.2.3/", True),
    ],
)
def test_accepted_urls(url: str, allow_private: bool) -> None:
    validate_webhook_url(url, allow_private=allow_private)


def test_sign_format_and_known_value() -> None:
    header = sign(b"secret", 1_700_000_000, b'{"a":1}')
    # printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
    assert header == "t=1700000000,v1=" + "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"


@pytest.mark.parametrize(
    ("header", "body", "now", "ok"),
    [
        ("SIGNED", BODY, 1_700_000_100, True),
        ("SIGNED", BODY + b" ", 1_700_000_100, False),  # tampered body
        ("SIGNED", BODY, 1_700_000_000 + 301, False),  # too old: replay
        ("SIGNED", BODY, 1_700_000_000 - 301, False),  # from the future
        ("t=1700000000,v1=00", BODY, 1_700_000_000, False),
        ("v1=abc", BODY, 1_700_000_000, False),
        ("t=soon,v1=abc", BODY, 1_700_000_000, False),
        ("", BODY, 1_700_000_000, False),
        ("t=1700000000,v1=é", BODY, 1_700_000_000, False),
        ("ROTATED", BODY, 1_700_000_000, True),  # one of several v1 entries matches
    ],
)
def test_verify(header: str, body: bytes, now: int, ok: bool) -> None:
    signed = sign(SECRET, 1_700_000_000, BODY)
    header = header.replace("SIGNED", signed).replace("ROTATED", signed + ",v1=" + "0" * 64)
    assert verify(SECRET, header, body, now=now) is ok
