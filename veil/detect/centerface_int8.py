"""CenterFace as a calibrated INT8 model, for CPUs.

Why: on the CPU, CenterFace is most of a video's cost. Static INT8 (per-channel int8
weights, uint8 activations, QDQ format) runs it 2-4x faster on CPUs with VNNI
(measured on the dev machine: 98 -> 46 ms at 960x544, 465 -> 113 ms at 1920x1088),
and with its own tuned thresholds (``veil.detect.registry``) it finds as many
faces-dev faces as the fp32 model. GPUs keep fp32 (see ``RuntimeOptions.use_int8``).

How: built once per model cache from the pinned fp32 ``centerface.onnx``: input and
output dims made dynamic, opset raised to 13 (QDQ needs it), then onnxruntime's static
quantizer with the activation ranges shipped in ``centerface_int8_ranges.json``. The
ranges were measured by ``tools/calibrate_centerface.py`` on the media stills and clips
and on plates-dev photos, never on faces-dev, the set the model is scored on. Building
needs no data, so every machine derives the model itself from the pinned wheel; a JSON
record beside it (sources' sha256, builder and onnxruntime versions) triggers a rebuild
when any of them changes.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader

from veil.detect.centerface import dynamic_model_bytes
from veil.detect.derived import derived_model
from veil.detect.models import ModelStore, sha256_file
from veil.errors import ModelCorrupt

__all__ = ["BUILDER_VERSION", "RANGES_PATH", "centerface_int8_path", "quantize"]

BUILDER_VERSION = 1
"""Bump when ``quantize`` changes its output, so cached INT8 models are rebuilt."""

RANGES_PATH = Path(__file__).with_name("centerface_int8_ranges.json")
_OPSET = 13


def quantize(
    source: Path, target: Path, *, ranges: Path, reader: CalibrationDataReader | None = None
) -> None:
    """Write the INT8 model of the fp32 CenterFace at ``source`` to ``target``.

    With ``reader`` (an onnxruntime ``CalibrationDataReader``) the ranges are measured
    and saved to ``ranges`` first; without, ``ranges`` must exist.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load_from_string(dynamic_model_bytes(source))
    model = onnx.version_converter.convert_version(model, _OPSET)
    with tempfile.TemporaryDirectory(prefix="veil-int8-") as tmp, _quiet_quantizer():
        staged = Path(tmp) / "centerface_opset13.onnx"
        onnx.save(model, str(staged))
        quantize_static(
            str(staged),
            str(target),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=str(ranges),
        )


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer logs advice (pre-processing, BatchNorm axes) on the root logger; users need none."""
    root = logging.getLogger()

    def drop(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def centerface_int8_path(store: ModelStore) -> Path:
    """The INT8 CenterFace, built from the verified fp32 model on first use.

    Raises ``ModelMissing``/``ModelCorrupt`` from the store when ``centerface.onnx``
    is not pulled or fails its pinned sha256, and ``ModelCorrupt`` when quantizing fails.
    """
    source = store.path("centerface")
    record = {
        "builder_version": BUILDER_VERSION,
        "onnxruntime": ort.__version__,
        "source_sha256": sha256_file(source),
        "ranges_sha256": sha256_file(RANGES_PATH),
    }

    def build(target: Path) -> None:
        part = target.with_name(f"{target.name}.part")
        try:
            quantize(source, part, ranges=RANGES_PATH)
            part.replace(target)
        except Exception as exc:  # onnx and onnxruntime raise many types
            raise ModelCorrupt(
                "the INT8 face model could not be built; run `veil models pull` again, "
                "or set VEIL_INT8=false to use the fp32 model"
            ) from exc
        finally:
            part.unlink(missing_ok=True)

    return derived_model(store, "centerface_int8", record=record, build=build)
