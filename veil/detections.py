"""``Detections``: the one value type that passes between detect, track and redact.

A bottom-level module with no model code, so that track and redact can name it
without loading onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Detections"]

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Detections:
    """N boxes in source-frame pixels (as stored in the file, before rotation).

    ``class_id`` indexes the category table the pipeline built from the spec
    (see ``veil.detect.categories``); ``track_id`` is set once a tracker has
    seen the boxes. Arrays are never mutated after construction.
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    track_id: IntArray | None = None

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

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.zeros((0, 4), dtype=np.float32),
            confidence=np.zeros((0,), dtype=np.float32),
            class_id=np.zeros((0,), dtype=np.int64),
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
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64] | slice) -> Detections:
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            track_id=None if self.track_id is None else self.track_id[index],
        )

    def with_class_id(self, class_id: int) -> Detections:
        return Detections(
            xyxy=self.xyxy,
            confidence=self.confidence,
            class_id=np.full(len(self), class_id, dtype=np.int64),
            track_id=self.track_id,
        )
