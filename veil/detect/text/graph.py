"""PP-OCRv4's detector graph, rewritten into fewer, fusable operators (same function, ~30% less CPU).

The pinned ``ch_PP-OCRv4_det_infer.onnx`` is a paddle2onnx export of PP-LCNetV3, whose "learnable
affine blocks" and hardswish activations come out as long chains of scalar elementwise operators:

    Conv -> Mul(a) -> Add(b) -> [Add(3) -> Clip(0, 6) -> Mul(y, .) -> Div(6)] -> Mul(c) -> Add(d) -> Conv

onnxruntime fuses none of them, and each one is a full pass over a feature map (together about 40% of
the run at 960 px, plus the layout changes around them). The rewrite is exact algebra on the weights:

1. ``Conv -> Mul(a) -> Add(b)``: the conv's weights are scaled by ``a``, its bias becomes ``a*bias + b``.
2. hardswish ``y * clip(y + 3, 0, 6) / 6`` becomes ``y * HardSigmoid(y)`` with ``alpha=1/6, beta=0.5``
   (two operators instead of four, and onnxruntime runs the HardSigmoid inside the conv before it).
3. ``Mul(c) -> Add(d)`` in front of convs: the following convs' weights are scaled by ``c``; an unpadded
   (1x1) conv also takes ``d`` into its bias (``bias + d * sum(W)``). A padded conv cannot: its zero
   padding would have to become ``d``, so there the shift ``d / c`` stays, as a depthwise 1x1 conv
   with that bias: onnxruntime keeps a conv in its blocked (NCHWc) layout, where a scalar ``Add``
   costs two layout changes besides its own pass.
4. The neck's residual squeeze-excitation ``x + x * HardSigmoid(conv(s))`` becomes
   ``x * Clip(conv'(s), 1, 2)``, with ``1 + HardSigmoid`` folded into the conv: one pass over the
   feature map instead of two.
5. The head's two 2x2 stride-2 transposed convolutions (with the bias, BatchNorm and ReLU between them)
   do not overlap, so they are per-pixel linear maps followed by a pixel shuffle: a 1x1 conv to
   4 x 24 channels (bias and BatchNorm folded in, ReLU fused), a 1x1 conv to 16 channels, the
   sigmoid, and one ``DepthToSpace`` that lays the 4x4 block of each quarter-resolution pixel out.

The output differs from the original by float rounding only (about 1e-5 on the probability map;
``tests/detect/test_text_graph.py`` checks it). Anything that does not match a pattern is left as it
is, so an unexpected graph still runs, just without the speed-up; ``FoldCounts`` says what was done.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

from veil.errors import ModelCorrupt

__all__ = ["FoldCounts", "simplified_det_bytes", "simplify_det_graph"]

_Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class FoldCounts:
    """How many of each pattern the rewrite folded."""

    conv_affine: int
    hardswish: int
    input_affine: int
    residual_gate: int
    head: int


class _Graph:
    """The non-constant nodes of a graph plus every constant as an array, for pattern rewrites."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.consts: dict[str, _Array] = {}
        for init in graph.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        self.nodes: list[onnx.NodeProto] = []
        for node in graph.node:
            if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
                self.consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            else:
                self.nodes.append(node)
        self.outputs = {o.name for o in graph.output}
        self._serial = 0

    def consumers(self) -> dict[str, list[onnx.NodeProto]]:
        found: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
        for node in self.nodes:
            for name in node.input:
                found[name].append(node)
        return found

    def only_consumer(self, name: str, consumers: dict[str, list[onnx.NodeProto]]) -> onnx.NodeProto | None:
        """The single node reading ``name``, if there is exactly one and it is not a graph output."""
        readers = consumers.get(name, [])
        return readers[0] if len(readers) == 1 and name not in self.outputs else None

    def scalar(self, name: str) -> float | None:
        value = self.consts.get(name)
        return float(value.reshape(())) if value is not None and value.size == 1 else None

    def scalar_operand(self, node: onnx.NodeProto, op_type: str, data: str) -> float | None:
        """For ``node = op_type(data, scalar)`` (either order), the scalar."""
        if node.op_type != op_type or len(node.input) != 2 or data not in node.input:
            return None
        other = node.input[1] if node.input[0] == data else node.input[0]
        return None if other == data else self.scalar(other)

    def const(self, value: npt.ArrayLike, base: str) -> str:
        self._serial += 1
        name = f"{base}.veil{self._serial}"
        self.consts[name] = np.asarray(value, dtype=np.float32)
        return name

    def conv_weights(self, conv: onnx.NodeProto) -> tuple[_Array, _Array]:
        weight = self.consts[conv.input[1]]
        bias = self.consts[conv.input[2]] if len(conv.input) > 2 else np.zeros(weight.shape[0], np.float32)
        return weight, bias

    def set_conv_weights(self, conv: onnx.NodeProto, weight: npt.ArrayLike, bias: npt.ArrayLike) -> None:
        base = conv.input[1]
        conv.input[1] = self.const(weight, base)
        bias_name = self.const(bias, base + ".bias")
        if len(conv.input) > 2:
            conv.input[2] = bias_name
        else:
            conv.input.append(bias_name)

    def remove(self, dropped: Iterable[onnx.NodeProto]) -> None:
        ids = {id(n) for n in dropped}
        self.nodes = [n for n in self.nodes if id(n) not in ids]

    def model(self, template: onnx.ModelProto) -> onnx.ModelProto:
        """The rewritten model, nodes in topological order, only the constants still read."""
        graph = template.graph
        ready = {i.name for i in graph.input} | set(self.consts) | {""}
        ordered: list[onnx.NodeProto] = []
        pending = list(self.nodes)
        while pending:
            waiting = []
            for node in pending:
                if all(name in ready for name in node.input):
                    ordered.append(node)
                    ready.update(node.output)
                else:
                    waiting.append(node)
            if len(waiting) == len(pending):
                raise ValueError("the rewritten graph has a cycle or a dangling input")
            pending = waiting
        read = {name for node in ordered for name in node.input}
        initializers = [numpy_helper.from_array(v, k) for k, v in self.consts.items() if k in read]
        new_graph = helper.make_graph(
            ordered, graph.name, list(graph.input), list(graph.output), initializers
        )
        model = helper.make_model(new_graph, opset_imports=list(template.opset_import))
        model.ir_version = template.ir_version
        return model


def _is_unpadded(conv: onnx.NodeProto) -> bool:
    return all(p == 0 for a in conv.attribute if a.name == "pads" for p in a.ints) and not any(
        a.name == "auto_pad" and a.s not in (b"", b"NOTSET", b"VALID") for a in conv.attribute
    )


def _fold_conv_affine(g: _Graph) -> int:
    """``Conv -> Mul(a) -> Add(b)`` into the conv's weights and bias."""
    consumers = g.consumers()
    dropped: list[onnx.NodeProto] = []
    for conv in g.nodes:
        if conv.op_type != "Conv" or conv.input[1] not in g.consts:
            continue
        mul = g.only_consumer(conv.output[0], consumers)
        a = None if mul is None else g.scalar_operand(mul, "Mul", conv.output[0])
        if mul is None or a is None:
            continue
        add = g.only_consumer(mul.output[0], consumers)
        b = None if add is None else g.scalar_operand(add, "Add", mul.output[0])
        if add is None or b is None:
            continue
        weight, bias = g.conv_weights(conv)
        g.set_conv_weights(conv, weight * a, bias * a + b)
        conv.output[0] = add.output[0]
        dropped += [mul, add]
    g.remove(dropped)
    return len(dropped) // 2


def _fold_hardswish(g: _Graph) -> int:
    """``y * clip(y + 3, 0, 6) / 6`` into ``y * HardSigmoid(y)``."""
    consumers = g.consumers()
    dropped: list[onnx.NodeProto] = []
    added: list[onnx.NodeProto] = []
    for add in g.nodes:
        if add.op_type != "Add" or len(add.input) != 2 or g.scalar(add.input[1]) != 3.0:
            continue
        y = add.input[0]
        clip = g.only_consumer(add.output[0], consumers)
        if (
            clip is None
            or clip.op_type != "Clip"
            or len(clip.input) != 3
            or g.scalar(clip.input[1]) != 0.0
            or g.scalar(clip.input[2]) != 6.0
        ):
            continue
        mul = g.only_consumer(clip.output[0], consumers)
        if mul is None or mul.op_type != "Mul" or sorted(mul.input) != sorted([y, clip.output[0]]):
            continue
        div = g.only_consumer(mul.output[0], consumers)
        if div is None or g.scalar_operand(div, "Div", mul.output[0]) != 6.0 or div.input[0] != mul.output[0]:
            continue
        out = div.output[0]
        gate = out + ".gate"
        added.append(helper.make_node("HardSigmoid", [y], [gate], name=gate, alpha=1.0 / 6.0, beta=0.5))
        added.append(helper.make_node("Mul", [y, gate], [out], name=out + ".hardswish"))
        dropped += [add, clip, mul, div]
    g.remove(dropped)
    g.nodes += added
    return len(added) // 2


def _fold_input_affine(g: _Graph) -> int:
    """``Mul(c) -> Add(d)`` in front of convs into the convs (fully only where they are unpadded)."""
    consumers = g.consumers()
    dropped: list[onnx.NodeProto] = []
    folded = 0
    for mul in g.nodes:
        if mul.op_type != "Mul" or len(mul.input) != 2:
            continue
        scalars = [name for name in mul.input if g.scalar(name) is not None]
        if len(scalars) != 1:
            continue
        x = mul.input[0] if mul.input[1] == scalars[0] else mul.input[1]
        c = g.scalar(scalars[0])
        add = g.only_consumer(mul.output[0], consumers)
        d = None if add is None else g.scalar_operand(add, "Add", mul.output[0])
        if add is None or c is None or d is None or c == 0.0 or add.output[0] in g.outputs:
            continue
        convs = consumers.get(add.output[0], [])
        if not convs or not all(
            n.op_type == "Conv" and n.input[0] == add.output[0] and n.input[1] in g.consts for n in convs
        ):
            continue
        unpadded = all(_is_unpadded(n) for n in convs)
        for conv in convs:
            weight, bias = g.conv_weights(conv)
            if unpadded:
                shift = d * weight.astype(np.float64).sum(axis=(1, 2, 3))
                g.set_conv_weights(conv, weight * c, bias + shift)
                conv.input[0] = x
            else:
                g.set_conv_weights(conv, weight * c, bias)
        if unpadded:
            dropped += [mul, add]
        else:  # conv(pad(c*x + d)) = (c*W)(pad(x + d/c)): the shift stays, as a depthwise 1x1 conv
            channels = g.consts[convs[0].input[1]].shape[1] * next(
                (a.i for a in convs[0].attribute if a.name == "group"), 1
            )
            dropped += [mul, add]
            g.nodes.append(
                helper.make_node(
                    "Conv",
                    [
                        x,
                        g.const(np.ones((channels, 1, 1, 1)), add.output[0] + ".one"),
                        g.const(np.full(channels, d / c), add.output[0] + ".shift"),
                    ],
                    [add.output[0]],
                    name=add.output[0] + ".shift",
                    kernel_shape=[1, 1],
                    group=channels,
                )
            )
        folded += 1
    g.remove(dropped)
    return folded


def _fold_residual_gate(g: _Graph) -> int:
    """``x + x * HardSigmoid(Conv(s))`` into ``x * Clip(Conv'(s), 1, 2)``: 1 + clip(a*z + b, 0, 1) is
    clip(a*z + b + 1, 1, 2), and the scale and shift go into the conv."""
    consumers = g.consumers()
    producers = {out: node for node in g.nodes for out in node.output}
    dropped: list[onnx.NodeProto] = []
    added: list[onnx.NodeProto] = []
    for mul in g.nodes:
        if mul.op_type != "Mul" or len(mul.input) != 2:
            continue
        for x, gate_name in (mul.input, mul.input[::-1]):
            gate = producers.get(gate_name)
            if gate is None or gate.op_type != "HardSigmoid" or g.only_consumer(gate_name, consumers) is None:
                continue
            conv = producers.get(gate.input[0])
            add = g.only_consumer(mul.output[0], consumers)
            if (
                conv is None
                or conv.op_type != "Conv"
                or conv.input[1] not in g.consts
                or g.only_consumer(conv.output[0], consumers) is None
                or add is None
                or add.op_type != "Add"
                or sorted(add.input) != sorted([x, mul.output[0]])
            ):
                continue
            attrs = {a.name: a.f for a in gate.attribute}
            alpha, beta = attrs.get("alpha", 0.2), attrs.get("beta", 0.5)
            weight, bias = g.conv_weights(conv)
            g.set_conv_weights(conv, weight * alpha, bias * alpha + beta + 1.0)
            low, high = g.const(1.0, gate_name + ".low"), g.const(2.0, gate_name + ".high")
            added += [
                helper.make_node("Clip", [conv.output[0], low, high], [gate_name], name=gate_name),
                helper.make_node("Mul", [x, gate_name], [add.output[0]], name=add.output[0]),
            ]
            dropped += [gate, mul, add]
            break
    g.remove(dropped)
    g.nodes += added
    return len(added) // 2


def _fold_head(g: _Graph) -> int:
    """``ConvT(2x2, s2) -> Add(bias) -> BN -> Relu -> ConvT(2x2, s2, to 1) -> Add -> Sigmoid`` (DB's
    probability head) into 1x1 convs on the quarter-resolution map and one ``DepthToSpace``."""
    consumers = g.consumers()
    for first in g.nodes:
        chain = _head_chain(g, first, consumers)
        if chain is None:
            continue
        convt1, add1, bn, relu, convt2, add2, sigmoid = chain
        w1 = g.consts[convt1.input[1]]  # (in, mid, 2, 2)
        w2 = g.consts[convt2.input[1]]  # (mid, 1, 2, 2)
        b1 = g.consts[add1.input[1]].reshape(-1)
        gamma, beta, mean, var = (g.consts[name].reshape(-1) for name in bn.input[1:5])
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        b2 = g.scalar(add2.input[1])
        if b2 is None:
            continue
        n_in, n_mid = w1.shape[:2]
        # stage 1: channel (i*2 + j) * mid + o is sub-pixel (i, j) of mid-channel o
        k1 = np.transpose(w1, (2, 3, 1, 0)).reshape(4 * n_mid, n_in) * np.tile(scale, 4)[:, None]
        bias1 = np.tile(b1 * scale + shift, 4)
        # stage 2: the 4x4 block of each quarter-resolution pixel, as the channels DepthToSpace(4) lays
        # out: output row (2i + p) * 4 + (2j + q) reads sub-pixel (i, j)'s mid channels with w2[:, 0, p, q].
        # A dense 1x1 conv (zeros outside each sub-pixel's channels) rather than a grouped one: 16 output
        # channels keep onnxruntime's blocked layout, 4 per group would not.
        k2 = np.zeros((16, 4 * n_mid), dtype=np.float32)
        for i, j, p, q in np.ndindex(2, 2, 2, 2):
            k2[(2 * i + p) * 4 + 2 * j + q, (i * 2 + j) * n_mid : (i * 2 + j + 1) * n_mid] = w2[:, 0, p, q]
        x = convt1.input[0]
        base = convt1.output[0]
        mid, logits, prob = (f"{base}.{s}" for s in ("mid", "logits", "prob"))
        w_mid = g.const(k1[:, :, None, None], base + ".w1")
        b_mid = g.const(bias1, base + ".b1")
        w_out = g.const(k2[:, :, None, None], base + ".w2")
        b_out = g.const(np.full(16, b2), base + ".b2")
        g.remove(chain)
        g.nodes += [
            helper.make_node("Conv", [x, w_mid, b_mid], [mid + ".linear"], name=mid, kernel_shape=[1, 1]),
            helper.make_node("Relu", [mid + ".linear"], [mid], name=mid + ".relu"),
            helper.make_node("Conv", [mid, w_out, b_out], [logits], name=logits, kernel_shape=[1, 1]),
            helper.make_node("Sigmoid", [logits], [prob], name=prob),
            helper.make_node("DepthToSpace", [prob], [sigmoid.output[0]], name=base + ".full", blocksize=4),
        ]
        return 1
    return 0


def _head_chain(
    g: _Graph, first: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]
) -> list[onnx.NodeProto] | None:
    expected = ["ConvTranspose", "Add", "BatchNormalization", "Relu", "ConvTranspose", "Add", "Sigmoid"]
    chain = [first]
    while len(chain) < len(expected):
        nxt = g.only_consumer(chain[-1].output[0], consumers)
        if nxt is None:
            return None
        chain.append(nxt)
    if [n.op_type for n in chain] != expected:
        return None
    convt1, add1, bn, _relu, convt2, add2, _sigmoid = chain
    for convt in (convt1, convt2):
        attrs = {a.name: helper.get_attribute_value(a) for a in convt.attribute}
        if (
            list(attrs.get("kernel_shape", [])) != [2, 2]
            or list(attrs.get("strides", [])) != [2, 2]
            or any(attrs.get("pads", [0]))
            or attrs.get("group", 1) != 1
            or any(attrs.get("output_padding", [0]))
            or any(d != 1 for d in attrs.get("dilations", [1]))
            or len(convt.input) != 2
            or convt.input[1] not in g.consts
        ):
            return None
    if g.consts[convt2.input[1]].shape[1] != 1 or len(bn.output) != 1:
        return None
    n_mid = g.consts[convt1.input[1]].shape[1]
    if not all(name in g.consts for name in bn.input[1:5]) or add1.input[0] != convt1.output[0]:
        return None
    if add1.input[1] not in g.consts or g.consts[add1.input[1]].size != n_mid:
        return None
    if add2.input[0] != convt2.output[0]:
        return None
    return chain


def simplify_det_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, FoldCounts]:
    """The PP-OCR detector ``model`` with its affine blocks, hardswish and head folded (see above)."""
    g = _Graph(model)
    counts = FoldCounts(
        conv_affine=_fold_conv_affine(g),
        hardswish=_fold_hardswish(g),
        input_affine=_fold_input_affine(g),
        residual_gate=_fold_residual_gate(g),
        head=_fold_head(g),
    )
    return g.model(model), counts


def simplified_det_bytes(model_path: Path) -> bytes:
    """The detector at ``model_path`` rewritten by ``simplify_det_graph``, serialized for a session."""
    try:
        model = onnx.load(str(model_path))
        simplified, _counts = simplify_det_graph(model)
        return bytes(simplified.SerializeToString())
    except Exception as exc:  # onnx raises DecodeError, ValueError, KeyError...
        raise ModelCorrupt(
            "the text detector model could not be read; run `veil models pull` to restore it"
        ) from exc
