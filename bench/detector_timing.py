"""Warm latency of one detector on one frame: what ``plate_latency.py`` and ``text_latency.py`` share.

Both build the detector the video pipeline builds, take ``--runs``, ``--threads`` and ``--json``, time
``detector.detect(frame)`` after a warm-up in wall time and in process CPU time (which barely depends
on other load on a shared machine), and print the same three timing lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from typing import Any

import numpy as np
import onnxruntime as ort

from veil.detect.models import ModelStore
from veil.detect.registry import build_detector
from veil.detect.runtime import RuntimeOptions
from veil.settings import Settings


def add_arguments(parser: argparse.ArgumentParser, *, runs: int) -> None:
    """``--runs`` (default ``runs``), ``--threads`` and ``--json``."""
    parser.add_argument("--runs", type=int, default=runs, help="timed runs after warm-up")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime intra-op threads (default: settings)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")


def video_detector(category: str, *, threads: int | None, **options: Any) -> tuple[Any, int]:
    """The detector the video pipeline builds for ``category``, on the runtime ``veil redact`` uses (INT8
    on the CPU unless VEIL_INT8=false) with ``threads`` intra-op threads (None: the settings'); and
    that thread count."""
    settings = Settings()
    threads = settings.intra_op_threads if threads is None else threads
    runtime = dataclasses.replace(RuntimeOptions.from_settings(settings), intra_op_threads=threads)
    store = ModelStore(settings.model_dir)
    return build_detector(category, store=store, runtime=runtime, mode="video", **options), threads


def time_detector(detector: Any, frame: np.ndarray, *, runs: int, warmup: int) -> tuple[dict[str, Any], int]:
    """Call ``detector.detect(frame)`` ``warmup`` times untimed, then ``runs`` times timed: the median,
    min and p90 wall milliseconds, the median CPU milliseconds and the 1-minute load average when the
    timed runs started (``machine`` reads it again after them), and how many boxes it found."""
    found = detector.detect(frame)
    for _ in range(warmup - 1):
        found = detector.detect(frame)
    load_before = os.getloadavg()[0]
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        detector.detect(frame)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    summary = {
        "runs": runs,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "p90_ms": round(float(np.percentile(times, 90)), 1),
        "cpu_ms": round(statistics.median(cpu), 1),
        "load_avg_1m_before": round(load_before, 2),
    }
    return summary, len(found)


def machine(*, target_ms: float) -> dict[str, Any]:
    """What a figure depends on besides the code: cores, onnxruntime, the target, the load right now."""
    return {
        "cpu_count": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "target_ms": target_ms,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def print_times(result: dict[str, Any], *, target_ms: float) -> None:
    """The timing lines of the text report: wall times, CPU time, and whether the target is met."""
    print(f"  median {result['median_ms']} ms   min {result['min_ms']} ms   p90 {result['p90_ms']} ms")
    print(
        f"  CPU time {result['cpu_ms']} ms per frame, all threads (with --threads 1 it is the idle latency)"
    )
    print(f"  target <= {target_ms:.0f} ms: {'met' if result['median_ms'] <= target_ms else 'NOT met'}")
