"""Segment-parallel video jobs: split at keyframes, analyse in parallel, stitch, render in parallel, join.

A redaction or detection job on a video longer than ``VEIL_SEGMENT_SECONDS`` runs as many short steps
instead of one long task, so that many workers share one video::

    start ──► analyse 0..n-1 (in parallel) ──► stitch ──► render 0..n-1 (in parallel) ──► finish

The steps compose the pipeline's stages (``veil.pipeline``); this module keeps only the orchestration:
claim, pieces in storage, manifest, dispatch, retries and the job's end (``veil.jobs.lifecycle``).

A ``detect`` job stops after ``stitch``: its finish step writes the report and one thumbnail per track
for the review loop. A redaction of reviewed tracks (``source_job``) goes from ``start`` to ``render``.

``start`` claims the job (the claim's ``attempt`` fences every later step), splits the input, stores
the pieces and a manifest and dispatches ``analyse``; each stage stores its result (tracks as ``.npz``,
encoded pieces) before the next is dispatched; ``finish`` joins, stores report and output, concludes.

Every step is idempotent. It reloads the job and returns when the job is no longer ``running``
under the same attempt, and it skips work whose result is already stored. A queue may deliver a
step twice (a lost worker, Celery's at-least-once delivery, a chord callback fired early): the job
still finishes once, because ``store.finish_job`` is fenced by the attempt. A step that keeps
killing its worker is tried at most ``VEIL_JOB_MAX_ATTEMPTS`` times, then the job fails.

Pieces live under ``jobs/<id>/segments/<attempt>/`` (a takeover starts afresh), are deleted when the job
ends, and are each written whole (an atomic PUT, a rename); a stage trusts only what the manifest lists.

``CeleryDispatcher`` (``veil.jobs.celery_app``) runs the stages as Celery chords; ``run_segmented`` runs
them one after the other in this process, with no broker.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from veil import pipeline
from veil.clock import utcnow
from veil.errors import JobCanceled, JobError, StorageError, VeilError
from veil.jobs import blobs, store
from veil.jobs.heartbeat import Heartbeat
from veil.jobs.lifecycle import (
    CANCELED,
    WorkerContext,
    claim_job,
    conclude_job,
    failure,
    fetch_blob,
    fetch_input,
    given_up,
    job_spec,
    load_source_report,
    store_result,
)
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.private_files import make_private_dirs
from veil.report import Report

if TYPE_CHECKING:
    from veil.pipeline import Engine, Piece, Plan, Split, Track

__all__ = [
    "Incomplete",
    "InlineDispatcher",
    "Manifest",
    "SegmentDispatcher",
    "SegmentedJobs",
    "StartOutcome",
    "run_segmented",
    "segments_prefix",
    "wants_segments",
]

log = logging.getLogger(__name__)

# Share of the job's progress bar each stage covers.
_ANALYSE = (0.02, 0.62)
_RENDER = (0.62, 0.95)
_SOURCE_REPORT = "source-report.json"
_TRACKS = "tracks.npz"


class Incomplete(Exception):
    """A join step ran before all the pieces it needs were stored (a chord callback fired early after a
    redelivered task counted twice). The caller retries it a little later."""


class StartOutcome(Enum):
    STARTED = "started"
    """Claimed, split and handed to the dispatcher."""
    WHOLE = "whole"
    """Not worth splitting or not splittable; the job is queued again for ``execute_job``."""
    SKIPPED = "skipped"
    """Nothing to do here: unknown, finished, or claimed by another live worker."""


@dataclass(frozen=True)
class Manifest:
    """What every step of one attempt needs to know (``veil.pipeline.Split``); ``manifest.json``."""

    job_id: str
    attempt: int
    split_s: float
    video: Split

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        return cls(**{**raw, "video": pipeline.Split.from_dict(raw["video"])})

    def timings(self, scalars: dict[str, float], **more: float) -> dict[str, float]:
        """The report's timings of a split job: the split, the summed analyses, the stitch, and ``more``."""
        return {
            "split": self.split_s,
            "detect": scalars.get("analyse_s", 0.0),
            "stitch": scalars.get("stitch_s", 0.0),
            **more,
            "segments": float(len(self.video.pieces)),
        }


class SegmentDispatcher(Protocol):
    """Runs a stage: every piece (in parallel where the backend can), then the step that joins them."""

    def analyse(self, job_id: str, attempt: int, count: int) -> None:
        """``analyse`` for every index, then ``stitch``."""
        ...

    def render(self, job_id: str, attempt: int, count: int) -> None:
        """``render`` for every index, then ``finish``."""
        ...


def segments_prefix(job_id: str) -> str:
    return f"{blobs.job_prefix(job_id)}segments/"


def _key(job_id: str, attempt: int, name: str) -> str:
    return f"{segments_prefix(job_id)}{attempt}/{name}"


def wants_segments(row: JobRow, *, segment_seconds: float) -> bool:
    """Whether a job is a candidate for segment-parallel processing: a ``redact`` job (detecting, or
    re-rendering reviewed tracks) or a ``detect`` job, on a video longer than ``segment_seconds``."""
    duration = (row.media or {}).get("duration")
    return (
        row.kind == "video"
        and row.mode in ("redact", "detect")
        and isinstance(duration, int | float)
        and float(duration) > segment_seconds
    )


class InlineDispatcher:
    """Runs every piece of a stage one after the other in this process, then the join step."""

    def __init__(self, jobs: SegmentedJobs) -> None:
        self._jobs = jobs

    def analyse(self, job_id: str, attempt: int, count: int) -> None:
        for index in range(count):
            self._jobs.analyse(job_id, attempt, index)
        self._jobs.stitch(job_id, attempt)

    def render(self, job_id: str, attempt: int, count: int) -> None:
        for index in range(count):
            self._jobs.render(job_id, attempt, index)
        self._jobs.finish(job_id, attempt)


class SegmentedJobs:
    """The steps of segment-parallel jobs, for one process: its ``WorkerContext``, its loaded ``Engine``
    and the dispatcher that runs stages (in process when none is given)."""

    def __init__(
        self, *, ctx: WorkerContext, engine: Engine, dispatcher: SegmentDispatcher | None = None
    ) -> None:
        self.ctx = ctx
        self.engine = engine
        self.dispatcher: SegmentDispatcher = dispatcher or InlineDispatcher(self)
        self._storage = ctx.storage

    # -- helpers -----------------------------------------------------------------------------------

    def _current(self, job_id: str, attempt: int) -> JobRow | None:
        """The job when it is still ``running`` under ``attempt``; else ``None`` (finished, canceled,
        deleted, or taken over by a newer attempt)."""
        with self.ctx.db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
        if row is None or JobState(row.state) is not JobState.RUNNING or row.attempts != attempt:
            return None
        return row

    @contextmanager
    def _scratch(self, job_id: str) -> Iterator[Path]:
        make_private_dirs(self.ctx.scratch_dir)
        with tempfile.TemporaryDirectory(prefix=f"{job_id}-seg-", dir=self.ctx.scratch_dir) as tmp:
            yield Path(tmp)

    def _bytes(self, job_id: str, attempt: int, name: str) -> bytes:
        return b"".join(self._storage.iter_range(_key(job_id, attempt, name)))

    def _put(self, job_id: str, attempt: int, name: str, data: bytes) -> None:
        self._storage.put_stream(_key(job_id, attempt, name), [data])

    def _has(self, job_id: str, attempt: int, name: str) -> bool:
        return bool(self._storage.exists(_key(job_id, attempt, name)))

    def _source(self, job_id: str, attempt: int, piece: Piece, tmp: Path) -> Path:
        name = _source_name(piece.index, piece.suffix)
        return fetch_blob(self._storage, _key(job_id, attempt, name), tmp / name)

    def _manifest(self, job_id: str, attempt: int) -> Manifest:
        return Manifest.from_json(self._bytes(job_id, attempt, "manifest.json"))

    def _tracks(self, job_id: str, attempt: int, name: str = _TRACKS) -> tuple[list[Track], dict[str, float]]:
        return pipeline.tracks_from_npz(self._bytes(job_id, attempt, name))

    def _plan(self, row: JobRow, attempt: int, *, detects: bool = False) -> Plan:
        """The plan of this step; a re-render's keeps the slim source report that ``start`` stored."""
        source = None
        if row.source_job_id is not None:
            source = Report.model_validate_json(self._bytes(row.id, attempt, _SOURCE_REPORT))
        return pipeline.Plan.build(
            job_spec(row), engine=self.engine if detects else None, source_report=source
        )

    def _conclude(self, row: JobRow, attempt: int, finish: store.Finish) -> JobState | None:
        started = row.started_at
        seconds = max((utcnow() - started).total_seconds(), 0.0) if started is not None else 0.0
        state = conclude_job(
            self.ctx, row, store.Claim(job_id=row.id, attempt=attempt), finish, seconds=seconds
        )
        if state is not None:
            try:
                self._storage.delete_prefix(segments_prefix(row.id))
            except StorageError:  # retention deletes the job's prefix later anyway
                log.warning("segment cleanup failed", extra={"job_id": row.id}, exc_info=True)
        return state

    def fail(self, job_id: str, attempt: int, finish: store.Finish) -> JobState | None:
        """End the job with ``finish`` if ``attempt`` still runs it (a step gave up after its retries)."""
        row = self._current(job_id, attempt)
        return None if row is None else self._conclude(row, attempt, finish)

    def _guard(self, job_id: str, attempt: int, step: str, body: Callable[[JobRow, Heartbeat], None]) -> None:
        """Run ``body`` if the job is still ours, with a heartbeat; turn its failures into the job's end."""
        row = self._current(job_id, attempt)
        if row is None:
            return
        if row.cancel_requested:
            self._conclude(row, attempt, CANCELED)
            return
        claim = store.Claim(job_id=job_id, attempt=attempt)
        ctx = self.ctx
        with Heartbeat(
            ctx.db, claim, every_s=ctx.heartbeat_s, shutdown=ctx.shutdown, keep_highest=True
        ) as beat:
            try:
                body(row, beat)
            except JobCanceled:
                if beat.cancel_requested:
                    self._conclude(row, attempt, CANCELED)
                elif ctx.shutdown.is_set() and not beat.lost:
                    with ctx.db.begin() as session:
                        store.requeue_job(session=session, claim=claim)
                    log.info("segmented job returned to the queue at shutdown", extra={"job_id": job_id})
            except (Incomplete, StorageError):
                raise  # the caller retries: a piece is on its way, or the store hiccupped
            except VeilError as exc:
                extra = {"job_id": job_id, "step": step, "error_code": exc.code}
                log.info("segment step failed", extra=extra)
                self._conclude(row, attempt, failure(exc))

    def _piece(self, job_id: str, attempt: int, step: str, index: int) -> None:
        """Run piece ``index`` of a stage unless its result is stored, at most ``job_max_attempts`` times:
        a piece that keeps killing its worker, or keeps failing, cannot loop forever."""
        analysing = step == "analyse"

        def body(row: JobRow, beat: Heartbeat) -> None:
            manifest = self._manifest(job_id, attempt)
            suffix = manifest.video.output_suffix
            name = _analysis_name(index) if analysing else _rendered_name(index, suffix)
            if self._has(job_id, attempt, name):
                return
            limit = self.ctx.settings.job_max_attempts
            tries = [f"tries/{step}-{index:05d}-{n}" for n in range(1, limit + 1)]
            fresh = next((t for t in tries if not self._has(job_id, attempt, t)), None)
            if fresh is None:
                raise JobError(f"segment {index} failed on {limit} tries")
            self._put(job_id, attempt, fresh, b"")
            (self._analyse if analysing else self._render)(row, manifest, index, beat)

        self._guard(job_id, attempt, step, body)

    def _mark(self, job_id: str, attempt: int, name: str) -> None:
        """Record that a stage was handed to the dispatcher, unless the job ended meanwhile (the
        in-process dispatcher runs the whole job before returning, and its pieces are deleted)."""
        if self._current(job_id, attempt) is not None:
            self._put(job_id, attempt, name, b"")

    def dispatched(self, job_id: str) -> bool:
        """Whether the running attempt of ``job_id`` has handed its pieces to the dispatcher: a
        redelivered start then has nothing left to do, since the pieces travel as their own tasks."""
        with self.ctx.db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
        if row is None or JobState(row.state) is not JobState.RUNNING:
            return False
        return self._has(job_id, row.attempts, "analyse-dispatched")

    def _done_pieces(self, job_id: str, attempt: int, names: Sequence[str]) -> int:
        return sum(1 for name in names if self._has(job_id, attempt, name))

    def _progress(
        self, beat: Heartbeat, stage: tuple[float, float], done: int, total: int
    ) -> Callable[[float], None]:
        lo, hi = stage
        return lambda f: beat.set_progress(lo + (hi - lo) * min((done + f) / total, 1.0))

    # -- start ---------------------------------------------------------------------------------------

    def start(self, job_id: str) -> StartOutcome:
        """Claim the job, split its input and dispatch the analyse stage; see ``StartOutcome``."""
        ctx = self.ctx
        claimed = claim_job(ctx, job_id)
        if claimed is None:
            return StartOutcome.SKIPPED
        row, claim = claimed
        exhausted = given_up(ctx, claim)
        if exhausted is not None:
            self._conclude(row, claim.attempt, exhausted)
            return StartOutcome.SKIPPED
        outcome: list[StartOutcome] = [StartOutcome.SKIPPED]

        def body(row: JobRow, beat: Heartbeat) -> None:
            outcome[0] = self._split(row, claim, beat)

        try:
            self._guard(job_id, claim.attempt, "start", body)
        except Exception:
            # A transient failure (storage, database): give the job back, so that the retry can claim it.
            with ctx.db.begin() as session:
                store.requeue_job(session=session, claim=claim)
            raise
        if outcome[0] is StartOutcome.WHOLE:
            with ctx.db.begin() as session:
                store.requeue_job(session=session, claim=claim)
        elif outcome[0] is StartOutcome.STARTED:
            count = len(self._manifest(job_id, claim.attempt).video.pieces)
            if row.source_job_id is not None:  # reviewed tracks: nothing to detect
                self.dispatcher.render(job_id, claim.attempt, count)
                self._mark(job_id, claim.attempt, "render-dispatched")
            else:
                self.dispatcher.analyse(job_id, claim.attempt, count)
                self._mark(job_id, claim.attempt, "analyse-dispatched")
        return outcome[0]

    def _split(self, row: JobRow, claim: store.Claim, beat: Heartbeat) -> StartOutcome:
        attempt = claim.attempt
        source_report = load_source_report(self.ctx, row)
        plan = pipeline.Plan.build(job_spec(row), source_report=source_report)
        started = time.perf_counter()
        with self._scratch(row.id) as tmp:
            input_path = fetch_input(self.ctx, row, tmp)
            try:
                cut, paths = pipeline.split(plan, input_path, tmp / "split", settings=self.ctx.settings)
            except pipeline.Unsplittable as exc:
                log.info("segmented run declined", extra={"job_id": row.id, "reason": str(exc)})
                return StartOutcome.WHOLE
            for piece, path in zip(cut.pieces, paths, strict=True):
                if beat.should_stop():
                    raise JobCanceled("the job was canceled")
                self._storage.put_file(_key(row.id, attempt, _source_name(piece.index, piece.suffix)), path)
                beat.set_progress(_ANALYSE[0] * (piece.index + 1) / len(cut.pieces))
            if source_report is not None:
                self._put(row.id, attempt, _TRACKS, pipeline.tracks_to_npz(plan.reviewed_tracks()))
                # Render and finish need only its categories and models: keep those, not every box.
                slim = [t.model_copy(update={"frames": []}) for t in source_report.tracks]
                data = source_report.model_copy(update={"tracks": slim}).model_dump_json().encode("utf-8")
                self._put(row.id, attempt, _SOURCE_REPORT, data)
            manifest = Manifest(row.id, attempt, split_s=time.perf_counter() - started, video=cut)
            self._put(row.id, attempt, "manifest.json", manifest.to_json())
        log.info("segmented job split", extra={"job_id": row.id, "segments": len(cut.pieces)})
        return StartOutcome.STARTED

    # -- analyse -------------------------------------------------------------------------------------

    def analyse(self, job_id: str, attempt: int, index: int) -> None:
        """Detect and track segment ``index`` plus the overlap into the next one; store the tracks."""
        self._piece(job_id, attempt, "analyse", index)

    def _analyse(self, row: JobRow, manifest: Manifest, index: int, beat: Heartbeat) -> None:
        attempt, pieces = manifest.attempt, manifest.video.pieces
        plan = self._plan(row, attempt, detects=True)
        done = self._done_pieces(row.id, attempt, [_analysis_name(i) for i in range(len(pieces))])
        started = time.perf_counter()
        with self._scratch(row.id) as tmp:
            mine = pieces[index : index + 2]  # the segment, and the next one for the overlap
            sources = [self._source(row.id, attempt, p, tmp) for p in mine]
            tracks = pipeline.analyse_segment(
                self.engine,
                plan,
                sources,
                video=manifest.video,
                index=index,
                progress=self._progress(beat, _ANALYSE, done, len(pieces)),
                cancel=beat.should_stop,
            )
        data = pipeline.tracks_to_npz(tracks, seconds=time.perf_counter() - started)
        self._put(row.id, attempt, _analysis_name(index), data)

    # -- stitch --------------------------------------------------------------------------------------

    def stitch(self, job_id: str, attempt: int) -> None:
        """Join the segments' tracks into video-wide ones and dispatch the render stage.

        Raises ``Incomplete`` when an analysis is not stored yet."""
        dispatch: list[int] = []
        detect_only: list[bool] = []

        def body(row: JobRow, beat: Heartbeat) -> None:
            manifest = self._manifest(job_id, attempt)
            if not self._has(job_id, attempt, _TRACKS):
                self._stitch(manifest)
            if row.mode == "detect":
                detect_only.append(True)
            elif not self._has(job_id, attempt, "render-dispatched"):
                dispatch.append(len(manifest.video.pieces))

        self._guard(job_id, attempt, "stitch", body)
        if detect_only:  # nothing to render: conclude here, on this worker
            self.finish(job_id, attempt)
        elif dispatch:
            self.dispatcher.render(job_id, attempt, dispatch[0])
            self._mark(job_id, attempt, "render-dispatched")

    def _stitch(self, manifest: Manifest) -> None:
        job_id, attempt = manifest.job_id, manifest.attempt
        names = [_analysis_name(p.index) for p in manifest.video.pieces]
        if self._done_pieces(job_id, attempt, names) < len(names):
            raise Incomplete(f"job {job_id}: not every segment is analysed yet")
        started = time.perf_counter()
        loaded = [self._tracks(job_id, attempt, name) for name in names]
        per_segment = [(p.start_frame, t) for p, (t, _) in zip(manifest.video.pieces, loaded, strict=True)]
        stitched = pipeline.stitch(per_segment)
        analyse_s = sum(scalars.get("seconds", 0.0) for _, scalars in loaded)
        data = pipeline.tracks_to_npz(stitched, analyse_s=analyse_s, stitch_s=time.perf_counter() - started)
        self._put(job_id, attempt, _TRACKS, data)

    # -- render --------------------------------------------------------------------------------------

    def render(self, job_id: str, attempt: int, index: int) -> None:
        """Mask and encode segment ``index`` with the stitched tracks; store the encoded piece."""
        self._piece(job_id, attempt, "render", index)

    def _render(self, row: JobRow, manifest: Manifest, index: int, beat: Heartbeat) -> None:
        attempt, video = manifest.attempt, manifest.video
        plan = self._plan(row, attempt)
        tracks, _ = self._tracks(row.id, attempt)
        names = [_rendered_name(i, video.output_suffix) for i in range(len(video.pieces))]
        done = self._done_pieces(row.id, attempt, names)
        started = time.perf_counter()
        with self._scratch(row.id) as tmp:
            piece, dst = video.pieces[index], tmp / f"rendered{video.output_suffix}"
            pipeline.render_segment(
                plan,
                self._source(row.id, attempt, piece, tmp),
                dst,
                tracks,
                video=video,
                index=index,
                progress=self._progress(beat, _RENDER, done, len(names)),
                cancel=beat.should_stop,
            )
            seconds = json.dumps({"seconds": time.perf_counter() - started}).encode()
            self._put(row.id, attempt, f"rendered-{index:05d}.json", seconds)
            self._storage.put_file(_key(row.id, attempt, names[index]), dst)

    # -- finish --------------------------------------------------------------------------------------

    def finish(self, job_id: str, attempt: int) -> None:
        """Join the rendered pieces with the source's audio (a detect job: write a thumbnail per track),
        report, store and conclude. Raises ``Incomplete`` when a rendered piece is not stored yet."""

        def body(row: JobRow, beat: Heartbeat) -> None:
            manifest = self._manifest(job_id, attempt)
            names = [_rendered_name(p.index, manifest.video.output_suffix) for p in manifest.video.pieces]
            if row.mode != "detect" and self._done_pieces(job_id, attempt, names) < len(names):
                raise Incomplete(f"job {job_id}: not every segment is rendered yet")
            plan = self._plan(row, attempt)
            with self._scratch(job_id) as tmp:
                input_path = fetch_input(self.ctx, row, tmp)
                output: Path | None = None
                thumbnails: Path | None = None
                if row.mode == "detect":
                    beat.set_progress(_RENDER[0])
                    thumbnails = tmp / "thumbs"
                    report = self._report_detect(plan, manifest, input_path, thumbnails)
                else:
                    beat.set_progress(_RENDER[1])
                    output = tmp / f"output{manifest.video.output_suffix}"
                    report = self._join(plan, manifest, input_path, output)
                if beat.should_stop():
                    raise JobCanceled("the job was canceled")
                claim = store.Claim(job_id=job_id, attempt=attempt)
                result = store_result(self.ctx, claim, report, output_path=output, thumbnails=thumbnails)
            self._conclude(row, attempt, result)

        self._guard(job_id, attempt, "finish", body)

    def _report_detect(self, plan: Plan, manifest: Manifest, input_path: Path, thumbnails: Path) -> Report:
        """A detect job's end: the report with the stitched tracks, a thumbnail per track, and a preview
        when browsers cannot play the video."""
        tracks, scalars = self._tracks(manifest.job_id, manifest.attempt)
        thumbnails.mkdir()
        info = pipeline.probe(input_path)
        started = time.perf_counter()
        pipeline.write_video_thumbnails(thumbnails, tracks, input_path)
        pipeline.write_video_preview(thumbnails, input_path, info)
        timings = manifest.timings(scalars, thumbnails=time.perf_counter() - started)
        return pipeline.report(
            self.engine, plan, input_path=input_path, tracks=tracks, info=info, timings=timings
        )

    def _join(self, plan: Plan, manifest: Manifest, input_path: Path, output: Path) -> Report:
        """A redaction's end: the rendered pieces joined with the source's audio, and its report."""
        job_id, attempt = manifest.job_id, manifest.attempt
        tracks, scalars = self._tracks(job_id, attempt)
        render_s = 0.0
        paths = []
        for piece in manifest.video.pieces:
            sidecar = json.loads(self._bytes(job_id, attempt, f"rendered-{piece.index:05d}.json"))
            render_s += float(sidecar.get("seconds", 0.0))
            name = _rendered_name(piece.index, manifest.video.output_suffix)
            paths.append(fetch_blob(self._storage, _key(job_id, attempt, name), output.parent / name))
        started = time.perf_counter()
        info, output_info = pipeline.join(plan, paths, output, input_path=input_path)
        timings = manifest.timings(scalars, render=render_s, join=time.perf_counter() - started)
        return pipeline.report(
            self.engine,
            plan,
            input_path=input_path,
            info=info,
            tracks=tracks,
            output_path=output,
            output_info=output_info,
            timings=timings,
        )


def run_segmented(job_id: str, *, ctx: WorkerContext, engine: Engine) -> StartOutcome:
    """Run a segmented job to its end in this process, step after step (no broker). Returns ``WHOLE``
    when the job does not split (it is queued again for ``execute_job``). Unexpected errors fail the
    job with ``internal_error``, as ``execute_job`` does."""
    jobs = SegmentedJobs(ctx=ctx, engine=engine)
    try:
        return jobs.start(job_id)
    except Exception as exc:
        with ctx.db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
        if row is not None and JobState(row.state) is JobState.RUNNING:
            extra = {"job_id": job_id, "error_type": type(exc).__name__}
            log.error("segmented job crashed", extra=extra, exc_info=True)
            jobs.fail(job_id, row.attempts, failure(exc))
        return StartOutcome.STARTED


def _source_name(index: int, suffix: str) -> str:
    return f"source-{index:05d}{suffix}"


def _analysis_name(index: int) -> str:
    return f"analysis-{index:05d}.npz"


def _rendered_name(index: int, suffix: str) -> str:
    return f"rendered-{index:05d}{suffix}"
