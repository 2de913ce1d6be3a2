"""``veil eval``: score a category's detector on a labelled image set.

It runs the same detector the pipeline runs on stills (the multi-scale image
search, tuned defaults unless ``--threshold``), so the figures describe what
users get. ``--image-search fast`` scores the single-pass detector instead: the
one every video frame gets (at ``--detect-scale``) and ``image_search: fast``
stills get, so the recall cost of the fast profile is measured, not guessed.
Failures print one line on stderr, ``error: <message> [<code>]``, and exit 1.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

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
    images: Annotated[Path, typer.Option("--images", help="Directory of images (searched recursively).")],
    labels: Annotated[
        Path, typer.Option("--labels", help="Directory (or COCO JSON file) of labels; ignored for ccpd.")
    ],
    fmt: Annotated[_Format, typer.Option("--format", help="Label format.")],
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
        float,
        typer.Option(
            "--detect-scale", min=0.1, max=4.0, help="With --image-search fast: the video working scale."
        ),
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Recall, precision, F1, TP/FP/FN and images/second of a detector on a labelled set."""
    from veil.detect.models import ModelStore
    from veil.detect.registry import build_detector
    from veil.errors import VeilError
    from veil.evaluate import evaluate
    from veil.settings import get_settings

    settings = get_settings()
    runtime = settings.runtime_options()
    try:
        detector = build_detector(
            category,
            store=ModelStore(settings.model_dir),
            runtime=runtime,
            threshold=threshold,
            mode="image" if image_search is _Search.thorough else "video",
            detect_scale=detect_scale,
        )
        result = evaluate(detector, images_dir=images, labels_dir=labels, fmt=fmt.value, iou=iou)
    except VeilError as exc:
        typer.echo(f"error: {exc.message} [{exc.code}]", err=True)
        raise typer.Exit(code=1) from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        typer.echo(
            f"error: cannot read the data set{where}: {exc.strerror or type(exc).__name__} [invalid_spec]",
            err=True,
        )
        raise typer.Exit(code=1) from None
    if as_json:
        search = {"image_search": image_search.value, "detect_scale": detect_scale}
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


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
