"""Fixtures shared by every test: real media from ../shared/data, a clean
``VEIL_*`` environment, and a per-test data directory."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from veil.jobs.db import Database, create_db_engine

SHARED_DATA = Path(
    os.environ.get("VEIL_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
"""The real media and dev sets: ``../shared/data`` beside the checkout, or ``VEIL_TEST_DATA``."""
MEDIA = SHARED_DATA / "media"


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
    since it is read-only and expensive to rebuild."""
    model_dir = os.environ.get("VEIL_MODEL_DIR")
    for name in list(os.environ):
        if name.startswith("VEIL_"):
            monkeypatch.delenv(name)
    if model_dir:
        monkeypatch.setenv("VEIL_MODEL_DIR", model_dir)
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
