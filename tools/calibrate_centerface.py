"""Measure the activation ranges that ``veil.detect.centerface_int8`` quantizes CenterFace with.

Run from the project root after ``veil models pull``; it rewrites
``veil/detect/centerface_int8_ranges.json``:

    .venv/bin/python tools/calibrate_centerface.py

The calibration images are real footage from ``../shared/data``: the media stills, every few
frames of the media clips, and every 8th openalpr-eu photo. faces-dev is left out on purpose:
it is the set ``veil eval`` scores the quantized model on, and calibrating on it would flatter
the score. Each image is scaled so its long side is 960 px, the video working size.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from veil.detect.centerface_int8 import RANGES_PATH, quantize
from veil.detect.models import ModelStore
from veil.detect.multiscale import letterbox_rgb, resize_rgb
from veil.media import read_image
from veil.settings import Settings

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STILLS = ("city_crowd.jpg", "street.jpg", "faces_2560.png", "plates_fisheye.png")
CLIPS = (
    ("selfie_portrait_noaudio.mp4", 60),
    ("faces_2560x1920_audio.mp4", 3),
    ("plates_fisheye_audio.mp4", 8),
)
WORKING_LONG_SIDE = 960


def calibration_images() -> Iterator[np.ndarray]:
    for name in STILLS:
        yield read_image(DATA / "media" / name)
    for name, step in CLIPS:
        with av.open(str(DATA / "media" / name)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % step == 0:
                    yield frame.to_ndarray(format="rgb24")
    for path in sorted((DATA / "plates-dev" / "openalpr-eu").glob("*.jpg"))[::8]:
        yield read_image(path)


class _Reader(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self) -> None:
        self._images = calibration_images()
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        rgb = next(self._images, None)
        if rgb is None:
            return None
        self.count += 1
        return {"input.1": letterbox_rgb(resize_rgb(rgb, scale=WORKING_LONG_SIDE / max(rgb.shape[:2])))}


def main() -> None:
    store = ModelStore(Settings().model_dir)
    reader = _Reader()
    RANGES_PATH.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        quantize(
            store.path("centerface"), Path(tmp) / "centerface_int8.onnx", ranges=RANGES_PATH, reader=reader
        )
    # onnxruntime writes the tensors in set order; sort them so a re-run gives the same file (and sha256).
    RANGES_PATH.write_text(json.dumps(json.loads(RANGES_PATH.read_text()), sort_keys=True) + "\n")
    RANGES_PATH.chmod(0o644)
    print(f"{reader.count} calibration images -> {RANGES_PATH}")


if __name__ == "__main__":
    main()
