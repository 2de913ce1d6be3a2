"""Static INT8 quantization of an ONNX detector, from activation ranges shipped with Veil.

Why: on the CPU the detectors are most of a video's cost, and per-channel int8
weights with uint8 activations (QDQ format) run them 1.5-4x faster on CPUs with
VNNI. The ranges are measured once by ``tools/calibrate_int8.py`` on real footage
and committed as JSON, so every machine derives the same model from the pinned
fp32 weights without needing any data. GPUs keep fp32 (``RuntimeOptions.use_int8``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader

from veil.detect.derived import derived_model
from veil.detect.models import ModelStore, sha256_file
from veil.errors import ModelCorrupt

__all__ = ["int8_model", "quantize_static_qdq"]


def int8_model(
    store: ModelStore,
    name: str,
    *,
    source: Path,
    ranges: Path,
    builder_version: int,
    quantize: Callable[[Path, Path], None],
    what: str,
) -> Path:
    """``<store>/derived/<name>.onnx``: ``quantize(source, target)`` run once, then cached.

    The cache record holds the sha256 of ``source`` and ``ranges``, ``builder_version`` and
    the onnxruntime version; a change in any of them rebuilds. ``what`` names the model in
    the ``ModelCorrupt`` error raised when quantizing fails.
    """
    record = {
        "builder_version": builder_version,
        "onnxruntime": ort.__version__,
        "source_sha256": sha256_file(source),
        "ranges_sha256": sha256_file(ranges),
    }

    def build(target: Path) -> None:
        part = target.with_name(f"{target.name}.part")
        try:
            quantize(source, part)
            part.replace(target)
        except Exception as exc:  # onnx and onnxruntime raise many types
            raise ModelCorrupt(
                f"the INT8 {what} model could not be built; run `veil models pull` again, "
                "or set VEIL_INT8=false to use the fp32 model"
            ) from exc
        finally:
            part.unlink(missing_ok=True)

    return derived_model(store, name, record=record, build=build)


def quantize_static_qdq(
    model: onnx.ModelProto,
    target: Path,
    *,
    ranges: Path,
    reader: CalibrationDataReader | None = None,
    op_types: Sequence[str] | None = None,
    exclude_nodes: Sequence[str] = (),
) -> None:
    """Write the INT8 form of ``model`` to ``target``.

    With ``reader`` (an onnxruntime ``CalibrationDataReader``) the activation ranges are
    measured and saved to ``ranges`` first; without, ``ranges`` must exist. ``op_types``
    limits quantization to those operators (default: all that onnxruntime quantizes);
    ``exclude_nodes`` names nodes that stay in float.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory(prefix="veil-int8-") as tmp, _quiet_quantizer():
        staged = Path(tmp) / "model.onnx"
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
            op_types_to_quantize=list(op_types) if op_types is not None else None,
            nodes_to_exclude=list(exclude_nodes),
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
