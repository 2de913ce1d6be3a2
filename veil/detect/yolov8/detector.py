"""Run a YOLOv8 detection ONNX model (converted or user-supplied) as a Veil ``Detector``.

A frame is letterboxed to ``imgsz`` on its long side, padded only up to the
next multiple of 32 on its short side (a 1080p frame runs at 640x384, not
640x640), decoded, filtered and merged with NMS. A plate far from the camera
in a large frame may shrink below what the model can see at ``imgsz``, so
frames whose long side reaches ``second_scale_min_side`` are also run at
``second_scale_imgsz``, and both passes are merged: recall first, since a
missed plate is a leak. Plates tilted in the image (fisheye lenses) can be
found with extra passes on rotated copies of the frame (``rotations_deg``);
those only add objects that no upright pass found, so a plate never gets two
boxes. Nor does a plate get two nested boxes (the plate, and the plate with its
frame or bumper recess), which plain NMS keeps because their IoU is low: a box
lying almost wholly inside another of similar size is one object, and only the
better-scored of the two is kept (``merge_nested``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from veil.boxes import clip_xyxy, nms_xyxy
from veil.detect.base import MAX_UPSCALE, too_small_to_search
from veil.detect.multiscale import planar_blob
from veil.detect.runtime import RuntimeOptions, create_session
from veil.detections import Detections
from veil.errors import ModelCorrupt
from veil.frames import RGBFrame

__all__ = ["YoloV8Config", "YoloV8Detector", "letterbox_yolo", "merge_nested"]

_PAD_VALUE = 114  # ultralytics' letterbox grey, what the model saw in training
_STRIDE = 32
_NESTED_INSIDE = 0.8
"""A box with at least this share of its area inside a larger one is nested in it."""
_NESTED_MAX_AREA_RATIO = 4.0
"""...unless the larger box is more than this many times its area: that is another object (a car, a
bumper) scored as a plate, not a second box of the same plate, and is left to the score threshold."""


class YoloV8Config(BaseModel):
    """Settings of one YOLOv8 detector (licence plates or a bring-your-own category)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["yolov8"] = Field("yolov8", description="Detector kind (discriminator).")
    int8: bool = Field(
        False,
        description="Run the calibrated INT8 build (``veil.detect.yolov8.int8``), about 40 % less CPU per "
        "frame. Built-in licence-plate model only; its scores run lower, so it has its own threshold.",
    )
    threshold: float = Field(
        0.2,
        ge=0.01,
        le=0.99,
        description="Minimum class score kept. Low by default: a missed plate is a leak, "
        "a spare box only blurs a little more.",
    )
    nms_iou: float = Field(
        0.5,
        ge=0.1,
        le=0.95,
        description="Boxes overlapping a better one by more than this IoU are merged away.",
    )
    imgsz: int = Field(
        640,
        ge=160,
        le=1920,
        multiple_of=_STRIDE,
        description="Long side of the model input in pixels (the model was trained at 640).",
    )
    second_scale_imgsz: int | None = Field(
        1280,
        ge=320,
        le=3840,
        multiple_of=_STRIDE,
        description="Long side of an extra pass for large frames, so that small, distant plates survive. "
        "Unset disables the extra pass.",
    )
    second_scale_min_side: int = Field(
        2000,
        ge=640,
        le=20_000,
        description="Frames whose long side is at least this many pixels get the extra pass. "
        "1080p frames (1920 px) stay single-pass by default, to keep video fast.",
    )
    rotations_deg: tuple[float, ...] = Field(
        (),
        max_length=4,
        description="Extra passes on the frame rotated by these angles (degrees, each within +-45), "
        "for plates tilted in the image: fisheye and wide-angle lenses, cameras on slopes. Each angle "
        "costs one more pass at `imgsz`. Empty by default to keep video fast; (-20, 20) finds tilted "
        "plates a plain pass misses.",
    )
    rotations_min_side: int = Field(
        0,
        ge=0,
        le=20_000,
        description="Only frames whose long side is at least this many pixels get the rotated passes "
        "(0: all). Video uses it to keep 1080p fast while large fisheye frames get the tilted search.",
    )
    classes: tuple[int, ...] | None = Field(
        None,
        max_length=1000,
        description="Model class indices that count as this category. Unset: every class the model has.",
    )
    max_detections: int = Field(
        300, ge=1, le=10_000, description="Most boxes returned per frame, best first."
    )

    @model_validator(mode="after")
    def _scales_ordered(self) -> YoloV8Config:
        if self.second_scale_imgsz is not None and self.second_scale_imgsz <= self.imgsz:
            raise ValueError("second_scale_imgsz must be larger than imgsz")
        if any(not -45.0 <= a <= 45.0 or a == 0.0 for a in self.rotations_deg):
            raise ValueError("rotations_deg must be non-zero angles within +-45 degrees")
        if self.classes is not None and any(c < 0 for c in self.classes):
            raise ValueError("classes must be non-negative class indices")
        return self


@dataclass(frozen=True)
class _Letterbox:
    blob: npt.NDArray[np.float32]
    scale: float


def _letterbox(frame: RGBFrame, long_side: int) -> _Letterbox:
    """Resize so the long side is ``long_side``; pad right/bottom to multiples of 32."""
    h, w = frame.shape[:2]
    scale = long_side / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    ph, pw = -(-nh // _STRIDE) * _STRIDE, -(-nw // _STRIDE) * _STRIDE
    return _Letterbox(blob=_blob(resized, (ph, pw)), scale=scale)


def letterbox_yolo(frame: RGBFrame, long_side: int) -> npt.NDArray[np.float32]:
    """The model input for ``frame`` at ``long_side`` pixels, as ``detect`` builds it (for calibration)."""
    return _letterbox(frame, long_side).blob


class YoloV8Detector:
    """A YOLOv8 ONNX model (output ``[1, 4 + nc, N]``) behind the ``Detector`` protocol.

    ``detect`` keeps no state on the instance between calls and onnxruntime
    sessions may be run concurrently, so one instance may serve several threads.
    """

    def __init__(
        self,
        config: YoloV8Config,
        *,
        model_path: Path,
        runtime: RuntimeOptions,
        class_id: int = 0,
        model_name: str = "yolov8_plate",
    ) -> None:
        self.config = config
        self.class_id = class_id
        self.model_name = model_name
        self._session = create_session(model_path, options=runtime)
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelCorrupt("the YOLOv8 model must have one input and one output")
        self._input = inputs[0].name
        self._fixed_hw = _fixed_hw(inputs[0].shape)
        self._warm_up()

    @property
    def threads(self) -> int:
        """onnxruntime intra-op threads of the session (0 means one per core)."""
        return int(self._session.get_session_options().intra_op_num_threads)

    def _warm_up(self) -> None:
        frame = np.zeros((self.config.imgsz * 9 // 16, self.config.imgsz, 3), dtype=np.uint8)
        self.detect(frame)

    def detect(self, frame: RGBFrame) -> Detections:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        if too_small_to_search(frame):
            return Detections.empty()
        # A small frame is enlarged at most MAX_UPSCALE times (rounded up to the stride), not to imgsz.
        sides = [min(self.config.imgsz, -(-int(max(h, w) * MAX_UPSCALE) // _STRIDE) * _STRIDE)]
        second = self.config.second_scale_imgsz
        if second is not None and self._fixed_hw is None and max(h, w) >= self.config.second_scale_min_side:
            sides.append(min(second, -(-max(h, w) // _STRIDE) * _STRIDE))
        tilt = bool(self.config.rotations_deg) and max(h, w) >= self.config.rotations_min_side
        # With tilted passes, the upright ones also keep faint boxes (half the threshold): not as objects,
        # only as the tight shape of an object that a tilted pass finds (``_adopt_upright_boxes``).
        floor = self.config.threshold / 2 if tilt else self.config.threshold
        upright = [self._run(frame, side, floor) for side in sides]
        xyxy, conf = self._merge(upright, (w, h))
        if tilt:
            tilted = [self._run_rotated(frame, angle) for angle in self.config.rotations_deg]
            xyxy, conf = _adopt_upright_boxes(xyxy, conf, self._merge(tilted, (w, h)), self.config.threshold)
        xyxy, conf = merge_nested(xyxy, conf)
        order = np.argsort(-conf, kind="stable")[: self.config.max_detections]
        return Detections(
            xyxy=xyxy[order],
            confidence=conf[order],
            class_id=np.full(len(order), self.class_id, dtype=np.int64),
        )

    def _merge(
        self,
        passes: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]],
        resolution_wh: tuple[int, int],
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Clip, drop empty boxes and NMS the boxes of several passes together."""
        xyxy = clip_xyxy(np.concatenate([b for b, _ in passes]), resolution_wh=resolution_wh)
        conf = np.concatenate([s for _, s in passes])
        valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        xyxy, conf = xyxy[valid], conf[valid]
        keep = nms_xyxy(xyxy, conf, self.config.nms_iou)
        return xyxy[keep], conf[keep]

    def _run_rotated(
        self, frame: RGBFrame, angle: float
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """One pass on the frame rotated by ``angle`` (canvas grown so no corner is cut).

        Each box is mapped back by rotating its four corners; the axis-aligned
        bounds of those cover the tilted object fully, if a little generously.
        The frame is first shrunk as far as the letterbox would shrink the rotated
        canvas anyway, so rotating a 1080p frame costs no more than rotating 640 px.
        """
        h, w = frame.shape[:2]
        cos, sin = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
        shrink = min(1.0, self.config.imgsz / max(w * cos + h * sin, w * sin + h * cos))
        if shrink < 1.0:
            size_wh = (max(1, round(w * shrink)), max(1, round(h * shrink)))
            frame = np.asarray(cv2.resize(frame, size_wh, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
            h, w = frame.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        nw, nh = int(np.ceil(w * cos + h * sin)), int(np.ceil(w * sin + h * cos))
        matrix[0, 2] += nw / 2 - w / 2
        matrix[1, 2] += nh / 2 - h / 2
        rotated = cv2.warpAffine(
            frame, matrix, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=(_PAD_VALUE, _PAD_VALUE, _PAD_VALUE)
        )
        boxes, scores = self._run(np.ascontiguousarray(rotated), self.config.imgsz, self.config.threshold)
        if len(boxes) == 0:
            return boxes, scores
        inverse = cv2.invertAffineTransform(matrix).astype(np.float32)
        x1, y1, x2, y2 = boxes.T
        corners = np.stack(
            [np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x1, y2], 1), np.stack([x2, y2], 1)], 1
        )
        back = corners @ inverse[:, :2].T + inverse[:, 2]
        xyxy = np.concatenate([back.min(axis=1), back.max(axis=1)], axis=1) / np.float32(shrink)
        return xyxy.astype(np.float32), scores

    def _run(
        self, frame: RGBFrame, side: int, threshold: float
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        if self._fixed_hw is not None:
            lb = _letterbox_fixed(frame, self._fixed_hw)
        else:
            lb = _letterbox(frame, side)
        raw = self._session.run(None, {self._input: lb.blob})[0]
        out = np.asarray(raw, dtype=np.float32)
        if out.ndim != 3 or out.shape[0] != 1 or out.shape[1] < 5:
            raise ModelCorrupt("the YOLOv8 model output is not [1, 4 + classes, anchors]")
        class_scores = out[0, 4:, :]
        if self.config.classes is not None:
            wanted = [c for c in self.config.classes if c < class_scores.shape[0]]
            class_scores = class_scores[wanted] if wanted else class_scores[:0]
        if class_scores.shape[0] == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        score = class_scores.max(axis=0)
        hit = np.flatnonzero(score >= threshold)
        if hit.size > 30_000:  # a degenerate model: keep the best, NMS is quadratic
            hit = hit[np.argsort(-score[hit])[:30_000]]
        cx, cy, bw, bh = out[0, :4, hit].T if hit.size else np.zeros((4, 0), np.float32)
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1) / np.float32(lb.scale)
        return xyxy.astype(np.float32).reshape(-1, 4), score[hit].astype(np.float32)


def _adopt_upright_boxes(
    xyxy: npt.NDArray[np.float32],
    conf: npt.NDArray[np.float32],
    tilted: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]],
    threshold: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Join the upright boxes (``conf`` down to half the threshold) and the tilted ones (at the threshold).

    A tilted pass maps back to a generous upright box (the bounds of a rotated box around a rotated
    object). Where an upright pass also found the object (the smaller box lies mostly inside the
    other), the tighter upright box is kept with the better of the two scores, even when the upright
    score alone is below the threshold: a plate that only a tilted pass scores well keeps its real
    shape, and a lower threshold, which lets a faint upright box in, never lowers an object's score
    (video splits boxes into strong and weak by score). Faint upright boxes that no tilted box
    confirms are dropped; tilted boxes matching no upright one are kept as they are.
    """
    t_xyxy, t_conf = tilted
    best = conf.copy()
    if len(t_xyxy) and len(xyxy):
        t_area = (t_xyxy[:, 2:] - t_xyxy[:, :2]).prod(axis=1)
        area = (xyxy[:, 2:] - xyxy[:, :2]).prod(axis=1)
        # A faint upright box much smaller than the tilted one may be another object inside it.
        shaped = (conf[None, :] >= threshold) | (area[None, :] >= 0.25 * t_area[:, None])
        same = (_overlap_of_smaller(t_xyxy, xyxy) >= 0.5) & shaped
        best = np.maximum(conf, np.where(same, t_conf[:, None], 0.0).max(axis=0)).astype(np.float32)
        fresh = ~same.any(axis=1)
        t_xyxy, t_conf = t_xyxy[fresh], t_conf[fresh]
    keep = best >= threshold
    return np.concatenate([xyxy[keep], t_xyxy]), np.concatenate([best[keep], t_conf]).astype(np.float32)


def merge_nested(
    xyxy: npt.NDArray[np.float32], conf: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Keep one box of each group of nested boxes of one object: the best-scored one.

    A box is nested in another when at least 80 % of the smaller lies inside the larger and the
    larger is at most 4x the smaller's area. Both cover the plate, so either masks it; the best
    one is kept as it is (not grown to the union), so a faint box found at a lower threshold (video
    detects at half of it) never moves or grows a confident box.
    """
    if len(xyxy) < 2:
        return xyxy, conf
    order = np.argsort(-conf, kind="stable")
    boxes, scores = xyxy[order], conf[order]
    area = (boxes[:, 2:] - boxes[:, :2]).prod(axis=1)
    big, small = np.maximum(area[:, None], area[None, :]), np.minimum(area[:, None], area[None, :])
    nested = (_overlap_of_smaller(boxes, boxes) >= _NESTED_INSIDE) & (big <= _NESTED_MAX_AREA_RATIO * small)
    keep = np.ones(len(boxes), dtype=bool)
    for j in range(1, len(boxes)):
        keep[j] = not (nested[:j, j] & keep[:j]).any()
    return boxes[keep], scores[keep]


def _overlap_of_smaller(
    a_xyxy: npt.NDArray[np.float32], b_xyxy: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Pairwise intersection over the smaller box's area, shape (len(a), len(b))."""
    lt = np.maximum(a_xyxy[:, None, :2], b_xyxy[None, :, :2])
    rb = np.minimum(a_xyxy[:, None, 2:], b_xyxy[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a_xyxy[:, 2:] - a_xyxy[:, :2]).prod(axis=1)
    area_b = (b_xyxy[:, 2:] - b_xyxy[:, :2]).prod(axis=1)
    smaller = np.minimum(area_a[:, None], area_b[None, :])
    ratio: npt.NDArray[np.float32] = (inter / np.maximum(smaller, 1e-9)).astype(np.float32)
    return ratio


def _fixed_hw(shape: list[object]) -> tuple[int, int] | None:
    """(H, W) of a model with a fixed input size (many exported ONNX files), else None."""
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return shape[2], shape[3]
    return None


def _letterbox_fixed(frame: RGBFrame, hw: tuple[int, int]) -> _Letterbox:
    """Letterbox into a fixed (H, W) input: scale to fit, pad right/bottom."""
    h, w = frame.shape[:2]
    scale = min(hw[0] / h, hw[1] / w)
    nh, nw = min(hw[0], max(1, round(h * scale))), min(hw[1], max(1, round(w * scale)))
    resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return _Letterbox(blob=_blob(resized, hw), scale=scale)


def _blob(resized: npt.NDArray[Any], shape_hw: tuple[int, int]) -> npt.NDArray[np.float32]:
    """YOLOv8's input: RGB scaled to 0-1, padded with ultralytics' grey."""
    rgb = np.asarray(resized, dtype=np.uint8)  # cv2.resize keeps uint8; this only tells the type checker
    return planar_blob(rgb, shape_hw, fill=_PAD_VALUE / 255.0, multiplier=1 / 255.0)
