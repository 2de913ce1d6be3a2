"""Every readable plate of the fisheye car-park clip is masked in every frame.

The plates were marked by hand, frame by frame, in ``tests/labels/plates_fisheye.gt.txt``
(MOTChallenge rows ``frame,id,x,y,w,h,1,class,visibility``, frames from 1; ours, not the footage's):
id 1 is the front plate of the white car on the left (frames 1-13, until it leaves the picture),
id 2 the rear plate of the car at the right edge (all 24 frames). A plate counts as masked in a frame
when the masks cover its core, the central half in width and height. A second reference is an
independent per-frame still-image plate search.

The clip is redacted once for the module (plates only, default detection; ultrafast x264, as no test
here is about picture quality) and every test reads that run's report and output.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from veil.media import iter_frames, probe
from veil.pipeline import Engine, run
from veil.report import Report
from veil.spec import RedactionSpec

LABELS = Path(__file__).parent / "labels" / "plates_fisheye.gt.txt"


def _labels() -> dict[int, dict[int, tuple[float, float, float, float]]]:
    """Plate id -> 0-based frame -> xyxy."""
    plates: dict[int, dict[int, tuple[float, float, float, float]]] = defaultdict(dict)
    for line in LABELS.read_text().split():
        frame, plate, x, y, w, h = (float(v) for v in line.split(",")[:6])
        plates[int(plate)][int(frame) - 1] = (x, y, x + w, y + h)
    return plates


SPEC = RedactionSpec(categories={"license_plate": {}}, output={"preset": "ultrafast"})


@pytest.fixture(scope="module")
def redacted(
    engine: Engine, media_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Report, Path]:
    """The clip redacted with ``SPEC``: its report and output file."""
    out = tmp_path_factory.mktemp("plates") / "plates.mp4"
    return run(engine, SPEC, media_dir / "plates_fisheye_audio.mp4", out), out


def _masks(report: Report) -> dict[int, list[tuple[float, float, float, float]]]:
    """0-based frame -> the masked boxes (the track boxes grown by the category's mask scale)."""
    scale = SPEC.mask_scale_for("license_plate")
    masks: dict[int, list[tuple[float, float, float, float]]] = defaultdict(list)
    for track in report.tracks:
        for f in track.frames:
            x1, y1, x2, y2 = f.box
            cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
            masks[f.frame].append((cx - hw, cy - hh, cx + hw, cy + hh))
    return masks


@pytest.fixture(scope="module")
def unmasked(redacted: tuple[Report, Path]) -> dict[int, list[int]]:
    """Plate id -> the 0-based frames where the masks leave its core (partly) visible."""
    masks = _masks(redacted[0])
    out: dict[int, list[int]] = {}
    for plate, frames in _labels().items():
        out[plate] = []
        for frame, (x1, y1, x2, y2) in sorted(frames.items()):
            w, h = x2 - x1, y2 - y1
            core = np.zeros((int(h / 2), int(w / 2)), dtype=bool)
            ox, oy = x1 + w / 4, y1 + h / 4
            for mx1, my1, mx2, my2 in masks.get(frame, []):
                core[
                    max(0, int(my1 - oy)) : max(0, int(np.ceil(my2 - oy))),
                    max(0, int(mx1 - ox)) : max(0, int(np.ceil(mx2 - ox))),
                ] = True
            if not core.all():
                out[plate].append(frame)
    return out


@pytest.mark.slow
def test_the_left_cars_front_plate_is_masked_in_every_frame(unmasked: dict[int, list[int]]) -> None:
    assert unmasked[1] == []


@pytest.mark.slow
def test_the_right_edge_cars_rear_plate_is_masked_in_every_frame(unmasked: dict[int, list[int]]) -> None:
    assert unmasked[2] == []


def _covered(ref_xyxy: np.ndarray, masked_xyxy: np.ndarray) -> float:
    """Share of the reference box that lies inside some masked box."""
    if not len(masked_xyxy):
        return 0.0
    lt = np.maximum(ref_xyxy[:2], masked_xyxy[:, :2])
    rb = np.minimum(ref_xyxy[2:], masked_xyxy[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area = max(float(np.prod(ref_xyxy[2:] - ref_xyxy[:2])), 1e-6)
    return float(inter.max() / area)


@pytest.mark.slow
def test_plates_video_masks_every_plate_an_independent_pass_finds(
    engine: Engine, media_dir: Path, redacted: tuple[Report, Path]
) -> None:
    """Per-frame still-image plate search (the thorough one) is the reference; every plate it finds
    with confidence must lie inside a masked box of the video run, in every frame. Audio is kept."""
    src = media_dir / "plates_fisheye_audio.mp4"
    report, out = redacted
    assert [a.codec for a in probe(out).audio] == ["aac"]
    masked = _masks(report)
    checked, missed = 0, []
    with engine.detector("license_plate", threshold=0.4, mode="image", detect_scale=1.0) as reference:
        for frame in iter_frames(src):
            for box in reference.detect(frame.rgb()).xyxy:
                checked += 1
                cover = _covered(box, np.array(masked.get(frame.index, []), dtype=np.float32).reshape(-1, 4))
                if cover < 0.9:
                    missed.append(f"frame {frame.index}: {cover:.0%} of {box.round().tolist()}")
    assert checked >= 12, "the reference should see plates in most frames"
    assert not missed, f"{len(missed)} of {checked} plates not fully masked: {missed}"
