"""A real S3-compatible HTTP server for tests: moto in server mode, in its own process.

Use it from a test module (tests/conftest.py stays untouched)::

    pytest_plugins = ["tests.s3server"]
    if TYPE_CHECKING:
        from tests.s3server import S3Server

Register it through ``pytest_plugins`` rather than a runtime import: a module
imported before pytest registers it as a plugin cannot be assert-rewritten,
and that warning is an error in this suite.

``s3_server`` (session scope) starts ``moto.server`` on a free loopback port
and yields an ``S3Server`` with the endpoint and credentials; ``s3_bucket``
creates a fresh, empty bucket per test. ``S3Server.env(bucket)`` gives the
``VEIL_*`` variables that point Veil (or a ``veil worker`` subprocess) at it.

A subprocess rather than ``moto.server.ThreadedMotoServer``: the server does
not compete with the test for the GIL, its imports cannot trip the suite's
``filterwarnings = error``, and worker processes reach it like a real bucket.
"""

from __future__ import annotations

import functools
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

__all__ = ["S3Server", "s3_bucket", "s3_server"]

_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    region: str = "us-east-1"
    access_key_id: str = "veil-test-key"
    secret_access_key: str = "veil-test-secret-do-not-log"

    def client(self) -> Any:
        """A boto3 client for setting up and inspecting buckets in tests (one per server)."""
        return _client(self.endpoint_url, self.region, self.access_key_id, self.secret_access_key)

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """``VEIL_*`` variables that select this server as Veil's blob store."""
        return {
            "VEIL_STORAGE_URL": f"s3://{bucket}/{prefix}".rstrip("/"),
            "VEIL_S3_ENDPOINT_URL": self.endpoint_url,
            "VEIL_S3_REGION": self.region,
            "VEIL_S3_ACCESS_KEY_ID": self.access_key_id,
            "VEIL_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@functools.cache
def _client(endpoint_url: str, region: str, access_key_id: str, secret_access_key: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited early with status {proc.returncode}")
        try:
            httpx.get(f"{url}/moto-api/data.json", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer within {_START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1, alive for the whole test session."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        yield S3Server(endpoint_url=url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new empty bucket, named uniquely so tests never see each other's keys."""
    name = f"veil-test-{uuid.uuid4().hex[:16]}"
    s3_server.client().create_bucket(Bucket=name)
    return name
