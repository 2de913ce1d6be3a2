"""Segment-parallel jobs without a broker: the steps of ``veil.jobs.segmented`` run in this process on
a real clip (the first 4 s of the shared selfie footage, re-encoded small with a keyframe every
second), a migrated SQLite job store and ``MemoryStorage``, with the real engine.

What a user would notice: the joined output has exactly the input's frames, the face keeps one track
id across every border, and a job survives steps delivered twice, out of order or after it ended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.jobs.conftest import make_ctx
from tests.jobs.factories import GateRunner
from tests.media import cctv
from tests.media.synthetic import export_clip, loudness
from tests.video import video_frame
from veil.auth.audit import list_audit
from veil.clock import utcnow
from veil.jobs import blobs, store
from veil.jobs.db import Database
from veil.jobs.segmented import (
    Incomplete,
    SegmentedJobs,
    StartOutcome,
    run_segmented,
    segments_prefix,
    wants_segments,
)
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.jobs.worker import WorkerContext, execute_job
from veil.media import media_summary, probe
from veil.pipeline import Engine
from veil.report import Report
from veil.settings import Settings
from veil.spec import RedactionSpec
from veil.storage import MemoryStorage

SPEC: dict[str, Any] = {
    "categories": {"face": {}},
    "detection": {"detect_scale": 0.25, "detect_every": 3},
    "output": {"preset": "ultrafast"},
}


def _small_selfie(
    src: Path, dst: Path, *, frames: int = 120, gop: int = 30, audio_codec: str = "aac"
) -> Path:
    """The first ``frames`` frames of ``src`` at 304x540, 30 fps, a keyframe every ``gop`` frames, with
    a mono tone as long as the video (the selfie clip has no sound of its own): AAC, or ``audio_codec``."""
    return export_clip(src, dst, audio=audio_codec, frames=frames, gop=gop, layout="mono")


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


@pytest.fixture(scope="module")
def clip(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _small_selfie(media_dir / "selfie_portrait_noaudio.mp4", tmp_path_factory.mktemp("clip") / "c.mp4")


@pytest.fixture(scope="module")
def one_gop_clip(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("clip") / "one-gop.mp4"
    return _small_selfie(media_dir / "selfie_portrait_noaudio.mp4", dst, frames=60, gop=300)


@pytest.fixture
def seg_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, segment_seconds=1.0, job_max_attempts=2)


@pytest.fixture
def ctx(seg_settings: Settings, db: Database, storage: MemoryStorage) -> Iterator[WorkerContext]:
    yield make_ctx(seg_settings, db, storage, GateRunner())


def _add_video_job(
    db: Database,
    storage: MemoryStorage,
    media: Path,
    spec: dict[str, Any] = SPEC,
    *,
    source: str | None = None,
) -> JobRow:
    from veil.ids import new_id

    job_id = new_id("job")
    data = media.read_bytes()
    key = blobs.input_key(job_id, ".mp4")
    storage.put_stream(key, [data])
    parsed = RedactionSpec.model_validate(spec)
    with db.begin() as session:
        return store.create_job(
            session=session,
            job_id=job_id,
            tenant_id="default",
            api_key_id=None,
            spec=parsed.model_dump(mode="json"),
            mode=parsed.mode,
            kind="video",
            media=media_summary(probe(media)),
            input_key=key,
            input_size=len(data),
            input_sha256=hashlib.sha256(data).hexdigest(),
            source_job_id=source,
            idempotency_key=None,
            request_fingerprint=None,
            now=utcnow(),
            retention=timedelta(hours=1),
        )


def _job(db: Database, job_id: str) -> JobRow:
    with db.begin() as session:
        row = store.get_job(session=session, job_id=job_id)
    assert row is not None
    return row


def _run_in_four_segments(row: JobRow, *, ctx: WorkerContext, engine: Engine) -> JobRow:
    """Run ``row`` split, inline, to success; the job as it ended."""
    assert run_segmented(row.id, ctx=ctx, engine=engine) is StartOutcome.STARTED
    done = _job(ctx.db, row.id)
    assert done.state is JobState.SUCCEEDED, (done.error_code, done.error_message)
    assert done.timings["segments"] == 4
    return done


def _audit_actions(db: Database, job_id: str) -> list[str]:
    with db.begin() as session:
        return [e.action for e in list_audit(session=session, tenant_id="default", limit=50, job_id=job_id)]


class Stepper:
    """A dispatcher that only records what it was asked to run, so a test can deliver each step
    itself: twice, out of order, or after the job ended, as a broker may."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, int]] = []

    def analyse(self, job_id: str, attempt: int, count: int) -> None:
        self.calls.append(("analyse", job_id, attempt, count))

    def render(self, job_id: str, attempt: int, count: int) -> None:
        self.calls.append(("render", job_id, attempt, count))


@pytest.mark.slow
def test_inline_run_is_frame_exact_and_keeps_one_face_id(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, clip: Path, tmp_path: Path
) -> None:
    row = _add_video_job(db, storage, clip)
    assert wants_segments(row, segment_seconds=1.0)

    done = _run_in_four_segments(row, ctx=ctx, engine=engine)
    out = tmp_path / "out.mp4"
    storage.get_file(done.output_key or "", out)
    assert probe(out).frame_count == probe(clip).frame_count == 120
    assert _audio_packets(out) == _audio_packets(clip)  # the source's sound, untouched
    from veil.report import Report

    report = Report.model_validate_json(b"".join(storage.iter_range(done.report_key or "")))
    faces = [t for t in report.tracks if t.category == "face"]
    assert len(faces) == 1, [(t.id, t.frames[0].frame, t.frames[-1].frame) for t in faces]
    assert [f.frame for f in faces[0].frames] == list(range(120))
    assert sorted(storage.keys()) == sorted(
        [blobs.input_key(row.id, ".mp4"), blobs.output_key(row.id, ".mp4"), blobs.report_key(row.id)]
    )
    assert _audit_actions(db, row.id) == ["job.succeeded"]


@pytest.mark.slow
def test_a_detect_job_is_split_too_and_ends_with_one_track_and_its_thumbnail(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, clip: Path
) -> None:
    """The review loop on long footage: detection runs per segment, the stitched tracks keep one id per
    face across the borders, each track gets a thumbnail, and nothing is rendered."""
    row = _add_video_job(db, storage, clip, {**SPEC, "mode": "detect"})
    assert wants_segments(row, segment_seconds=1.0)

    done = _run_in_four_segments(row, ctx=ctx, engine=engine)
    assert done.output_key is None
    from veil.report import Report

    report = Report.model_validate_json(b"".join(storage.iter_range(done.report_key or "")))
    assert report.mode == "detect" and report.output is None
    faces = [t for t in report.tracks if t.category == "face"]
    assert len(faces) == 1 and [f.frame for f in faces[0].frames] == list(range(120))
    thumbnail = b"".join(storage.iter_range(blobs.thumbnail_key(row.id, faces[0].id)))
    assert thumbnail[:3] == b"\xff\xd8\xff"  # a JPEG
    assert sorted(storage.keys()) == sorted(
        [blobs.input_key(row.id, ".mp4"), blobs.report_key(row.id)]
        + [blobs.thumbnail_key(row.id, t.id) for t in report.tracks]
    )
    assert _audit_actions(db, row.id) == ["job.succeeded"]


@pytest.mark.slow
def test_reviewed_tracks_render_in_parallel_without_detecting_again(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, clip: Path, tmp_path: Path
) -> None:
    """The review loop's second half on long footage: the chosen tracks of a split detect job are rendered
    segment by segment (no analyse step), frame-exact, and an excluded track is left unmasked."""
    detect = _add_video_job(db, storage, clip, {**SPEC, "mode": "detect"})
    run_segmented(detect.id, ctx=ctx, engine=engine)
    report_key = _job(db, detect.id).report_key or ""
    [face] = Report.model_validate_json(b"".join(storage.iter_range(report_key))).tracks

    results = {}
    for scope in ("include", "exclude"):
        spec = {**SPEC, "source_job": detect.id, "filter": {"track_ids": [face.id], "scope": scope}}
        row = _add_video_job(db, storage, clip, spec, source=detect.id)
        assert wants_segments(row, segment_seconds=1.0)
        stepper = Stepper()
        jobs = SegmentedJobs(ctx=ctx, engine=engine, dispatcher=stepper)
        assert jobs.start(row.id) is StartOutcome.STARTED
        assert [c[0] for c in stepper.calls] == ["render"]  # straight to rendering: nothing is detected
        for index in range(stepper.calls[0][3]):
            jobs.render(row.id, 1, index)
        jobs.finish(row.id, 1)
        done = _job(db, row.id)
        assert done.state is JobState.SUCCEEDED, (done.error_code, done.error_message)
        assert done.timings["segments"] == 4
        out = tmp_path / f"{scope}.mp4"
        storage.get_file(done.output_key or "", out)
        assert probe(out).frame_count == 120
        report = Report.model_validate_json(b"".join(storage.iter_range(done.report_key or "")))
        results[scope] = (out, report)

    included, excluded = results["include"][1], results["exclude"][1]
    assert [t.id for t in included.tracks] == [face.id] and included.masked_frames == 120
    assert excluded.tracks == [] and excluded.masked_frames == 0
    x1, y1, x2, y2 = (int(v) for v in face.frames[60].box)
    masked, plain, source = (
        video_frame(p, 60)[y1:y2, x1:x2].astype(int)
        for p in (results["include"][0], results["exclude"][0], clip)
    )
    assert (
        np.abs(masked - source).mean() > 3 * np.abs(plain - source).mean()
    )  # only the included face changed


@pytest.mark.slow
def test_steps_delivered_twice_early_or_late_finish_the_job_once(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, clip: Path
) -> None:
    row = _add_video_job(db, storage, clip)
    stepper = Stepper()
    jobs = SegmentedJobs(ctx=ctx, engine=engine, dispatcher=stepper)

    assert jobs.start(row.id) is StartOutcome.STARTED
    [(_, _, attempt, count)] = stepper.calls
    assert count == 4 and jobs.dispatched(row.id)
    assert jobs.start(row.id) is StartOutcome.SKIPPED  # a second delivery of the job's message

    jobs.analyse(row.id, attempt, 0)
    with pytest.raises(Incomplete):  # a chord callback fired early
        jobs.stitch(row.id, attempt)
    analysed = {k: b"".join(storage.iter_range(k)) for k in storage.keys() if "analysis-" in k}
    for index in range(count):
        jobs.analyse(row.id, attempt, index)
    jobs.analyse(row.id, attempt, 0)  # redelivered: the stored result is kept, not recomputed
    assert {k: b"".join(storage.iter_range(k)) for k in analysed} == analysed
    assert sum("tries/analyse-00000" in k for k in storage.keys()) == 1

    jobs.stitch(row.id, attempt)
    jobs.stitch(row.id, attempt)
    assert [c[0] for c in stepper.calls] == ["analyse", "render"]  # the render stage starts once

    for index in reversed(range(count)):
        jobs.render(row.id, attempt, index)
    jobs.finish(row.id, attempt)
    jobs.finish(row.id, attempt)
    jobs.render(row.id, attempt, 1)  # a straggler after the end writes nothing

    done = _job(db, row.id)
    assert done.state is JobState.SUCCEEDED
    assert _audit_actions(db, row.id) == ["job.succeeded"]
    assert not [k for k in storage.keys() if k.startswith(segments_prefix(row.id))]


@pytest.mark.slow
def test_cancel_stops_the_next_step_and_a_stale_attempt_writes_nothing(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, clip: Path
) -> None:
    row = _add_video_job(db, storage, clip)
    stepper = Stepper()
    jobs = SegmentedJobs(ctx=ctx, engine=engine, dispatcher=stepper)
    assert jobs.start(row.id) is StartOutcome.STARTED
    attempt = stepper.calls[0][2]

    jobs.analyse(row.id, attempt + 1, 0)  # a step of an attempt that does not hold the job
    assert not [k for k in storage.keys() if "analysis-" in k]

    with db.begin() as session:
        store.request_cancel(session=session, job_id=row.id, now=utcnow(), retention=timedelta(hours=1))
    jobs.analyse(row.id, attempt, 0)
    done = _job(db, row.id)
    assert (done.state, done.error_code) == (JobState.CANCELED, "canceled")
    assert not [k for k in storage.keys() if k.startswith(segments_prefix(row.id))]


@pytest.mark.slow
def test_a_piece_that_keeps_failing_fails_the_job_after_the_attempt_limit(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, clip: Path
) -> None:
    row = _add_video_job(db, storage, clip)
    stepper = Stepper()
    jobs = SegmentedJobs(ctx=ctx, engine=engine, dispatcher=stepper)
    assert jobs.start(row.id) is StartOutcome.STARTED
    attempt = stepper.calls[0][2]
    for number in (1, 2):  # two earlier deliveries died with their worker (job_max_attempts=2)
        storage.put_stream(f"{segments_prefix(row.id)}{attempt}/tries/analyse-00002-{number}", [b""])

    jobs.analyse(row.id, attempt, 2)

    done = _job(db, row.id)
    assert (done.state, done.error_code) == (JobState.FAILED, "job_error")
    assert "segment 2" in (done.error_message or "")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "audio_codec", "container"),
    [
        (
            lambda src, dst: _small_selfie(src, dst / "camera.mov", audio_codec="pcm_s16le"),
            "pcm_s16le",
            "mov",
        ),
        (lambda src, dst: _small_selfie(src, dst / "dashcam.ts", audio_codec="mp2"), "mp2", "ts"),
        (
            lambda src, dst: cctv.dahua_dav(src, dst / "nvr.dav", frames=120, rate=30, gop=30),
            "pcm_alaw",
            "dav",
        ),
    ],
    ids=["camera-mov-pcm", "dashcam-ts-mp2", "dahua-dav-alaw"],
)
def test_camera_and_dashcam_files_are_split_and_their_sound_converted(
    ctx: WorkerContext,
    db: Database,
    storage: MemoryStorage,
    engine: Engine,
    media_dir: Path,
    tmp_path: Path,
    make: Callable[[Path, Path], Path],
    audio_codec: str,
    container: str,
) -> None:
    """MP4 cannot carry the PCM sound many cameras record, nor (for most players) the MP2 of dashcams'
    MPEG-TS: the join converts it to AAC, as a whole run does, so such videos are split across workers too;
    MPEG-TS, with its 90 kHz timestamps, splits and joins frame-exact. A Dahua recorder's DAV, stamped with
    the time of day, is joined on a timeline from 0 with its G.711 sound in step."""
    camera = make(media_dir / "selfie_portrait_noaudio.mp4", tmp_path)
    row = _add_video_job(db, storage, camera)

    done = _run_in_four_segments(row, ctx=ctx, engine=engine)
    out = tmp_path / "out.mp4"
    storage.get_file(done.output_key or "", out)
    before, after = probe(camera), probe(out)
    assert before.container == container
    assert after.frame_count == before.frame_count == 120
    assert [a.codec for a in before.audio] == [audio_codec]
    assert [a.codec for a in after.audio] == ["aac"]
    seconds = 120 / float(before.fps or 0)  # the sound is as long as the picture (a DAV states whole seconds)
    one_aac_frame = 1024 / after.audio[0].sample_rate
    assert after.audio[0].duration == pytest.approx(seconds, abs=one_aac_frame + 0.01)
    with av.open(str(out)) as joined:
        starts = [float(s.start_time * s.time_base) for s in joined.streams if s.start_time is not None]
    assert len(starts) == 2 and max(starts) < 0.2  # picture and sound both start at the file's start


def test_a_split_job_silences_a_span_across_the_joins_and_keeps_the_rest_of_the_sound(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, clip: Path, tmp_path: Path
) -> None:
    """The sound is muxed back at the join, once, for the whole video: a span silenced there is
    silent across the segment borders (1 s, 2 s, 3 s), and the rest is kept."""
    row = _add_video_job(db, storage, clip, {**SPEC, "audio": {"mute": [{"start": 0.9, "end": 2.1}]}})

    done = _run_in_four_segments(row, ctx=ctx, engine=engine)
    out = tmp_path / "out.mp4"
    storage.get_file(done.output_key or "", out)
    assert loudness(out, 0.93, 2.07) < 0.002
    assert loudness(out, 0.05, 0.87) > 0.1 and loudness(out, 2.13, 3.9) > 0.1


def test_a_split_detect_job_of_a_dashcam_transport_stream_stores_a_preview_browsers_play(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, media_dir: Path, tmp_path: Path
) -> None:
    dashcam = _small_selfie(
        media_dir / "selfie_portrait_noaudio.mp4", tmp_path / "dashcam.ts", audio_codec="mp2"
    )
    row = _add_video_job(db, storage, dashcam, {**SPEC, "mode": "detect"})

    _run_in_four_segments(row, ctx=ctx, engine=engine)
    preview = tmp_path / "preview.mp4"
    storage.get_file(blobs.preview_key(row.id), preview)
    shown = probe(preview)
    assert (shown.container, shown.codec, shown.frame_count) == ("mp4", "h264", 120)


def test_a_video_without_inner_keyframes_goes_back_to_run_whole(
    ctx: WorkerContext, db: Database, storage: MemoryStorage, engine: Engine, one_gop_clip: Path
) -> None:
    row = _add_video_job(db, storage, one_gop_clip)
    jobs = SegmentedJobs(ctx=ctx, engine=engine, dispatcher=Stepper())

    assert jobs.start(row.id) is StartOutcome.WHOLE

    queued = _job(db, row.id)
    assert (queued.state, queued.attempts) == (JobState.QUEUED, 0)
    assert execute_job(row.id, ctx=ctx) is JobState.SUCCEEDED  # the ordinary worker path takes it


@pytest.mark.parametrize(
    ("kind", "mode", "source", "duration", "expected"),
    [
        ("video", "redact", None, 61.0, True),
        ("video", "redact", None, 60.0, False),
        ("video", "redact", None, None, False),
        ("image", "redact", None, None, False),
        ("video", "detect", None, 600.0, True),
        ("video", "redact", "job_reviewed", 600.0, True),
    ],
)
def test_which_jobs_are_split(
    kind: str, mode: str, source: str | None, duration: float | None, expected: bool
) -> None:
    row = JobRow(kind=kind, mode=mode, source_job_id=source, media={"duration": duration})
    assert wants_segments(row, segment_seconds=60.0) is expected
