"""Cost of masking one 1920x1080 frame with 5 faces, per method and shape, plus tracker cost.

The frame is ``../shared/data/media/faces_2560.png`` scaled to 1080p; the five boxes are 130 to 320 px
tall (typical faces at 1080p), grown by ``mask_scale`` 1.3 as the default spec does. Each redactor runs
``--rounds`` times on a fresh copy of the frame (the copy is not timed). The tracker line is the
per-frame cost of ``IoUTracker.update`` with 5 moving faces, and ``tracks_at_frames`` is timed over
100k frames.

    .venv/bin/python bench/redact_cost.py --rounds 200

Budget: well under 10 ms per frame for every method, so masking never limits 30 fps video.
Timings on a shared 2-core machine are noisy; compare medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from veil.detections import Detections
from veil.redact import build_redactor
from veil.track import IoUTracker, Track, tracks_at_frames

MEDIA = (
    Path(os.environ.get("VEIL_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
    / "media"
)
BOXES = np.array(
    [[200, 200, 330, 360], [600, 300, 760, 500], [1000, 250, 1120, 400], [1400, 500, 1660, 820],
     [1700, 100, 1830, 260]],
    dtype=np.float32,
)  # fmt: skip


def _frame() -> np.ndarray:
    bgr = cv2.imread(str(MEDIA / "faces_2560.png"), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"missing test image in {MEDIA}")
    return np.ascontiguousarray(
        cv2.cvtColor(cv2.resize(bgr, (1920, 1080), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    )


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p90 = samples[int(0.9 * (len(samples) - 1))]
    return f"median {statistics.median(samples) * 1e3:6.2f} ms   p90 {p90 * 1e3:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed runs per method")
    args = parser.parse_args()

    frame = _frame()
    detections = Detections(
        xyxy=BOXES,
        confidence=np.ones(5, np.float32),
        class_id=np.zeros(5, np.int64),
        track_id=np.arange(1, 6),
    )
    threads = cv2.getNumThreads()
    print(f"1920x1080 frame, {len(BOXES)} faces, mask_scale 1.3, {args.rounds} rounds, cv2 threads {threads}")
    for method in ("blur", "pixelate", "black", "box"):
        for shape in ("ellipse", "rect"):
            redactor = build_redactor(method, shape=shape, mask_scale=1.3)
            redactor.apply(frame.copy(), detections)  # warm the mask cache
            samples = []
            for _ in range(args.rounds):
                work = frame.copy()
                started = time.perf_counter()
                redactor.apply(work, detections)
                samples.append(time.perf_counter() - started)
            print(f"  {method:8s} {shape:7s}  {_ms(samples)}")

    tracker = IoUTracker()
    samples = []
    for f in range(args.rounds):
        moved = Detections(
            xyxy=BOXES + np.float32(2 * f), confidence=detections.confidence, class_id=detections.class_id
        )
        started = time.perf_counter()
        tracker.update(moved, frame_index=f)
        samples.append(time.perf_counter() - started)
    print(f"  tracker update (5 faces)  {_ms(samples)}")

    rng = np.random.default_rng(0)
    tracks = []
    for tid in range(1, 41):
        start = int(rng.integers(0, 95_000))
        boxes = np.repeat(BOXES[tid % 5 : tid % 5 + 1], 5000, axis=0)
        tracks.append(
            Track(
                track_id=tid,
                class_id=0,
                frames=np.arange(start, start + 5000),
                xyxy=boxes,
                score=np.ones(5000),
            )
        )
    started = time.perf_counter()
    tracks_at_frames(tracks, 100_000)
    print(f"  tracks_at_frames, 100k frames, 200k boxes: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
