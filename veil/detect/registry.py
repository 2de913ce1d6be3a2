"""Which detector finds which category: an explicit table, no discovery magic.

Two dicts carry everything:

* ``BUILDERS`` maps a detector config's ``type`` (the discriminator of
  ``DetectorConfig``) to the function that builds it from its config, the
  model store and the runtime options.
* ``CATEGORIES`` maps a spec category (``face``, ...) to its tuned default
  config and to the model file whose sha256 the report records.

``build_detector`` joins them and applies the per-request knobs (threshold,
image or video search, video working scale). Categories ``license_plate``,
``qr_code``, ``barcode`` and custom YOLOv8 ones live in ``veil.detect.yolov8``
and ``veil.detect.codes``; they are added to both dicts (and their configs to
``DetectorConfig``) where marked below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, TypeAdapter, ValidationError

from veil.detect.base import Detector
from veil.detect.centerface import CenterFace, CenterFaceConfig
from veil.detect.models import MODELS, ModelStore
from veil.detect.runtime import RuntimeOptions
from veil.errors import SpecError

__all__ = [
    "BUILDERS",
    "CATEGORIES",
    "CategoryDefaults",
    "DetectorConfig",
    "Mode",
    "available_categories",
    "build_detector",
    "build_from_config",
    "model_sha256",
    "parse_detector_config",
]

Mode = Literal["image", "video"]

# Add YoloV8Config, QRCodeConfig, BarcodeConfig here as `CenterFaceConfig | YoloV8Config | ...`.
DetectorConfig = Annotated[CenterFaceConfig, Field(discriminator="type")]
"""Every detector config, told apart by its ``type`` field."""

_CONFIG_ADAPTER: TypeAdapter[DetectorConfig] = TypeAdapter(DetectorConfig)


class Builder(Protocol):
    def __call__(
        self, config: Any, *, store: ModelStore, runtime: RuntimeOptions, class_id: int
    ) -> Detector: ...  # each builder takes its own config type


class ConfigFactory(Protocol):
    def __call__(self, *, mode: Mode, threshold: float | None, detect_scale: float) -> DetectorConfig: ...


@dataclass(frozen=True)
class CategoryDefaults:
    """How one category is detected by default."""

    config: ConfigFactory
    """The tuned config for a request (mode, optional threshold, video detect_scale)."""
    sha256: Callable[[ModelStore], str]
    """sha256 of the model file the category runs (recorded in reports)."""


def _build_centerface(
    config: CenterFaceConfig, *, store: ModelStore, runtime: RuntimeOptions, class_id: int
) -> Detector:
    return CenterFace(config, model_path=store.path("centerface"), runtime=runtime, class_id=class_id)


BUILDERS: dict[str, Builder] = {
    "centerface": _build_centerface,
    # "yolov8": ..., "qr_code": ..., "barcode": ...   (veil.detect.yolov8, veil.detect.codes)
}


def _scaled_side(side: int, detect_scale: float) -> int:
    """``side * detect_scale`` rounded to the network stride and kept in CenterFace's bounds."""
    return int(min(7680, max(64, round(side * detect_scale / 32) * 32)))


def _face_config(*, mode: Mode, threshold: float | None, detect_scale: float) -> CenterFaceConfig:
    base = CenterFaceConfig()
    updates: dict[str, object] = {"mode": mode}
    if threshold is not None:
        updates["threshold"] = threshold
    if mode == "video":
        updates["input_long_side"] = _scaled_side(base.input_long_side, detect_scale)
    return CenterFaceConfig.model_validate({**base.model_dump(), **updates})


CATEGORIES: dict[str, CategoryDefaults] = {
    "face": CategoryDefaults(config=_face_config, sha256=lambda _store: MODELS["centerface"].sha256),
    # "license_plate", "qr_code", "barcode", and custom YOLOv8 categories from
    # veil.detect.yolov8.provision.custom_models(store) are wired here.
}


def available_categories() -> list[str]:
    return sorted(CATEGORIES)


def _defaults(category: str) -> CategoryDefaults:
    entry = CATEGORIES.get(category)
    if entry is None:
        raise SpecError(f"unknown category {category!r}; available: {', '.join(available_categories())}")
    return entry


def parse_detector_config(data: object) -> DetectorConfig:
    """Validate a detector config from JSON-like data; raises SpecError on a bad one."""
    try:
        return _CONFIG_ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise SpecError(f"invalid detector config: {exc.error_count()} error(s)") from exc


def build_from_config(
    config: DetectorConfig, *, store: ModelStore, runtime: RuntimeOptions, class_id: int = 0
) -> Detector:
    """A warmed-up detector for an explicit config."""
    builder = BUILDERS.get(config.type)
    if builder is None:
        raise SpecError(f"no detector of type {config.type!r}; known types: {', '.join(sorted(BUILDERS))}")
    return builder(config, store=store, runtime=runtime, class_id=class_id)


def build_detector(
    category: str,
    *,
    store: ModelStore,
    runtime: RuntimeOptions,
    class_id: int = 0,
    threshold: float | None = None,
    mode: Mode = "image",
    detect_scale: float = 1.0,
) -> Detector:
    """A warmed-up detector for ``category`` with its tuned defaults.

    ``threshold`` overrides the tuned score threshold; ``mode`` picks the
    multi-scale still-image search or the single-pass video one, whose
    working resolution ``detect_scale`` multiplies. Raises SpecError for an
    unknown category or out-of-range knobs, ModelMissing/ModelCorrupt when
    the weights are not in ``store``.
    """
    entry = _defaults(category)
    try:
        config = entry.config(mode=mode, threshold=threshold, detect_scale=detect_scale)
    except ValidationError as exc:
        raise SpecError(f"invalid settings for category {category!r}: {exc.error_count()} error(s)") from exc
    return build_from_config(config, store=store, runtime=runtime, class_id=class_id)


def model_sha256(category: str, *, store: ModelStore) -> str:
    """sha256 of the model file that ``category`` runs, for the report."""
    return _defaults(category).sha256(store)
