"""No plate or barcode mask on a face, a hand, a glass or window blinds of the media stills, and the
real plate still masked: the false masks a new user saw, checked through the whole engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from veil.pipeline import Engine, run
from veil.spec import RedactionSpec

LABELS = json.loads((Path(__file__).parents[1] / "labels" / "hard_negatives.json").read_text())["stills"]
SPEC = RedactionSpec(mode="detect", categories={"face": {}, "license_plate": {}, "barcode": {}})


def _covers(box: tuple[float, float, float, float], region: list[float]) -> bool:
    """A mask box covers a region when it hides a quarter of it, or lies half inside it."""
    x1, y1, x2, y2 = box
    inter = max(0.0, min(x2, region[2]) - max(x1, region[0])) * max(
        0.0, min(y2, region[3]) - max(y1, region[1])
    )
    region_area = (region[2] - region[0]) * (region[3] - region[1])
    return inter >= 0.25 * region_area or inter >= 0.5 * max((x2 - x1) * (y2 - y1), 1e-9)


@pytest.mark.parametrize("name", sorted(LABELS))
def test_no_plate_or_barcode_mask_on_faces_hands_glasses_or_blinds(
    engine: Engine, media_dir: Path, name: str
) -> None:
    report = run(engine, SPEC, media_dir / name, None)
    boxes = {
        category: [f.box for t in report.tracks if t.category == category for f in t.frames]
        for category in ("face", "license_plate", "barcode")
    }
    for kind, regions in LABELS[name].items():
        for region in regions:
            if kind == "plate":
                assert any(_covers(b, region) for b in boxes["license_plate"]), (name, region)
                continue
            for category in ("license_plate", "barcode"):
                over = [b for b in boxes[category] if _covers(b, region)]
                assert not over, (name, kind, region, category, np.round(over).tolist())
