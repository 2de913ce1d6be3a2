"""Video recall of ``veil redact`` against the deface CLI on labelled clips, in one run, scored by one rule.

Both tools paint a black solid fill over what they mask (``veil redact --method
face=black,license_plate=black``; ``deface --replacewith solid``), each over all
the clips in one process (as a user would run it on a folder), timed as a whole
process. Then every output frame is compared with its source frame: a pixel is
hidden where the output is black and the tool changed it
(``veil.evaluate.solid_fill_hidden``), and the labelled boxes are scored with the
video rule of shared/data/SOURCES.md (``veil.evaluate.ClipScorer``): a box with
visibility >= 0.5 and shorter side >= 12 px is masked when its core (the central
half) is wholly hidden. deface masks faces only, so its plate figures show what
a face-only tool leaves.

deface comes from its own virtual environment (``.bench-venv``, installed on first
use by ``bench/video_throughput.py``'s code). Run ``python bench/video_recall.py
--help`` for the options; bench/README.md says what the figures mean.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from veil.evaluate.clips import LabelledClip, find_labelled_clips

sys.path.insert(0, str(Path(__file__).resolve().parent))

from video_throughput import (  # noqa: E402  (a sibling script, not a package)
    BENCH_VENV,
    DEFACE_VERSION,
    RUN_TIMEOUT_S,
    _ensure_deface,
    _load,
    _log,
    _prepare_veil_models,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS = Path(os.environ.get("VEIL_TEST_DATA") or ROOT.parent / "shared" / "data") / "video-dev"
VEIL_METHOD = "face=black,license_plate=black"

_Log = Callable[[str], None]


@dataclass
class ToolRun:
    """One tool over every clip: its command, wall time and pixel score."""

    status: str  # ok | failed | skipped
    command: list[str] = field(default_factory=list)
    seconds: float | None = None
    fps: float | None = None
    score: dict[str, object] | None = None
    reason: str | None = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clips",
        type=Path,
        default=DEFAULT_CLIPS,
        help="folder of NAME.mp4 + NAME.gt.txt (default: %(default)s)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="score only the first N clips (sorted by name)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--venv", type=Path, default=BENCH_VENV, help="where deface is installed")
    parser.add_argument("--skip-deface", action="store_true", help="do not run (or install) deface")
    parser.add_argument("--skip-veil", action="store_true", help="do not run Veil")
    parser.add_argument(
        "--veil-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `veil redact` (repeatable, e.g. --veil-arg=--detect-every --veil-arg=3)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the outputs in this folder")
    args = parser.parse_args(argv)

    clips, _ = find_labelled_clips(args.clips.resolve())
    if args.limit is not None:
        clips = clips[: args.limit]
    log = _log
    log(f"clips: {len(clips)} from {args.clips}")
    log(f"machine: {os.cpu_count()} cpus, load average {_load()} (shared machines make these figures noisy)")

    runs: dict[str, ToolRun] = {}
    with tempfile.TemporaryDirectory(prefix="veil-recall-") as tmp:
        work = args.keep.resolve() if args.keep is not None else Path(tmp)
        inputs = work / "in"
        inputs.mkdir(parents=True, exist_ok=True)
        for clip in clips:
            link = inputs / clip.video.name
            if not link.exists():
                link.symlink_to(clip.video)
        if args.skip_deface:
            runs["deface"] = ToolRun(status="skipped", reason="--skip-deface")
        else:
            deface = _ensure_deface(args.venv, log)
            if not isinstance(deface, Path):
                runs["deface"] = ToolRun(status="failed", command=deface.command, reason=deface.reason)
            else:
                out = work / "deface"
                out.mkdir(exist_ok=True)
                # deface writes NAME_anonymized.mp4 beside each input when given several inputs.
                command = [
                    str(deface),
                    *(str(inputs / c.video.name) for c in clips),
                    "--replacewith",
                    "solid",
                ]
                runs["deface"] = _run("deface", command, log)
                for clip in clips:
                    produced = inputs / f"{clip.video.stem}_anonymized{clip.video.suffix}"
                    if produced.exists():
                        produced.replace(out / clip.video.name)
        if args.skip_veil:
            runs["veil"] = ToolRun(status="skipped", reason="--skip-veil")
        else:
            veil_cmd = [sys.executable, "-m", "veil"]
            _prepare_veil_models(veil_cmd, log)
            out = work / "veil"
            command = [
                *veil_cmd,
                "redact",
                str(inputs),
                "-o",
                str(out),
                "--method",
                VEIL_METHOD,
                *args.veil_arg,
            ]
            runs["veil"] = _run("veil", command, log)
        frames = 0
        for name, run in runs.items():
            if run.status != "ok":
                continue
            log(f"{name}: scoring the pixels of {len(clips)} outputs ...")
            score, frames = _score_outputs(clips, work / name)
            run.score = score
            if run.seconds:
                run.fps = round(frames / run.seconds, 2)

    ratios = _ratios(runs)
    report = {
        "clips": [c.name for c in clips],
        "frames": frames,
        "rule": "visibility >= 0.5, shorter side >= 12 px, core (central half) wholly under a black fill",
        "settings": {
            "deface": DEFACE_VERSION,
            "deface_args": ["--replacewith", "solid"],
            "veil_args": args.veil_arg,
        },
        "machine": {"cpus": os.cpu_count(), "load_average": _load(), "python": platform.python_version()},
        "tools": {name: run.__dict__ for name, run in runs.items()},
        "ratios": ratios,
    }
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(runs, ratios)
    return 0 if all(r.status != "failed" for r in runs.values()) else 1


def _run(name: str, command: list[str], log: _Log) -> ToolRun:
    log(f"{name}: {' '.join(command[:3])} ... ({len(command)} arguments)")
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ToolRun(status="failed", command=command, reason=str(exc).splitlines()[0])
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout or "").strip().splitlines()
        reason = f"exit {done.returncode}: {tail[-1] if tail else 'no output'}"
        log(f"{name}: failed ({reason})")
        return ToolRun(status="failed", command=command, reason=reason)
    log(f"{name}: {elapsed:.1f} s")
    return ToolRun(status="ok", command=command, seconds=round(elapsed, 2))


def _score_outputs(clips: list[LabelledClip], out_dir: Path) -> tuple[dict[str, object], int]:
    """Score every output in ``out_dir`` against its source clip, frame by frame, by its pixels."""
    import av

    from veil.evaluate import ClipScorer, VideoScore, load_mot_labels, solid_fill_hidden

    total = VideoScore()
    per_clip: dict[str, object] = {}
    for clip in clips:
        labels = load_mot_labels(clip.labels)
        output = out_dir / clip.video.name
        with av.open(str(clip.video)) as source:
            stream = source.streams.video[0]
            resolution_wh = (stream.codec_context.width, stream.codec_context.height)
            scorer = ClipScorer(labels, resolution_wh=resolution_wh)
            if output.exists():
                with av.open(str(output)) as result:
                    pairs = zip(source.decode(video=0), result.decode(video=0), strict=False)
                    for index, (src, out) in enumerate(pairs):
                        a = np.asarray(src.to_ndarray(format="rgb24"), dtype=np.uint8)
                        b = np.asarray(out.to_ndarray(format="rgb24"), dtype=np.uint8)
                        if a.shape != b.shape:
                            break
                        scorer.add_frame(index, solid_fill_hidden(a, b))
        score = scorer.result()  # frames missing from the output count as unmasked
        per_clip[clip.name] = score.to_dict()
        total.add(score)
    return {**total.to_dict(), "per_clip": per_clip}, total.frames


def _category(run: ToolRun, name: str) -> dict[str, float] | None:
    if run.score is None:
        return None
    categories = run.score["categories"]
    assert isinstance(categories, dict)
    found = categories.get(name)
    return found if isinstance(found, dict) else None


def _false_share(run: ToolRun) -> float | None:
    if run.score is None:
        return None
    shares = run.score["false_mask"]
    assert isinstance(shares, dict)
    entry = shares.get("all")
    return None if not isinstance(entry, dict) else float(entry["false_mask_share"])


def _ratios(runs: dict[str, ToolRun]) -> dict[str, float | None]:
    veil, deface = runs.get("veil"), runs.get("deface")
    if veil is None or deface is None:
        return {}
    ratios: dict[str, float | None] = {}
    if veil.fps and deface.fps:
        ratios["fps_veil_vs_deface"] = round(veil.fps / deface.fps, 3)
    v, d = _category(veil, "face"), _category(deface, "face")
    if v is not None and d is not None:
        ratios["face_recall_veil_minus_deface"] = round(float(v["recall"]) - float(d["recall"]), 4)
        ratios["face_objects_leaked_veil_vs_deface"] = (
            round(float(v["objects_leaked"]) / float(d["objects_leaked"]), 3) if d["objects_leaked"] else None
        )
    fv, fd = _false_share(veil), _false_share(deface)
    if fv is not None and fd is not None and fd > 0:
        ratios["false_mask_share_veil_vs_deface"] = round(fv / fd, 3)
    return ratios


def _print_table(runs: dict[str, ToolRun], ratios: dict[str, float | None]) -> None:
    print(
        f"{'tool':<7} {'category':<14} {'boxes':>6} {'recall':>7} {'objects leaked':>15} "
        f"{'leaked frames':>14} {'longest run':>12} {'false-mask share':>17} {'fps':>7}"
    )
    for name, run in runs.items():
        if run.score is None:
            print(f"{name:<7} {run.status}: {run.reason or ''}")
            continue
        share = _false_share(run)
        categories = run.score["categories"]
        assert isinstance(categories, dict)
        for i, (category, s) in enumerate(sorted(categories.items())):
            print(
                f"{name if i == 0 else '':<7} {category:<14} {s['boxes']:>6} {s['recall']:>7.3f} "
                f"{str(s['objects_leaked']) + ' of ' + str(s['objects']):>15} {s['leaked_frames']:>14} "
                f"{s['longest_unmasked_run']:>12} "
                f"{('-' if share is None or i else f'{share:.3f}'):>17} "
                f"{('-' if run.fps is None or i else f'{run.fps:.2f}'):>7}"
            )
    for key, value in ratios.items():
        print(f"{key}: {'-' if value is None else value}")
    print(f"load average: {_load()}")


if __name__ == "__main__":
    sys.exit(main())
