"""Licence-plate detector latency on one 1080p frame (warm, median of N).

The frame is a real photo from ``../shared/data/media`` (plates_fisheye.png, a car park with a
visible plate), centre-cropped to 16:9 and resized to 1920x1080. The detector is built exactly as
the video pipeline builds it (``build_detector("license_plate", mode="video")``), so the
figure includes letterboxing, the ONNX run, decoding and NMS. Run ``veil models pull`` first.

    .venv/bin/python bench/plate_latency.py --runs 50
    .venv/bin/python bench/plate_latency.py --runs 50 --threads 2 --json

Target on the 2-core dev machine: median <= 40 ms. Timings on a shared machine are noisy: run it
when the machine is otherwise idle, and read ``min`` as the best case. ``cpu_ms`` (process CPU time
per frame) barely depends on other load: with ``--threads 1`` it estimates the single-core latency
of an idle machine (with more threads, idle workers spinning inflate it).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from detector_timing import add_arguments, machine, print_times, time_detector, video_detector

MEDIA = (
    Path(os.environ.get("VEIL_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
    / "media"
)
TARGET_MS = 40.0


def frame_1080p() -> np.ndarray:
    """A real 1920x1080 RGB frame: centre 16:9 crop of plates_fisheye.png, resized."""
    bgr = cv2.imread(str(MEDIA / "plates_fisheye.png"))
    if bgr is None:
        raise SystemExit(f"cannot read {MEDIA / 'plates_fisheye.png'}")
    h, w = bgr.shape[:2]
    crop_h = round(w * 9 / 16)
    top = (h - crop_h) // 2
    bgr = cv2.resize(bgr[top : top + crop_h], (1920, 1080), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser, runs=50)
    args = parser.parse_args()

    # Exactly the detector the video pipeline builds for a 1080p frame (one pass at 640).
    detector, threads = video_detector("license_plate", threads=args.threads)
    frame = frame_1080p()
    times, found = time_detector(detector, frame, runs=args.runs, warmup=5)
    threads = getattr(detector, "threads", threads)  # what the session really got
    effective = threads or os.cpu_count() or 1
    result = {
        "frame": "1920x1080",
        **times,
        "plates_found": found,
        "model": detector.model_name,
        "intra_op_threads": threads,
        "effective_threads": effective,
        **machine(target_ms=TARGET_MS),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"plate detector, 1920x1080 frame, {args.runs} warm runs")
    print_times(result, target_ms=TARGET_MS)
    print(
        f"  onnxruntime {ort.__version__}, intra-op threads {threads}"
        f"{' (0 = one per core)' if threads == 0 else ''}, {effective} used, cpu_count {os.cpu_count()}"
    )
    print(
        f"  model {detector.model_name}, plates found {found}, "
        f"1-minute load average {result['load_avg_1m']} (shared machine: noisy)"
    )


if __name__ == "__main__":
    main()
