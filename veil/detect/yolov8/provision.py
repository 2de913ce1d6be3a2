"""Turn verified YOLOv8 weights into ONNX files the detectors can load.

* The licence-plate model ships as an ultralytics ``.pt`` (pinned in
  ``veil.detect.models``). :func:`plate_model_path` converts it once into
  ``<store>/derived/license_plate.onnx`` and records, in a JSON file beside it,
  the sha256 of the source and of the ONNX plus the converter version. Later
  calls only check those; a changed source, converter or ONNX triggers a
  fresh conversion.
* Bring-your-own: :func:`add_custom_model` accepts a YOLOv8 ``.pt`` (converted,
  never unpickled with ``pickle.load``) or a YOLOv8 ``.onnx`` (validated by
  running it), and stores it as ``<store>/custom/<category>.onnx`` plus a JSON
  description. ``veil models export``/``import`` carry ``custom/`` along.

Writes go to a ``.part`` file and are renamed into place under a file lock,
so concurrent workers never see half a model.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from filelock import FileLock

from veil.detect.derived import derived_model
from veil.detect.models import ModelStore, sha256_file
from veil.detect.runtime import RuntimeOptions, create_session
from veil.detect.yolov8.convert import convert_checkpoint, write_atomic
from veil.errors import ModelCorrupt, ModelError, ModelMissing, SpecError
from veil.spec import BUILTIN_CATEGORIES

__all__ = [
    "CATEGORY_PATTERN",
    "CONVERTER_VERSION",
    "CustomModel",
    "add_custom_model",
    "custom_models",
    "plate_model_path",
]

CONVERTER_VERSION = 1
"""Bump when the converter's output changes, so derived models are rebuilt."""

CATEGORY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
PLATE_SOURCE = "plate_yolov8_pt"
_CUSTOM = "custom"


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(data: dict[str, object], path: Path) -> None:
    write_atomic((json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"), path)


def plate_model_path(store: ModelStore) -> Path:
    """The licence-plate ONNX, converted from the verified ``.pt`` on first use.

    Raises ``ModelMissing``/``ModelCorrupt`` from the store when the ``.pt``
    is not pulled or fails its pinned sha256.
    """
    source = store.path(PLATE_SOURCE)
    record = {
        "category": "license_plate",
        "converter_version": CONVERTER_VERSION,
        "source": PLATE_SOURCE,
        "source_sha256": sha256_file(source),
    }

    def build(target: Path) -> dict[str, object]:
        info = convert_checkpoint(source, target)
        return {"names": {str(k): v for k, v in info.names.items()}, "imgsz": info.imgsz}

    return derived_model(store, "license_plate", record=record, build=build)


@dataclass(frozen=True)
class CustomModel:
    """A user-added YOLOv8 detector for one custom category."""

    category: str
    path: Path
    """The ONNX file to give ``YoloV8Detector(model_path=...)``."""
    names: dict[int, str]
    """The model's own class names, by class index."""
    source_kind: Literal["pt", "onnx"]
    source_sha256: str
    onnx_sha256: str
    classes: tuple[int, ...] | None = None
    """The class indices that count as this category (``--classes``); None: every class."""


def _check_category(category: str) -> None:
    if not CATEGORY_PATTERN.match(category):
        raise SpecError(
            "a custom category name must be 1-40 characters of a-z, 0-9 and _, starting with a letter"
        )
    if category in BUILTIN_CATEGORIES:
        raise SpecError(f"{category!r} is a built-in category; choose another name for a custom model")


def _onnx_names(model: onnx.ModelProto, nc: int) -> dict[int, str]:
    """Class names from the model metadata: veil's JSON or ultralytics' Python dict literal."""
    raw = {p.key: p.value for p in model.metadata_props}.get("names", "")
    parsed: object = None
    for parse in (json.loads, ast.literal_eval):  # literal_eval evaluates literals only, never code
        try:
            parsed = parse(raw)
            break
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    names: dict[int, str] = {}
    if isinstance(parsed, dict):
        names = {int(k): str(v) for k, v in parsed.items() if str(k).isdigit()}
    elif isinstance(parsed, list):
        names = {i: str(v) for i, v in enumerate(parsed)}
    return {i: names.get(i, f"class{i}") for i in range(nc)}


def _validate_onnx(path: Path) -> dict[int, str]:
    """Check that ``path`` is a YOLOv8-style detector by running it once; return its class names."""
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError...
        raise ModelCorrupt("the custom model is not a valid ONNX file") from exc
    session = create_session(path, options=RuntimeOptions(intra_op_threads=1))
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ModelError("the custom model must have exactly one image input [1, 3, H, W]")
    dims = inputs[0].shape
    h = dims[2] if isinstance(dims[2], int) else 640
    w = dims[3] if isinstance(dims[3], int) else 640
    channels_ok = dims[1] == 3 or not isinstance(dims[1], int)  # fixed 3, or a symbolic dimension
    if not channels_ok or not (32 <= h <= 4096 and 32 <= w <= 4096):
        raise ModelError("the custom model must take a 3-channel image of 32 to 4096 pixels a side")
    try:
        result = session.run(None, {inputs[0].name: np.zeros((1, 3, h, w), dtype=np.float32)})
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
        raise ModelError("the custom model failed to run on a blank image") from exc
    out = np.asarray(result[0])
    if len(outputs) < 1 or out.ndim != 3 or out.shape[0] != 1 or out.shape[1] < 5 or out.shape[2] < 1:
        raise ModelError("the custom model's first output must be YOLOv8-shaped [1, 4 + classes, anchors]")
    return _onnx_names(model, int(out.shape[1]) - 4)


def _resolve_classes(wanted: Sequence[str], names: dict[int, str]) -> tuple[int, ...]:
    """Class names (as the model calls them) or indices, as sorted unique indices."""
    by_name = {v.casefold(): k for k, v in names.items()}
    chosen: set[int] = set()
    for item in wanted:
        key = item.strip()
        index = int(key) if key.isdigit() else by_name.get(key.casefold())
        if index is None or index not in names:
            known = ", ".join(names.values()) if len(names) <= 100 else f"{len(names)} classes"
            raise SpecError(f"the custom model has no class {key!r}; it has: {known}")
        chosen.add(index)
    if not chosen:
        raise SpecError("--classes names no class")
    return tuple(sorted(chosen))


def add_custom_model(
    store: ModelStore, *, category: str, source: Path, classes: Sequence[str] | None = None
) -> CustomModel:
    """Store a YOLOv8 detector for ``category``; replaces an earlier one of that name.

    ``source`` is an ultralytics YOLOv8 ``.pt`` (converted without torch;
    a hostile pickle raises ``UnsafeModelFile``) or a YOLOv8 ``.onnx``.
    ``classes`` (names or indices of the model's classes) limits the category to
    those classes, so one COCO model can serve ``person`` (``person``) and
    ``vehicle`` (``car``, ``bus``, ``truck``, ``motorcycle``, ``bicycle``).
    """
    _check_category(category)
    source = Path(source)
    if not source.is_file():
        raise ModelMissing("the custom model file does not exist")
    kind: Literal["pt", "onnx"]
    if source.suffix.lower() == ".pt":
        kind = "pt"
    elif source.suffix.lower() == ".onnx":
        kind = "onnx"
    else:
        raise ModelError("a custom model must be a YOLOv8 .pt or .onnx file")
    custom = store.root / _CUSTOM
    custom.mkdir(parents=True, exist_ok=True)
    target = custom / f"{category}.onnx"
    meta_path = custom / f"{category}.json"
    staging = custom / f".{category}.staging.onnx"
    with FileLock(str(custom / ".custom.lock")):
        try:
            source_sha = sha256_file(source)
            if kind == "pt":
                convert_checkpoint(source, staging)
            else:
                shutil.copyfile(source, staging)
            names = _validate_onnx(staging)
            chosen = None if classes is None else _resolve_classes(classes, names)
            onnx_sha = sha256_file(staging)
            meta_path.unlink(missing_ok=True)
            staging.replace(target)
        finally:
            staging.unlink(missing_ok=True)
        _write_json(
            {
                "category": category,
                "names": {str(k): v for k, v in names.items()},
                "source_kind": kind,
                "source_sha256": source_sha,
                "onnx_sha256": onnx_sha,
                "converter_version": CONVERTER_VERSION,
                "classes": None if chosen is None else list(chosen),
            },
            meta_path,
        )
    return CustomModel(
        category=category,
        path=target,
        names=names,
        source_kind=kind,
        source_sha256=source_sha,
        onnx_sha256=onnx_sha,
        classes=chosen,
    )


def custom_models(store: ModelStore) -> dict[str, CustomModel]:
    """Every custom model in the store, by category, each checked against its recorded sha256.

    A damaged entry raises ``ModelCorrupt`` rather than being skipped: a
    category silently missing would leave its objects unmasked.
    """
    found: dict[str, CustomModel] = {}
    custom = store.root / _CUSTOM
    if not custom.is_dir():
        return found
    for meta_path in sorted(custom.glob("*.json")):
        category = meta_path.stem
        meta = _read_json(meta_path)
        target = custom / f"{category}.onnx"
        if meta is None or meta.get("category") != category or not CATEGORY_PATTERN.match(category):
            raise ModelCorrupt(f"custom model record {meta_path.name} is unreadable; add the model again")
        names_raw = meta.get("names")
        kind = meta.get("source_kind")
        onnx_sha = meta.get("onnx_sha256")
        source_sha = meta.get("source_sha256")
        if (
            not isinstance(names_raw, dict)
            or kind not in ("pt", "onnx")
            or not isinstance(onnx_sha, str)
            or not isinstance(source_sha, str)
        ):
            raise ModelCorrupt(f"custom model record {meta_path.name} is incomplete; add the model again")
        if not target.is_file() or sha256_file(target) != onnx_sha:
            raise ModelCorrupt(f"custom model {category!r} is missing or damaged; add the model again")
        classes_raw = meta.get("classes")
        if classes_raw is not None and (
            not isinstance(classes_raw, list) or not all(isinstance(c, int) and c >= 0 for c in classes_raw)
        ):
            raise ModelCorrupt(f"custom model record {meta_path.name} has bad classes; add the model again")
        found[category] = CustomModel(
            category=category,
            path=target,
            names={int(k): str(v) for k, v in names_raw.items() if str(k).isdigit()},
            source_kind="pt" if kind == "pt" else "onnx",
            source_sha256=source_sha,
            onnx_sha256=onnx_sha,
            classes=None if classes_raw is None else tuple(classes_raw),
        )
    return found
