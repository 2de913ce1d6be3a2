"""``run``: the stages composed for one file, as the CLI, the in-process workers and whole-file
Celery tasks call them. Split jobs compose the same stages across workers (``veil.pipeline.segments``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from veil.errors import SpecError
from veil.media import MediaInfo, probe, read_image, write_image
from veil.pipeline.analysis import Cancel, Progress, analyse, analyse_image
from veil.pipeline.engine import Engine
from veil.pipeline.plan import Plan, output_suffix
from veil.pipeline.rendering import mask_frame, render
from veil.pipeline.reporting import (
    report,
    write_image_preview,
    write_thumbnails,
    write_video_preview,
    write_video_thumbnails,
)
from veil.report import Report
from veil.spec import RedactionSpec
from veil.track import Track

__all__ = ["run"]


def run(
    engine: Engine,
    spec: RedactionSpec,
    input_path: Path,
    output_path: Path | None,
    *,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    source_report: Report | None = None,
    thumbnails_dir: Path | None = None,
    file_label: str | None = None,
    info: MediaInfo | None = None,
) -> Report:
    """Redact (or, in ``detect`` mode, only analyse) one file: probe, plan, analyse (or take the
    reviewed tracks of ``source_report``), render, report."""
    if (spec.mode == "redact") != (output_path is not None):
        raise SpecError("redact mode needs an output path and detect mode takes none")
    if spec.source_job is not None and source_report is None:
        raise SpecError("source_job is set but its report was not supplied")
    report_progress = progress or (lambda _f: None)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    info = info or probe(input_path)
    timings["probe"] = time.perf_counter() - started
    plan = Plan.build(spec, engine=None if source_report is not None else engine, source_report=source_report)
    file = _File(engine, plan, input_path, output_path, info, thumbnails_dir, timings)
    if info.kind == "image":
        tracks, output_info = _run_image(file)
    else:
        tracks, output_info = _run_video(file, report_progress, cancel)
    report_progress(1.0)
    return report(
        engine,
        plan,
        input_path=input_path,
        info=info,
        tracks=tracks,
        output_path=output_path,
        output_info=output_info,
        timings=timings,
        file_label=file_label,
    )


@dataclass(frozen=True)
class _File:  # what both kinds of run work on
    engine: Engine
    plan: Plan
    input_path: Path
    output_path: Path | None
    info: MediaInfo
    thumbnails_dir: Path | None
    timings: dict[str, float]


def _run_image(f: _File) -> tuple[list[Track], MediaInfo | None]:
    plan, timings = f.plan, f.timings
    started = time.perf_counter()
    rgb = read_image(f.input_path)
    rgb = rgb if rgb.flags.writeable else rgb.copy()
    timings["decode"] = time.perf_counter() - started
    started = time.perf_counter()
    tracks = plan.reviewed_tracks() if plan.source_report is not None else analyse_image(f.engine, plan, rgb)
    timings["detect"] = time.perf_counter() - started
    if f.thumbnails_dir is not None:
        write_thumbnails(f.thumbnails_dir, tracks, {0: rgb})
        write_image_preview(f.thumbnails_dir, rgb, f.input_path, f.info)
    if f.output_path is None:
        return tracks, None
    started = time.perf_counter()
    mask_frame(rgb, tracks, plan, resolution_wh=(f.info.width, f.info.height))
    timings["redact"] = time.perf_counter() - started
    started = time.perf_counter()
    out = plan.spec.output
    fmt = output_suffix(plan.spec, f.info).lstrip(".").replace("jpg", "jpeg")
    write_image(
        f.output_path,
        rgb,
        fmt=fmt,  # type: ignore[arg-type]
        quality=out.jpeg_quality,
        source=f.input_path,
        keep_metadata=out.keep_metadata,
    )
    timings["encode"] = time.perf_counter() - started
    return tracks, probe(f.output_path)


def _run_video(f: _File, progress: Progress, cancel: Cancel | None) -> tuple[list[Track], MediaInfo | None]:
    plan, timings = f.plan, f.timings
    reviewed = plan.source_report is not None
    analyse_share = 0.0 if reviewed else (0.6 if f.output_path is not None else 1.0)
    started = time.perf_counter()
    if reviewed:
        tracks = plan.reviewed_tracks()
    else:
        analysed = lambda x: progress(analyse_share * x)  # noqa: E731
        tracks, _ = analyse(f.engine, plan, [f.input_path], info=f.info, progress=analysed, cancel=cancel)
    timings["detect"] = time.perf_counter() - started
    if f.thumbnails_dir is not None:
        write_video_thumbnails(f.thumbnails_dir, tracks, f.input_path)
        write_video_preview(f.thumbnails_dir, f.input_path, f.info)
    if f.output_path is None:
        return tracks, None
    started = time.perf_counter()
    rendered = lambda x: progress(analyse_share + (1 - analyse_share) * x)  # noqa: E731
    render(plan, f.input_path, f.output_path, tracks, info=f.info, progress=rendered, cancel=cancel)
    timings["render"] = time.perf_counter() - started
    return tracks, probe(f.output_path)
