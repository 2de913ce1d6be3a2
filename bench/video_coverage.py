"""How much of each face and plate the masks of a video cover, for each ``detect_every``.

Why: there is no labelled video set, so the recall cost of detecting only every Nth
frame (tracking fills the frames between) cannot be read off ``veil eval``. This
takes the video detector's own boxes on *every* frame as the reference, runs the
real pipeline analysis (schedule, tracker, gap filling, padding, smoothing) at
each ``detect_every``, and reports, per category:

* ``covered``: the share of reference boxes of which at least ``--min-cover``
  (default 0.9) of the area lies inside a mask rectangle of the same frame
  (the track box grown by the spec's ``mask_scale``);
* ``mean``: the mean covered share of a reference box;
* ``detections``: how many frames the detector ran on.

Run on the media clips in ``../shared/data/media`` (``--clip`` to pick others):

    .venv/bin/python bench/video_coverage.py --every 1 2 3 4

The media clips move slowly. ``--pan PX`` measures a camera pan instead: a 960x720, 150-frame
clip made from ``faces_2560.png`` by sliding a 1280x960 window PX source pixels per frame (back
and forth), which is where "detect every Nth frame" would lag the faces if the schedule did not
fall back to every frame:

    .venv/bin/python bench/video_coverage.py --pan 15 --pan 40 --every 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from veil.boxes import clip_xyxy, scale_xyxy
from veil.detect import Detector
from veil.detect.runtime import RuntimeOptions
from veil.detections import Detections
from veil.media import iter_frames, probe, read_image
from veil.pipeline import Engine, Plan, analyse
from veil.settings import Settings
from veil.spec import RedactionSpec
from veil.track import tracks_at_frames

MEDIA = (
    Path(os.environ.get("VEIL_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
    / "media"
)
CLIPS = ("selfie_portrait_noaudio.mp4", "faces_2560x1920_audio.mp4", "plates_fisheye_audio.mp4")


@dataclass
class Tally:
    boxes: int = 0
    covered: int = 0
    cover_sum: float = 0.0

    def add(self, cover: npt.NDArray[np.float64], min_cover: float) -> None:
        self.boxes += len(cover)
        self.covered += int((cover >= min_cover).sum())
        self.cover_sum += float(cover.sum())


def _cover(ref: npt.NDArray[np.float32], masks: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """For each reference box, the largest share of its area inside one mask rectangle."""
    if not len(ref):
        return np.zeros(0)
    if not len(masks):
        return np.zeros(len(ref))
    lt = np.maximum(ref[:, None, :2], masks[None, :, :2])
    rb = np.minimum(ref[:, None, 2:], masks[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = np.maximum((ref[:, 2:] - ref[:, :2]).prod(axis=1), 1e-9)
    return np.asarray((inter / area[:, None]).max(axis=1), dtype=np.float64)


def _reference(engine: Engine, clip: Path, categories: list[str]) -> dict[str, list[Detections]]:
    """The video detector's boxes on every frame, per category."""
    out: dict[str, list[Detections]] = {c: [] for c in categories}
    for frame in iter_frames(clip):
        rgb = frame.detection_rgb()
        for category in categories:
            with engine.detector(category, threshold=None, mode="video", detect_scale=1.0) as det:
                out[category].append(det.detect(rgb))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clip", type=Path, action="append", help="video(s) to measure (default: media clips)"
    )
    parser.add_argument(
        "--pan", type=float, action="append", metavar="PX", help="synthetic pan clip(s) instead"
    )
    parser.add_argument("--every", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--min-cover", type=float, default=0.9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="veil-coverage-")
    pans = [_pan_clip(Path(scratch.name) / f"pan{px:g}.mp4", px) for px in args.pan or []]
    clips = args.clip or pans or [MEDIA / name for name in CLIPS]
    settings = Settings()
    engine = _CountingEngine(model_dir=settings.model_dir, runtime=RuntimeOptions.from_settings(settings))
    base = RedactionSpec()
    categories = list(base.categories)
    engine.first_category = categories[0]
    rows = []
    for every in args.every:
        spec = base.model_copy(
            update={"detection": base.detection.model_copy(update={"detect_every": every})}
        )
        tallies = {c: Tally() for c in categories}
        detections = 0
        for clip in clips:
            info = probe(clip)
            reference = _reference(engine, clip, categories)
            before = engine.taken
            tracks, frame_count = analyse(engine, Plan.build(spec, engine=engine), [clip], info=info)
            detections += engine.taken - before
            per_frame = tracks_at_frames(tracks, frame_count)
            class_ids = {c: i for i, c in enumerate(categories)}
            for category in categories:
                scale = spec.categories[category].mask_scale or spec.mask_scale
                for i, ref in enumerate(reference[category]):
                    dets = per_frame[i]
                    boxes = dets.xyxy[dets.class_id == class_ids[category]]
                    masks = clip_xyxy(scale_xyxy(boxes, scale), resolution_wh=(info.width, info.height))
                    tallies[category].add(_cover(ref.xyxy, masks), args.min_cover)
        row = {"detect_every": every, "detections": detections}
        for category, t in tallies.items():
            row[category] = {
                "reference_boxes": t.boxes,
                "covered": round(t.covered / t.boxes, 4) if t.boxes else None,
                "mean": round(t.cover_sum / t.boxes, 4) if t.boxes else None,
            }
        rows.append(row)
        if not args.json:
            cells = "  ".join(
                f"{c}: {row[c]['covered']} covered, mean {row[c]['mean']} of {row[c]['reference_boxes']}"
                for c in categories
            )
            print(f"detect_every={every}: {detections} detections  {cells}", flush=True)
    if args.json:
        print(json.dumps({"clips": [c.name for c in clips], "min_cover": args.min_cover, "rows": rows}))


def _pan_clip(path: Path, px_per_frame: float, *, frames: int = 150) -> Path:
    """A camera pan over ``faces_2560.png``: a 1280x960 window moving ``px_per_frame``, scaled to 960x720."""
    rgb = read_image(MEDIA / "faces_2560.png")
    width = rgb.shape[1]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 960, 720, "yuv420p"
        x, direction = 0.0, 1.0
        for _ in range(frames):
            x += direction * px_per_frame
            if not 0 <= x <= width - 1280:
                direction, x = -direction, min(max(x, 0.0), width - 1280.0)
            window = np.ascontiguousarray(rgb[200:1160, int(x) : int(x) + 1280])
            frame = np.asarray(cv2.resize(window, (960, 720), interpolation=cv2.INTER_AREA), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


class _CountingEngine(Engine):
    """An engine that counts how often the first category's detector is taken (once per detected frame)."""

    first_category = "face"
    taken = 0

    @contextmanager
    def detector(
        self, category: str, *, threshold: float | None, mode: str, detect_scale: float
    ) -> Iterator[Detector]:
        self.taken += category == self.first_category
        with super().detector(category, threshold=threshold, mode=mode, detect_scale=detect_scale) as det:
            yield det


if __name__ == "__main__":
    main()
