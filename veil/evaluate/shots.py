"""Pictures of leaks: where ``veil eval --video`` found a labelled object unmasked, what did it look like?

A table says a face was unmasked for 44 frames; a picture says whether it was missed outright, masked a
little off its centre, or is a sliver of a head behind someone else's. For each leaked object this saves
the frame in the middle of its longest unmasked run, cropped around the object: what the masks hide is
tinted red, the label's box is drawn in green and its core (the pixels that must be hidden for the box
to count as masked) in yellow.

The pictures show the user's own footage, so they are written only where ``--leak-shots DIR`` asks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from veil.evaluate.video import BoolImage, MotLabels, ObjectLeak, core_pixels
from veil.media.video import iter_frames

__all__ = ["leak_shot", "save_leak_shots"]

CONTEXT = 1.0
"""Context kept around the object on each side, in object sizes."""
MIN_CROP_PX = 96
VIEW_PX = 320
"""Small crops are enlarged (nearest neighbour, so pixels stay visible) to at least this shorter side."""
_TINT = np.array([220, 30, 30], dtype=np.float32)
_GREEN = (40, 220, 40)
_YELLOW = (250, 220, 0)


def leak_shot(
    rgb: npt.NDArray[np.uint8], hidden: BoolImage, box: Sequence[float], *, core_fraction: float = 0.5
) -> npt.NDArray[np.uint8]:
    """An RGB picture of the object at ``box`` (xyxy, source pixels) in ``rgb``, with ``hidden`` tinted."""
    height, width = hidden.shape
    x1, y1, x2, y2 = (float(v) for v in box)
    reach = max(x2 - x1, y2 - y1, MIN_CROP_PX / 2) * CONTEXT
    cx1, cy1 = max(int(x1 - reach), 0), max(int(y1 - reach), 0)
    cx2, cy2 = min(int(np.ceil(x2 + reach)), width), min(int(np.ceil(y2 + reach)), height)
    crop = rgb[cy1:cy2, cx1:cx2].astype(np.float32)
    tinted = hidden[cy1:cy2, cx1:cx2]
    crop[tinted] = crop[tinted] * 0.45 + _TINT * 0.55
    zoom = max(1, int(np.ceil(VIEW_PX / max(min(crop.shape[:2]), 1))))
    view = cv2.resize(crop.astype(np.uint8), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    core = core_pixels(np.array([[x1, y1, x2, y2]]), fraction=core_fraction, resolution_wh=(width, height))[0]

    def at(x: float, y: float) -> tuple[int, int]:
        return round((x - cx1) * zoom), round((y - cy1) * zoom)

    cv2.rectangle(view, at(x1, y1), at(x2, y2), _GREEN, 1)
    cv2.rectangle(view, at(core[0], core[1]), at(core[2], core[3]), _YELLOW, 1)
    return np.ascontiguousarray(view)


def save_leak_shots(
    video: Path,
    clip_name: str,
    leaks: Iterable[ObjectLeak],
    labels: MotLabels,
    *,
    hidden_at: Callable[[int], BoolImage],
    directory: Path,
    core_fraction: float = 0.5,
) -> list[Path]:
    """One PNG per leak in ``directory``: ``CLIP-CATEGORY-ID-frameN.png`` (N 1-based, as in gt.txt).

    ``hidden_at(index)`` gives what the masks hide at a 0-based frame index. Decodes ``video`` once,
    up to the last frame shown."""
    wanted: dict[int, list[ObjectLeak]] = {}
    for leak in leaks:
        wanted.setdefault(leak.worst_frame - 1, []).append(leak)
    if not wanted:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", clip_name)
    written: list[Path] = []
    for frame in iter_frames(video):
        if frame.index in wanted:
            hidden = hidden_at(frame.index)
            rows = labels.rows_at(frame.index)
            for leak in wanted.pop(frame.index):
                same_category = np.array([c == leak.category for c in labels.category[rows]], dtype=bool)
                match = (labels.object_id[rows] == leak.object_id) & same_category
                if not match.any():
                    continue
                box = labels.xyxy[rows][match][0]
                shot = leak_shot(frame.rgb(), hidden, box.tolist(), core_fraction=core_fraction)
                path = directory / f"{stem}-{leak.category}-{leak.object_id}-frame{leak.worst_frame}.png"
                cv2.imwrite(str(path), cv2.cvtColor(shot, cv2.COLOR_RGB2BGR))
                written.append(path)
        if not wanted:
            break
    return written
