"""A name badge on a moving person stays masked in every frame of a clip made for the test."""

from __future__ import annotations

import random
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.textset import text_set_tool
from veil.media import read_image
from veil.pipeline import Engine, run
from veil.spec import RedactionSpec

FRAMES = 36
SIZE = (1280, 720)


def _badge_clip(media_dir: Path, path: Path) -> list[list[np.ndarray]]:
    """A person (cut from street.jpg) walking across a kitchen (faces_2560.png) with a name badge on
    the chest that sways as they walk; returns the badge's line quads in every frame."""
    tool = text_set_tool()
    background = cv2.resize(read_image(media_dir / "faces_2560.png"), SIZE, interpolation=cv2.INTER_AREA)
    person = cv2.resize(read_image(media_dir / "street.jpg")[250:1900, 80:1000], (400, 700))
    badge = tool.badge(random.Random(21))
    quads_per_frame: list[list[np.ndarray]] = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "16"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for i in range(FRAMES):
            frame = background.copy()
            x = 60 + i * 22  # walking right, 22 px a frame
            y = 8 + int(round(6 * np.sin(i / 3)))  # and bobbing
            frame[y : y + 700, x : x + 400] = person
            centre = (x + 200 + 4 * np.sin(i / 4), y + 520)
            quads = tool.place(frame, badge, centre=centre, angle_deg=8 * np.sin(i / 5), scale=0.45)
            quads_per_frame.append([np.asarray(q, np.float32) for q in quads])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return quads_per_frame


@pytest.mark.slow
def test_a_badge_on_a_moving_person_is_masked_in_every_frame(
    engine: Engine, media_dir: Path, tmp_path: Path
) -> None:
    src, out = tmp_path / "walk.mp4", tmp_path / "out.mp4"
    quads_per_frame = _badge_clip(media_dir, src)
    spec = RedactionSpec.model_validate({"categories": {"text": {}}, "method": "black"})
    report = run(engine, spec, src, out)
    assert report.counts["text"] >= 1
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == FRAMES
    for index, (frame, quads) in enumerate(zip(frames, quads_per_frame, strict=True)):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        for quad in quads:
            inside = np.zeros(gray.shape, np.uint8)
            cv2.fillPoly(inside, [quad.round().astype(np.int32)], 1)
            hidden = float((gray[inside.astype(bool)] < 40).mean())
            assert hidden > 0.9, f"frame {index}: a badge line shows ({hidden:.2f} of it masked)"
