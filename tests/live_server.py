"""A real ``veil serve`` (Uvicorn) on a free loopback port, for client and CLI tests.

Users run the real server, so these tests do too: a subprocess with its own ``VEIL_DATA_DIR``, keys made
with the ``veil keys`` CLI exactly as an operator would, and a clean stop (SIGTERM, then SIGKILL) at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["LiveServer", "create_key", "free_port", "live_server"]

VEIL = [sys.executable, "-m", "veil"]


@dataclass(frozen=True)
class LiveServer:
    url: str
    env: dict[str, str]
    """The environment the server runs with; ``veil keys`` must use the same one."""
    data_dir: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@contextmanager
def live_server(
    data_dir: Path, *, env: dict[str, str] | None = None, startup_s: float = 90.0
) -> Iterator[LiveServer]:
    """Start ``veil serve`` with ``VEIL_DATA_DIR=data_dir`` (plus ``env``) and wait for ``/readyz``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_") or k == "VEIL_MODEL_DIR"}
    server_env.update({"VEIL_DATA_DIR": str(data_dir), "VEIL_LOG_FORMAT": "text", **(env or {})})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*VEIL, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"veil serve exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"veil serve not ready after {startup_s:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.2)
        yield LiveServer(url=url, env=server_env, data_dir=data_dir)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def create_key(server: LiveServer, *, name: str = "test", scopes: str = "jobs:read,jobs:write") -> str:
    """A new API key from ``veil keys create --json``, as an operator makes one."""
    done = subprocess.run(
        [*VEIL, "keys", "create", "--name", name, "--scopes", scopes, "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"veil keys create failed: {done.stderr.strip()[-1000:]}")
    return str(json.loads(done.stdout)["key"])
