"""The converted plate model: a valid ONNX file of the ultralytics export shape."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from veil.detect.yolov8.checkpoint import TorchModule, load_checkpoint
from veil.detect.yolov8.convert import convert_checkpoint


@pytest.fixture(scope="module")
def converted(plate_pt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("convert") / "plate.onnx"
    info = convert_checkpoint(plate_pt, out)
    assert (info.nc, info.names, info.imgsz, info.stride) == (1, {0: "License_Plate"}, 640, 32)
    return out


def test_conversion_writes_a_checked_onnx_with_metadata(converted: Path) -> None:
    model = onnx.load(str(converted))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["names"]) == {"0": "License_Plate"}
    assert meta["stride"] == "32"
    assert not list(converted.parent.glob("*.part"))


@pytest.mark.parametrize(("h", "w"), [(640, 640), (384, 640), (640, 320)])
def test_any_multiple_of_32_runs_and_gives_one_row_per_anchor(converted: Path, h: int, w: int) -> None:
    session = ort.InferenceSession(str(converted), providers=["CPUExecutionProvider"])
    x = np.full((1, 3, h, w), 0.5, np.float32)
    (out,) = session.run(None, {"images": x})
    anchors = sum((h // s) * (w // s) for s in (8, 16, 32))
    assert out.shape == (1, 5, anchors)
    assert ((out[0, 4] >= 0) & (out[0, 4] <= 1)).all()  # sigmoid scores
    # boxes are centred inside the input, in input pixels
    assert 0 <= out[0, 0].min() and out[0, 0].max() <= w and 0 <= out[0, 1].min() and out[0, 1].max() <= h


class _NumpyOps:
    """Reference layer ops in float64 NumPy (slow, obviously correct)."""

    @staticmethod
    def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, pad: int) -> np.ndarray:
        k = w.shape[2]
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
        c, h, wd = xp.shape
        oh, ow = (h - k) // stride + 1, (wd - k) // stride + 1
        st = xp.strides
        cols = np.lib.stride_tricks.as_strided(
            xp, (c, k, k, oh, ow), (st[0], st[1], st[2], st[1] * stride, st[2] * stride)
        )
        y = np.einsum("ockl,cklhw->ohw", w, cols, optimize=True)
        return y if b is None else y + b[:, None, None]

    @staticmethod
    def maxpool5(x: np.ndarray) -> np.ndarray:
        xp = np.pad(x, ((0, 0), (2, 2), (2, 2)), constant_values=-np.inf)
        _, h, w = x.shape
        return np.max([xp[:, i : i + h, j : j + w] for i in range(5) for j in range(5)], axis=0)


class _TorchOps:
    """The same ops through torch, when torch happens to be installed."""

    @staticmethod
    def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, pad: int) -> np.ndarray:
        import torch
        import torch.nn.functional as F  # noqa: N812

        bias = None if b is None else torch.from_numpy(b)
        y = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), bias, stride, pad)
        return y[0].numpy()

    @staticmethod
    def maxpool5(x: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F  # noqa: N812

        return F.max_pool2d(torch.from_numpy(x)[None], 5, 1, 2)[0].numpy()


def _reference_forward(
    layers: tuple[TorchModule, ...], x: np.ndarray, strides: tuple[float, ...], ops: type
) -> np.ndarray:
    """An independent YOLOv8 forward over the unfolded checkpoint weights (BatchNorm kept separate)."""

    def t(m: TorchModule, name: str) -> np.ndarray:
        a = m.tensor(name)
        assert a is not None
        return a.astype(np.float64)

    def conv2d(m: TorchModule, v: np.ndarray) -> np.ndarray:
        bias = m.tensor("bias")
        return ops.conv2d(v, t(m, "weight"), None if bias is None else bias.astype(np.float64),
                          m.attr("stride")[0], m.attr("padding")[0])  # fmt: skip

    def conv(m: TorchModule, v: np.ndarray) -> np.ndarray:
        bn = m.child("bn")
        y = conv2d(m.child("conv"), v)
        mean, var, gamma, beta = (
            t(bn, n)[:, None, None] for n in ("running_mean", "running_var", "weight", "bias")
        )
        y = (y - mean) / np.sqrt(var + bn.attr("eps")) * gamma + beta
        return y / (1 + np.exp(-y))

    def head(seq: TorchModule, v: np.ndarray) -> np.ndarray:
        return conv2d(seq.child("2"), conv(seq.child("1"), conv(seq.child("0"), v)))

    outs: list = []
    v = x
    for layer in layers:
        f = layer.attr("f")
        inp = v if f == -1 else ([v if j == -1 else outs[j] for j in f] if isinstance(f, list) else outs[f])
        kind = layer.type_name
        if kind == "Conv":
            v = conv(layer, inp)
        elif kind == "C2f":
            y = conv(layer.child("cv1"), inp)
            ys = [y[: y.shape[0] // 2], y[y.shape[0] // 2 :]]
            for key in sorted(layer.child("m").children, key=int):
                b = layer.child("m").children[key]
                z = conv(b.child("cv2"), conv(b.child("cv1"), ys[-1]))
                ys.append(ys[-1] + z if b.attr("add") else z)
            v = conv(layer.child("cv2"), np.concatenate(ys))
        elif kind == "SPPF":
            ys = [conv(layer.child("cv1"), inp)]
            for _ in range(3):
                ys.append(ops.maxpool5(ys[-1]))
            v = conv(layer.child("cv2"), np.concatenate(ys))
        elif kind == "Upsample":
            v = inp.repeat(2, axis=1).repeat(2, axis=2)
        elif kind == "Concat":
            v = np.concatenate(inp)
        else:  # Detect: DFL over 16 bins, anchors at cell centres, sigmoid scores
            levels = []
            for i, feat in enumerate(inp):
                box = head(layer.child("cv2").child(str(i)), feat)
                cls = head(layer.child("cv3").child(str(i)), feat)
                _, h, w = feat.shape
                d = box.reshape(4, 16, h * w)
                d = np.exp(d - d.max(axis=1, keepdims=True))
                d = (d / d.sum(axis=1, keepdims=True) * np.arange(16)[None, :, None]).sum(axis=1)
                sy, sx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
                anchor = np.stack([sx.ravel(), sy.ravel()])
                lt, rb = d[:2], d[2:]
                xywh = np.concatenate([anchor + (rb - lt) / 2, lt + rb]) * strides[i]
                levels.append(np.concatenate([xywh, 1 / (1 + np.exp(-cls.reshape(-1, h * w)))]))
            v = np.concatenate(levels, axis=1)
        outs.append(v)
    return v


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_matches_an_independent_reference_forward(
    backend: str, plate_pt: Path, converted: Path, labelled_plates: list
) -> None:
    if backend == "torch":
        pytest.importorskip("torch")  # optional: never installed into the project venv
    ops = _NumpyOps if backend == "numpy" else _TorchOps
    ckpt = load_checkpoint(plate_pt)
    _, rgb, (plate,) = labelled_plates[0]
    x1, y1 = max(0, int(plate[0]) - 100), max(0, int(plate[1]) - 60)
    crop = rgb[y1 : y1 + 192, x1 : x1 + 320].transpose(2, 0, 1) / 255.0
    x = np.full((3, 192, 320), 114 / 255)
    x[:, : crop.shape[1], : crop.shape[2]] = crop
    expected = _reference_forward(ckpt.layers, x, ckpt.stride, ops)
    session = ort.InferenceSession(str(converted), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"images": x[None].astype(np.float32)})
    assert got[0].shape == expected.shape
    assert expected[4].max() > 0.5  # the crop holds the plate, so the comparison covers a real detection
    np.testing.assert_allclose(got[0, 4], expected[4], atol=1e-4)
    confident = expected[4] > 0.25
    np.testing.assert_allclose(got[0, :4, confident], expected[:4, confident].T, atol=0.05)
