"""Convert a YOLOv8 detection checkpoint into an ONNX graph, without torch.

The graph is rebuilt layer by layer from the checkpoint's module tree (see
:mod:`veil.detect.yolov8.checkpoint`) with ``onnx.helper``. Only the blocks a
YOLOv8 detector uses are supported: ``Conv`` (Conv2d with its BatchNorm folded
into the weights, then SiLU), ``C2f``, ``Bottleneck``, ``SPPF``, nearest
``Upsample``, ``Concat`` and the ``Detect`` head with its DFL box decoding.
Anything else raises :class:`veil.errors.ModelError`.

The exported model has the same contract as an ultralytics ONNX export:

* input ``images``: float32 ``[1, 3, H, W]``, RGB in ``[0, 1]``; H and W are
  dynamic and must be multiples of the largest stride (32);
* output ``output0``: float32 ``[1, 4 + nc, N]``, per anchor ``cx, cy, w, h`` in
  input pixels followed by the sigmoid class scores.

Anchor points are computed inside the graph from each feature map's shape, so
one file serves any input size (a 16:9 frame need not be padded to a square).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from veil.detect.yolov8.checkpoint import Checkpoint, TorchModule, load_checkpoint
from veil.errors import ModelCorrupt, ModelError

__all__ = [
    "INPUT_NAME",
    "OPSET",
    "OUTPUT_NAME",
    "ConversionInfo",
    "build_model",
    "convert_checkpoint",
    "write_atomic",
]

OPSET = 17
_IR_VERSION = 8  # readable by every onnxruntime the project supports (>= 1.17)
INPUT_NAME = "images"
OUTPUT_NAME = "output0"


@dataclass(frozen=True)
class ConversionInfo:
    """Facts about a converted model, also stored in its ONNX metadata."""

    names: dict[int, str]
    nc: int
    imgsz: int
    stride: int
    """Largest stride: input sides must be multiples of it."""


class _Graph:
    """Accumulates nodes and initializers; every value gets a unique name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0
        self._consts: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:  # noqa: ANN401
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs: Any) -> list[str]:  # noqa: ANN401
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=outs[0], **attrs))
        return outs

    def const(self, value: npt.ArrayLike, hint: str = "const", dtype: npt.DTypeLike = np.float32) -> str:
        array = np.array(value, dtype=dtype, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
        key = (array.dtype.str, array.tobytes(), array.shape)
        if array.size <= 16 and key in self._consts:
            return self._consts[key]
        out = self.name(hint)
        self.initializers.append(numpy_helper.from_array(array, out))
        if array.size <= 16:
            self._consts[key] = out
        return out


def _unsupported(what: str) -> ModelError:
    return ModelError(f"the YOLOv8 checkpoint uses an unsupported layer or setting ({what})")


def _pair(value: object, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise _unsupported(what)


def _f32(module: TorchModule, name: str) -> npt.NDArray[np.float64]:
    tensor = module.tensor(name)
    if tensor is None:
        raise ModelError(f"the YOLOv8 checkpoint lacks {module.type_name}.{name}")
    return tensor.astype(np.float64)


def _conv2d(g: _Graph, conv: TorchModule, x: str, bn: TorchModule | None) -> str:
    """Conv2d, with ``bn`` (if any) folded into its weight and bias."""
    if conv.type_name != "Conv2d" or conv.attr("padding_mode", "zeros") != "zeros" or conv.attr("transposed"):
        raise _unsupported(f"{conv.type_name} convolution")
    weight = _f32(conv, "weight")
    out_ch = weight.shape[0]
    bias = conv.tensor("bias")
    b = np.zeros(out_ch) if bias is None else bias.astype(np.float64)
    if bn is not None:
        if bn.type_name != "BatchNorm2d":
            raise _unsupported(bn.type_name)
        eps = bn.attr("eps", 1e-5)
        if not isinstance(eps, float | int):
            raise _unsupported("BatchNorm2d eps")
        scale = _f32(bn, "weight") / np.sqrt(_f32(bn, "running_var") + float(eps))
        weight = weight * scale[:, None, None, None]
        b = (b - _f32(bn, "running_mean")) * scale + _f32(bn, "bias")
    kh, kw = _pair(conv.attr("kernel_size"), "kernel_size")
    sh, sw = _pair(conv.attr("stride", 1), "stride")
    ph, pw = _pair(conv.attr("padding", 0), "padding")
    dh, dw = _pair(conv.attr("dilation", 1), "dilation")
    groups = conv.attr("groups", 1)
    if not isinstance(groups, int) or weight.shape[2:] != (kh, kw):
        raise _unsupported("Conv2d shape")
    return g.op(
        "Conv",
        [x, g.const(weight, "w"), g.const(b, "b")],
        hint="conv",
        kernel_shape=[kh, kw],
        strides=[sh, sw],
        pads=[ph, pw, ph, pw],
        dilations=[dh, dw],
        group=groups,
    )


def _activation(g: _Graph, act: TorchModule | None, x: str) -> str:
    if act is None or act.type_name == "Identity":
        return x
    if act.type_name == "SiLU":
        return g.op("Mul", [x, g.op("Sigmoid", [x])], hint="silu")
    if act.type_name == "ReLU":
        return g.op("Relu", [x])
    if act.type_name == "LeakyReLU":
        slope = act.attr("negative_slope", 0.01)
        return g.op("LeakyRelu", [x], alpha=float(slope) if isinstance(slope, float | int) else 0.01)
    if act.type_name == "Hardswish":
        return g.op("HardSwish", [x])
    raise _unsupported(act.type_name)


def _conv_block(g: _Graph, m: TorchModule, x: str) -> str:
    """ultralytics ``Conv``: Conv2d + BatchNorm2d (possibly already fused away) + activation."""
    bn = m.children.get("bn")
    y = _conv2d(g, m.child("conv"), x, bn)
    return _activation(g, m.children.get("act"), y)


def _bottleneck(g: _Graph, m: TorchModule, x: str) -> str:
    y = _conv_block(g, m.child("cv2"), _conv_block(g, m.child("cv1"), x))
    return g.op("Add", [x, y], hint="shortcut") if m.attr("add") else y


def _c2f(g: _Graph, m: TorchModule, x: str) -> str:
    hidden = m.attr("c")
    if not isinstance(hidden, int):
        raise _unsupported("C2f without hidden width")
    y = _conv_block(g, m.child("cv1"), x)
    parts = g.ops("Split", [y, g.const([hidden, hidden], "split", np.int64)], 2, axis=1)
    blocks = m.child("m")
    for key in sorted(blocks.children, key=int):
        parts.append(_bottleneck(g, blocks.children[key], parts[-1]))
    return _conv_block(g, m.child("cv2"), g.op("Concat", parts, axis=1))


def _sppf(g: _Graph, m: TorchModule, x: str) -> str:
    pool = m.child("m")
    k, _ = _pair(pool.attr("kernel_size"), "SPPF kernel")
    s, _ = _pair(pool.attr("stride", 1), "SPPF stride")
    p, _ = _pair(pool.attr("padding", 0), "SPPF padding")
    if pool.attr("ceil_mode") or pool.attr("dilation", 1) not in (1, (1, 1)):
        raise _unsupported("SPPF pooling mode")
    parts = [_conv_block(g, m.child("cv1"), x)]
    for _ in range(3):
        parts.append(g.op("MaxPool", [parts[-1]], kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p]))
    return _conv_block(g, m.child("cv2"), g.op("Concat", parts, axis=1))


def _upsample(g: _Graph, m: TorchModule, x: str) -> str:
    factor = m.attr("scale_factor")
    if (
        m.attr("mode", "nearest") != "nearest"
        or m.attr("size") is not None
        or not isinstance(factor, float | int)
    ):
        raise _unsupported("Upsample other than nearest by a scale factor")
    scales = g.const([1.0, 1.0, float(factor), float(factor)], "scales")
    return g.op(
        "Resize",
        [x, "", scales],
        hint="upsample",
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )


def _sequential(g: _Graph, m: TorchModule, x: str) -> str:
    for key in sorted(m.children, key=int):
        child = m.children[key]
        if child.type_name == "Conv":
            x = _conv_block(g, child, x)
        elif child.type_name == "Conv2d":
            x = _conv2d(g, child, x, None)
        else:
            raise _unsupported(f"{child.type_name} in the Detect head")
    return x


def _anchor_points(g: _Graph, feature: str, stride: float) -> str:
    """Anchor centres ``[2, h*w]`` (x, y) in input pixels, row-major like ultralytics' make_anchors."""
    shape = g.op("Shape", [feature])
    h = g.op("Gather", [shape, g.const(2, "idx", np.int64)], axis=0)
    w = g.op("Gather", [shape, g.const(3, "idx", np.int64)], axis=0)
    half = g.const(0.5, "half")
    one = g.const(1.0, "one")
    xs = g.op("Range", [half, g.op("Add", [g.op("Cast", [w], to=TensorProto.FLOAT), half]), one])
    ys = g.op("Range", [half, g.op("Add", [g.op("Cast", [h], to=TensorProto.FLOAT), half]), one])
    axis0 = g.const([0], "axes", np.int64)
    axis1 = g.const([1], "axes", np.int64)
    hw = g.op("Concat", [g.op("Unsqueeze", [h, axis0]), g.op("Unsqueeze", [w, axis0])], axis=0)
    grid_x = g.op("Expand", [g.op("Unsqueeze", [xs, axis0]), hw])  # (h, w): x varies along w
    grid_y = g.op("Expand", [g.op("Unsqueeze", [ys, axis1]), hw])
    flat = g.const([1, -1], "shape", np.int64)
    points = g.op("Concat", [g.op("Reshape", [grid_x, flat]), g.op("Reshape", [grid_y, flat])], axis=0)
    return g.op("Mul", [points, g.const(stride, "stride")], hint="anchors")


def _detect(g: _Graph, m: TorchModule, features: list[str], strides: tuple[float, ...]) -> str:
    """Detect head: per level, DFL-decode the box distances and sigmoid the class logits."""
    reg_max = m.attr("reg_max", 16)
    nc = m.attr("nc")
    if not isinstance(reg_max, int) or not isinstance(nc, int) or len(features) != len(strides):
        raise _unsupported("Detect head layout")
    box_heads, cls_heads = m.child("cv2"), m.child("cv3")
    dfl = m.children.get("dfl")
    if dfl is not None and dfl.type_name == "DFL":
        bins = _f32(dfl.child("conv"), "weight").reshape(-1)
    else:
        bins = np.arange(reg_max, dtype=np.float64)
    if bins.shape != (reg_max,):
        raise _unsupported("DFL bins")
    bins_const = g.const(bins.reshape(1, 1, reg_max, 1), "dfl_bins")
    levels = []
    for i, (feature, stride) in enumerate(zip(features, strides, strict=True)):
        box = _sequential(g, box_heads.child(str(i)), feature)
        cls = _sequential(g, cls_heads.child(str(i)), feature)
        # DFL: softmax over the reg_max bins of each side, expectation against the bin indices.
        dist = g.op("Reshape", [box, g.const([1, 4, reg_max, -1], "shape", np.int64)])
        dist = g.op("Softmax", [dist], axis=2)
        dist = g.op(
            "ReduceSum", [g.op("Mul", [dist, bins_const]), g.const([2], "axes", np.int64)], keepdims=0
        )
        lt, rb = g.ops("Split", [dist, g.const([2, 2], "split", np.int64)], 2, axis=1)
        anchors = _anchor_points(g, feature, stride)
        s = g.const(stride, "stride")
        centre = g.op(
            "Add", [anchors, g.op("Mul", [g.op("Sub", [rb, lt]), g.const(0.5 * stride, "half_stride")])]
        )
        size = g.op("Mul", [g.op("Add", [lt, rb]), s])
        scores = g.op("Sigmoid", [g.op("Reshape", [cls, g.const([1, nc, -1], "shape", np.int64)])])
        levels.append(g.op("Concat", [centre, size, scores], axis=1, hint="level"))
    return g.op("Concat", levels, axis=2, hint="detect")


def _yaml_sources(checkpoint: Checkpoint) -> list[object] | None:
    """Each layer's ``from`` in the model yaml (backbone then head), if the yaml describes every layer."""
    backbone, head = checkpoint.yaml.get("backbone"), checkpoint.yaml.get("head")
    if not isinstance(backbone, list) or not isinstance(head, list):
        return None
    rows = [*backbone, *head]
    if len(rows) != len(checkpoint.layers) or not all(isinstance(r, list | tuple) and r for r in rows):
        return None
    return [r[0] for r in rows]


def _wiring(checkpoint: Checkpoint) -> list[list[int]]:
    """Which earlier layers feed each layer (-1 = the previous one).

    Taken from each layer's ``f`` attribute (set by ultralytics' parse_model),
    cross-checked against the yaml; the yaml fills in if ``f`` is absent.
    """
    from_yaml = _yaml_sources(checkpoint)
    wiring: list[list[int]] = []
    for index, layer in enumerate(checkpoint.layers):
        source = layer.attr("f")
        described = from_yaml[index] if from_yaml is not None else None
        if source is None:
            source = -1 if described is None else described
        elif described is not None and described != source:
            raise ModelCorrupt(f"the checkpoint's layer {index} is wired differently from its yaml")
        sources = (
            [source] if isinstance(source, int) else list(source) if isinstance(source, list | tuple) else []
        )
        if not sources or not all(isinstance(j, int) and (j == -1 or 0 <= j < index) for j in sources):
            raise ModelCorrupt(f"the checkpoint's layer {index} has invalid wiring")
        wiring.append(sources)
    return wiring


def build_model(checkpoint: Checkpoint) -> onnx.ModelProto:
    """The ONNX model for ``checkpoint`` (checked with ``onnx.checker``)."""
    g = _Graph()
    outputs: list[str] = []
    x = INPUT_NAME
    detect_out: str | None = None
    for index, (layer, sources) in enumerate(zip(checkpoint.layers, _wiring(checkpoint), strict=True)):
        inputs = [x if j == -1 else outputs[j] for j in sources]
        kind = layer.type_name
        if kind == "Conv":
            x = _conv_block(g, layer, inputs[0])
        elif kind == "C2f":
            x = _c2f(g, layer, inputs[0])
        elif kind == "SPPF":
            x = _sppf(g, layer, inputs[0])
        elif kind == "Upsample":
            x = _upsample(g, layer, inputs[0])
        elif kind == "Concat":
            axis = layer.attr("d", 1)
            x = g.op("Concat", inputs, axis=axis if isinstance(axis, int) else 1)
        elif kind == "Detect" and index == len(checkpoint.layers) - 1:
            x = detect_out = _detect(g, layer, inputs, checkpoint.stride)
        else:
            raise _unsupported(kind)
        outputs.append(x)
    if detect_out is None:
        raise _unsupported("no Detect head")
    g.nodes.append(helper.make_node("Identity", [detect_out], [OUTPUT_NAME], name=OUTPUT_NAME))
    graph = helper.make_graph(
        g.nodes,
        "yolov8_detect",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, 4 + checkpoint.nc, "anchors"])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="veil",
        doc_string="YOLOv8 detector converted from an ultralytics checkpoint by veil (torch-free).",
    )
    model.ir_version = _IR_VERSION
    info = _info(checkpoint)
    helper.set_model_props(
        model,
        {
            "names": json.dumps({str(k): v for k, v in info.names.items()}),
            "nc": str(info.nc),
            "imgsz": str(info.imgsz),
            "stride": str(info.stride),
            "task": "detect",
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _info(checkpoint: Checkpoint) -> ConversionInfo:
    return ConversionInfo(
        names=dict(checkpoint.names),
        nc=checkpoint.nc,
        imgsz=checkpoint.imgsz,
        stride=int(max(checkpoint.stride)),
    )


def write_atomic(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` via a unique ``.part`` file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with part.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def convert_checkpoint(pt_path: Path, onnx_path: Path) -> ConversionInfo:
    """Convert the YOLOv8 ``.pt`` at ``pt_path`` into ONNX at ``onnx_path`` (written atomically).

    Raises ``UnsafeModelFile`` for a hostile pickle, ``ModelCorrupt`` for an
    unreadable file and ``ModelError`` for an architecture outside YOLOv8 detect.
    """
    checkpoint = load_checkpoint(pt_path)
    model = build_model(checkpoint)
    write_atomic(model.SerializeToString(), onnx_path)
    return _info(checkpoint)
