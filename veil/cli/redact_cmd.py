"""``veil redact`` and ``veil detect``: the engine on files, directories and globs."""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from veil.media.formats import MEDIA_SUFFIXES, OUTPUT_FORMAT_BY_SUFFIX

if TYPE_CHECKING:
    from veil.spec import DetectionOptions

__all__ = ["register"]


@dataclass(frozen=True)
class _Job:
    source: Path
    relative: Path
    """Path below the argument it came from, so directory trees keep their shape in the output."""


def expand_inputs(args: list[str]) -> list[_Job]:
    """Files, directories (recursively, media suffixes only) and glob patterns, in a stable order."""
    jobs: list[_Job] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            for found in sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES
            ):
                jobs.append(_Job(found, found.relative_to(path)))
        elif path.exists():
            jobs.append(_Job(path, Path(path.name)))
        else:
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                jobs.append(_Job(path, Path(path.name)))  # reported as missing when processed
            jobs.extend(_Job(m, Path(m.name)) for m in files)
    return jobs


def _parse_per_category(value: str | None, *, what: str) -> tuple[str | None, dict[str, str]]:
    """``blur`` or ``face=blur,license_plate=black`` → (default, per-category)."""
    if not value:
        return None, {}
    default: str | None = None
    per: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",") if p.strip()):
        if "=" in part:
            name, _, v = part.partition("=")
            per[name.strip()] = v.strip()
        elif default is None:
            default = part
        else:
            raise typer.BadParameter(f"give one default {what}, or name=value pairs")
    return default, per


def _number(value: str, *, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"{what} must be a number, got {value!r}") from None


def _silences(text: str) -> list[dict[str, float]]:
    """``--mute 12.5-14,1:02-1:05.5``: spans of seconds, or of [h:]m:s, as the spec's ``audio.mute``."""
    spans = []
    for part in (p.strip() for p in text.split(",")):
        start, sep, end = part.partition("-")
        if not sep:
            raise typer.BadParameter(f"--mute takes START-END spans (seconds or m:s), got {part!r}")
        spans.append({"start": _clock_seconds(start), "end": _clock_seconds(end)})
    return spans


def _clock_seconds(text: str) -> float:
    """``75.5``, ``1:15.5`` or ``0:01:15.5`` as seconds."""
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + _number(part, what="a --mute time")
    return seconds


def build_spec(
    *,
    mode: str,
    spec_file: Path | None = None,
    categories: str | None = None,
    method: str | None = None,
    shape: str | None = None,
    threshold: str | None = None,
    mask_scale: str | None = None,
    mask_margin: str | None = None,
    detect_scale: float | None = None,
    detect_every: int | None = None,
    follow_camera: bool = False,
    image_search: str | None = None,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    keep_bitrate: bool = False,
    keep_metadata: bool = False,
    output_format: str | None = None,
    text_only: str | None = None,
    remove_audio: bool = False,
    mute: str | None = None,
    bleep: bool = False,
) -> Any:
    """Merge a spec file (if any) with command-line options into a validated ``RedactionSpec``."""
    from pydantic import ValidationError

    from veil.spec import RedactionSpec

    data: dict[str, Any] = {}
    if spec_file is not None:
        try:
            data = json.loads(spec_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise typer.BadParameter(f"cannot read spec file: {exc}") from exc
    data["mode"] = mode
    cats: dict[str, dict[str, Any]] = dict(data.get("categories") or {})
    if categories:
        names = [c.strip() for c in categories.split(",") if c.strip()]
        cats = {name: dict(cats.get(name, {})) for name in names}
    elif not cats:
        cats = {name: {} for name in RedactionSpec().categories}
    default_method, methods = _parse_per_category(method, what="method")
    default_threshold, thresholds = _parse_per_category(threshold, what="threshold")
    default_scale, scales = _parse_per_category(mask_scale, what="mask scale")
    default_margin, margins = _parse_per_category(mask_margin, what="mask margin")
    for name, cat in cats.items():
        if name in methods:
            cat["method"] = methods[name]
        if default_threshold is not None or name in thresholds:
            given = thresholds.get(name, default_threshold)
            cat["threshold"] = _number(given, what="threshold")  # type: ignore[arg-type]
        if name in scales:
            cat["mask_scale"] = _number(scales[name], what="mask scale")
        if name in margins:
            cat["mask_margin"] = _number(margins[name], what="mask margin")
    if text_only is not None:
        if "text" not in cats:
            raise typer.BadParameter("--text-only needs the text category (add it to --categories)")
        cats["text"]["only"] = text_only
    unknown = (set(methods) | set(thresholds) | set(scales) | set(margins)) - set(cats)
    if unknown:
        raise typer.BadParameter(
            f"settings for categories that are not enabled: {', '.join(sorted(unknown))}"
        )
    data["categories"] = cats
    if default_method:
        data["method"] = default_method
    if shape:
        data["shape"] = shape
    if default_scale:
        data["mask_scale"] = _number(default_scale, what="mask scale")
    if default_margin is not None:
        data["mask_margin"] = _number(default_margin, what="mask margin")
    detection = dict(data.get("detection") or {})
    if detect_scale is not None:
        detection["detect_scale"] = detect_scale
    if detect_every is not None:
        detection["detect_every"] = detect_every
    if follow_camera:
        detection["follow_camera"] = True
    if image_search is not None:
        detection["image_search"] = image_search
    data["detection"] = detection
    output = dict(data.get("output") or {})
    for key, value in (("codec", codec), ("crf", crf), ("preset", preset), ("format", output_format)):
        if value is not None:
            output[key] = value
    if keep_bitrate:
        output["keep_bitrate"] = True
    if keep_metadata:
        output["keep_metadata"] = True
    data["output"] = output
    if remove_audio or mute is not None or bleep:
        audio = dict(data.get("audio") or {})
        if remove_audio:
            audio["remove"] = True
        if mute is not None:
            audio["mute"] = _silences(mute)
        if bleep:
            audio["fill"] = "bleep"
        data["audio"] = audio
    from veil.errors import SpecError
    from veil.pipeline.plan import check_spec

    try:
        spec = RedactionSpec.model_validate(data)
        check_spec(spec)
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(_one_line_validation(exc)) from exc
    except SpecError as exc:
        raise typer.BadParameter(exc.message) from exc
    return spec


def _one_line_validation(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
    return str(exc)


def _output_path(job: _Job, out: Path | None, suffix: str, single: bool) -> Path:
    if out is None:
        return job.source.with_name(f"{job.source.stem}.redacted{suffix}")
    if single and out.suffix and not out.is_dir():
        return out
    return out / job.relative.with_suffix(suffix)


def _engine() -> Any:
    from veil.pipeline import Engine
    from veil.settings import get_settings

    return Engine.from_settings(get_settings())


def _error_line(source: Path, exc: BaseException) -> str:
    from veil.errors import VeilError

    if isinstance(exc, VeilError):
        return f"error: {source}: {exc.message} [{exc.code}]"
    if isinstance(exc, FileNotFoundError):
        return f"error: {source}: no such file [not_found]"
    if isinstance(exc, PermissionError):
        return f"error: {source}: permission denied [permission_denied]"
    return f"error: {source}: unexpected failure ({type(exc).__name__}) [internal_error]"


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
        disable=not sys.stderr.isatty(),
    )


def _bar_updater(bars: Any, task: Any) -> Callable[[float], None]:
    def update(fraction: float) -> None:
        bars.update(task, completed=round(fraction * 100))

    return update


@dataclass(frozen=True)
class _Planned:
    job: _Job
    info: Any
    """The probed ``MediaInfo``, or None when probing failed (``error`` says why)."""
    dst: Path | None
    error: BaseException | None


def _plan(jobs: list[_Job], spec: Any, *, out: Path | None, redact: bool) -> list[_Planned]:
    """Probe every input and choose its output path, before anything is written.

    Two inputs that would write the same output (``c1/x.jpg`` and ``c2/x.jpg``
    into one ``-o`` directory, or ``x.mov`` and ``x.mkv`` that both become
    ``x.mp4``), or an output that is one of the inputs, are refused here as a
    whole: writing either would lose data, so nothing is written at all.
    """
    from veil.errors import VeilError
    from veil.media import probe
    from veil.pipeline import check_output

    planned: list[_Planned] = []
    for job in jobs:
        try:
            info = probe(job.source)
            dst = _output_path(job, out, check_output(spec, info), single=len(jobs) == 1) if redact else None
        except (VeilError, OSError) as exc:
            planned.append(_Planned(job, None, None, exc))
            continue
        planned.append(_Planned(job, info, dst, None))
    if redact:
        _refuse_clashes(planned)
    return planned


def _refuse_clashes(planned: list[_Planned]) -> None:
    inputs = {p.job.source.resolve(): p.job.source for p in planned}
    writers: dict[Path, list[Path]] = {}
    for p in planned:
        if p.dst is not None:
            writers.setdefault(p.dst.resolve(), []).append(p.job.source)
    problems: list[str] = []
    for dst, sources in writers.items():
        if len(sources) > 1:
            names = ", ".join(str(s) for s in sources)
            problems.append(f"error: {names} would all be written to {dst}")
        if dst in inputs:
            problems.append(f"error: {inputs[dst]} would be overwritten by the output of {sources[0]}")
    if problems:
        for line in problems:
            typer.echo(line, err=True)
        raise _fail(
            "error: nothing was written; redact these inputs in separate runs or with "
            "different -o directories [output_clash]"
        )


def _iter_runs(
    jobs: list[_Job], spec: Any, *, out: Path | None, redact: bool
) -> Iterator[tuple[_Job, Path | None, Any, BaseException | None]]:
    """Run the pipeline file by file, with progress bars; yield (job, output, report, error)."""
    from veil.errors import ModelError, VeilError
    from veil.pipeline import run

    planned = _plan(jobs, spec, out=out, redact=redact)
    engine = _engine()
    with _progress() as bars:
        total = bars.add_task("total", total=len(planned))
        for item in planned:
            job, dst = item.job, item.dst
            task = bars.add_task(job.source.name[:40], total=100)
            try:
                if item.error is not None:
                    raise item.error
                if dst is not None:
                    dst.parent.mkdir(parents=True, exist_ok=True)
                report = run(
                    engine,
                    spec,
                    job.source,
                    dst,
                    info=item.info,
                    file_label=str(job.source),
                    progress=_bar_updater(bars, task),
                )
                yield job, dst, report, None
            except ModelError:
                raise
            except (VeilError, OSError, typer.BadParameter) as exc:
                if dst is not None and item.error is None:
                    dst.unlink(missing_ok=True)
                yield job, None, None, exc
            finally:
                bars.remove_task(task)
                bars.advance(total)


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code=1)


class _ReceiptWriter:
    """Signed receipts of a ``veil redact --report`` run: ``REPORT.receipts/<output name>.receipt.json``,
    signed with this machine's receipt key (``VEIL_DATA_DIR/receipt-keys`` or VEIL_RECEIPT_KEY_FILE)."""

    def __init__(self, report_path: Path, *, names: bool) -> None:
        from veil.receipts import Keyring
        from veil.settings import get_settings

        settings = get_settings()
        self.keyring = Keyring.load(settings.data_dir / "receipt-keys", key_file=settings.receipt_key_file)
        self.directory = report_path.with_name(report_path.stem + ".receipts")
        self.names = names

    def write(
        self, spec: Any, source: Path, dst: Path, report: Any, started: datetime, finished: datetime
    ) -> Path:
        from veil.receipts import FileFacts, ReceiptTimes, sign_receipt
        from veil.receipts.model import make_receipt

        receipt = make_receipt(
            spec=spec.model_dump(mode="json"),
            veil_version=report.veil_version,
            mode="redact",
            kind=report.kind,
            input=FileFacts(
                sha256=report.input_sha256,
                size=source.stat().st_size,
                name=str(source) if self.names else None,
            ),
            output=FileFacts(
                sha256=report.output_sha256,
                size=dst.stat().st_size,
                name=str(dst) if self.names else None,
            ),
            models=report.models,
            counts={str(k): int(v) for k, v in report.counts.items()},
            frames=report.input.frame_count if report.kind == "video" else 1,
            masked_frames=report.masked_frames,
            times=ReceiptTimes(
                started_at=started,
                finished_at=finished,
                processing_s=round((finished - started).total_seconds(), 4),
            ),
        )
        signed = sign_receipt(receipt, self.keyring)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{dst.name}.receipt.json"
        path.write_text(json.dumps(signed.model_dump(mode="json"), indent=2))
        return path


Paths = Annotated[list[str], typer.Argument(help="Files, directories or glob patterns.")]
Categories = Annotated[
    str | None, typer.Option(help="Comma-separated: face,license_plate,qr_code,barcode,text,...")
]
Threshold = Annotated[
    str | None, typer.Option(help="Score threshold, or per category: face=0.3,license_plate=0.4")
]
DetectScale = Annotated[float | None, typer.Option(help="Video: detector resolution factor (speed/recall).")]
DetectEvery = Annotated[int | None, typer.Option(help="Video: detect on every Nth frame, track between.")]
FollowCamera = Annotated[
    bool,
    typer.Option(
        "--follow-camera",
        help="Video: trust the camera's motion between detections (faster on panning footage, "
        "slightly lower recall; README, 'Following the camera').",
    ),
]
ImageSearch = Annotated[
    str | None, typer.Option(help="Stills: thorough (multi-scale, default) or fast (single pass).")
]
SpecFile = Annotated[Path | None, typer.Option("--spec", help="A JSON RedactionSpec; options override it.")]
TextOnly = Annotated[
    str | None,
    typer.Option(
        "--text-only",
        help="With the text category: all (every line) or pii (only lines holding personal data).",
    ),
]
"""The options ``veil redact`` and ``veil detect`` share, one definition each."""


def redact(
    paths: Paths,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Output file (one input) or directory.")
    ] = None,
    categories: Categories = None,
    method: Annotated[
        str | None,
        typer.Option(help="blur|pixelate|black|box, or per category: face=blur,license_plate=black"),
    ] = None,
    shape: Annotated[str | None, typer.Option(help="ellipse or rect.")] = None,
    threshold: Threshold = None,
    mask_scale: Annotated[
        str | None, typer.Option(help="Grow boxes by this factor, or per category.")
    ] = None,
    mask_margin: Annotated[
        str | None,
        typer.Option(
            help="Grow boxes by at least this many pixels a side, or per category (default face=8, others 0)."
        ),
    ] = None,
    detect_scale: DetectScale = None,
    detect_every: DetectEvery = None,
    follow_camera: FollowCamera = False,
    image_search: ImageSearch = None,
    codec: Annotated[str | None, typer.Option(help="h264 (default) or h265.")] = None,
    crf: Annotated[int | None, typer.Option(help="Video quality, 0-51 (lower is better).")] = None,
    preset: Annotated[str | None, typer.Option(help="x264/x265 preset (default veryfast).")] = None,
    keep_bitrate: Annotated[
        bool, typer.Option("--keep-bitrate", help="Match the input's video bitrate (±15 %).")
    ] = False,
    keep_metadata: Annotated[
        bool, typer.Option("--keep-metadata", help="Keep GPS, camera serials and other tags.")
    ] = False,
    output_format: Annotated[
        str | None, typer.Option("--format", help="Output format: mp4, mov, mkv, jpeg, png, webp.")
    ] = None,
    remove_audio: Annotated[
        bool, typer.Option("--remove-audio", help="Videos: write the output without sound.")
    ] = False,
    mute: Annotated[
        str | None,
        typer.Option(
            help="Videos: silence these spans of the sound, e.g. 12.5-14,1:02-1:05.5 (seconds or m:s)."
        ),
    ] = None,
    bleep: Annotated[
        bool, typer.Option("--bleep", help="With --mute: a 1 kHz bleep in the spans instead of silence.")
    ] = False,
    spec_file: SpecFile = None,
    report_path: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write the JSON report of every file here, and a signed receipt per file into "
            "REPORT.receipts/ (check with `veil verify`).",
        ),
    ] = None,
    receipt_names: Annotated[
        bool, typer.Option("--receipt-names", help="Put the input and output file names in the receipts.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON result line per file.")] = False,
    text_only: TextOnly = None,
) -> None:
    """Mask faces and licence plates in images and videos."""
    from veil.errors import ModelError

    spec = build_spec(
        spec_file=spec_file,
        mode="redact",
        text_only=text_only,
        categories=categories,
        method=method,
        shape=shape,
        threshold=threshold,
        mask_scale=mask_scale,
        mask_margin=mask_margin,
        detect_scale=detect_scale,
        detect_every=detect_every,
        follow_camera=follow_camera,
        image_search=image_search,
        codec=codec,
        crf=crf,
        preset=preset,
        keep_bitrate=keep_bitrate,
        keep_metadata=keep_metadata,
        output_format=output_format,
        remove_audio=remove_audio,
        mute=mute,
        bleep=bleep,
    )
    jobs = expand_inputs(paths)
    if not jobs:
        raise _fail("error: no input files")
    if (
        output is not None
        and len(jobs) == 1
        and output.suffix
        and not output.is_dir()
        and output_format is None
    ):
        fmt = OUTPUT_FORMAT_BY_SUFFIX.get(output.suffix.lower())
        if fmt is None:
            raise _fail(
                f"error: cannot write {output.suffix!r} files; use .mp4, .mov, .mkv, .jpg, .png or .webp"
            )
        spec = spec.model_copy(update={"output": spec.output.model_copy(update={"format": fmt})})
    reports: list[dict[str, Any]] = []
    failed = 0
    receipts = _ReceiptWriter(report_path, names=receipt_names) if report_path is not None else None
    started = datetime.now(UTC)
    try:
        for job, dst, report, error in _iter_runs(jobs, spec, out=output, redact=True):
            finished = datetime.now(UTC)
            run_started, started = started, finished
            if error is None and receipts is not None and dst is not None:
                receipt_path = receipts.write(spec, job.source, dst, report, run_started, finished)
                reports.append({**report.model_dump(mode="json"), "receipt": str(receipt_path)})
            elif error is None:
                reports.append(report.model_dump(mode="json"))
            if error is not None:
                failed += 1
                typer.echo(_error_line(job.source, error), err=True)
                if as_json:
                    typer.echo(
                        json.dumps({"file": str(job.source), "ok": False, "error": _error_dict(error)})
                    )
                continue
            if as_json:
                typer.echo(
                    json.dumps(
                        {"file": str(job.source), "ok": True, "output": str(dst), "counts": report.counts}
                    )
                )
            else:
                counts = ", ".join(f"{n} {c}" for c, n in report.counts.items()) or "nothing found"
                typer.echo(f"{job.source} -> {dst} ({counts})", err=True)
            _warn_unused(job.source, report.kind, spec.detection)
    except ModelError as exc:
        raise _fail(f"error: {exc.message}") from None
    if report_path is not None:
        report_path.write_text(json.dumps({"files": reports}, indent=2))
    if failed:
        raise typer.Exit(code=1)


def _error_dict(exc: BaseException) -> dict[str, str]:
    from veil.errors import VeilError

    if isinstance(exc, VeilError):
        return {"code": exc.code, "message": exc.message}
    return {"code": "error", "message": _error_line(Path(""), exc).split(": ", 2)[-1]}


def detect(
    paths: Paths,
    categories: Categories = None,
    threshold: Threshold = None,
    detect_scale: DetectScale = None,
    detect_every: DetectEvery = None,
    follow_camera: FollowCamera = False,
    image_search: ImageSearch = None,
    spec_file: SpecFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file, one per line.")] = False,
    text_only: TextOnly = None,
) -> None:
    """Find faces and plates without writing anything; boxes are in stored-frame pixels."""
    from veil.errors import ModelError

    spec = build_spec(
        spec_file=spec_file,
        mode="detect",
        text_only=text_only,
        categories=categories,
        threshold=threshold,
        detect_scale=detect_scale,
        detect_every=detect_every,
        follow_camera=follow_camera,
        image_search=image_search,
    )
    jobs = expand_inputs(paths)
    if not jobs:
        raise _fail("error: no input files")
    failed = 0
    try:
        for job, _dst, report, error in _iter_runs(jobs, spec, out=None, redact=False):
            if error is not None:
                failed += 1
                typer.echo(_error_line(job.source, error), err=True)
                continue
            _warn_unused(job.source, report.kind, spec.detection)
            line = detect_json(report)
            if as_json:
                typer.echo(json.dumps(line))
            else:
                counts = ", ".join(f"{n} {c}" for c, n in report.counts.items()) or "nothing found"
                typer.echo(f"{job.source}: {counts}")
    except ModelError as exc:
        raise _fail(f"error: {exc.message}") from None
    if failed:
        raise typer.Exit(code=1)


def _warn_unused(source: Path, kind: str, detection: DetectionOptions) -> None:
    """Say so when an option met a file it cannot apply to (``DetectionOptions.unused_for``), rather than
    ignore it silently."""
    unused = [f"--{name.replace('_', '-')}" for name in detection.unused_for(kind)]
    if not unused:
        return
    if kind == "image":
        this, only = (
            "a still",
            "video only (stills get the multi-scale search; --image-search fast is theirs)",
        )
    else:
        this, only = "a video", "stills only"
    verb = "applies" if len(unused) == 1 else "apply"
    typer.echo(f"warning: {source} is {this}; {' and '.join(unused)} {verb} to {only}", err=True)


def detect_json(report: Any) -> dict[str, Any]:
    """The documented ``veil detect --json`` line for one report."""
    base: dict[str, Any] = {
        "file": report.file,
        "kind": report.kind,
        "width": report.input.width,
        "height": report.input.height,
    }
    if report.kind == "image":
        base["detections"] = [
            {"category": t.category, "box": list(t.frames[0].box), "score": t.frames[0].score}
            for t in report.tracks
        ]
    else:
        base["frame_count"] = report.input.frame_count
        base["fps"] = report.input.fps
        base["tracks"] = [
            {
                "id": t.id,
                "category": t.category,
                "frames": [{"frame": f.frame, "box": list(f.box), "score": f.score} for f in t.frames],
            }
            for t in report.tracks
        ]
    return base


def register(app: typer.Typer) -> None:
    app.command("redact")(redact)
    app.command("detect")(detect)
