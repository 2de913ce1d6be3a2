"""Every readable plate of the fisheye car-park clip is masked in every frame.

The plates were marked by hand, frame by frame, in ``tests/labels/plates_fisheye.gt.txt``
(MOTChallenge rows ``frame,id,x,y,w,h,1,class,visibility``, frames from 1; ours, not the footage's):
id 1 is the front plate of the white car on the left (frames 1-13, until it leaves the picture),
id 2 the rear plate of the car at the right edge (all 24 frames). A plate counts as masked in a frame
when the masks cover its core, the central half in width and height.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from veil.pipeline import Engine, run
from veil.spec import RedactionSpec

LABELS = Path(__file__).parent / "labels" / "plates_fisheye.gt.txt"


def _labels() -> dict[int, dict[int, tuple[float, float, float, float]]]:
    """Plate id -> 0-based frame -> xyxy."""
    plates: dict[int, dict[int, tuple[float, float, float, float]]] = defaultdict(dict)
    for line in LABELS.read_text().split():
        frame, plate, x, y, w, h = (float(v) for v in line.split(",")[:6])
        plates[int(plate)][int(frame) - 1] = (x, y, x + w, y + h)
    return plates


@pytest.fixture(scope="module")
def unmasked(engine: Engine, media_dir: Path) -> dict[int, list[int]]:
    """Plate id -> the 0-based frames where the masks leave its core (partly) visible."""
    spec = RedactionSpec(mode="detect", categories={"license_plate": {}})
    report = run(engine, spec, media_dir / "plates_fisheye_audio.mp4", None)
    scale = spec.mask_scale_for("license_plate")
    masks: dict[int, list[tuple[float, float, float, float]]] = defaultdict(list)
    for track in report.tracks:
        for f in track.frames:
            x1, y1, x2, y2 = f.box
            cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
            masks[f.frame].append((cx - hw, cy - hh, cx + hw, cy + hh))
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
@pytest.mark.xfail(
    strict=True,
    reason="known leak: the plate model scores the dim, tilted rear plate at the right edge below 0.1 in "
    "most frames (fp32 and INT8 alike), so it is masked only where a track exists (README, accuracy)",
)
def test_the_right_edge_cars_rear_plate_is_masked_in_every_frame(unmasked: dict[int, list[int]]) -> None:
    assert unmasked[2] == []
