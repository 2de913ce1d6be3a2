"""The job store on a real, migrated SQLite file: races are decided by the database."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.jobs.factories import add_job, migrated_db
from veil.auth.audit import append_audit, list_audit
from veil.auth.keys import create_api_key, find_api_key, revoke_api_key
from veil.clock import utcnow
from veil.jobs import store
from veil.jobs.db import Database
from veil.jobs.states import JobState

HOUR = timedelta(hours=1)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return migrated_db(tmp_path / "veil.db")


def test_sqlite_runs_in_wal_mode(db: Database) -> None:
    with db.begin() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"


def test_only_one_of_many_concurrent_claims_wins(db: Database) -> None:
    job = add_job(db)
    results: list[store.Claim | None] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        with db.begin() as session:
            results.append(store.claim_job(session=session, job_id=job.id, worker_id=f"w{n}", now=utcnow()))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].attempt == 1
    with db.begin() as session:
        assert store.get_job(session=session, job_id=job.id).state is JobState.RUNNING


def test_a_stale_running_job_can_be_taken_over_and_the_old_run_is_fenced_out(db: Database) -> None:
    job = add_job(db)
    now = utcnow()
    with db.begin() as session:
        first = store.claim_job(session=session, job_id=job.id, worker_id="a", now=now)
    with db.begin() as session:  # heartbeat fresh: not takeable
        assert (
            store.claim_job(session=session, job_id=job.id, worker_id="b", now=now, stale_before=now - HOUR)
            is None
        )
    with db.begin() as session:
        second = store.claim_job(
            session=session, job_id=job.id, worker_id="b", now=now, stale_before=now + timedelta(seconds=1)
        )
    assert first is not None and second is not None and second.attempt == 2
    with db.begin() as session:
        assert store.heartbeat(session=session, claim=first, progress=0.5, now=now) is None
        lost = store.finish_job(
            session=session,
            job_id=job.id,
            claim=first,
            finish=store.Finish(state=JobState.SUCCEEDED),
            now=now,
            retention=HOUR,
        )
        assert lost is None, "the run that lost its claim must not finish the job"
        won = store.finish_job(
            session=session,
            job_id=job.id,
            claim=second,
            finish=store.Finish(state=JobState.SUCCEEDED, counts={"face": 3}),
            now=now,
            retention=HOUR,
        )
    assert won is not None and won.state is JobState.SUCCEEDED and won.counts == {"face": 3}
    assert won.expires_at == now + HOUR


def test_cancel_queued_is_immediate_running_is_flagged_terminal_is_refused(db: Database) -> None:
    queued, running = add_job(db), add_job(db)
    now = utcnow()
    with db.begin() as session:
        claim = store.claim_job(session=session, job_id=running.id, worker_id="w", now=now)
        assert claim is not None
        canceled = store.request_cancel(session=session, job_id=queued.id, now=now, retention=HOUR)
        flagged = store.request_cancel(session=session, job_id=running.id, now=now, retention=HOUR)
        assert store.heartbeat(session=session, claim=claim, progress=0.3, now=now) is True
    assert canceled is not None and canceled.state is JobState.CANCELED and canceled.error_code == "canceled"
    assert flagged is not None and flagged.state is JobState.RUNNING and flagged.cancel_requested
    with db.begin() as session:
        assert store.request_cancel(session=session, job_id=queued.id, now=now, retention=HOUR) is None


def test_restart_recovery_requeues_running_jobs_only(db: Database) -> None:
    running, queued, done = add_job(db), add_job(db), add_job(db, state=JobState.SUCCEEDED)
    with db.begin() as session:
        store.claim_job(session=session, job_id=running.id, worker_id="dead", now=utcnow())
        assert store.requeue_running_jobs(session=session) == [running.id]
        states = {j: store.get_job(session=session, job_id=j).state for j in (running.id, queued.id, done.id)}
    assert states == {running.id: JobState.QUEUED, queued.id: JobState.QUEUED, done.id: JobState.SUCCEEDED}


def test_delete_flags_running_and_cancels_queued(db: Database) -> None:
    queued, running = add_job(db), add_job(db)
    now = utcnow()
    with db.begin() as session:
        store.claim_job(session=session, job_id=running.id, worker_id="w", now=now)
        flagged = store.mark_deleted(session=session, job_id=running.id, now=now, retention=HOUR)
        assert flagged is not None and flagged.state is JobState.RUNNING and flagged.cancel_requested
        assert store.next_queued_job_ids(session=session, limit=10) == [queued.id]
        assert store.mark_deleted(session=session, job_id=running.id, now=now, retention=HOUR) is None
        assert store.requeue_running_jobs(session=session) == [], "a deleted job never runs again"
        deleted = store.mark_deleted(session=session, job_id=queued.id, now=now, retention=HOUR)
        assert deleted is not None and deleted.state is JobState.CANCELED
        assert store.get_job(session=session, job_id=queued.id) is None, "a deleted job is gone from the API"
        assert store.get_job(session=session, job_id=queued.id, include_deleted=True) is not None


def test_list_pages_newest_first_by_tenant_with_filters(db: Database) -> None:
    jobs = [add_job(db, created_delta_s=i) for i in range(5)]
    add_job(db, tenant_id="other")
    add_job(db, state=JobState.FAILED, created_delta_s=10)
    with db.begin() as session:
        first = store.list_jobs(session=session, tenant_id="default", limit=3)
        after = (first[-1].created_at, first[-1].id)
        second = store.list_jobs(session=session, tenant_id="default", limit=3, after=after)
        queued = store.list_jobs(session=session, tenant_id="default", limit=10, state=JobState.QUEUED)
    assert [j.id for j in first][1:] == [jobs[4].id, jobs[3].id]
    assert [j.id for j in second] == [jobs[2].id, jobs[1].id, jobs[0].id]
    assert {j.id for j in queued} == {j.id for j in jobs}


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90LWEtY3Vyc29y", "YXxifGM"])
def test_cursor_roundtrip_and_garbage(cursor: str) -> None:
    assert store.decode_cursor(store.encode_cursor("2024-01-01T00:00:00+00:00", "job_1"), parts=2) == [
        "2024-01-01T00:00:00+00:00",
        "job_1",
    ]
    with pytest.raises(ValueError):
        store.decode_cursor(cursor, parts=2)


def test_idempotency_key_is_unique_per_tenant(db: Database) -> None:
    add_job(db, idempotency_key="k1")
    add_job(db, idempotency_key="k1", tenant_id="other")
    with pytest.raises(IntegrityError):
        add_job(db, idempotency_key="k1")


def test_api_keys_are_stored_hashed_and_revocation_is_immediate(db: Database) -> None:
    now = utcnow()
    with db.begin() as session:
        row, key = create_api_key(session=session, name="n", tenant_id="t", scopes=["jobs:read"], now=now)
    with db.begin() as session:
        stored = session.execute(text("SELECT key_hash, prefix FROM api_keys")).one()
        assert key not in stored and key.startswith(stored.prefix)
        assert find_api_key(session=session, key=key).id == row.id
        assert find_api_key(session=session, key=key + "x") is None
        assert revoke_api_key(session=session, key_id=row.id, now=now)
        assert not revoke_api_key(session=session, key_id=row.id, now=now)
        assert find_api_key(session=session, key=key) is None


@pytest.mark.parametrize("scopes", [[], ["jobs:delete"], ["admin", "root"]])
def test_unknown_scopes_are_refused(db: Database, scopes: list[str]) -> None:
    with db.begin() as session, pytest.raises(ValueError):
        create_api_key(session=session, name="n", tenant_id="t", scopes=scopes, now=utcnow())


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET outcome = 'tampered'", "DELETE FROM audit_log"])
def test_audit_log_is_append_only_in_the_database(db: Database, statement: str) -> None:
    with db.begin() as session:
        append_audit(
            session=session, actor="a", action="job.create", outcome="ok", now=utcnow(), tenant_id="t"
        )
    with pytest.raises(DBAPIError), db.begin() as session:
        session.execute(text(statement))
    with db.begin() as session:
        assert [r.outcome for r in list_audit(session=session, tenant_id="t", limit=10)] == ["ok"]


def test_usage_counts_only_the_tenant(db: Database) -> None:
    add_job(db)
    add_job(db, tenant_id="other")
    with db.begin() as session:
        used = store.usage(session=session, tenant_id="default", now=utcnow())
    assert (
        used.jobs_by_state[JobState.QUEUED] == 1
        and used.jobs_last_24h == 1
        and used.bytes_in == len(b"not stored")
    )


def test_a_new_run_starts_its_progress_from_zero(db: Database) -> None:
    """After a restart the old run's progress must not show until the new run passes it."""
    job = add_job(db)
    now = utcnow()
    with db.begin() as session:
        claim = store.claim_job(session=session, job_id=job.id, worker_id="w", now=now)
        assert claim is not None
        store.heartbeat(session=session, claim=claim, progress=0.7, now=now)
        assert store.requeue_running_jobs(session=session) == [job.id]
        assert store.get_job(session=session, job_id=job.id).progress == 0.0  # type: ignore[union-attr]
        store.heartbeat(session=session, claim=claim, progress=0.7, now=now)  # lost claim: no effect
        again = store.claim_job(session=session, job_id=job.id, worker_id="w2", now=now)
        assert again is not None
        assert store.get_job(session=session, job_id=job.id).progress == 0.0  # type: ignore[union-attr]
