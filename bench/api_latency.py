"""End-to-end API latency: a 1920x1080 JPEG through ``POST /v1/jobs?wait=30``, faces and plates on.

Starts a real ``veil serve`` (Uvicorn) on a free loopback port with its own temporary ``VEIL_DATA_DIR``,
creates a key with ``veil keys create --json``, builds the test image from a real photo in
``../shared/data/media`` (city_crowd.jpg, scaled and centre-cropped to 1920x1080), sends it a bounded number
of times after a few warm-ups, and reports p50/p95 latency and images per second. The server is stopped at
the end in every case. ``--url``/``--key`` measure an already running server instead.

    .venv/bin/python bench/api_latency.py --requests 30
    .venv/bin/python bench/api_latency.py --requests 30 --json

Target on the 2-core dev machine: p50 <= 400 ms, p95 <= 800 ms. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from veil.client import Client, Job, VeilAPIError

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("VEIL_TEST_DATA") or ROOT.parent / "shared" / "data") / "media"
SOURCE_PHOTO = MEDIA / "city_crowd.jpg"
SPEC: dict[str, Any] = {"categories": {"face": {}, "license_plate": {}}}
TARGET_P50_MS = 400.0
TARGET_P95_MS = 800.0
VEIL = [sys.executable, "-m", "veil"]


def make_image(dst: Path, *, width: int = 1920, height: int = 1080) -> Path:
    """Scale the photo to cover ``width`` x ``height`` and crop the centre; JPEG quality 90."""
    with Image.open(SOURCE_PHOTO) as photo:
        rgb = photo.convert("RGB")
    scale = max(width / rgb.width, height / rgb.height)
    resized = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.Resampling.LANCZOS)
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    resized.crop((left, top, left + width, top + height)).save(dst, "JPEG", quality=90)
    return dst


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_") or k == "VEIL_MODEL_DIR"}
    env["VEIL_DATA_DIR"] = str(data_dir)
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def running_server(workdir: Path, *, startup_s: float = 120.0) -> Iterator[tuple[str, str]]:
    """Yield ``(base_url, api_key)`` of a fresh ``veil serve``; stop it (SIGTERM, then SIGKILL) on exit."""
    data_dir = workdir / "data"
    data_dir.mkdir()
    env = _server_env(data_dir)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*VEIL, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so workers it spawns stop with it
        )
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"veil serve exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"veil serve not ready after {startup_s:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.25)
        created = subprocess.run(
            [*VEIL, "keys", "create", "--name", "bench", "--scopes", "jobs:read,jobs:write", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(f"veil keys create failed: {created.stderr.strip()[-500:]}")
        yield url, str(json.loads(created.stdout)["key"])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def timed_submit(client: Client, image: Path, spec: dict[str, Any]) -> tuple[float, Job]:
    """Latency of one ``?wait=30`` submit. A job still running at the deadline counts as not succeeded,
    and is waited for before the next request, so that slow jobs do not pile up in the queue."""
    started = time.perf_counter()
    job = client.submit(image, spec, wait=30)
    latency_ms = (time.perf_counter() - started) * 1000.0
    if not job.terminal:
        client.wait(job.id, timeout=600)
    return latency_ms, job


def _stage_medians_ms(jobs: list[Job]) -> dict[str, float]:
    """Median server-side seconds per pipeline stage, in ms: shows where the latency goes."""
    stages: dict[str, list[float]] = {}
    for job in jobs:
        extra = job.model_extra or {}
        for stage, seconds in (extra.get("timings") or {}).items():
            stages.setdefault(stage, []).append(float(seconds) * 1000.0)
        if extra.get("processing_seconds") is not None:
            stages.setdefault("processing_total", []).append(float(extra["processing_seconds"]) * 1000.0)
    return {stage: round(statistics.median(values), 1) for stage, values in stages.items()}


def _overhead_ms(results: list[tuple[float, Job]]) -> float | None:
    """Median of latency minus the job's own processing time: upload, probe, queue, HTTP, wake-up."""
    gaps = [
        ms - float(job.model_extra["processing_seconds"]) * 1000.0
        for ms, job in results
        if job.terminal and job.model_extra and job.model_extra.get("processing_seconds") is not None
    ]
    return round(statistics.median(gaps), 1) if gaps else None


def measure(
    url: str,
    key: str,
    image: Path,
    *,
    requests: int,
    warmup: int,
    concurrency: int,
    spec: dict[str, Any] = SPEC,
) -> dict[str, Any]:
    with Client(url, key, timeout=60.0) as client:
        for _ in range(warmup):
            timed_submit(client, image, spec)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(lambda _: timed_submit(client, image, spec), range(requests)))
        wall_s = time.perf_counter() - started
    latencies = sorted(ms for ms, _ in results)
    failed = sum(1 for _, job in results if job.state != "succeeded")
    centiles = (
        statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    )
    p50, p95 = statistics.median(latencies), centiles[94]
    return {
        "requests": requests,
        "warmup": warmup,
        "concurrency": concurrency,
        "not_succeeded": failed,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "min_ms": round(latencies[0], 1),
        "max_ms": round(latencies[-1], 1),
        "images_per_s": round(requests / wall_s, 2),
        "spec": spec,
        "server_stage_median_ms": _stage_medians_ms([job for _, job in results]),
        "api_overhead_median_ms": _overhead_ms(results),
        "target_p50_ms": TARGET_P50_MS,
        "target_p95_ms": TARGET_P95_MS,
        "meets_target": failed == 0 and p50 <= TARGET_P50_MS and p95 <= TARGET_P95_MS,
        "image": "city_crowd.jpg scaled and cropped to 1920x1080, JPEG q90",
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=30, help="Timed requests (default 30).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests first (default 3).")
    parser.add_argument("--concurrency", type=int, default=1, help="Requests in flight at once (default 1).")
    parser.add_argument("--url", help="Measure this running server instead of starting one (needs --key).")
    parser.add_argument("--key", help="API key for --url.")
    parser.add_argument(
        "--image-search",
        choices=("thorough", "fast"),
        default="thorough",
        help="Still-image search of the spec (default thorough, Veil's default).",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args(argv)
    spec = {**SPEC, "detection": {"image_search": args.image_search}}
    if args.requests < 1 or args.warmup < 0 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be >= 1, --warmup >= 0")
    if bool(args.url) != bool(args.key):
        parser.error("--url and --key go together")

    with tempfile.TemporaryDirectory(prefix="veil-bench-") as tmp:
        workdir = Path(tmp)
        image = make_image(workdir / "frame_1920x1080.jpg")
        try:
            if args.url:
                result = measure(
                    args.url,
                    args.key,
                    image,
                    requests=args.requests,
                    warmup=args.warmup,
                    concurrency=args.concurrency,
                    spec=spec,
                )
            else:
                with running_server(workdir) as (url, key):
                    result = measure(
                        url,
                        key,
                        image,
                        requests=args.requests,
                        warmup=args.warmup,
                        concurrency=args.concurrency,
                        spec=spec,
                    )
        except (RuntimeError, VeilAPIError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['requests']} requests (after {result['warmup']} warm-ups, "
            f"concurrency {result['concurrency']}): "
            f"p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, mean {result['mean_ms']:.0f} ms, "
            f"{result['images_per_s']:.2f} images/s; target p50 <= {TARGET_P50_MS:.0f} ms, "
            f"p95 <= {TARGET_P95_MS:.0f} ms: {'met' if result['meets_target'] else 'NOT met'}"
            + (f"; {result['not_succeeded']} not succeeded" if result["not_succeeded"] else "")
        )
        stages = ", ".join(f"{k} {v:.0f}" for k, v in result["server_stage_median_ms"].items())
        overhead = result["api_overhead_median_ms"]
        print(f"server-side median ms per stage: {stages}; API overhead median {overhead} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
