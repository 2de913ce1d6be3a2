"""Run a detector over a labelled set and score it: the numbers behind ``veil eval``.

Time is measured around ``detect`` only (not image decoding), so
``images_per_second`` is the detector's own throughput on this machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from veil.detect.base import Detector
from veil.evaluate.datasets import DatasetFormat, load_dataset
from veil.evaluate.metrics import MatchCounts, match_greedy
from veil.media import read_image

__all__ = ["EvalResult", "evaluate"]


@dataclass(frozen=True)
class EvalResult:
    """Totals over a labelled set (no per-image detail, so nothing personal leaks into logs)."""

    model: str
    images: int
    iou: float
    tp: int
    fp: int
    fn: int
    recall: float
    precision: float
    f1: float
    seconds: float
    """Time spent inside ``detect``, summed over images."""
    images_per_second: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def evaluate(
    detector: Detector,
    *,
    images_dir: Path,
    labels_dir: Path,
    fmt: DatasetFormat,
    iou: float = 0.3,
) -> EvalResult:
    """Detect on every labelled image and match one-to-one at ``iou``.

    Raises SpecError for a bad set (see ``load_dataset``) and MediaError
    subclasses for an unreadable image.
    """
    samples = load_dataset(images_dir=images_dir, labels_dir=labels_dir, fmt=fmt)
    counts = MatchCounts()
    seconds = 0.0
    for sample in samples:
        frame = read_image(sample.image_path)
        start = time.perf_counter()
        found = detector.detect(frame)
        seconds += time.perf_counter() - start
        counts += match_greedy(found.xyxy, found.confidence, sample.boxes_xyxy, iou_threshold=iou)
    return EvalResult(
        model=detector.model_name,
        images=len(samples),
        iou=iou,
        tp=counts.tp,
        fp=counts.fp,
        fn=counts.fn,
        recall=counts.recall,
        precision=counts.precision,
        f1=counts.f1,
        seconds=seconds,
        images_per_second=len(samples) / seconds if seconds > 0 else 0.0,
    )
