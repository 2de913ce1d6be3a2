"""``Detections``: the one value type that passes between detect, track and redact.

A bottom-level module with no model code, so that track and redact can name it
without loading onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Detections", "merge_outlines"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Detections:
    """N boxes in source-frame pixels (as stored in the file, before rotation).

    ``class_id`` indexes the category table the pipeline built from the spec
    (see ``veil.detect.categories``); ``track_id`` is set once a tracker has
    seen the boxes. Arrays are never mutated after construction.

    ``outline`` carries polygons (rotated text lines): shape (N, K, 2), each
    polygon's K corners in *unit coordinates of its own box* ((0, 0) is the
    box's x1, y1 and (1, 1) its x2, y2). Stored relative to the box, the
    polygon follows whatever moves or grows the box (tracking, smoothing,
    padding, ``mask_scale``) without any of those knowing about polygons. A
    row of NaN means "no polygon: use the category's shape"; ``None`` means
    no row has one. Redactors mask the polygon where a row has one.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    track_id: IntArray | None = None
    outline: FloatArray | None = None
    label: IntArray | None = None
    """(N,) index into the detector's label table (``veil.detect.registry.category_labels``), -1 for
    none: for text with ``only: pii``, which personal-data pattern a line matched."""

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
        n = xyxy.shape[0]
        confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if confidence.shape != (n,):
            raise ValueError(f"confidence must have shape ({n},), got {confidence.shape}")
        if class_id.shape != (n,):
            raise ValueError(f"class_id must have shape ({n},), got {class_id.shape}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "class_id", class_id)
        if self.track_id is not None:
            track_id = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
            if track_id.shape != (n,):
                raise ValueError(f"track_id must have shape ({n},), got {track_id.shape}")
            object.__setattr__(self, "track_id", track_id)
        if self.outline is not None:
            outline = np.asarray(self.outline, dtype=np.float32)
            if outline.ndim != 3 or outline.shape[0] != n or outline.shape[2] != 2 or outline.shape[1] < 3:
                raise ValueError(f"outline must have shape ({n}, K>=3, 2), got {outline.shape}")
            object.__setattr__(self, "outline", outline)
        if self.label is not None:
            label = np.asarray(self.label, dtype=np.int64).reshape(-1)
            if label.shape != (n,):
                raise ValueError(f"label must have shape ({n},), got {label.shape}")
            object.__setattr__(self, "label", label)

    @property
    def has_outline(self) -> npt.NDArray[np.bool_]:
        """(N,) True where a row carries a polygon."""
        if self.outline is None:
            return np.zeros(len(self), dtype=bool)
        return np.asarray(np.all(np.isfinite(self.outline), axis=(1, 2)), dtype=bool)

    def polygons(self) -> list[FloatArray | None]:
        """Each row's polygon in frame pixels ((K, 2) float32), or None where it has none."""
        if self.outline is None:
            return [None] * len(self)
        size = self.xyxy[:, 2:] - self.xyxy[:, :2]
        absolute = self.xyxy[:, None, :2] + self.outline * size[:, None, :]
        return [absolute[i] if ok else None for i, ok in enumerate(self.has_outline)]

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), dtype=np.float32),
            confidence=np.zeros((0,), dtype=np.float32),
            class_id=np.zeros((0,), dtype=np.int64),
        )

    @classmethod
    def from_polygons(cls, polygons: FloatArray, confidence: FloatArray, class_id: int = 0) -> Detections:
        """Detections of (N, K, 2) pixel polygons: each box is its polygon's bounding box and
        ``outline`` the polygon in that box's unit coordinates."""
        poly = np.asarray(polygons, dtype=np.float32)
        if poly.size == 0:
            return cls.empty()
        poly = poly.reshape(len(confidence), -1, 2)
        lo, hi = poly.min(axis=1), poly.max(axis=1)
        size = np.maximum(hi - lo, 1e-6)
        return cls(
            xyxy=np.concatenate([lo, hi], axis=1),
            confidence=confidence,
            class_id=np.full(len(confidence), class_id, dtype=np.int64),
            outline=(poly - lo[:, None, :]) / size[:, None, :],
        )

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """Concatenate; ``track_id`` survives only if every part has one."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        track_ids = [p.track_id for p in parts]
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            track_id=None if any(t is None for t in track_ids) else np.concatenate(track_ids),  # type: ignore[arg-type]
            outline=merge_outlines([p.outline for p in parts], [len(p) for p in parts]),
            label=None
            if all(p.label is None for p in parts)
            else np.concatenate(
                [np.full(len(p), -1, np.int64) if p.label is None else p.label for p in parts]
            ),
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64] | slice) -> Detections:
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            track_id=None if self.track_id is None else self.track_id[index],
            outline=None if self.outline is None else self.outline[index],
            label=None if self.label is None else self.label[index],
        )

    def with_class_id(self, class_id: int) -> Detections:
        return Detections(
            xyxy=self.xyxy,
            confidence=self.confidence,
            class_id=np.full(len(self), class_id, dtype=np.int64),
            track_id=self.track_id,
            outline=self.outline,
            label=self.label,
        )


def merge_outlines(outlines: Sequence[FloatArray | None], lengths: Sequence[int]) -> FloatArray | None:
    """Concatenate per-part outlines; parts without one (or with fewer corners) are padded.

    A part without outlines gets NaN rows (no polygon). Polygons with fewer corners than the
    largest repeat their last corner, which draws the same polygon.
    """
    if all(o is None for o in outlines):
        return None
    corners = max(o.shape[1] for o in outlines if o is not None)
    rows: list[FloatArray] = []
    for outline, n in zip(outlines, lengths, strict=True):
        if outline is None:
            rows.append(np.full((n, corners, 2), np.nan, dtype=np.float32))
        elif outline.shape[1] < corners:
            extra = np.repeat(outline[:, -1:, :], corners - outline.shape[1], axis=1)
            rows.append(np.concatenate([outline, extra], axis=1).astype(np.float32))
        else:
            rows.append(outline.astype(np.float32))
    return np.concatenate(rows)
