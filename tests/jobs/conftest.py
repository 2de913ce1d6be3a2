from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs.factories import GateRunner, migrated_db
from veil.jobs.db import Database
from veil.jobs.worker import WorkerContext
from veil.settings import Settings
from veil.storage import MemoryStorage


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return migrated_db(tmp_path / "veil.db")


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, webhook_allow_private=True, webhook_retry_schedule_s=(0.01,) * 5)


def make_ctx(
    settings: Settings, db: Database, storage: MemoryStorage, runner: GateRunner, **kw: object
) -> WorkerContext:
    ctx = WorkerContext.from_settings(settings, db=db, storage=storage, runner=runner, **kw)  # type: ignore[arg-type]
    ctx.heartbeat_s = 0.05
    return ctx
