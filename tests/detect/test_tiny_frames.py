"""Tiny frames cost nothing they cannot need: a frame too small to hold a face or plate is not
searched at all, and a small one is enlarged at most ``MAX_UPSCALE`` times, not to the working size.

A one-hour video of 1x1 frames used to take the only worker for 18 minutes (each frame enlarged to
960x960), and its flat frames gave licence-plate tracks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cores import ort_runtime
from veil.detect.base import MAX_UPSCALE
from veil.detect.models import ModelStore
from veil.detect.registry import build_detector
from veil.settings import Settings


@pytest.fixture(scope="module", params=["face", "license_plate"])
def video_detector(request: pytest.FixtureRequest) -> Any:
    store = ModelStore(Settings().model_dir)
    return build_detector(request.param, store=store, runtime=ort_runtime(), mode="video")


class _Spy:
    """Wraps an onnxruntime session and records the input shape of every run."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.shapes: list[tuple[int, ...]] = []

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.shapes.extend(tuple(v.shape) for v in feeds.values())
        return self.session.run(names, feeds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


@pytest.mark.parametrize("value", [0, 128, 255])
def test_a_one_pixel_frame_is_not_searched_and_finds_nothing(video_detector: Any, value: int) -> None:
    spy = _Spy(video_detector._session)
    video_detector._session = spy
    try:
        dets = video_detector.detect(np.full((1, 1, 3), value, np.uint8))
        strip = video_detector.detect(np.full((1, 640, 3), value, np.uint8))
    finally:
        video_detector._session = spy.session
    assert len(dets) == 0 and len(strip) == 0
    assert spy.shapes == [], "the model never ran on a frame that cannot hold a face or plate"


def test_a_small_frame_is_enlarged_at_most_max_upscale_times(video_detector: Any) -> None:
    spy = _Spy(video_detector._session)
    video_detector._session = spy
    try:
        video_detector.detect(np.full((12, 16, 3), 90, np.uint8))
    finally:
        video_detector._session = spy.session
    assert spy.shapes
    longest = max(max(shape[-2:]) for shape in spy.shapes)
    assert longest <= max(32, int(np.ceil(16 * MAX_UPSCALE / 32)) * 32)


def test_a_flat_one_pixel_video_gives_no_tracks(engine: Any, tmp_path: Path) -> None:
    import av

    from veil.pipeline import run
    from veil.spec import RedactionSpec

    clip = tmp_path / "flat.mkv"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1, 1, "bgr0"
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.full((1, 1, 3), (i * 37) % 256, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    report = run(engine, RedactionSpec(mode="detect"), clip, None)
    assert report.tracks == [] and report.input.frame_count == 60
