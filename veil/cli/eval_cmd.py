"""``veil eval``: score a category's detector on a labelled image set, or Veil's masks on labelled video.

It runs the same detector the pipeline runs on stills (the multi-scale image
search, tuned defaults unless ``--threshold``), so the figures describe what
users get. ``--image-search fast`` scores the single-pass detector instead: the
one every video frame gets (at ``--detect-scale``) and ``image_search: fast``
stills get, so the recall cost of the fast profile is measured, not guessed.
``--video DIR`` scores whole-video analysis instead: every clip ``NAME.mp4`` with
``NAME.gt.txt`` (MOTChallenge) beside it goes through the pipeline's analysis, and
the pixels its masks would hide are scored frame by frame (``veil.evaluate.video``).
Failures print one line on stderr, ``error: <message> [<code>]``, and exit 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from veil.spec import RedactionSpec

__all__ = ["register"]


class _Search(StrEnum):
    thorough = "thorough"
    fast = "fast"


class _Format(StrEnum):
    voc = "voc"
    yolo = "yolo"
    coco = "coco"
    openalpr = "openalpr"
    ccpd = "ccpd"


def eval_command(
    images: Annotated[
        Path | None, typer.Option("--images", help="Directory of images (searched recursively).")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Directory (or COCO JSON file) of labels; ignored for ccpd."),
    ] = None,
    fmt: Annotated[_Format | None, typer.Option("--format", help="Label format of --labels.")] = None,
    video: Annotated[
        Path | None,
        typer.Option(
            "--video",
            help="Score video instead: a folder of clips NAME.mp4 with MOTChallenge labels NAME.gt.txt "
            "beside them (see the README).",
        ),
    ] = None,
    categories: Annotated[
        str | None,
        typer.Option("--categories", help="With --video: categories to analyse and score (default: Veil's)."),
    ] = None,
    detect_every: Annotated[
        int | None,
        typer.Option("--detect-every", min=1, max=30, help="With --video: detect every Nth frame."),
    ] = None,
    follow_camera: Annotated[
        bool,
        typer.Option("--follow-camera", help="With --video: trust the camera's motion between detections."),
    ] = False,
    method: Annotated[
        str | None,
        typer.Option("--method", help="With --video: masking method(s) whose mask shape is scored."),
    ] = None,
    shape: Annotated[str | None, typer.Option("--shape", help="With --video: ellipse or rect.")] = None,
    leak_shots: Annotated[
        Path | None,
        typer.Option(
            "--leak-shots",
            metavar="DIR",
            help="With --video: save a picture of every leaked object there (the middle frame of its "
            "longest leak; masks tinted red, label box green, core yellow).",
        ),
    ] = None,
    mask_scale: Annotated[
        str | None, typer.Option("--mask-scale", help="With --video: box growth, e.g. 1.3 or face=1.5.")
    ] = None,
    mask_margin: Annotated[
        str | None,
        typer.Option("--mask-margin", help="With --video: least growth in pixels a side, e.g. 0 or face=8."),
    ] = None,
    category: Annotated[str, typer.Option("--category", help="Category whose detector is scored.")] = "face",
    iou: Annotated[
        float, typer.Option("--iou", min=0.05, max=0.95, help="IoU at which a box matches a label.")
    ] = 0.3,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", min=0.01, max=0.99, help="Score threshold (default: the tuned one)."),
    ] = None,
    image_search: Annotated[
        _Search,
        typer.Option(
            "--image-search",
            help="thorough: the multi-scale still search (default). fast: the single pass video frames get.",
        ),
    ] = _Search.thorough,
    detect_scale: Annotated[
        float | None,
        typer.Option(
            "--detect-scale",
            min=0.1,
            max=4.0,
            help="With --image-search fast or --video: the video working scale (default 1.0 / Veil's).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    text_only: Annotated[
        str | None,
        typer.Option(
            "--text-only",
            help="With --category text: all (every line, default) or pii (only lines holding personal data; "
            "score it against labels of those lines only).",
        ),
    ] = None,
) -> None:
    """Recall, precision, F1, TP/FP/FN and images/second of a detector on a labelled set; or, with
    --video, frame-by-frame recall, leaks and false-mask share of Veil's masks on labelled clips."""
    video_only: dict[str, Any] = {  # the spec options that only --video scores
        "categories": categories,
        "detect_every": detect_every,
        "follow_camera": follow_camera,
        "method": method,
        "shape": shape,
        "mask_scale": mask_scale,
        "mask_margin": mask_margin,
    }
    if video is not None:
        if images is not None or labels is not None or fmt is not None:
            _fail("--video takes no --images, --labels or --format")
        if image_search is not _Search.thorough:
            _fail("--image-search is for stills; video frames always get the video search")
        from veil.cli.redact_cmd import build_spec

        asked = None if threshold is None else str(threshold)
        spec = build_spec(mode="detect", threshold=asked, detect_scale=detect_scale, **video_only)
        _eval_video(video, spec, as_json=as_json, leak_shots=leak_shots)
        return
    if images is None or labels is None or fmt is None:
        _fail("give --images, --labels and --format (stills), or --video DIR")
    given = [
        "--" + name.replace("_", "-") for name, value in video_only.items() if value not in (None, False)
    ]
    if leak_shots is not None:
        given.append("--leak-shots")
    if given:
        _fail(f"{', '.join(given)} only apply with --video")
    if text_only is not None and (category != "text" or text_only not in ("all", "pii")):
        _fail("--text-only takes all or pii, and only with --category text")
    scale = 1.0 if detect_scale is None else detect_scale
    from veil.detect.models import ModelStore
    from veil.detect.registry import build_detector
    from veil.detect.runtime import RuntimeOptions
    from veil.evaluate import evaluate
    from veil.settings import get_settings

    settings = get_settings()
    runtime = RuntimeOptions.from_settings(settings)
    with _one_line_errors(reading="the data set"):
        detector = build_detector(
            category,
            store=ModelStore(settings.model_dir),
            runtime=runtime,
            threshold=threshold,
            mode="image" if image_search is _Search.thorough else "video",
            detect_scale=scale,
            overrides=() if text_only is None else (("only", text_only),),
        )
        result = evaluate(detector, images_dir=images, labels_dir=labels, fmt=fmt.value, iou=iou)
    if as_json:
        search = {"image_search": image_search.value, "detect_scale": scale}
        typer.echo(
            json.dumps({"category": category, "format": fmt.value, **search, **result.to_dict()}, indent=2)
        )
        return
    typer.echo(
        f"{category} ({result.model}, {image_search.value} search) on {result.images} images, "
        f"IoU {result.iou:g}\n"
        f"  recall     {result.recall:.3f}\n"
        f"  precision  {result.precision:.3f}\n"
        f"  F1         {result.f1:.3f}\n"
        f"  TP {result.tp}  FP {result.fp}  FN {result.fn}\n"
        f"  {result.images_per_second:.2f} images/s ({result.seconds:.1f} s in the detector)"
    )


_SHOWN_LEAKS = 10
"""The text table lists this many leaked objects, longest unmasked run first."""


@contextmanager
def _one_line_errors(*, reading: str) -> Iterator[None]:
    """Veil's errors and unreadable files (``reading``: what was read) as the one ``error:`` line, exit 1."""
    from veil.errors import VeilError

    try:
        yield
    except VeilError as exc:
        typer.echo(f"error: {exc.message} [{exc.code}]", err=True)
        raise typer.Exit(code=1) from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        cause = exc.strerror or type(exc).__name__
        typer.echo(f"error: cannot read {reading}{where}: {cause} [invalid_spec]", err=True)
        raise typer.Exit(code=1) from None


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message} [invalid_spec]", err=True)
    raise typer.Exit(code=1)


def _eval_video(directory: Path, spec: RedactionSpec, *, as_json: bool, leak_shots: Path | None) -> None:
    from veil.evaluate.clips import evaluate_clips
    from veil.evaluate.video import VideoScore
    from veil.pipeline import Engine
    from veil.settings import get_settings

    def progress(name: str, score: VideoScore) -> None:
        if not as_json:
            parts = [f"{c} {s.masked}/{s.boxes}" for c, s in sorted(score.categories.items())]
            typer.echo(f"  {name}: {score.frames} frames, masked {', '.join(parts) or 'no labels'}", err=True)

    if leak_shots is not None:
        _make_shots_folder(leak_shots)
    with _one_line_errors(reading="the clips"):
        engine = Engine.from_settings(get_settings())
        result = evaluate_clips(engine, spec, directory, on_clip=progress, leak_shots=leak_shots)
    settings = {
        "categories": spec.enabled_categories(),
        "detect_every": spec.detection.detect_every,
        "detect_scale": spec.detection.detect_scale,
        "follow_camera": spec.detection.follow_camera,
        "method": {c: spec.method_for(c) for c in spec.enabled_categories()},
        "shape": {c: spec.shape_for(c) for c in spec.enabled_categories()},
        "mask_scale": {c: spec.mask_scale_for(c) for c in spec.enabled_categories()},
        "mask_margin": {c: spec.mask_margin_for(c) for c in spec.enabled_categories()},
    }
    if as_json:
        typer.echo(json.dumps({"video": str(directory), "settings": settings, **result.to_dict()}, indent=2))
        return
    total = result.total
    following = ", following the camera" if spec.detection.follow_camera else ""
    typer.echo(
        f"video: {total.clips} clips, {total.frames} frames, detect every {spec.detection.detect_every}, "
        f"scale {spec.detection.detect_scale:g}{following}; "
        f"analysis {result.fps:.1f} fps ({result.seconds:.1f} s)"
    )
    typer.echo(
        f"{'category':<14} {'boxes':>6} {'recall':>7} {'objects leaked':>15} {'leaked frames':>14} "
        f"{'longest run':>12} {'false-mask share':>17}"
    )
    for name, score in sorted(total.categories.items()):
        share = total.false_mask.get(name)
        typer.echo(
            f"{name:<14} {score.boxes:>6} {score.recall:>7.3f} "
            f"{f'{score.objects_leaked} of {score.objects}':>15} {score.leaked_frames:>14} "
            f"{score.longest_unmasked_run:>12} {'-' if share is None else f'{share.share:.3f}':>17}"
        )
    leaks = sorted(
        ((name, leak) for name, score in result.clips.items() for leak in score.leaks),
        key=lambda item: (-item[1].longest_run, -item[1].leaked_frames),
    )
    if leaks:
        typer.echo(f"longest leaks ({min(len(leaks), _SHOWN_LEAKS)} of {len(leaks)}; --json lists all):")
    for name, leak in leaks[:_SHOWN_LEAKS]:
        runs = ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in leak.runs)
        typer.echo(
            f"  {name} {leak.category} #{leak.object_id}: {leak.leaked_frames} of {leak.counted_frames} "
            f"frames unmasked (frames {runs}), median side {leak.min_side_px:.0f} px, "
            f"{_percent_down(leak.core_hidden)} of its core hidden"
        )
    if leak_shots is not None:
        typer.echo(f"{len(result.shots)} leak pictures in {leak_shots}", err=True)
    if result.unlabelled:
        typer.echo(f"warning: not scored, no {'.gt.txt'} beside: {', '.join(result.unlabelled)}", err=True)


def _make_shots_folder(folder: Path) -> None:
    """Create ``--leak-shots`` before the analysis, so a path that cannot hold pictures fails at once,
    not after minutes of analysis."""
    if folder.exists() and not folder.is_dir():
        _fail(f"--leak-shots {folder} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"--leak-shots {folder}: cannot create it ({exc.strerror or type(exc).__name__})")


def _percent_down(share: float) -> str:
    """``share`` as a percentage rounded down to 0.1, so a core 99.96 % hidden never reads as 100 %."""
    return f"{math.floor(share * 1000) / 10:g} %"


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
