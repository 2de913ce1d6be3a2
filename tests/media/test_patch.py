"""Masking a few rectangles of a 4:2:0 frame: only those pixels change, the rest stay bit-exact."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from veil.media.patch import I420Patch, patchable


@pytest.fixture(scope="module")
def frame(media_dir: Path) -> av.VideoFrame:
    with av.open(str(media_dir / "selfie_portrait_noaudio.mp4")) as container:
        return next(container.decode(video=0))


def _planes(f: av.VideoFrame) -> tuple[np.ndarray, np.ndarray]:
    flat = f.to_ndarray().reshape(-1)
    luma = f.width * f.height
    return flat[:luma].reshape(f.height, f.width), flat[luma:]


def test_only_the_rectangles_change(frame: av.VideoFrame) -> None:
    assert patchable(frame)
    patch = I420Patch(frame, [(101, 51, 201, 151)])  # odd corners grow to the chroma grid
    assert patch.rects == [(100, 50, 202, 152)]
    patch.canvas[50:152, 100:202] = 0
    y_out, chroma_out = _planes(patch.to_frame())
    y_in, chroma_in = _planes(frame)
    inside = np.zeros_like(y_in, dtype=bool)
    inside[50:152, 100:202] = True
    assert np.array_equal(y_out[~inside], y_in[~inside])
    assert (y_out[inside] <= 17).all()  # black in limited range
    assert (chroma_out != chroma_in).sum() <= (102 * 102) // 2  # chroma changed only under the rectangle


def test_untouched_pixels_inside_a_rectangle_survive_the_round_trip(frame: av.VideoFrame) -> None:
    patch = I420Patch(frame, [(0, 0, 300, 400)])
    y_out, _ = _planes(patch.to_frame())
    y_in, _ = _planes(frame)
    diff = np.abs(y_out.astype(int) - y_in.astype(int))[:400, :300]
    assert np.percentile(diff, 99.9) <= 1  # only rounding, and RGB clipping of a few saturated pixels
    assert (diff > 2).sum() <= 100


def test_canvas_holds_the_picture_inside_the_rectangles(frame: av.VideoFrame) -> None:
    patch = I420Patch(frame, [(10, 10, 60, 60)])
    reference = frame.to_ndarray(format="rgb24")
    diff = np.abs(patch.canvas[10:60, 10:60].astype(int) - reference[10:60, 10:60].astype(int))
    assert np.median(diff) <= 3
    assert not patch.canvas[100:, 100:].any()  # outside: never converted
