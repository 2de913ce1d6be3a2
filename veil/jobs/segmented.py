"""Segment-parallel video jobs: split at keyframes, analyse in parallel, stitch, render in parallel, join.

A redaction or detection job on a video longer than ``VEIL_SEGMENT_SECONDS`` runs as many short steps
instead of one long task, so that many workers share one video::

    start ──► analyse 0..n-1 (in parallel) ──► stitch ──► render 0..n-1 (in parallel) ──► finish

A ``detect`` job stops after ``stitch``: its finish step (run by the stitch task) writes the report
and one thumbnail per track for the review loop, and renders nothing. A redaction of reviewed tracks
(``source_job``) detects nothing: ``start`` stores the chosen tracks and goes straight to ``render``.

* ``start`` claims the job (the claim's ``attempt`` fences every later step), cuts the input at clean
  keyframes by stream copy (``veil.media.segments``), stores the pieces and a manifest, and hands
  the analyse stage to a ``SegmentDispatcher``.
* ``analyse`` i detects and tracks segment i followed by the first ``overlap_frames`` of segment
  i+1, so that a face crossing a border is seen by both neighbours on the shared frames.
* ``stitch`` matches the tracks on those shared frames (``veil.track.stitch_segment_tracks``): one id
  per face for the whole video, and a box on every frame that either side would have masked.
* ``render`` i masks segment i with the global tracks and encodes it. Encoder settings that shape
  the codec parameters (B-frames, declared frame rate, target bit rate) are decided once from the
  whole source, so that every piece can be joined to the others.
* ``finish`` joins the pieces without re-encoding, muxes the source's audio back, checks that the
  output has exactly the source's frames, stores the report and the output (a temporary key, then
  promoted) and concludes the job.

Every step is idempotent. It reloads the job and returns when the job is no longer ``running``
under the same attempt, and it skips work whose result is already stored. A queue may deliver a
step twice (a lost worker, Celery's at-least-once delivery, a chord callback fired early): the job
still finishes once, because ``store.finish_job`` is fenced by the attempt. A step that keeps
killing its worker is tried at most ``VEIL_JOB_MAX_ATTEMPTS`` times, then the job fails.

Pieces live under ``jobs/<id>/segments/<attempt>/`` (a takeover starts afresh) and are deleted
when the job ends; retention deletes the whole ``jobs/<id>/`` prefix anyway. Each piece is one
object written whole (an atomic PUT on S3, a rename on local disk), and a stage trusts only the
pieces the manifest lists.

``CeleryDispatcher`` (``veil.jobs.celery_app``) runs the stages as Celery chords. ``run_segmented``
runs them one after the other in this process, with no broker at all.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from veil.clock import utcnow
from veil.errors import JobCanceled, JobError, MediaError, StorageError, UnsupportedMedia, VeilError
from veil.jobs import blobs, store
from veil.jobs.heartbeat import Heartbeat
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.jobs.worker import WorkerContext, conclude_job, load_source_report
from veil.media.formats import content_type_for
from veil.report import Report
from veil.spec import RedactionSpec

if TYPE_CHECKING:  # the engine pulls in onnxruntime and PyAV: load them only when a step runs
    from veil.pipeline import Engine
    from veil.track import Track

__all__ = [
    "STITCH_IOU",
    "Incomplete",
    "InlineDispatcher",
    "Manifest",
    "SegmentDispatcher",
    "SegmentPiece",
    "SegmentedJobs",
    "StartOutcome",
    "overlap_frames",
    "run_segmented",
    "segments_prefix",
    "wants_segments",
]

log = logging.getLogger(__name__)

STITCH_IOU = 0.3
"""Mean IoU on the shared frames above which two segment tracks are one face (see ``veil.track.stitch``)."""

# Share of the job's progress bar each stage covers.
_ANALYSE = (0.02, 0.62)
_RENDER = (0.62, 0.95)


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
class SegmentPiece:
    """One segment of the source: frames ``start_frame .. start_frame + frame_count - 1``."""

    index: int
    start_frame: int
    frame_count: int
    start_time_s: float
    suffix: str


@dataclass(frozen=True)
class Manifest:
    """What every step of one attempt needs to know about the split; stored as ``manifest.json``."""

    job_id: str
    attempt: int
    frame_count: int
    overlap_frames: int
    time_origin_s: float
    """Presentation time of the source's first frame (manual regions are timed on the source)."""
    input_suffix: str
    output_suffix: str
    frame_rate: str
    """The source's average rate as ``num/den``: every segment's encoder declares it."""
    bit_rate: int | None
    """The source's video bit rate: the target of every segment when ``keep_bitrate`` is asked for."""
    b_frames: bool
    """False when the source has a variable frame rate (then no segment uses B-frames)."""
    split_s: float
    pieces: tuple[SegmentPiece, ...]

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        raw["pieces"] = tuple(SegmentPiece(**p) for p in raw["pieces"])
        return cls(**raw)


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


def overlap_frames(spec: RedactionSpec, fps: Fraction | None) -> int:
    """Frames of the next segment each analyse step also tracks: about one second, and always enough
    to bridge a gap, pad a track and see the face in several detections on both sides of a border."""
    tracking = spec.tracking
    every = spec.detection.detect_every
    needed = max(tracking.gap_frames, tracking.pad_before, tracking.pad_after) + 4 * every
    second = round(float(fps)) if fps else 30
    return int(max(needed, second))


# --- tracks on the wire -------------------------------------------------------------------------------


def _tracks_to_npz(tracks: Sequence[Track], **scalars: float) -> bytes:
    buf = io.BytesIO()
    arrays: dict[str, Any] = {
        "track_id": np.array([t.track_id for t in tracks], dtype=np.int64),
        "class_id": np.array([t.class_id for t in tracks], dtype=np.int64),
        "length": np.array([len(t.frames) for t in tracks], dtype=np.int64),
        "frames": np.concatenate([t.frames for t in tracks]) if tracks else np.zeros(0, np.int64),
        "xyxy": np.concatenate([t.xyxy for t in tracks]) if tracks else np.zeros((0, 4), np.float32),
        "score": np.concatenate([t.score for t in tracks]) if tracks else np.zeros(0, np.float32),
    }
    for name, value in scalars.items():
        arrays[f"scalar_{name}"] = np.array(value, dtype=np.float64)
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _tracks_from_npz(data: bytes) -> tuple[list[Track], dict[str, float]]:
    from veil.track import Track

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        ends = np.cumsum(npz["length"])
        starts = ends - npz["length"]
        tracks = [
            Track(
                track_id=int(tid),
                class_id=int(cid),
                frames=npz["frames"][a:b],
                xyxy=npz["xyxy"][a:b],
                score=npz["score"][a:b],
            )
            for tid, cid, a, b in zip(npz["track_id"], npz["class_id"], starts, ends, strict=True)
        ]
        scalars = {name[7:]: float(npz[name]) for name in npz.files if name.startswith("scalar_")}
    return tracks, scalars


# --- the steps ----------------------------------------------------------------------------------------


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

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def _storage(self) -> Any:
        return self.ctx.storage

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
        self.ctx.scratch_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{job_id}-seg-", dir=self.ctx.scratch_dir) as tmp:
            yield Path(tmp)

    def _get(self, key: str, path: Path) -> Path:
        local = self._storage.local_path(key)
        if local is not None and local.is_file():
            return Path(local)  # read in place: steps never write to their inputs
        self._storage.get_file(key, path)
        return path

    def _get_bytes(self, key: str) -> bytes:
        return b"".join(self._storage.iter_range(key))

    def _manifest(self, job_id: str, attempt: int) -> Manifest:
        return Manifest.from_json(self._get_bytes(_key(job_id, attempt, "manifest.json")))

    def _seconds_since_start(self, row: JobRow) -> float:
        started = row.started_at
        return max((utcnow() - started).total_seconds(), 0.0) if started is not None else 0.0

    def _conclude(self, row: JobRow, attempt: int, finish: store.Finish) -> JobState | None:
        state = conclude_job(
            self.ctx,
            row,
            store.Claim(job_id=row.id, attempt=attempt),
            finish,
            seconds=self._seconds_since_start(row),
        )
        if state is not None:
            self._cleanup(row.id)
        return state

    def _cleanup(self, job_id: str) -> None:
        try:
            self._storage.delete_prefix(segments_prefix(job_id))
        except StorageError:  # retention deletes the job's prefix later anyway
            log.warning("segment cleanup failed", extra={"job_id": job_id}, exc_info=True)

    def fail(self, job_id: str, attempt: int, *, code: str, message: str) -> JobState | None:
        """Fail the job if ``attempt`` still runs it (a step gave up after its retries)."""
        row = self._current(job_id, attempt)
        if row is None:
            return None
        return self._conclude(
            row, attempt, store.Finish(state=JobState.FAILED, error_code=code, error_message=message)
        )

    def _guard(self, job_id: str, attempt: int, step: str, body: Callable[[JobRow, Heartbeat], None]) -> None:
        """Run ``body`` if the job is still ours, with a heartbeat; turn its failures into the job's end."""
        row = self._current(job_id, attempt)
        if row is None:
            return
        if row.cancel_requested:
            self._conclude(row, attempt, _canceled())
            return
        claim = store.Claim(job_id=job_id, attempt=attempt)
        with Heartbeat(
            self.ctx.db, claim, every_s=self.ctx.heartbeat_s, shutdown=self.ctx.shutdown, keep_highest=True
        ) as beat:
            try:
                body(row, beat)
            except JobCanceled:
                if beat.cancel_requested:
                    self._conclude(row, attempt, _canceled())
                elif self.ctx.shutdown.is_set() and not beat.lost:
                    with self.ctx.db.begin() as session:
                        store.requeue_job(session=session, claim=claim)
                    log.info("segmented job returned to the queue at shutdown", extra={"job_id": job_id})
                return
            except (Incomplete, StorageError):
                raise  # the caller retries: a piece is on its way, or the store hiccupped
            except VeilError as exc:
                log.info(
                    "segment step failed", extra={"job_id": job_id, "step": step, "error_code": exc.code}
                )
                self._conclude(
                    row,
                    attempt,
                    store.Finish(state=JobState.FAILED, error_code=exc.code, error_message=exc.message),
                )

    def _count_try(self, job_id: str, attempt: int, name: str) -> bool:
        """Record one more try at a piece; ``False`` once it has used up ``job_max_attempts`` (it keeps
        killing its worker, or keeps failing), so that a poison piece cannot loop forever."""
        limit = self.ctx.settings.job_max_attempts
        for number in range(1, limit + 1):
            key = _key(job_id, attempt, f"tries/{name}-{number}")
            if not self._storage.exists(key):
                self._storage.put_stream(key, [b""])
                return True
        return False

    def _mark(self, job_id: str, attempt: int, name: str) -> None:
        """Record that a stage was handed to the dispatcher, unless the job ended meanwhile (the
        in-process dispatcher runs the whole job before returning, and its pieces are deleted)."""
        if self._current(job_id, attempt) is not None:
            self._storage.put_stream(_key(job_id, attempt, name), [b""])

    def dispatched(self, job_id: str) -> bool:
        """Whether the running attempt of ``job_id`` has handed its pieces to the dispatcher: a
        redelivered start then has nothing left to do, since the pieces travel as their own tasks."""
        with self.ctx.db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
        if row is None or JobState(row.state) is not JobState.RUNNING:
            return False
        return bool(self._storage.exists(_key(job_id, row.attempts, "analyse-dispatched")))

    def _done_pieces(self, job_id: str, attempt: int, names: Sequence[str]) -> int:
        return sum(1 for name in names if self._storage.exists(_key(job_id, attempt, name)))

    # -- start ---------------------------------------------------------------------------------------

    def start(self, job_id: str) -> StartOutcome:
        """Claim the job, split its input and dispatch the analyse stage; see ``StartOutcome``."""
        ctx = self.ctx
        now = utcnow()
        with ctx.db.begin() as session:
            row = store.get_job(session=session, job_id=job_id)
            if row is None or JobState(row.state).terminal:
                return StartOutcome.SKIPPED
            stale_before = now - timedelta(seconds=ctx.settings.job_stale_s) if ctx.take_over_stale else None
            claim = store.claim_job(
                session=session, job_id=job_id, worker_id=ctx.worker_id, now=now, stale_before=stale_before
            )
        if claim is None:
            return StartOutcome.SKIPPED
        if claim.attempt > ctx.settings.job_max_attempts:
            self._conclude(
                row,
                claim.attempt,
                store.Finish(
                    state=JobState.FAILED,
                    error_code=JobError.code,
                    error_message=f"the job was interrupted {claim.attempt - 1} times (worker lost)",
                ),
            )
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
            manifest = self._manifest(job_id, claim.attempt)
            if row.source_job_id is not None:  # reviewed tracks: nothing to detect
                self.dispatcher.render(job_id, claim.attempt, len(manifest.pieces))
                self._mark(job_id, claim.attempt, "render-dispatched")
            else:
                self.dispatcher.analyse(job_id, claim.attempt, len(manifest.pieces))
                self._mark(job_id, claim.attempt, "analyse-dispatched")
        return outcome[0]

    def _split(self, row: JobRow, claim: store.Claim, beat: Heartbeat) -> StartOutcome:
        from veil.media import iter_frames
        from veil.media.probe import probe_video
        from veil.media.segments import split_at_keyframes
        from veil.pipeline import output_suffix

        ctx = self.ctx
        spec = RedactionSpec.model_validate(row.spec)
        started = time.perf_counter()
        with self._scratch(row.id) as tmp:
            suffix = Path(row.input_key).suffix
            input_path = self._get(row.input_key, tmp / f"input{suffix}")
            details = probe_video(input_path, **ctx.settings.probe_limits())
            info = details.info
            out_suffix = output_suffix(spec, info)
            try:
                segments = split_at_keyframes(
                    input_path, tmp / "split", target_seconds=ctx.settings.segment_seconds
                )
            except UnsupportedMedia:
                log.info("segmented run declined: the video cannot be cut exactly", extra={"job_id": row.id})
                return StartOutcome.WHOLE
            if len(segments) < 2:
                log.info("segmented run declined: too few keyframes", extra={"job_id": row.id})
                return StartOutcome.WHOLE
            if sum(s.frame_count for s in segments) != info.frame_count:
                raise MediaError("the video's segments do not add up to its frame count")
            first = next(iter_frames(input_path), None)
            time_origin = first.time_s if first is not None else 0.0
            for seg in segments:
                if beat.should_stop():
                    raise JobCanceled("the job was canceled")
                self._storage.put_file(
                    _key(row.id, claim.attempt, _source_name(seg.index, seg.path.suffix)), seg.path
                )
                beat.set_progress(_ANALYSE[0] * (seg.index + 1) / len(segments))
            fps = info.fps or Fraction(30)
            manifest = Manifest(
                job_id=row.id,
                attempt=claim.attempt,
                frame_count=int(info.frame_count or 0),
                overlap_frames=overlap_frames(spec, info.fps),
                time_origin_s=float(time_origin),
                input_suffix=suffix,
                output_suffix=out_suffix,
                frame_rate=f"{fps.numerator}/{fps.denominator}",
                bit_rate=info.bit_rate,
                b_frames=not details.variable_frame_rate,
                split_s=time.perf_counter() - started,
                pieces=tuple(
                    SegmentPiece(
                        index=s.index,
                        start_frame=s.start_frame,
                        frame_count=s.frame_count,
                        start_time_s=s.start_time_s,
                        suffix=s.path.suffix,
                    )
                    for s in segments
                ),
            )
            source_report = load_source_report(ctx, row)
            if source_report is not None:
                from veil.pipeline import reviewed_tracks

                tracks = reviewed_tracks(spec, source_report)
                self._storage.put_stream(_key(row.id, claim.attempt, "tracks.npz"), [_tracks_to_npz(tracks)])
                # Render and finish need only its categories and models: keep those, not every box.
                slim = source_report.model_copy(
                    update={"tracks": [t.model_copy(update={"frames": []}) for t in source_report.tracks]}
                )
                self._storage.put_stream(
                    _key(row.id, claim.attempt, _SOURCE_REPORT), [slim.model_dump_json().encode("utf-8")]
                )
            self._storage.put_stream(_key(row.id, claim.attempt, "manifest.json"), [manifest.to_json()])
        log.info("segmented job split", extra={"job_id": row.id, "segments": len(segments)})
        return StartOutcome.STARTED

    # -- analyse -------------------------------------------------------------------------------------

    def analyse(self, job_id: str, attempt: int, index: int) -> None:
        """Detect and track segment ``index`` plus the overlap into the next one; store the tracks."""

        def body(row: JobRow, beat: Heartbeat) -> None:
            name = _analysis_name(index)
            if self._storage.exists(_key(job_id, attempt, name)):
                return
            if not self._count_try(job_id, attempt, f"analyse-{index:05d}"):
                raise JobError(f"segment {index} failed on {self.ctx.settings.job_max_attempts} tries")
            self._analyse(row, attempt, index, beat)

        self._guard(job_id, attempt, "analyse", body)

    def _analyse(self, row: JobRow, attempt: int, index: int, beat: Heartbeat) -> None:
        from veil.media import probe
        from veil.pipeline import analyse_video

        manifest = self._manifest(row.id, attempt)
        piece = manifest.pieces[index]
        following = manifest.pieces[index + 1] if index + 1 < len(manifest.pieces) else None
        spec = RedactionSpec.model_validate(row.spec)
        total = len(manifest.pieces)
        done = self._done_pieces(row.id, attempt, [_analysis_name(i) for i in range(total)])
        lo, hi = _ANALYSE
        started = time.perf_counter()
        with self._scratch(row.id) as tmp:
            sources = [
                self._get(_key(row.id, attempt, _source_name(index, piece.suffix)), tmp / f"a{piece.suffix}")
            ]
            expected = piece.frame_count
            if following is not None:
                sources.append(
                    self._get(
                        _key(row.id, attempt, _source_name(following.index, following.suffix)),
                        tmp / f"b{following.suffix}",
                    )
                )
                expected += min(manifest.overlap_frames, following.frame_count)
            info = probe(sources[0])
            tracks, seen = analyse_video(
                self.engine,
                spec,
                sources,
                info=info,
                frame_limit=expected,
                progress=lambda f: beat.set_progress(lo + (hi - lo) * min((done + f) / total, 1.0)),
                cancel=beat.should_stop,
            )
        if beat.should_stop():
            raise JobCanceled("the job was canceled")
        if seen != expected:
            raise MediaError(f"segment {index} decoded to {seen} frames; {expected} were expected")
        data = _tracks_to_npz(tracks, seconds=time.perf_counter() - started)
        self._storage.put_stream(_key(row.id, attempt, _analysis_name(index)), [data])

    # -- stitch --------------------------------------------------------------------------------------

    def stitch(self, job_id: str, attempt: int) -> None:
        """Join the segments' tracks into video-wide ones and dispatch the render stage.

        Raises ``Incomplete`` when an analysis is not stored yet."""
        dispatch: list[int] = []
        detect_only: list[bool] = []

        def body(row: JobRow, beat: Heartbeat) -> None:
            manifest = self._manifest(job_id, attempt)
            tracks_key = _key(job_id, attempt, "tracks.npz")
            if not self._storage.exists(tracks_key):
                self._stitch(manifest, tracks_key)
            if row.mode == "detect":
                detect_only.append(True)
            elif not self._storage.exists(_key(job_id, attempt, "render-dispatched")):
                dispatch.append(len(manifest.pieces))

        self._guard(job_id, attempt, "stitch", body)
        if detect_only:  # nothing to render: conclude here, on this worker
            self.finish(job_id, attempt)
        elif dispatch:
            self.dispatcher.render(job_id, attempt, dispatch[0])
            self._mark(job_id, attempt, "render-dispatched")

    def _stitch(self, manifest: Manifest, tracks_key: str) -> None:
        from veil.track import stitch_segment_tracks

        job_id, attempt = manifest.job_id, manifest.attempt
        names = [_analysis_name(p.index) for p in manifest.pieces]
        if self._done_pieces(job_id, attempt, names) < len(names):
            raise Incomplete(f"job {job_id}: not every segment is analysed yet")
        started = time.perf_counter()
        per_segment: list[tuple[int, list[Track]]] = []
        analyse_s = 0.0
        for piece, name in zip(manifest.pieces, names, strict=True):
            tracks, scalars = _tracks_from_npz(self._get_bytes(_key(job_id, attempt, name)))
            per_segment.append((piece.start_frame, tracks))
            analyse_s += scalars.get("seconds", 0.0)
        stitched = stitch_segment_tracks(per_segment, iou_threshold=STITCH_IOU)
        data = _tracks_to_npz(stitched, analyse_s=analyse_s, stitch_s=time.perf_counter() - started)
        self._storage.put_stream(tracks_key, [data])

    # -- render --------------------------------------------------------------------------------------

    def render(self, job_id: str, attempt: int, index: int) -> None:
        """Mask and encode segment ``index`` with the stitched tracks; store the encoded piece."""

        def body(row: JobRow, beat: Heartbeat) -> None:
            manifest = self._manifest(job_id, attempt)
            name = _rendered_name(index, manifest.output_suffix)
            if self._storage.exists(_key(job_id, attempt, name)):
                return
            if not self._count_try(job_id, attempt, f"render-{index:05d}"):
                raise JobError(f"segment {index} failed on {self.ctx.settings.job_max_attempts} tries")
            self._render(row, manifest, index, beat)

        self._guard(job_id, attempt, "render", body)

    def _render(self, row: JobRow, manifest: Manifest, index: int, beat: Heartbeat) -> None:
        from veil.media import EncodeOptions, probe
        from veil.pipeline import render_video

        attempt = manifest.attempt
        piece = manifest.pieces[index]
        spec = RedactionSpec.model_validate(row.spec)
        tracks, _ = _tracks_from_npz(self._get_bytes(_key(row.id, attempt, "tracks.npz")))
        first, last = piece.start_frame, piece.start_frame + piece.frame_count - 1
        mine = [t for t in tracks if t.last_frame >= first and t.first_frame <= last]
        total = len(manifest.pieces)
        done = self._done_pieces(
            row.id, attempt, [_rendered_name(i, manifest.output_suffix) for i in range(total)]
        )
        lo, hi = _RENDER
        out = spec.output
        options = EncodeOptions(
            codec=out.codec,
            crf=out.crf,
            preset=out.preset,
            keep_bitrate=out.keep_bitrate,
            keep_metadata=False,  # container tags come from the source at the join, if asked for
            bit_rate=manifest.bit_rate,
            b_frames=manifest.b_frames,
            frame_rate=Fraction(manifest.frame_rate),
        )
        started = time.perf_counter()
        with self._scratch(row.id) as tmp:
            src = self._get(
                _key(row.id, attempt, _source_name(index, piece.suffix)), tmp / f"src{piece.suffix}"
            )
            dst = tmp / f"rendered{manifest.output_suffix}"
            info = probe(src)
            render_video(
                self.engine,
                spec,
                src,
                dst,
                mine,
                info=info,
                frame_offset=piece.start_frame,
                time_offset_s=manifest.time_origin_s + piece.start_time_s,
                source_report=self._source_report(row, attempt),
                progress=lambda f: beat.set_progress(lo + (hi - lo) * min((done + f) / total, 1.0)),
                cancel=beat.should_stop,
                encode=options,
            )
            if beat.should_stop():
                raise JobCanceled("the job was canceled")
            frames = probe(dst).frame_count
            if frames != piece.frame_count:
                raise MediaError(
                    f"segment {index} rendered to {frames} frames; {piece.frame_count} were expected"
                )
            seconds = time.perf_counter() - started
            self._storage.put_stream(
                _key(row.id, attempt, f"rendered-{index:05d}.json"),
                [json.dumps({"seconds": seconds}).encode()],
            )
            self._storage.put_file(_key(row.id, attempt, _rendered_name(index, manifest.output_suffix)), dst)

    # -- finish --------------------------------------------------------------------------------------

    def finish(self, job_id: str, attempt: int) -> None:
        """Join the rendered pieces with the source's audio, check, report, promote and conclude.

        Raises ``Incomplete`` when a rendered piece is not stored yet."""

        def body(row: JobRow, beat: Heartbeat) -> None:
            manifest = self._manifest(job_id, attempt)
            if row.mode == "detect":
                self._finish_detect(row, manifest, beat)
            else:
                self._finish(row, manifest, beat)

        self._guard(job_id, attempt, "finish", body)

    def _finish_detect(self, row: JobRow, manifest: Manifest, beat: Heartbeat) -> None:
        """A detect job's end: the report with the stitched tracks and a thumbnail per track."""
        from veil.media import probe
        from veil.pipeline import make_report, write_video_thumbnails

        job_id, attempt = row.id, manifest.attempt
        spec = RedactionSpec.model_validate(row.spec)
        tracks, scalars = _tracks_from_npz(self._get_bytes(_key(job_id, attempt, "tracks.npz")))
        beat.set_progress(_RENDER[0])
        with self._scratch(job_id) as tmp:
            input_path = self._get(row.input_key, tmp / f"input{manifest.input_suffix}")
            info = probe(input_path)
            thumbnails = tmp / "thumbs"
            thumbnails.mkdir()
            started = time.perf_counter()
            write_video_thumbnails(thumbnails, tracks, input_path)
            timings = {
                "split": manifest.split_s,
                "detect": scalars.get("analyse_s", 0.0),
                "stitch": scalars.get("stitch_s", 0.0),
                "thumbnails": time.perf_counter() - started,
                "segments": float(len(manifest.pieces)),
            }
            report = make_report(
                self.engine, spec, input_path=input_path, info=info, tracks=tracks, timings=timings
            ).model_copy(update={"file": None})
            if beat.should_stop():
                raise JobCanceled("the job was canceled")
            for thumb in sorted(thumbnails.glob("*.jpg")):
                self._storage.put_file(blobs.thumbnail_key(job_id, int(thumb.stem)), thumb)
            finish = self._store_report(job_id, report)
        self._conclude(row, attempt, finish)

    def _source_report(self, row: JobRow, attempt: int) -> Report | None:
        """The reviewed detect job's report as ``start`` kept it (tracks without boxes), or None."""
        if row.source_job_id is None:
            return None
        return Report.model_validate_json(self._get_bytes(_key(row.id, attempt, _SOURCE_REPORT)))

    def _store_report(self, job_id: str, report: Report) -> store.Finish:
        """Store the job's report; the success it concludes with (output fields left to the caller)."""
        report_key = blobs.report_key(job_id)
        self._storage.put_stream(report_key, [report.model_dump_json().encode("utf-8")])
        return store.Finish(
            state=JobState.SUCCEEDED,
            kind="video",
            report_key=report_key,
            counts={str(k): int(v) for k, v in report.counts.items()},
            timings={str(k): float(v) for k, v in report.timings.items()},
            frames=report.input.frame_count,
            masked_frames=report.masked_frames,
        )

    def _finish(self, row: JobRow, manifest: Manifest, beat: Heartbeat) -> None:
        from veil.media import probe
        from veil.media.segments import concat_segments
        from veil.pipeline import make_report

        job_id, attempt = row.id, manifest.attempt
        names = [_rendered_name(p.index, manifest.output_suffix) for p in manifest.pieces]
        if self._done_pieces(job_id, attempt, names) < len(names):
            raise Incomplete(f"job {job_id}: not every segment is rendered yet")
        spec = RedactionSpec.model_validate(row.spec)
        tracks, scalars = _tracks_from_npz(self._get_bytes(_key(job_id, attempt, "tracks.npz")))
        render_s = 0.0
        for piece in manifest.pieces:
            sidecar = json.loads(self._get_bytes(_key(job_id, attempt, f"rendered-{piece.index:05d}.json")))
            render_s += float(sidecar.get("seconds", 0.0))
        beat.set_progress(_RENDER[1])
        with self._scratch(job_id) as tmp:
            input_path = self._get(row.input_key, tmp / f"input{manifest.input_suffix}")
            info = probe(input_path)
            paths = [self._get(_key(job_id, attempt, name), tmp / name) for name in names]
            output_path = tmp / f"output{manifest.output_suffix}"
            started = time.perf_counter()
            concat_segments(
                paths, output_path, audio_from=input_path, keep_metadata=spec.output.keep_metadata
            )
            join_s = time.perf_counter() - started
            output_info = probe(output_path)
            if output_info.frame_count != info.frame_count:
                raise MediaError(
                    f"the joined video has {output_info.frame_count} frames, the source {info.frame_count}"
                )
            timings = {
                "split": manifest.split_s,
                "detect": scalars.get("analyse_s", 0.0),
                "stitch": scalars.get("stitch_s", 0.0),
                "render": render_s,
                "join": join_s,
                "segments": float(len(manifest.pieces)),
            }
            report = make_report(
                self.engine,
                spec,
                input_path=input_path,
                info=info,
                tracks=tracks,
                output_path=output_path,
                output_info=output_info,
                timings=timings,
                source_report=self._source_report(row, attempt),
            ).model_copy(update={"file": None})
            if beat.should_stop():
                raise JobCanceled("the job was canceled")
            finish = self._store_report(job_id, report)
            suffix = manifest.output_suffix
            temp_key = blobs.temp_output_key(job_id, attempt, suffix)
            final_key = blobs.output_key(job_id, suffix)
            self._storage.put_file(temp_key, output_path)
            self._storage.move(temp_key, final_key)
            finish = dataclasses.replace(
                finish,
                output_key=final_key,
                output_size=output_path.stat().st_size,
                output_sha256=report.output_sha256,
                output_content_type=content_type_for(suffix),
            )
        self._conclude(row, attempt, finish)


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
            log.error(
                "segmented job crashed",
                extra={"job_id": job_id, "error_type": type(exc).__name__},
                exc_info=True,
            )
            code, message = (
                (exc.code, exc.message)
                if isinstance(exc, VeilError)
                else ("internal_error", "internal error while processing")
            )
            jobs.fail(job_id, row.attempts, code=code, message=message)
        return StartOutcome.STARTED


def _canceled() -> store.Finish:
    return store.Finish(
        state=JobState.CANCELED, error_code="canceled", error_message="canceled by the client"
    )


def _source_name(index: int, suffix: str) -> str:
    return f"source-{index:05d}{suffix}"


_SOURCE_REPORT = "source-report.json"


def _analysis_name(index: int) -> str:
    return f"analysis-{index:05d}.npz"


def _rendered_name(index: int, suffix: str) -> str:
    return f"rendered-{index:05d}{suffix}"
