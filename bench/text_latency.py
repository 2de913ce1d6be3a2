"""Text detector latency on one 1080p frame (warm, median of N).

The frame is a real photo from ``../shared/data/media`` (street.jpg, turned to landscape and resized to
1920x1080) with a name badge rendered on it by ``tools/make_text_set.py``. The detector is built exactly
as the video pipeline builds it (``build_detector("text", mode="video")``: one pass at 960 px), so the
figure covers resizing, the ONNX run and DB post-processing. Run ``veil models pull`` first.

    .venv/bin/python bench/text_latency.py --runs 30
    .venv/bin/python bench/text_latency.py --runs 30 --threads 1 --json

Target on the 2-core dev machine: median <= 80 ms. On a shared machine the wall time is noisy: the
output carries the 1-minute load average, and ``cpu_ms`` (process CPU time per frame), which barely
depends on other load; with ``--threads 1`` it estimates the single-core latency of an idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from veil.detect.models import ModelStore
from veil.detect.registry import build_detector
from veil.detect.runtime import RuntimeOptions
from veil.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "data" / "media"
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
    parser.add_argument("--runs", type=int, default=30, help="timed runs after warm-up")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime intra-op threads (default: settings)"
    )
    parser.add_argument("--detect-scale", type=float, default=1.0, help="video working scale (1.0: 960 px)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args()

    settings = Settings()
    threads = settings.intra_op_threads if args.threads is None else args.threads
    runtime = dataclasses.replace(RuntimeOptions.from_settings(settings), intra_op_threads=threads)
    detector = build_detector(
        "text",
        store=ModelStore(settings.model_dir),
        runtime=runtime,
        mode="video",
        detect_scale=args.detect_scale,
    )
    frame = frame_1080p()
    for _ in range(3):
        found = detector.detect(frame)
    times, cpu = [], []
    for _ in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        detector.detect(frame)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    result = {
        "frame": "1920x1080",
        "runs": args.runs,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "p90_ms": round(float(np.percentile(times, 90)), 1),
        "cpu_ms": round(statistics.median(cpu), 1),
        "lines_found": len(found),
        "model": detector.model_name,
        "long_side": getattr(getattr(detector, "config", None), "long_side", None),
        "intra_op_threads": threads,
        "cpu_count": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "target_ms": TARGET_MS,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"text detector, 1920x1080 frame, {args.runs} warm runs "
        f"(network input long side {result['long_side']})"
    )
    print(f"  median {result['median_ms']} ms   min {result['min_ms']} ms   p90 {result['p90_ms']} ms")
    print(
        f"  CPU time {result['cpu_ms']} ms per frame, all threads (with --threads 1 it is the idle latency)"
    )
    print(f"  target <= {TARGET_MS:.0f} ms: {'met' if result['median_ms'] <= TARGET_MS else 'NOT met'}")
    print(f"  lines found {len(found)}, onnxruntime {ort.__version__}, intra-op threads {threads}")
    print(f"  1-minute load average {result['load_avg_1m']} (shared machine: noisy)")


if __name__ == "__main__":
    main()
