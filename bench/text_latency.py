"""Text detector latency on one 1080p frame (warm, median of N).

The frame is a real photo from ``../shared/data/media`` (street.jpg, turned to landscape and resized to
1920x1080) with a name badge rendered on it by ``tools/make_text_set.py``. The detector is built exactly
as the video pipeline builds it (``build_detector("text", mode="video")``: one pass at 832 px), so the
figure covers resizing, the ONNX run and DB post-processing. Run ``veil models pull`` first.

    .venv/bin/python bench/text_latency.py --runs 30
    .venv/bin/python bench/text_latency.py --runs 30 --threads 1 --json

Target on the 2-core dev machine: median <= 80 ms. On a shared machine the wall time is noisy: the
output carries the 1-minute load average, and ``cpu_ms`` (process CPU time per frame), which barely
depends on other load; with ``--threads 1`` it estimates the single-core latency of an idle machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from detector_timing import add_arguments, machine, print_times, time_detector, video_detector

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("VEIL_TEST_DATA") or ROOT.parent / "shared" / "data") / "media"
TARGET_MS = 80.0


def frame_1080p() -> np.ndarray:
    """street.jpg (portrait) turned to landscape, 1920x1080, with a rendered name badge."""
    spec = importlib.util.spec_from_file_location("make_text_set", ROOT / "tools" / "make_text_set.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    sys.modules["make_text_set"] = tool  # dataclasses look their module up
    spec.loader.exec_module(tool)
    bgr = cv2.imread(str(MEDIA / "street.jpg"))
    if bgr is None:
        raise SystemExit(f"cannot read {MEDIA / 'street.jpg'}")
    rgb = cv2.cvtColor(cv2.resize(cv2.rotate(bgr, cv2.ROTATE_90_CLOCKWISE), (1920, 1080)), cv2.COLOR_BGR2RGB)
    frame = np.ascontiguousarray(rgb)
    tool.place(frame, tool.badge(random.Random(1)), centre=(960, 600), angle_deg=-8.0, scale=0.7)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser, runs=30)
    parser.add_argument("--detect-scale", type=float, default=1.0, help="video working scale (1.0: 832 px)")
    args = parser.parse_args()

    detector, threads = video_detector("text", threads=args.threads, detect_scale=args.detect_scale)
    frame = frame_1080p()
    times, found = time_detector(detector, frame, runs=args.runs, warmup=3)
    result = {
        "frame": "1920x1080",
        **times,
        "lines_found": found,
        "model": detector.model_name,
        "long_side": getattr(getattr(detector, "config", None), "long_side", None),
        "intra_op_threads": threads,
        **machine(target_ms=TARGET_MS),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"text detector, 1920x1080 frame, {args.runs} warm runs "
        f"(network input long side {result['long_side']})"
    )
    print_times(result, target_ms=TARGET_MS)
    print(f"  lines found {found}, onnxruntime {ort.__version__}, intra-op threads {threads}")
    print(
        f"  1-minute load average {result['load_avg_1m_before']} before and {result['load_avg_1m']} after "
        f"the timed runs, {result['cpu_count']} CPUs (a shared machine's wall times are noisy)"
    )


if __name__ == "__main__":
    main()
