"""Scale-out: wall time of one long video with 1 and with 2 ``veil worker`` processes, the speed-up, and a
projection to 10 and 100 workers from the measured per-segment and join costs.

Runs the real deployment on this machine: ``veil serve`` with ``VEIL_QUEUE=celery``, a throwaway
PostgreSQL database (127.0.0.1:5432), a Redis broker (127.0.0.1:6379; ``--broker`` for RabbitMQ), a moto
S3 server on loopback, and ``veil worker`` processes (prefork, concurrency 1, one ONNX thread each). The
long video is the shared selfie clip (608x1080, 30 fps) followed by copies of itself, joined by stream
copy (no re-encoding); ``--segment-seconds 5`` cuts it at its keyframes (every 250 or 100 frames).

For each worker count a fresh fleet starts, every worker is warmed up with a short video job, then the
long video goes through ``POST /v1/jobs`` and the wall time runs until the job reads ``succeeded``.
The job's report gives the cost of each stage (summed over segments), from which the projection is
derived; its assumptions are printed with it.

    .venv/bin/python bench/scale.py                       # faces and plates, 850 frames, 1 and 2 workers
    .venv/bin/python bench/scale.py --repeats 2 --json    # 1450 frames, machine-readable

The machine has 2 cores shared with other work: 2 workers are the ceiling here, and every figure is
noisy (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fleet helpers are shared with the integration tests

import boto3  # noqa: E402
import httpx  # noqa: E402

from tests.live_server import LiveServer  # noqa: E402
from tests.scale.fleet import AMQP_URL, Fleet, postgres_database, redis_url, require_service  # noqa: E402
from tests.video import long_selfie  # noqa: E402
from veil.client import Client  # noqa: E402
from veil.media import probe  # noqa: E402

MEDIA = Path(os.environ.get("VEIL_TEST_DATA") or ROOT.parent / "shared" / "data") / "media"
WARM_UP_CLIP = MEDIA / "faces_2560x1920_audio.mp4"
S3_KEY, S3_SECRET = "bench-key", "bench-secret-not-a-real-one"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback with one bucket; yields the ``VEIL_*`` storage variables."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/moto-api/data.json", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the moto S3 server did not start") from None
                time.sleep(0.1)
        s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
        )
        s3.create_bucket(Bucket="veil-bench")
        yield {
            "VEIL_STORAGE_URL": "s3://veil-bench/bench",
            "VEIL_S3_ENDPOINT_URL": url,
            "VEIL_S3_REGION": "us-east-1",
            "VEIL_S3_ACCESS_KEY_ID": S3_KEY,
            "VEIL_S3_SECRET_ACCESS_KEY": S3_SECRET,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait(client: Client, job_id: str, timeout_s: float) -> tuple[str, float]:
    """Poll until the job is terminal; return its state and the time it was seen so."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(job_id)
        if job.terminal:
            return job.state, time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job.state} after {timeout_s:.0f} s")
        time.sleep(0.25)


def run_once(
    workers: int, *, video: Path, spec: dict[str, Any], broker: str, segment_seconds: float, workdir: Path
) -> dict[str, Any]:
    """One fresh fleet with ``workers`` workers; the long video's wall time and its report timings."""
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database())
        s3_env = stack.enter_context(moto_s3())
        broker_url = redis_url() if broker == "redis" else broker
        fleet = Fleet.environment(
            workdir / f"fleet-{workers}",
            database_url=database_url,
            broker_url=broker_url,
            s3_env=s3_env,
            VEIL_SEGMENT_SECONDS=str(segment_seconds),
        )
        stack.callback(fleet.stop)
        server = stack.enter_context(LiveServer(fleet.data_dir, fleet.env))
        fleet.start_workers(workers)
        key = str(server.create_key()["key"])
        client = stack.enter_context(Client(server.url, api_key=key, timeout=120.0))
        warm = [client.submit(WARM_UP_CLIP, spec).id for _ in range(workers)]  # one per worker (prefetch 1)
        for job_id in warm:
            state, _ = _wait(client, job_id, 600)
            if state != "succeeded":
                raise RuntimeError(f"warm-up job {state}: {client.get(job_id).error}")
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        job = client.submit(video, spec)
        state, ended = _wait(client, job.id, 3600)
        if state != "succeeded":
            raise RuntimeError(f"the long video job {state}: {client.get(job.id).error}\n{fleet.logs()}")
        report = client.report(job.id)
        return {
            "workers": workers,
            "wall_s": ended - started,
            "timings": report["timings"],
            "load_avg_1m": [load_before, os.getloadavg()[0]],
        }


def projection(runs: list[dict[str, Any]], *, frames: int, fps: float, gpu_speedup: float) -> dict[str, Any]:
    """Per-segment and join costs from the 1-worker run, projected to W workers for one hour of video."""
    base = next(r for r in runs if r["workers"] == 1)
    t = base["timings"]
    segments = int(t["segments"])
    video_s = frames / fps
    analyse_per_s = t["detect"] / video_s  # worker seconds per second of video
    render_per_s = t["render"] / video_s
    serial_per_s = (t["split"] + t["join"] + t["stitch"]) / video_s  # done once, by one worker
    parallel = t["detect"] + t["render"]
    overhead_s = max(base["wall_s"] - parallel - t["split"] - t["join"] - t["stitch"], 0.0)
    hour = 3600.0
    table = []
    for w in (1, 2, 10, 100):
        seg_s = max(min(60.0, hour / w), 10.0)  # enough segments for every worker, none shorter than 10 s
        n = math.ceil(hour / seg_s)
        rounds = math.ceil(n / w)
        wall = (
            hour * serial_per_s
            + rounds * seg_s * (analyse_per_s / gpu_speedup)
            + rounds * seg_s * render_per_s
            + overhead_s
        )
        table.append(
            {"workers": w, "segment_s": seg_s, "segments": n, "wall_s": wall, "x_realtime": hour / wall}
        )
    return {
        "measured": {
            "segments": segments,
            "analyse_s_per_video_s": analyse_per_s,
            "render_s_per_video_s": render_per_s,
            "serial_s_per_video_s": serial_per_s,
            "per_segment_s": parallel / segments,
            "join_s": t["join"],
            "fixed_overhead_s": overhead_s,
        },
        "assumptions": [
            "one hour of video like the benchmark clip (608x1080, 30 fps), same spec",
            "segments of 60 s, shorter (>= 10 s) when there are more workers than 60 segments",
            "a worker is as fast as one worker here; detection is divided by --gpu-speedup "
            f"({gpu_speedup:g}) on GPU workers, rendering (x264 on CPU) is not",
            "split, stitch and join run once, on one worker, at the measured cost per second of video",
            "dispatch and queue latency: the 1-worker run's wall time minus its stage costs, once per job",
            "storage and broker are not the bottleneck (true for local S3 here; check for 100 workers)",
        ],
        "hour_of_video": table,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="Copies of the clip before its head (1: 850 frames)."
    )
    parser.add_argument("--segment-seconds", type=float, default=5.0)
    parser.add_argument("--categories", default="face,license_plate")
    parser.add_argument("--broker", default="redis", help="redis (a fresh Redis db) or an amqp:// URL.")
    parser.add_argument(
        "--gpu-speedup", type=float, default=1.0, help="Detection speed-up assumed for a GPU worker."
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.broker != "redis":
        require_service(args.broker if args.broker != "amqp" else AMQP_URL, "the broker")
    spec: dict[str, Any] = {"categories": {c: {} for c in args.categories.split(",") if c}}
    with tempfile.TemporaryDirectory(prefix="veil-bench-scale-") as tmp:
        workdir = Path(tmp)
        video = long_selfie(MEDIA, workdir, repeats=args.repeats)
        info = probe(video)
        runs = [
            run_once(
                w,
                video=video,
                spec=spec,
                broker=args.broker,
                segment_seconds=args.segment_seconds,
                workdir=workdir,
            )
            for w in (1, 2)
        ]
    speedup = runs[0]["wall_s"] / runs[1]["wall_s"]
    work = [r["timings"]["detect"] + r["timings"]["render"] for r in runs]
    worker_speed = work[0] / work[1]  # < 1 when the two workers did not each get a free core
    result = {
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "python": platform.python_version()},
        "video": {
            "frames": info.frame_count,
            "seconds": info.duration,
            "size": f"{info.width}x{info.height}",
        },
        "spec": spec,
        "runs": runs,
        "speedup_2_vs_1": speedup,
        "worker_speed_2_vs_1": worker_speed,
        "projection": projection(
            runs,
            frames=int(info.frame_count or 0),
            fps=float(info.fps or 30),
            gpu_speedup=args.gpu_speedup,
        ),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"video: {info.frame_count} frames, {info.duration:.1f} s, {info.width}x{info.height}; spec {spec}")
    print(
        f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )
    print(
        f"{'workers':>7} {'wall s':>8} {'segments':>8} {'detect s':>9} {'render s':>9} {'join s':>7} "
        f"{'load before/after':>18}"
    )
    for r in runs:
        t = r["timings"]
        load = "/".join(f"{x:.1f}" for x in r["load_avg_1m"])
        print(
            f"{r['workers']:>7} {r['wall_s']:>8.1f} {int(t['segments']):>8} {t['detect']:>9.1f} "
            f"{t['render']:>9.1f} {t['join']:>7.2f} {load:>18}"
        )
    print("(detect and render are worker-seconds summed over segments: they grow when workers share cores)")
    print(f"speed-up with 2 workers: {speedup:.2f}x")
    print(
        f"each worker ran at {worker_speed:.0%} of the 1-worker speed in the 2-worker run "
        "(worker-seconds per segment grow when the cores are shared with each other and other work)"
    )
    proj = result["projection"]
    m = proj["measured"]
    print(
        f"\nper segment: {m['per_segment_s']:.1f} worker-s; join {m['join_s']:.2f} s; "
        f"fixed overhead {m['fixed_overhead_s']:.1f} s"
    )
    print("projection, one hour of such video:")
    for row in proj["hour_of_video"]:
        print(
            f"  {row['workers']:>3} workers: {row['segments']:>3} segments of {row['segment_s']:.0f} s, "
            f"~{row['wall_s'] / 60:.1f} min ({row['x_realtime']:.2f}x real time)"
        )
    print("assumptions:")
    for a in proj["assumptions"]:
        print(f"  - {a}")


if __name__ == "__main__":
    main()
