"""Video throughput of ``veil redact`` against deface and a plain FFmpeg transcode, on one clip, in one run.

Three commands process the same clip, each as its own process, so every
figure includes interpreter start, imports and model loading, as a user
running the command would see:

* ``transcode``: PyAV decode + libx264 encode of the video stream, nothing
  else, with Veil's default preset and crf (read from ``veil.spec.OutputOptions``).
  This is the floor: no redaction tool can be faster than re-encoding.
* ``deface``: the ``deface`` CLI (pinned version) with its defaults, from its own
  virtual environment ``.bench-venv`` at the project root, created on first use.
* ``veil``: ``python -m veil redact CLIP -o OUT`` with Veil's defaults.

fps = clip frames / wall seconds (median over ``--repeat`` runs). Run
``python bench/video_throughput.py --help`` for the options; see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = (
    Path(os.environ.get("VEIL_TEST_DATA") or ROOT.parent / "shared" / "data")
    / "media"
    / "selfie_portrait_noaudio.mp4"
)
BENCH_VENV = ROOT / ".bench-venv"
DEFACE_VERSION = "1.5.0"
PLAIN_TRANSCODE = "_plain-transcode"  # internal: the child process of the `transcode` column
RUN_TIMEOUT_S = 3600

_Log = Callable[[str], None]


@dataclass
class ToolResult:
    """One column of the table: a command's runs on the clip."""

    status: str  # ok | failed | skipped
    command: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    fps: float | None = None
    output_frames: int | None = None
    reason: str | None = None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == PLAIN_TRANSCODE:
        return _plain_transcode(Path(argv[1]), Path(argv[2]), crf=int(argv[3]), preset=argv[4])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clip", type=Path, default=DEFAULT_CLIP, help="video to process (default: %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the median is reported")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--venv", type=Path, default=BENCH_VENV, help="where deface is installed")
    parser.add_argument("--skip-deface", action="store_true", help="do not run (or install) deface")
    parser.add_argument(
        "--veil-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `veil redact` (repeatable, e.g. --veil-arg=--categories --veil-arg=face); "
        "the default is none: Veil's defaults",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    clip: Path = args.clip.resolve()
    if not clip.is_file():
        parser.error(f"clip not found: {clip}")

    from veil.media import probe
    from veil.spec import OutputOptions

    info = probe(clip)
    if info.kind != "video" or not info.frame_count:
        parser.error("the clip must be a video")
    defaults = OutputOptions()
    log = _log
    size = f"{info.width}x{info.height}"
    log(f"clip: {clip.name}: {info.frame_count} frames, {size}, {info.codec}, {_fps_text(info.fps)}")
    log(f"machine: {os.cpu_count()} cpus, load average {_load()} (shared machines make these figures noisy)")

    results: dict[str, ToolResult] = {}
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as tmp:
        work = Path(tmp)
        plain = [sys.executable, str(Path(__file__).resolve()), PLAIN_TRANSCODE, str(clip)]
        results["transcode"] = _measure(
            "transcode",
            lambda out: [*plain, str(out), str(defaults.crf), defaults.preset],
            work,
            args.repeat,
            log,
        )
        if args.skip_deface:
            results["deface"] = ToolResult(status="skipped", reason="--skip-deface")
        else:
            deface = _ensure_deface(args.venv, log)
            if isinstance(deface, ToolResult):
                results["deface"] = deface
            else:
                results["deface"] = _measure(
                    "deface", lambda out: [str(deface), str(clip), "-o", str(out)], work, args.repeat, log
                )
        veil_cmd = [sys.executable, "-m", "veil"]
        missing = _veil_redact_missing(veil_cmd)
        if missing is not None:
            log(f"veil: skipped: {missing}")
            results["veil"] = ToolResult(status="skipped", reason=missing)
        else:
            _prepare_veil_models(veil_cmd, log)
            results["veil"] = _measure(
                "veil",
                lambda out: [*veil_cmd, "redact", str(clip), "-o", str(out), *args.veil_arg],
                work,
                args.repeat,
                log,
            )
        for result in results.values():
            if result.status == "ok" and result.seconds:
                result.fps = info.frame_count / statistics.median(result.seconds)

    ratios = {
        "veil_vs_deface": _ratio(results["veil"], results["deface"]),
        "veil_vs_transcode": _ratio(results["veil"], results["transcode"]),
    }
    report = {
        "clip": str(clip),
        "frames": info.frame_count,
        "resolution_wh": [info.width, info.height],
        "repeat": args.repeat,
        "settings": {
            "preset": defaults.preset,
            "crf": defaults.crf,
            "deface": DEFACE_VERSION,
            "veil_args": args.veil_arg,
        },
        "machine": {"cpus": os.cpu_count(), "load_average": _load(), "python": platform.python_version()},
        "tools": {name: asdict(result) for name, result in results.items()},
        "ratios": ratios,
    }
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(results, ratios)
    return 0 if all(r.status != "failed" for r in results.values()) else 1


def _measure(
    name: str, command_for: Callable[[Path], list[str]], work: Path, repeat: int, log: _Log
) -> ToolResult:
    """Run a tool ``repeat`` times, timing each whole process; the output file is checked with probe."""
    from veil.errors import MediaError
    from veil.media import probe

    result = ToolResult(status="ok")
    for run in range(repeat):
        out = work / f"{name}-{run}.mp4"
        command = command_for(out)
        result.command = [str(part) for part in command]
        log(f"{name}: run {run + 1}/{repeat} ...")
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ToolResult(status="failed", command=result.command, reason=str(exc).splitlines()[0])
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            tail = (done.stderr or done.stdout or "").strip().splitlines()
            reason = f"exit {done.returncode}: {tail[-1] if tail else 'no output'}"
            log(f"{name}: failed ({reason})")
            return ToolResult(status="failed", command=result.command, reason=reason)
        result.seconds.append(round(elapsed, 3))
        try:
            result.output_frames = probe(out).frame_count
        except MediaError as exc:
            result.reason = f"output unreadable: {exc.message}"
        log(f"{name}: {elapsed:.2f} s")
    return result


def _ensure_deface(venv: Path, log: _Log) -> Path | ToolResult:
    """The deface executable in ``venv``, installing deface there from PyPI when missing."""
    python = venv / "bin" / "python"
    executable = venv / "bin" / "deface"
    if (
        executable.exists()
        and _installed_version(python, "deface") == DEFACE_VERSION
        and _installed_version(python, "onnxruntime") is not None
    ):
        return executable
    log(f"deface: installing deface=={DEFACE_VERSION} into {venv} (once) ...")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"deface=={DEFACE_VERSION}",
            # deface's README recommends onnxruntime; without it deface falls back to OpenCV's
            # slower DNN module, and the comparison would flatter Veil.
            "onnx",
            "onnxruntime",
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()
            reason = f"could not install deface: {tail[-1] if tail else 'exit ' + str(done.returncode)}"
            log(f"deface: failed ({reason})")
            return ToolResult(status="failed", command=step, reason=reason)
    return executable


def _installed_version(python: Path, package: str) -> str | None:
    if not python.exists():
        return None
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _veil_redact_missing(veil_cmd: list[str]) -> str | None:
    done = subprocess.run([*veil_cmd, "redact", "--help"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return "`python -m veil redact` is not available in this checkout yet"
    return None


def _prepare_veil_models(veil_cmd: list[str], log: _Log) -> None:
    """Fill the model cache before timing, as a user would once, when `veil models pull` exists."""
    probe = subprocess.run([*veil_cmd, "models", "--help"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return
    log("veil: `veil models pull` (not timed) ...")
    subprocess.run([*veil_cmd, "models", "pull"], capture_output=True, text=True, check=False)


def _plain_transcode(src: Path, dst: Path, *, crf: int, preset: str) -> int:
    """Decode the video stream and encode it again with libx264: the `transcode` column's child process."""
    import av

    source = av.open(str(src))
    target = av.open(str(dst), mode="w")
    try:
        video_in = source.streams.video[0]
        video_in.thread_type = "AUTO"
        video_out = target.add_stream(
            "libx264", rate=video_in.average_rate, options={"crf": str(crf), "preset": preset}
        )
        video_out.width = video_in.codec_context.width
        video_out.height = video_in.codec_context.height
        video_out.pix_fmt = "yuv420p"
        time_base = video_in.time_base or Fraction(1, 90000)
        video_out.time_base = time_base
        video_out.codec_context.time_base = time_base
        for frame in source.decode(video_in):
            frame.pict_type = av.video.frame.PictureType.NONE
            target.mux(video_out.encode(frame))
        target.mux(video_out.encode())
    finally:
        target.close()
        source.close()
    return 0


def _log(line: str) -> None:
    """Progress goes to stderr, so that stdout holds only the table or the JSON object."""
    print(line, file=sys.stderr, flush=True)


def _ratio(numerator: ToolResult, denominator: ToolResult) -> float | None:
    if numerator.fps is None or denominator.fps is None:
        return None
    return round(numerator.fps / denominator.fps, 3)


def _fps_text(fps: Fraction | None) -> str:
    return "unknown fps" if fps is None else f"{float(fps):.3f} fps"


def _load() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def _print_table(results: dict[str, ToolResult], ratios: dict[str, float | None]) -> None:
    print(f"{'tool':<10} {'status':<8} {'median s':>9} {'fps':>8} {'out frames':>10}  note")
    for name, result in results.items():
        seconds = f"{statistics.median(result.seconds):.2f}" if result.seconds else "-"
        fps = f"{result.fps:.1f}" if result.fps is not None else "-"
        frames = str(result.output_frames) if result.output_frames is not None else "-"
        print(f"{name:<10} {result.status:<8} {seconds:>9} {fps:>8} {frames:>10}  {result.reason or ''}")
    for key, label in (("veil_vs_deface", "veil/deface"), ("veil_vs_transcode", "veil/transcode")):
        value = ratios[key]
        print(f"{label}: {'-' if value is None else f'{value:.2f}x'}")


if __name__ == "__main__":
    sys.exit(main())
