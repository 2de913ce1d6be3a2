"""Models derived from pinned downloads (converted, quantized), cached in ``<store>/derived``.

Each derived ONNX has a JSON record beside it: what it was built from (sha256 of the
sources, builder versions) plus the sha256 of the ONNX itself. ``derived_model``
rebuilds when any of that no longer matches, under a file lock, so concurrent workers
build once and never load half a model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

from filelock import FileLock

from veil.detect.models import ModelStore, sha256_file

__all__ = ["derived_model"]


def derived_model(
    store: ModelStore,
    name: str,
    *,
    record: Mapping[str, object],
    build: Callable[[Path], Mapping[str, object] | None],
) -> Path:
    """``<store>/derived/<name>.onnx``, built by ``build(target)`` unless a matching one is cached.

    ``record`` describes the inputs; ``build`` must write ``target`` atomically and may return
    extra fields for the record (class names, input size...).
    """
    target = store.root / "derived" / f"{name}.onnx"
    meta_path = target.with_suffix(".json")
    if _is_current(target, meta_path, record):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{name}.lock")):
        if _is_current(target, meta_path, record):  # another worker built it meanwhile
            return target
        meta_path.unlink(missing_ok=True)  # a crash between the two writes leaves no stale record
        extra = build(target) or {}
        meta = {**record, **extra, "onnx_sha256": sha256_file(target)}
        _write_atomic(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return target


def _is_current(target: Path, meta_path: Path, record: Mapping[str, object]) -> bool:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(meta, dict)
        and target.is_file()
        and all(meta.get(key) == value for key, value in record.items())
        and meta.get("onnx_sha256") == sha256_file(target)
    )


def _write_atomic(path: Path, text: str) -> None:
    part = path.with_name(f"{path.name}.part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)
