"""Tiling and scale geometry: every pixel covered, every small face whole in some tile,
pass sizes bounded."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from veil.detect.multiscale import Tile, letterbox_rgb, pass_scales, tile_grid, touches_interior_edge_xyxy


@given(
    w=st.integers(1, 5000),
    h=st.integers(1, 5000),
    tile=st.sampled_from([256, 640, 1280]),
    overlap=st.integers(32, 120),
    face_x=st.floats(0, 1),
    face_y=st.floats(0, 1),
)
def test_a_face_no_larger_than_the_overlap_lies_whole_in_some_tile(
    w: int, h: int, tile: int, overlap: int, face_x: float, face_y: float
) -> None:
    tiles = tile_grid((w, h), tile_size=tile, overlap=overlap)
    assert all(t.x1 - t.x0 <= tile and t.y1 - t.y0 <= tile for t in tiles)
    size = min(overlap, w, h)
    x0, y0 = face_x * (w - size), face_y * (h - size)
    assert any(t.x0 <= x0 and x0 + size <= t.x1 and t.y0 <= y0 and y0 + size <= t.y1 for t in tiles)


def test_one_tile_when_the_image_fits() -> None:
    assert tile_grid((1280, 720), tile_size=1280, overlap=192) == [Tile(0, 0, 1280, 720, (False,) * 4)]


def test_pass_scales_are_capped_and_deduplicated() -> None:
    assert pass_scales((400, 300), scales=(2.0, 1.0), max_megapixels=16) == [1.0, 2.0]
    # 4000 x 3000 = 12 MP: the 2x pass would be 48 MP, so it is cut to 16 MP (x1.15), too close to x1.
    assert pass_scales((4000, 3000), scales=(1.0, 2.0), max_megapixels=16) == [1.0]


def test_only_interior_edges_mark_partial_views() -> None:
    tile = Tile(100, 0, 356, 256, (True, False, True, False))
    boxes = np.array([[1, 0, 20, 20], [100, 0, 150, 30], [240, 230, 255, 256]], dtype=np.float32)
    assert touches_interior_edge_xyxy(boxes, tile=tile, margin_px=4).tolist() == [True, False, True]


@pytest.mark.parametrize(("h", "w"), [(1, 1), (33, 65), (64, 64)])
def test_letterbox_pads_bottom_right_to_the_stride_without_stretching(h: int, w: int) -> None:
    rgb = np.full((h, w, 3), 7, dtype=np.uint8)
    blob = letterbox_rgb(rgb)
    assert blob.shape[2] % 32 == 0 and blob.shape[3] % 32 == 0
    assert (blob[0, :, :h, :w] == 7).all()
    assert blob.sum() == 7 * 3 * h * w
