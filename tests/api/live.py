"""A real ``veil serve`` (Uvicorn) subprocess on a free loopback port with its own ``VEIL_DATA_DIR``,
which tests may SIGKILL and start again on the same data. Keys come from the ``veil keys`` CLI, as an
operator makes them (same settings, same job store)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

VEIL = [sys.executable, "-m", "veil"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_") or k == "VEIL_MODEL_DIR"}
        self.env.update({"VEIL_DATA_DIR": str(data_dir), "VEIL_LOG_FORMAT": "json", **(env or {})})
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = data_dir / "server.log"

    def start(self, timeout: float = 180.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*VEIL, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"veil serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()  # never leave a server behind
                raise RuntimeError(f"veil serve not ready after {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.2)

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

    def tail(self, lines: int = 40) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VEIL, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def create_key(
        self, scopes: str = "jobs:read,jobs:write", *, tenant: str = "default", rate_limit: int | None = None
    ) -> dict[str, Any]:
        args = ["keys", "create", "--name", "test", "--scopes", scopes, "--tenant", tenant, "--json"]
        if rate_limit is not None:
            args += ["--rate-limit", str(rate_limit)]
        done = self.cli(*args)
        if done.returncode != 0:
            raise RuntimeError(f"veil keys create failed: {done.stderr[-2000:]}")
        created: dict[str, Any] = json.loads(done.stdout)
        return created


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def wait_for(
    client: httpx.Client, headers: dict[str, str], job_id: str, *states: str, timeout: float = 300
) -> Any:
    deadline = time.monotonic() + timeout
    job: Any = None
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in states:
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} is {job and job['state']} after {timeout} s, wanted {states}")
