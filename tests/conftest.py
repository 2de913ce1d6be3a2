"""Fixtures shared by every test: real media from ../shared/data, a clean ``VEIL_*`` environment, a
per-test data directory, and the session-wide pieces that are expensive to start: one real ``veil serve``
that runs jobs, one that only queues them, and one engine with its models loaded."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from tests.cores import ORT_THREADS
from tests.live_server import LiveServer
from veil.jobs.db import Database, create_db_engine
from veil.settings import Settings

if TYPE_CHECKING:
    from veil.pipeline import Engine

SHARED_DATA = Path(
    os.environ.get("VEIL_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
"""The real media and dev sets: ``../shared/data`` beside the checkout, or ``VEIL_TEST_DATA``."""
MEDIA = SHARED_DATA / "media"


HEAVY_FIRST = (
    "tests/scale/test_scale.py",
    "tests/web/test_review_page.py",
    "tests/test_pipeline.py",
    "tests/api/test_live.py",
    "tests/test_pipeline_plates.py",
    "tests/detect/yolov8/test_int8.py",
    "tests/detect/yolov8/test_detector.py",
    "tests/redact/test_strength.py",
    "tests/jobs/test_segmented.py",
    "tests/detect/test_centerface_int8.py",
)
"""The costliest modules, most CPU first (measured on the 2-core dev machine). ``make pytest`` hands
whole modules to the xdist workers in collection order, so these start first and the run does not end
with one worker busy on a big module while the other is idle. Other modules keep their place after them."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules of ``HEAVY_FIRST`` first, in its order; each module's tests stay together and in order."""
    rank = {path: i for i, path in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, with one line, when the test data is not where the suite reads it."""
    if not SHARED_DATA.is_dir():
        pytest.exit(
            f"test data not found at {SHARED_DATA}: clone the project next to ../shared, "
            "or point VEIL_TEST_DATA at the shared data directory",
            returncode=4,
        )


@pytest.fixture(autouse=True)
def _clean_veil_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No test sees the developer's VEIL_* variables. The model cache is kept,
    since it is read-only and expensive to rebuild. Under xdist, ``VEIL_INTRA_OP_THREADS`` is 1
    (``tests.cores``), for the settings a test makes and the ``veil`` processes it starts."""
    model_dir = os.environ.get("VEIL_MODEL_DIR")
    for name in list(os.environ):
        if name.startswith("VEIL_"):
            monkeypatch.delenv(name)
    if model_dir:
        monkeypatch.setenv("VEIL_MODEL_DIR", model_dir)
    if ORT_THREADS:
        monkeypatch.setenv("VEIL_INTRA_OP_THREADS", str(ORT_THREADS))
    monkeypatch.setenv("VEIL_DATA_DIR", str(tmp_path_factory.mktemp("veil-data")))
    yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def media_dir(shared_data: Path) -> Path:
    return shared_data / "media"


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_db() -> Iterator[Database]:
    """A throwaway database on the real PostgreSQL at 127.0.0.1:5432, dropped afterwards (not migrated)."""
    name = f"veil_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(create_db_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"))
    try:
        yield db
    finally:
        db.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[object]:
    """A real 16 MB tmpfs (``tests.disk.SmallDisk``) that the test can fill; skipped without root."""
    from contextlib import ExitStack

    from tests.disk import small_disk as mount

    with ExitStack() as stack:
        try:
            disk = stack.enter_context(mount(tmp_path / "disk"))
        except PermissionError as exc:
            pytest.skip(f"no small filesystem to fill: {exc}")
        yield disk


LIVE_ENV = {
    "VEIL_WORKERS": "1",
    "VEIL_IMAGE_LANE": "false",  # one worker thread: jobs queue behind the running one
    "VEIL_MAX_UPLOAD_MB": "5",
    "VEIL_MAX_PIXELS": "5000000",
    "VEIL_WEBHOOK_ALLOW_PRIVATE": "true",
    "VEIL_WEBHOOK_RETRY_SCHEDULE_S": "[0.2, 0.2, 0.2, 0.2, 0.2]",
    **({"VEIL_INTRA_OP_THREADS": str(ORT_THREADS)} if ORT_THREADS else {}),
}
"""The session server: one in-process worker thread (no images lane), upload and pixel limits just above
the shared media (tests hit them with a bigger upload), and webhooks to loopback receivers retried quickly."""

IDLE_ENV = {
    "VEIL_WORKERS": "0",
    "VEIL_RATE_LIMIT_PER_MINUTE": "100000",
    "VEIL_MAX_UPLOAD_MB": "5",
    "VEIL_MAX_WAIT_S": "2",  # generated `?wait=` long-polls on jobs that never run stay short
}
"""The idle server: no workers, so jobs stay queued and queue-side behaviour is deterministic; a rate
limit that generated requests (the OpenAPI fuzz tests) never reach."""


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real ``veil serve`` (Uvicorn, SQLite, local blobs, one in-process worker with warmed models)
    for the whole session. Tests share it: each module makes keys with a tenant of its own, so that the
    jobs it lists are its own."""
    with LiveServer(tmp_path_factory.mktemp("live-server"), LIVE_ENV) as server:
        yield server


@pytest.fixture(scope="session")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real ``veil serve`` with no workers for the whole session: jobs stay ``queued``."""
    with LiveServer(tmp_path_factory.mktemp("idle-server"), IDLE_ENV) as server:
        yield server


@pytest.fixture(scope="session")
def engine() -> Engine:
    """One engine for every in-process test that runs the pipeline: each detector (category, threshold,
    mode, scale) is loaded and warmed once per session, then reused, as a worker process does."""
    from veil.pipeline import Engine  # onnxruntime and PyAV load only for the tests that need them

    return Engine.from_settings(Settings(intra_op_threads=ORT_THREADS))
