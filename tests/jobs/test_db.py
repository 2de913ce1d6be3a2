"""Migrations: the packaged Alembic scripts build exactly the tables the code uses, on SQLite and on a
real PostgreSQL (a throwaway database on 127.0.0.1:5432), and concurrent claims stay exclusive there."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from tests.jobs.factories import add_job
from veil.auth.audit import append_audit
from veil.clock import utcnow
from veil.jobs import store
from veil.jobs.db import Database, create_db_engine, database_url
from veil.jobs.states import JobState
from veil.jobs.tables import Base
from veil.settings import Settings


def _schema_drift(db: Database) -> list[object]:
    with db.engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    assert database_url(Settings(data_dir=tmp_path)) == f"sqlite:///{tmp_path / 'veil.db'}"


def test_sqlite_migrations_match_the_models_and_are_idempotent(tmp_path: Path) -> None:
    db = Database(create_db_engine(f"sqlite:///{tmp_path / 'nested' / 'veil.db'}"))
    db.upgrade()
    db.upgrade()  # every start runs it again
    assert _schema_drift(db) == []
    assert {"jobs", "api_keys", "audit_log", "webhook_deliveries", "alembic_version"} <= set(
        inspect(db.engine).get_table_names()
    )


@pytest.mark.services
def test_postgres_migrations_and_concurrent_claims(postgres_db: Database) -> None:
    postgres_db.upgrade()
    postgres_db.upgrade()
    assert _schema_drift(postgres_db) == []
    with postgres_db.begin() as session:
        assert session.execute(text("SELECT 'queued'::job_state")).scalar_one() == "queued"

    jobs = [add_job(postgres_db) for _ in range(6)]
    claims: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def worker(n: int) -> None:
        barrier.wait()
        for job in jobs:
            with postgres_db.begin() as session:
                claim = store.claim_job(session=session, job_id=job.id, worker_id=f"w{n}", now=utcnow())
            if claim is not None:
                with lock:
                    claims.append((claim.job_id, claim.attempt))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claims) == sorted((j.id, 1) for j in jobs), "each job claimed exactly once"
    with postgres_db.begin() as session:
        assert store.count_jobs_by_state(session=session)[JobState.RUNNING] == 6
        append_audit(session=session, actor="a", action="x", outcome="ok", now=utcnow())
    with pytest.raises(Exception, match="append-only"), postgres_db.begin() as session:
        session.execute(text("DELETE FROM audit_log"))


@pytest.mark.services
def test_a_postgres_that_restarts_or_refuses_is_unavailable_not_an_internal_error(
    postgres_db: Database,
) -> None:
    """While PostgreSQL restarts, every request that needs it failed with a 500 (bench/reliability.py,
    6 x 500 in one restart): a lost or refused connection is ``unavailable`` (503 with Retry-After)."""
    import psycopg

    from tests.scale.fleet import PG_ADMIN
    from veil.api.errors import status_for
    from veil.errors import StorageUnavailable

    with pytest.raises(StorageUnavailable) as ended, postgres_db.begin() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:  # what a restart does to a connection
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        session.execute(text("SELECT 1"))
    assert status_for(ended.value.code) == 503

    refused = Database(create_db_engine("postgresql+psycopg://postgres@127.0.0.1:9/veil"))
    with pytest.raises(StorageUnavailable), refused.begin() as session:
        session.execute(text("SELECT 1"))
    refused.dispose()
