"""In-process API fixtures: the real app (``create_app``) on a migrated SQLite file and ``MemoryStorage``,
with ``GateRunner`` as the job function, driven through Starlette's TestClient. Live-server tests
(real Uvicorn, real pipeline) are in ``test_live.py``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.jobs.factories import GateRunner
from veil.api import create_app
from veil.auth.keys import create_api_key
from veil.clock import Clock, utcnow
from veil.settings import Settings
from veil.storage import MemoryStorage

with warnings.catch_warnings():  # Starlette nudges towards httpx2, which is not a dependency here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


class Api:
    """A running app plus helpers to make keys and submit jobs."""

    def __init__(self, client: TestClient, runner: GateRunner, storage: MemoryStorage, media: Path) -> None:
        self.client = client
        self.runner = runner
        self.storage = storage
        self.media = media
        self.services = client.app.state.services  # type: ignore[attr-defined]

    def key(
        self,
        scopes: tuple[str, ...] = ("jobs:read", "jobs:write"),
        *,
        tenant: str = "default",
        rate: int | None = None,
    ) -> dict[str, str]:
        with self.services.db.begin() as session:
            _row, key = create_api_key(
                session=session,
                name="t",
                tenant_id=tenant,
                scopes=list(scopes),
                now=utcnow(),
                rate_limit_per_minute=rate,
            )
        return {"Authorization": f"Bearer {key}"}

    def submit(
        self,
        headers: dict[str, str],
        *,
        spec: str | None = None,
        file: str | bytes | None = "street.jpg",
        params: dict[str, Any] | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Any:
        files: dict[str, Any] = {}
        if isinstance(file, str):
            files["file"] = (file, (self.media / file).read_bytes(), "application/octet-stream")
        elif isinstance(file, bytes):
            files["file"] = ("upload.jpg", file, "application/octet-stream")
        if spec is not None:
            files["spec"] = (None, spec, "application/json")
        return self.client.post(
            "/v1/jobs",
            headers={**headers, **(extra_headers or {})},
            files=files or {"spec": (None, "{}", "application/json")},
            params=params or {},
        )


@pytest.fixture
def make_api(tmp_path: Path, media_dir: Path) -> Iterator[Callable[..., Api]]:
    clients: list[TestClient] = []

    def build(*, runner: GateRunner | None = None, clock: Clock | None = None, **settings: Any) -> Api:
        runner = runner or GateRunner()
        storage = MemoryStorage()
        config = Settings(**{"data_dir": tmp_path / f"app{len(clients)}", **settings})
        app = create_app(config, storage=storage, runner=runner, clock=clock)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        api = Api(client, runner, storage, media_dir)
        api.services.ctx.heartbeat_s = 0.05
        return api

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()
