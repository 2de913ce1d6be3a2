"""The rewritten PP-OCRv4 detector graph computes what the pinned one does, with fewer operators."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.cores import ort_runtime
from veil.detect.models import ModelStore
from veil.detect.runtime import create_session
from veil.detect.text.graph import FoldCounts, simplified_det_bytes, simplify_det_graph
from veil.errors import ModelCorrupt
from veil.media import read_image


def _run(session: ort.InferenceSession, blob: np.ndarray) -> np.ndarray:
    return np.asarray(session.run(None, {session.get_inputs()[0].name: blob})[0])


def test_every_pattern_of_the_pinned_model_is_folded(model_store: ModelStore) -> None:
    model = onnx.load(str(model_store.path("text_det")))
    simplified, counts = simplify_det_graph(model)
    assert counts == FoldCounts(conv_affine=28, hardswish=24, input_affine=23, residual_gate=8, head=1)
    ops = collections.Counter(n.op_type for n in simplified.graph.node)
    assert ops["Div"] == ops["ConvTranspose"] == 0
    assert ops["Clip"] == 8  # only the residual gates' clip(., 1, 2), fused into their convs
    assert sum(ops.values()) < 0.6 * sum(1 for n in model.graph.node if n.op_type != "Constant")
    onnx.checker.check_model(simplified)


@pytest.mark.parametrize("size_wh", [(960, 544), (352, 640)])
def test_the_probability_map_is_the_original_one(
    model_store: ModelStore, media_dir: Path, size_wh: tuple[int, int]
) -> None:
    import cv2

    path = model_store.path("text_det")
    photo = cv2.resize(read_image(media_dir / "faces_2560.png"), size_wh, interpolation=cv2.INTER_AREA)
    blob = ((photo[:, :, ::-1].astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None].copy()
    original = _run(create_session(path, options=ort_runtime()), blob)
    rewritten = _run(create_session(simplified_det_bytes(path), options=ort_runtime()), blob)
    assert rewritten.shape == original.shape == (1, 1, size_wh[1], size_wh[0])
    assert float(np.abs(rewritten - original).max()) < 1e-4  # float rounding, nothing more


def test_a_damaged_model_file_is_reported_as_corrupt(tmp_path: Path) -> None:
    damaged = tmp_path / "det.onnx"
    damaged.write_bytes(b"not an onnx model")
    with pytest.raises(ModelCorrupt, match="veil models pull"):
        simplified_det_bytes(damaged)
