"""The one helper that starts a real ``veil serve`` (Uvicorn) for tests, on a free loopback port.

Users run the real server, so these tests do too: a subprocess with its own ``VEIL_DATA_DIR``, keys made
with the ``veil keys`` CLI exactly as an operator makes them (same settings, same job store), and a clean
stop (SIGTERM, then SIGKILL) at the end. A test may also SIGKILL it (``kill``) and ``start`` it again on
the same data, as after a crash.

``tests/conftest.py`` starts one busy server and one idle server for the whole session
(``live_server``, ``idle_server``); a test that kills, restarts or reconfigures a server starts its own
through ``LiveServer`` as a context manager::

    with LiveServer(tmp_path / "api", {"VEIL_WORKERS": "0"}) as server:
        key = server.create_key()
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = ["VEIL", "LiveServer", "bearer", "free_port", "wait_for"]

VEIL = [sys.executable, "-m", "veil"]

_KEPT = ("VEIL_MODEL_DIR", "VEIL_INTRA_OP_THREADS")
"""The test's own ``VEIL_*`` variables a server inherits: the model cache, and the onnxruntime threads
``tests/conftest.py`` sets under xdist (the server shares the cores with the other test processes)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """``veil serve`` in its own process group, with ``VEIL_DATA_DIR=data_dir`` plus ``env``; JSON logs in
    ``data_dir/server.log`` (appended to across restarts)."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, *, tls: tuple[Path, Path] | None = None
    ) -> None:
        """``tls``: a (certificate, key) pair to serve HTTPS with (the readiness probe trusts it)."""
        self.data_dir = data_dir
        self.tls = tls
        self.port = 0
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_") or k in _KEPT}
        """The environment the server runs with; ``veil keys`` runs with the same one."""
        self.env.update({"VEIL_DATA_DIR": str(data_dir), "VEIL_LOG_FORMAT": "json", **(env or {})})
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = data_dir / "server.log"

    def start(self, timeout: float = 180.0) -> LiveServer:
        """Start on a new free port and wait until ``/readyz`` answers 200 (models warmed when it has
        workers). Raises with the log's tail if the process exits or is not ready in ``timeout`` s."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = [*VEIL, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        verify: ssl.SSLContext | bool = True
        if self.tls is not None:
            cert, key = self.tls
            args += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
            verify = ssl.create_default_context(cafile=str(cert))
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                args,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0, verify=verify) as probe:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"veil serve exited with {self.proc.returncode}:\n{self.tail()}")
                try:
                    if probe.get(f"{self.url}/readyz").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()  # never leave a server behind
                    raise RuntimeError(f"veil serve not ready after {timeout:.0f} s:\n{self.tail()}")
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crash or the OOM killer."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def tail(self, lines: int = 40) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
        )

    def cli(self, *args: str, shell: bool = False) -> subprocess.CompletedProcess[str]:
        """``veil <args>`` with the server's environment: the CLI app run in this process (it shares the
        server's settings, database and secret), or with ``shell=True`` a new ``python -m veil`` process,
        exactly as an operator types it (a second slower, so most tests take the first)."""
        if shell:
            return subprocess.run(
                [*VEIL, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
            )
        from typer.testing import CliRunner

        from veil.cli import app

        result = CliRunner().invoke(app, list(args), env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return subprocess.CompletedProcess(["veil", *args], result.exit_code, result.stdout, result.stderr)

    def create_key(
        self,
        scopes: str = "jobs:read,jobs:write",
        *,
        name: str = "test",
        tenant: str = "default",
        rate_limit: int | None = None,
        shell: bool = False,
    ) -> dict[str, Any]:
        """A new API key from ``veil keys create --json`` (``key``, ``id``, ``webhook_secret``, ...).
        Tests that share a server give their keys a tenant of their own, so that job lists stay theirs."""
        args = ["keys", "create", "--name", name, "--scopes", scopes, "--tenant", tenant, "--json"]
        if rate_limit is not None:
            args += ["--rate-limit", str(rate_limit)]
        done = self.cli(*args, shell=shell)
        if done.returncode != 0:
            raise RuntimeError(f"veil keys create failed: {done.stderr[-2000:]}")
        created: dict[str, Any] = json.loads(done.stdout)
        return created


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def wait_for(
    client: httpx.Client, headers: dict[str, str], job_id: str, *states: str, timeout: float = 300
) -> Any:
    """Poll ``GET /v1/jobs/{id}`` until the job is in one of ``states``; the job."""
    deadline = time.monotonic() + timeout
    job: Any = None
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} is {job and job['state']} after {timeout} s, wanted {states}")
