"""CenterFace as a calibrated INT8 model, for CPUs.

Why: on the CPU, CenterFace is most of a video's cost. Static INT8 (per-channel int8
weights, uint8 activations, QDQ format) runs it 2-4x faster on CPUs with VNNI
(measured on the dev machine: 98 -> 46 ms at 960x544, 465 -> 113 ms at 1920x1088),
and with its own tuned thresholds (``veil.detect.registry``) it finds as many
faces-dev faces as the fp32 model. GPUs keep fp32 (see ``RuntimeOptions.use_int8``).

How: built once per model cache from the pinned fp32 ``centerface.onnx``: input and
output dims made dynamic, opset raised to 13 (QDQ needs it), then onnxruntime's static
quantizer with the activation ranges shipped in ``centerface_int8_ranges.json`` (``veil.detect.int8``). The
ranges were measured by ``tools/calibrate_int8.py face`` on the media stills and clips
and on plates-dev photos, never on faces-dev, the set the model is scored on. Building
needs no data, so every machine derives the model itself from the pinned wheel; a JSON
record beside it (sources' sha256, builder and onnxruntime versions) triggers a rebuild
when any of them changes.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.quantization import CalibrationDataReader

from veil.detect.centerface import dynamic_model_bytes
from veil.detect.int8 import int8_model, quantize_static_qdq
from veil.detect.models import ModelStore

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
    model = onnx.load_from_string(dynamic_model_bytes(source))
    quantize_static_qdq(
        onnx.version_converter.convert_version(model, _OPSET), target, ranges=ranges, reader=reader
    )


def centerface_int8_path(store: ModelStore) -> Path:
    """The INT8 CenterFace, built from the verified fp32 model on first use.

    Raises ``ModelMissing``/``ModelCorrupt`` from the store when ``centerface.onnx``
    is not pulled or fails its pinned sha256, and ``ModelCorrupt`` when quantizing fails.
    """
    return int8_model(
        store,
        "centerface_int8",
        source=store.path("centerface"),
        ranges=RANGES_PATH,
        builder_version=BUILDER_VERSION,
        quantize=lambda source, target: quantize(source, target, ranges=RANGES_PATH),
        what="face",
    )
