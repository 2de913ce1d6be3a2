"""Measure the activation ranges that Veil's INT8 models are quantized with.

Run from the project root after ``veil models pull``; it rewrites the ranges file of one model:

    .venv/bin/python tools/calibrate_int8.py face            # veil/detect/centerface_int8_ranges.json
    .venv/bin/python tools/calibrate_int8.py license_plate   # veil/detect/yolov8/plate_int8_ranges.json

The calibration images are real footage from ``../shared/data``, never the set a model is scored
on (calibrating on it would flatter the score):

* face: the media stills, every few frames of the media clips, and every 8th openalpr-eu photo
  (faces-dev is left out), each scaled to a long side of 960 px, the video working size.
* license_plate: the same stills and clips, denser on the plate clip, and every 5th faces-dev street
  photo (plates-dev is left out), letterboxed alternately to 640 px (video and stills) and 1280 px
  (the still-image second scale).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from veil.detect import centerface_int8
from veil.detect.models import ModelStore
from veil.detect.multiscale import letterbox_rgb, resize_rgb
from veil.detect.yolov8 import int8 as plate_int8
from veil.detect.yolov8 import plate_model_path
from veil.detect.yolov8.detector import letterbox_yolo
from veil.media import read_image
from veil.settings import Settings

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STILLS = ("city_crowd.jpg", "street.jpg", "faces_2560.png", "plates_fisheye.png")
FACE_WORKING_SIDE = 960
PLATE_SIDES = (640, 1280)


def _clip_frames(clips: tuple[tuple[str, int], ...]) -> Iterator[np.ndarray]:
    for name, step in clips:
        with av.open(str(DATA / "media" / name)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % step == 0:
                    yield frame.to_ndarray(format="rgb24")


def _stills() -> Iterator[np.ndarray]:
    for name in STILLS:
        yield read_image(DATA / "media" / name)


def face_images() -> Iterator[np.ndarray]:
    yield from _stills()
    clips = (
        ("selfie_portrait_noaudio.mp4", 60),
        ("faces_2560x1920_audio.mp4", 3),
        ("plates_fisheye_audio.mp4", 8),
    )
    yield from _clip_frames(clips)
    for path in sorted((DATA / "plates-dev" / "openalpr-eu").glob("*.jpg"))[::8]:
        yield read_image(path)


def plate_images() -> Iterator[np.ndarray]:
    yield from _stills()
    clips = (
        ("selfie_portrait_noaudio.mp4", 60),
        ("faces_2560x1920_audio.mp4", 3),
        ("plates_fisheye_audio.mp4", 2),
    )
    yield from _clip_frames(clips)
    for path in sorted((DATA / "faces-dev" / "images").glob("*.jpg"))[::5]:
        yield read_image(path)


class _Reader(CalibrationDataReader):  # type: ignore[misc]
    def __init__(
        self, images: Iterator[np.ndarray], blob: Callable[[np.ndarray, int], np.ndarray], name: str
    ):
        self._images = images
        self._blob = blob
        self._name = name
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        rgb = next(self._images, None)
        if rgb is None:
            return None
        self.count += 1
        return {self._name: self._blob(rgb, self.count)}


def _face_blob(rgb: np.ndarray, _count: int) -> np.ndarray:
    return letterbox_rgb(resize_rgb(rgb, scale=FACE_WORKING_SIDE / max(rgb.shape[:2])))


def _plate_blob(rgb: np.ndarray, count: int) -> np.ndarray:
    return letterbox_yolo(rgb, PLATE_SIDES[count % len(PLATE_SIDES)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=["face", "license_plate"])
    args = parser.parse_args()
    store = ModelStore(Settings().model_dir)
    if args.model == "face":
        reader = _Reader(face_images(), _face_blob, "input.1")
        ranges, source, quantize = (
            centerface_int8.RANGES_PATH,
            store.path("centerface"),
            centerface_int8.quantize,
        )
    else:
        reader = _Reader(plate_images(), _plate_blob, "images")
        ranges, source, quantize = plate_int8.RANGES_PATH, plate_model_path(store), plate_int8.quantize
    ranges.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        quantize(source, Path(tmp) / "int8.onnx", ranges=ranges, reader=reader)
    # onnxruntime writes the tensors in set order; sort them so a re-run gives the same file (and sha256).
    ranges.write_text(json.dumps(json.loads(ranges.read_text()), sort_keys=True) + "\n")
    ranges.chmod(0o644)
    print(f"{reader.count} calibration images -> {ranges}")


if __name__ == "__main__":
    main()
