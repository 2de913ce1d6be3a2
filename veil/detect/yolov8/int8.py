"""The licence-plate YOLOv8 as a calibrated INT8 model, for CPUs.

Why: plates are the second detector on every default video frame. Quantizing the
convolutions of the converted plate model (per-channel int8 weights, uint8
activations, QDQ) cuts its CPU time per 1080p frame by about 40 % on the dev
machine (58 -> 34 ms of CPU per 640x384 pass, 2 threads). Only ``Conv`` is
quantized: the decode tail (anchors, DFL, concat) stays in float, which keeps the
graph valid at any input shape. The head's last convolutions (the class logits and
the DFL box bins, ``_head_convs``) stay in float too: quantized, their outputs were
clamped to the few values the calibration footage reached (every plate scored
0.5929, the sigmoid of the top of the calibrated range), so no threshold could rank
a plate above a tail light. They are six 1x1 convolutions, a small share of the time.
With its own threshold (``veil.detect.registry``) it finds every labelled plate of
openalpr-eu and ccpd, as the fp32 model does.

How: built once per model cache from the converted ``license_plate.onnx`` with the
activation ranges in ``plate_int8_ranges.json``, measured by
``tools/calibrate_int8.py license_plate`` on the media stills and clips and on
faces-dev street photos, never on plates-dev, the sets the model is scored on.
Bring-your-own models stay fp32: Veil has no calibration data for them.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.quantization import CalibrationDataReader

from veil.detect.int8 import int8_model, quantize_static_qdq
from veil.detect.models import ModelStore
from veil.detect.yolov8.provision import plate_model_path

__all__ = ["BUILDER_VERSION", "RANGES_PATH", "plate_int8_path", "quantize"]

BUILDER_VERSION = 2
"""Bump when ``quantize`` changes its output, so cached INT8 models are rebuilt."""

RANGES_PATH = Path(__file__).with_name("plate_int8_ranges.json")


def quantize(
    source: Path, target: Path, *, ranges: Path, reader: CalibrationDataReader | None = None
) -> None:
    """Write the INT8 model of the converted fp32 plate model at ``source`` to ``target``.

    With ``reader`` the ranges are measured and saved to ``ranges`` first; without, ``ranges`` must exist.
    """
    model = onnx.load(str(source))
    quantize_static_qdq(
        model, target, ranges=ranges, reader=reader, op_types=["Conv"], exclude_nodes=_head_convs(model)
    )


def _head_convs(model: onnx.ModelProto) -> list[str]:
    """The Detect head's output convolutions: the ``Conv`` nodes whose output is only reshaped
    (into class logits before the sigmoid, or DFL bins before the softmax), never activated."""
    users: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node.op_type)
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "Conv" and users.get(node.output[0]) == ["Reshape"]
    ]


def plate_int8_path(store: ModelStore) -> Path:
    """The INT8 plate model, built from the converted fp32 model on first use.

    Raises ``ModelMissing``/``ModelCorrupt`` when the plate ``.pt`` is not pulled or
    fails its pinned sha256, and ``ModelCorrupt`` when quantizing fails.
    """
    return int8_model(
        store,
        "license_plate_int8",
        source=plate_model_path(store),
        ranges=RANGES_PATH,
        builder_version=BUILDER_VERSION,
        quantize=lambda source, target: quantize(source, target, ranges=RANGES_PATH),
        what="plate",
    )
