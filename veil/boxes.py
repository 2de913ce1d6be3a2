"""Pure box geometry. Coordinate order is in every name; pass keyword arguments."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["box_iou_xyxy", "clip_xyxy", "nms_xyxy", "scale_xyxy"]

Boxes = npt.NDArray[np.float32]


def box_iou_xyxy(a_xyxy: Boxes, b_xyxy: Boxes) -> npt.NDArray[np.float32]:
    """Pairwise IoU, shape (len(a), len(b))."""
    a = np.asarray(a_xyxy, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def nms_xyxy(xyxy: Boxes, scores: npt.NDArray[np.float32], iou_threshold: float) -> npt.NDArray[np.int64]:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        ious = box_iou_xyxy(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def clip_xyxy(xyxy: Boxes, resolution_wh: tuple[int, int]) -> Boxes:
    """Clip boxes to ``[0, w] x [0, h]``; returns a new array."""
    w, h = resolution_wh
    out = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out


def scale_xyxy(xyxy: Boxes, factor: float, *, min_margin: float = 0.0) -> Boxes:
    """Grow (factor > 1) or shrink boxes about their centres; returns a new array.

    With ``min_margin`` (pixels), a grown box also reaches at least that far beyond the box on every
    side: a small box's position is uncertain by a few pixels whatever its size, so a factor alone
    grows it too little."""
    boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2
    half = np.maximum(half * factor, half + min_margin) if min_margin > 0 else half * factor
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)
