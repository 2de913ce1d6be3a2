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
from veil.detect.centerface import SMALLEST_FACE_PX, CenterFace, CenterFaceConfig
from veil.detect.centerface_int8 import centerface_int8_path
from veil.detect.codes import BarcodeConfig, BarcodeDetector, QRCodeConfig, QRCodeDetector
from veil.detect.models import MODELS, ModelStore, sha256_file
from veil.detect.runtime import RuntimeOptions
from veil.detect.text import PATTERNS, TextConfig, TextDetector
from veil.detect.yolov8 import CustomModel, YoloV8Config, YoloV8Detector, custom_models, plate_model_path
from veil.detect.yolov8.int8 import plate_int8_path
from veil.errors import SpecError
from veil.spec import RedactionSpec

__all__ = [
    "BUILDERS",
    "CATEGORIES",
    "CategoryDefaults",
    "DetectorConfig",
    "Mode",
    "available_categories",
    "build_detector",
    "build_from_config",
    "category_labels",
    "category_overrides",
    "check_detect_scale",
    "default_threshold",
    "model_sha256",
    "parse_detector_config",
]

Mode = Literal["image", "video"]

DetectorConfig = Annotated[
    CenterFaceConfig | YoloV8Config | QRCodeConfig | BarcodeConfig | TextConfig, Field(discriminator="type")
]
"""Every detector config, told apart by its ``type`` field."""

_CONFIG_ADAPTER: TypeAdapter[DetectorConfig] = TypeAdapter(DetectorConfig)


class Builder(Protocol):
    def __call__(
        self, config: Any, *, store: ModelStore, runtime: RuntimeOptions, class_id: int
    ) -> Detector: ...  # each builder takes its own config type


class ConfigFactory(Protocol):
    def __call__(
        self, *, mode: Mode, threshold: float | None, detect_scale: float, int8: bool
    ) -> DetectorConfig: ...


@dataclass(frozen=True)
class CategoryDefaults:
    """How one category is detected by default."""

    config: ConfigFactory
    """The tuned config for a request (mode, optional threshold, video detect_scale, INT8 wanted)."""
    sha256: Callable[[ModelStore, bool], str]
    """sha256 of the model file the category runs (recorded in reports), given whether INT8 is wanted."""
    build: Builder | None = None
    """A category-specific builder, for detector types whose model file depends on the category
    (YOLOv8 plates vs. a bring-your-own model). Unset: ``BUILDERS[config.type]``."""


def _build_centerface(
    config: CenterFaceConfig, *, store: ModelStore, runtime: RuntimeOptions, class_id: int
) -> Detector:
    model_path = centerface_int8_path(store) if config.int8 else store.path("centerface")
    return CenterFace(config, model_path=model_path, runtime=runtime, class_id=class_id)


def _build_plate(
    config: YoloV8Config, *, store: ModelStore, runtime: RuntimeOptions, class_id: int
) -> Detector:
    return YoloV8Detector(
        config,
        model_path=plate_int8_path(store) if config.int8 else plate_model_path(store),
        runtime=runtime,
        class_id=class_id,
        model_name="yolov8_plate-int8" if config.int8 else "yolov8_plate",
    )


def _build_qr(config: QRCodeConfig, *, store: ModelStore, runtime: RuntimeOptions, class_id: int) -> Detector:
    return QRCodeDetector(config, class_id=class_id)


def _build_barcode(
    config: BarcodeConfig, *, store: ModelStore, runtime: RuntimeOptions, class_id: int
) -> Detector:
    return BarcodeDetector(config, class_id=class_id)


def _build_text(config: TextConfig, *, store: ModelStore, runtime: RuntimeOptions, class_id: int) -> Detector:
    return TextDetector(
        config,
        model_path=store.path("text_det"),
        recogniser_path=store.path("text_rec") if config.only == "pii" else None,
        runtime=runtime,
        class_id=class_id,
    )


BUILDERS: dict[str, Builder] = {
    "centerface": _build_centerface,
    "yolov8": _build_plate,
    "opencv_qr": _build_qr,
    "opencv_barcode": _build_barcode,
    "ppocr_text": _build_text,
}


def _scaled_side(side: int, detect_scale: float) -> int:
    """``side * detect_scale`` rounded to the network stride and kept in CenterFace's bounds."""
    return int(min(7680, max(64, round(side * detect_scale / 32) * 32)))


REFERENCE_FRAME_WH = (1920, 1080)
REFERENCE_FACE_PX = 20
"""``detect_scale`` must keep a face this wide in a frame this large findable (``check_detect_scale``)."""


def check_detect_scale(detect_scale: float) -> None:
    """Raise SpecError when ``detect_scale`` shrinks the face detector's working frame so far that a
    ``REFERENCE_FACE_PX`` face in a 1080p frame falls below ``SMALLEST_FACE_PX``: such a job would
    succeed and mask no small face at all. The bound comes from the working resolution the video
    detector really uses (``input_long_side`` times the scale, rounded to the network stride)."""
    long_side = max(REFERENCE_FRAME_WH)
    working = _scaled_side(CenterFaceConfig().input_long_side, detect_scale)
    face_px = REFERENCE_FACE_PX * working / long_side
    if face_px >= SMALLEST_FACE_PX:
        return
    lowest = next(
        s / 100
        for s in range(1, 401)
        if REFERENCE_FACE_PX * _scaled_side(CenterFaceConfig().input_long_side, s / 100) / long_side
        >= SMALLEST_FACE_PX
    )
    raise SpecError(
        f"detection.detect_scale {detect_scale:g} runs the face detector at {working} px for a "
        f"{long_side} px frame, where a {REFERENCE_FACE_PX} px face is {face_px:.1f} px, below the "
        f"{SMALLEST_FACE_PX} px it can find; use at least {lowest:g}"
    )


_FACE_INT8_THRESHOLDS: dict[Mode, float] = {"image": 0.29, "video": 0.27}
"""Tuned on faces-dev (IoU 0.3) so the INT8 model finds at least as many faces as the fp32 one at 0.3:
image search recall 0.926 / precision 0.725 (fp32: 0.923 / 0.755); one pass at 960 px 0.907 / 0.795
(fp32: 0.902 / 0.821)."""


def _face_config(*, mode: Mode, threshold: float | None, detect_scale: float, int8: bool) -> CenterFaceConfig:
    base = CenterFaceConfig()
    updates: dict[str, object] = {"mode": mode, "int8": int8}
    if threshold is not None:
        updates["threshold"] = threshold
    elif int8:
        updates["threshold"] = _FACE_INT8_THRESHOLDS[mode]
    if mode == "video":
        updates["input_long_side"] = _scaled_side(base.input_long_side, detect_scale)
    return CenterFaceConfig.model_validate({**base.model_dump(), **updates})


_PLATE_INT8_THRESHOLD = 0.15
"""With its head in float (``veil.detect.yolov8.int8``) the INT8 plate model scores plates as fp32 does
(median difference 0.001 on openalpr-eu, 0.002 on video-dev plate boxes), but its lowest labelled plate
scores 0.46 against fp32's 0.73, so it keeps a lower threshold than fp32's 0.2. Not higher: real plates
in dim fisheye footage score 0.2-0.3 (``plates_fisheye_audio.mp4``), and plates-dev's false boxes at
any threshold up to 0.6 are real plates its labels leave out."""


_PLATE_STILL_THRESHOLD = 0.25
"""Stills, INT8 and fp32 alike. Their thorough search (two scales, two tilted passes) gives a false box
more chances, and hands score up to 0.21 (the hands of ``street.jpg`` and ``city_crowd.jpg``: 0.18 and
0.18 INT8, 0.19 and 0.21 fp32); labelled plates score 0.46 and up (openalpr-eu, ccpd). Video keeps the
lower thresholds: there, a plate must start its track early (weak boxes only extend tracks)."""


def _plate_config(*, mode: Mode, threshold: float | None, detect_scale: float, int8: bool) -> YoloV8Config:
    config = _yolo_config(mode=mode, threshold=threshold, detect_scale=detect_scale, int8=int8)
    if threshold is None:
        threshold = _PLATE_STILL_THRESHOLD if mode == "image" else _PLATE_INT8_THRESHOLD if int8 else None
    updates: dict[str, object] = {"int8": int8}
    if threshold is not None:
        updates["threshold"] = threshold
    return YoloV8Config.model_validate({**config.model_dump(), **updates})


def _yolo_config(*, mode: Mode, threshold: float | None, detect_scale: float, int8: bool) -> YoloV8Config:
    """Stills get a second, larger scale and two tilted passes (recall on fisheye and wide-angle shots);
    video runs one pass at 640 scaled by ``detect_scale``, plus both extras on frames of 2000 px and up.
    Always fp32: only the built-in plate model has an INT8 build (``_plate_config``)."""
    base = YoloV8Config()
    updates: dict[str, object] = {}
    if threshold is not None:
        updates["threshold"] = threshold
    updates["rotations_deg"] = (-20.0, 20.0)
    if mode == "image":
        updates["second_scale_min_side"] = 1280
    else:
        # Large frames (fisheye, 4K dashcams) hold small and tilted plates; 1080p stays one pass.
        updates["rotations_min_side"] = base.second_scale_min_side
        imgsz = int(min(1920, max(160, round(base.imgsz * detect_scale / 32) * 32)))
        updates["imgsz"] = imgsz
        if base.second_scale_imgsz is not None and base.second_scale_imgsz <= imgsz:
            updates["second_scale_imgsz"] = None
    return YoloV8Config.model_validate({**base.model_dump(), **updates})


def _qr_config(*, mode: Mode, threshold: float | None, detect_scale: float, int8: bool) -> QRCodeConfig:
    return QRCodeConfig()


def _barcode_config(*, mode: Mode, threshold: float | None, detect_scale: float, int8: bool) -> BarcodeConfig:
    return BarcodeConfig()


_TEXT_LONG_SIDE: dict[Mode, int] = {"image": 1280, "video": 832}
"""Network input long side for text: stills search at 1280 px (lines down to ~10 px high in a 1080p
photo), video frames run at 832 px times ``detect_scale``, which keeps a 1080p frame's detector under
80 ms on the 2-core dev machine (bench/text_latency.py). One pass on the rendered text set
(``veil eval ... --category text --image-search fast --detect-scale S``): 960 px 0.993 / 0.987,
832 px 0.984 / 0.990, 768 px 0.964 / 0.990, 640 px 0.888 / 0.982 (recall / precision); stills keep
1280 px because a photo is searched once and its small print matters more than its time."""


def _text_config(*, mode: Mode, threshold: float | None, detect_scale: float, int8: bool) -> TextConfig:
    updates: dict[str, object] = {}
    if threshold is not None:
        updates["threshold"] = threshold
    long_side = _TEXT_LONG_SIDE[mode]
    if mode == "video":
        long_side = int(min(4096, max(160, round(long_side * detect_scale / 32) * 32)))
    updates["long_side"] = long_side
    return TextConfig.model_validate(updates)


def _no_model(_store: ModelStore, _int8: bool) -> str:
    return "opencv-builtin"


def _face_sha256(store: ModelStore, int8: bool) -> str:
    return sha256_file(centerface_int8_path(store)) if int8 else MODELS["centerface"].sha256


def _plate_sha256(store: ModelStore, int8: bool) -> str:
    return sha256_file(plate_int8_path(store) if int8 else plate_model_path(store))


CATEGORIES: dict[str, CategoryDefaults] = {
    "face": CategoryDefaults(config=_face_config, sha256=_face_sha256),
    "license_plate": CategoryDefaults(config=_plate_config, sha256=_plate_sha256),
    "qr_code": CategoryDefaults(config=_qr_config, sha256=_no_model),
    "barcode": CategoryDefaults(config=_barcode_config, sha256=_no_model),
    "text": CategoryDefaults(config=_text_config, sha256=lambda _store, _int8: MODELS["text_det"].sha256),
}
"""Built-in categories. Custom YOLOv8 categories (``veil models add``) are looked up in the store."""


def _custom_defaults(model: CustomModel) -> CategoryDefaults:
    def build(config: YoloV8Config, *, store: ModelStore, runtime: RuntimeOptions, class_id: int) -> Detector:
        return YoloV8Detector(
            config,
            model_path=model.path,
            runtime=runtime,
            class_id=class_id,
            model_name=f"yolov8_{model.category}",
        )

    def config(*, mode: Mode, threshold: float | None, detect_scale: float, int8: bool) -> YoloV8Config:
        base = _yolo_config(mode=mode, threshold=threshold, detect_scale=detect_scale, int8=int8)
        if model.classes is None:
            return base
        return YoloV8Config.model_validate({**base.model_dump(), "classes": model.classes})

    return CategoryDefaults(config=config, sha256=lambda _store, _int8: model.onnx_sha256, build=build)


def available_categories(store: ModelStore | None = None) -> list[str]:
    custom = sorted(custom_models(store)) if store is not None else []
    return sorted(CATEGORIES) + custom


def _defaults(category: str, store: ModelStore | None = None) -> CategoryDefaults:
    entry = CATEGORIES.get(category)
    if entry is not None:
        return entry
    custom = custom_models(store).get(category) if store is not None else None
    if custom is None:
        raise SpecError(f"unknown category {category!r}; available: {', '.join(available_categories(store))}")
    return _custom_defaults(custom)


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
    overrides: Overrides = (),
) -> Detector:
    """A warmed-up detector for ``category`` with its tuned defaults.

    ``threshold`` overrides the tuned score threshold; ``mode`` picks the
    multi-scale still-image search or the single-pass video one, whose
    working resolution ``detect_scale`` multiplies. ``overrides`` sets fields
    of the detector's config (``category_overrides``). Raises SpecError for an
    unknown category or out-of-range knobs, ModelMissing/ModelCorrupt when
    the weights are not in ``store``.
    """
    entry = _defaults(category, store)
    try:
        config = entry.config(
            mode=mode, threshold=threshold, detect_scale=detect_scale, int8=runtime.use_int8
        )
        if overrides:
            config = parse_detector_config({**config.model_dump(), **dict(overrides)})
    except ValidationError as exc:
        raise SpecError(f"invalid settings for category {category!r}: {exc.error_count()} error(s)") from exc
    if entry.build is not None:
        return entry.build(config, store=store, runtime=runtime, class_id=class_id)
    return build_from_config(config, store=store, runtime=runtime, class_id=class_id)


Overrides = tuple[tuple[str, object], ...]
"""Detector config fields a request sets, as sorted (name, value) pairs: hashable, so detectors can
be cached by them."""


def category_overrides(spec: RedactionSpec, category: str) -> Overrides:
    """The detector config fields ``spec`` sets for ``category`` beyond threshold and scale: for
    ``text`` with ``only: pii``, the mode and what counts as personal data."""
    cat = spec.categories.get(category)
    if category != "text" or cat is None or cat.only is None:
        return ()
    fields: dict[str, object] = {"only": cat.only}
    if cat.only == "pii" and spec.personal_data is not None:
        if spec.personal_data.id_formats is not None:
            fields["id_formats"] = tuple(spec.personal_data.id_formats)
        fields["names"] = tuple(spec.personal_data.names)
    return tuple(sorted(fields.items()))


def category_labels(category: str) -> tuple[str, ...] | None:
    """The table ``Detections.label`` indexes for ``category``'s detector, or None if it gives no labels:
    text lines found with ``only: pii`` carry the personal-data pattern they matched."""
    return PATTERNS if category == "text" else None


def default_threshold(
    category: str, *, store: ModelStore | None = None, runtime: RuntimeOptions | None = None
) -> float | None:
    """The tuned score threshold of ``category``'s video detector, or None if it has no scores."""
    int8 = runtime is not None and runtime.use_int8
    config = _defaults(category, store).config(mode="video", threshold=None, detect_scale=1.0, int8=int8)
    threshold = getattr(config, "threshold", None)
    return None if threshold is None else float(threshold)


def model_sha256(category: str, *, store: ModelStore, runtime: RuntimeOptions | None = None) -> str:
    """sha256 of the model file that ``category`` runs, for the report."""
    return _defaults(category, store).sha256(store, runtime is not None and runtime.use_int8)
