"""Builders for job-system tests: a migrated SQLite job store, jobs in any state, and ``GateRunner``,
a trivial but real ``JobRunner`` that copies its input and can be held mid-run, so that the queue,
claims, cancellation and webhooks can be tested without loading models. Tests of what the
pipeline produces use the real ``PipelineRunner``."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from veil.clock import utcnow
from veil.errors import JobCanceled
from veil.jobs import blobs, store
from veil.jobs.db import Database, create_db_engine
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.media import MediaInfo, probe
from veil.report import MediaSummary, Report, TrackFrame, TrackReport
from veil.settings import Settings
from veil.spec import RedactionSpec
from veil.storage import Storage


def migrated_db(path: Path) -> Database:
    db = Database(create_db_engine(f"sqlite:///{path}"))
    db.upgrade()
    return db


def add_job(
    db: Database,
    storage: Storage | None = None,
    *,
    tenant_id: str = "default",
    spec: dict[str, Any] | None = None,
    media_path: Path | None = None,
    state: JobState = JobState.QUEUED,
    idempotency_key: str | None = None,
    created_delta_s: float = 0.0,
    kind: str | None = None,
) -> JobRow:
    """A committed job row (and its input blob when ``media_path`` is given)."""
    from veil.ids import new_id

    job_id = new_id("job")
    data = media_path.read_bytes() if media_path is not None else b"not stored"
    key = blobs.input_key(job_id, media_path.suffix if media_path else "")
    if storage is not None and media_path is not None:
        storage.put_stream(key, [data])
    parsed = RedactionSpec.model_validate(spec or {})
    now = utcnow() + timedelta(seconds=created_delta_s)
    with db.begin() as session:
        row = store.create_job(
            session=session,
            job_id=job_id,
            tenant_id=tenant_id,
            api_key_id="key_test",
            spec=parsed.model_dump(mode="json"),
            mode=parsed.mode,
            kind=kind,
            media={},
            input_key=key,
            input_size=len(data),
            input_sha256=hashlib.sha256(data).hexdigest(),
            source_job_id=parsed.source_job,
            idempotency_key=idempotency_key,
            request_fingerprint=None,
            now=now,
            retention=timedelta(hours=1),
        )
        if state is not JobState.QUEUED:
            row.state = state
            if state.terminal:
                row.finished_at = now
    return row


class GateRunner:
    """Copies the input to the output. With ``hold=True`` it waits, reporting progress, until
    ``release()`` or until ``cancel()`` turns true (then raises ``JobCanceled``, like the pipeline)."""

    def __init__(self, *, hold: bool = False, fail_with: Exception | None = None) -> None:
        self.started = threading.Event()
        self._release = threading.Event()
        if not hold:
            self._release.set()
        self.fail_with = fail_with
        self.runs = 0

    def release(self) -> None:
        self._release.set()

    def available_categories(self) -> list[str]:
        return ["face", "license_plate", "qr_code", "barcode"]

    def output_suffix(self, spec: RedactionSpec, info: MediaInfo) -> str:
        return ".jpg" if info.kind == "image" else ".mp4"

    def probe(self, path: Path, *, settings: Settings) -> MediaInfo:
        return probe(path, **settings.probe_limits())

    def run(
        self,
        spec: RedactionSpec,
        input_path: Path,
        output_path: Path | None,
        *,
        info: MediaInfo,
        progress: Callable[[float], None],
        cancel: Callable[[], bool],
        source_report: Report | None,
        thumbnails_dir: Path | None,
    ) -> Report:
        self.runs += 1
        self.started.set()
        progress(0.25)
        while not self._release.wait(0.05):
            if cancel():
                raise JobCanceled("the job was canceled")
        if self.fail_with is not None:
            raise self.fail_with
        if output_path is not None:
            shutil.copyfile(input_path, output_path)
        if thumbnails_dir is not None:
            (thumbnails_dir / "1.jpg").write_bytes(input_path.read_bytes()[:100])
        summary = MediaSummary(
            kind=info.kind, container=info.container, codec=info.codec, width=info.width, height=info.height
        )
        digest = hashlib.sha256(input_path.read_bytes()).hexdigest()
        return Report(
            kind=info.kind,
            mode=spec.mode,
            input=summary,
            output=summary if output_path is not None else None,
            counts={"face": 1},
            tracks=[
                TrackReport(
                    id=1, category="face", frames=[TrackFrame(frame=0, box=(0, 0, 10, 10), score=0.9)]
                )
            ],
            input_sha256=digest,
            output_sha256=digest if output_path is not None else None,
        )
