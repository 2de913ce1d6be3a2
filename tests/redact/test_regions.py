"""Where a mask goes (``mask_regions``) and what it covers (``shape_mask``): every box that reaches into the
frame masks at least the pixels it touches, only inside the frame, and a box half outside keeps its shape."""

from __future__ import annotations

import numpy as np
import pytest

from veil.redact import MaskRegion, mask_regions, shape_mask

FRAME_WH = (100, 80)


def _regions(boxes: list[list[float]], *, mask_scale: float = 1.0) -> list[MaskRegion]:
    return mask_regions(
        np.array(boxes, dtype=np.float32).reshape(-1, 4), mask_scale=mask_scale, resolution_wh=FRAME_WH
    )


@pytest.mark.parametrize(
    ("box", "mask_scale", "whole", "visible"),
    [
        ([10, 20, 30, 40], 1.0, (10, 20, 30, 40), (10, 20, 30, 40)),
        ([10.2, 20.7, 29.1, 39.5], 1.0, (10, 20, 30, 40), (10, 20, 30, 40)),  # every touched pixel
        ([10, 20, 30, 40], 1.5, (5, 15, 35, 45), (5, 15, 35, 45)),  # grown about the centre
        ([-10, -10, 10, 10], 1.0, (-10, -10, 10, 10), (0, 0, 10, 10)),  # clipped, shape kept
        ([90, 70, 120, 95], 1.0, (90, 70, 120, 95), (90, 70, 100, 80)),
        ([50, 50, 50, 50], 1.0, (50, 50, 51, 51), (50, 50, 51, 51)),  # a point still covers its pixel
        ([30, 40, 10, 20], 1.0, (10, 20, 30, 40), (10, 20, 30, 40)),  # corners in either order
    ],
    ids=["inside", "fractional", "scaled", "top-left-out", "bottom-right-out", "degenerate", "swapped"],
)
def test_region_of_a_box(
    box: list[float],
    mask_scale: float,
    whole: tuple[int, int, int, int],
    visible: tuple[int, int, int, int],
) -> None:
    [region] = _regions([box], mask_scale=mask_scale)
    assert (region.box_x1, region.box_y1, region.box_x2, region.box_y2) == whole
    assert (region.x1, region.y1, region.x2, region.y2) == visible
    assert region.box_wh == (whole[2] - whole[0], whole[3] - whole[1])


def test_a_margin_widens_a_small_box_on_every_side_and_clips_to_the_frame() -> None:
    boxes = np.array([[10, 20, 20, 30], [95, 0, 100, 5]], dtype=np.float32)
    inner, corner = mask_regions(boxes, mask_scale=1.3, resolution_wh=FRAME_WH, mask_margin=6.0)
    assert (inner.box_x1, inner.box_y1, inner.box_x2, inner.box_y2) == (4, 14, 26, 36)
    assert (corner.box_x1, corner.box_y1, corner.box_x2, corner.box_y2) == (89, -6, 106, 11)
    assert (corner.x1, corner.y1, corner.x2, corner.y2) == (89, 0, 100, 11)


@pytest.mark.parametrize(
    "box",
    [[-50, -50, -1, -1], [100, 0, 150, 10], [0, 80, 10, 90], [np.nan, 0, 10, 10], [0, 0, np.inf, 10]],
    ids=["left-above", "right", "below", "nan", "inf"],
)
def test_boxes_outside_the_frame_or_not_finite_mask_nothing(box: list[float]) -> None:
    assert _regions([box]) == []


def test_index_is_the_row_of_the_box_that_made_the_region() -> None:
    regions = _regions([[-50, -50, -40, -40], [1, 1, 5, 5], [np.nan, 0, 1, 1], [60, 60, 70, 70]])
    assert [r.index for r in regions] == [1, 3]
    assert _regions([]) == []


def test_an_absurd_box_cannot_allocate_an_absurd_mask() -> None:
    [region] = _regions([[-1e12, -1e12, 1e12, 1e12]])
    assert (region.x1, region.y1, region.x2, region.y2) == (0, 0, *FRAME_WH)
    assert max(region.box_wh) <= 2 * (4 * max(FRAME_WH) + 4)


def test_windows_line_the_mask_up_with_the_frame() -> None:
    [region] = _regions([[-10, 70, 10, 90]])  # 20x20, a quarter inside the frame
    mask = shape_mask(*region.box_wh, shape="ellipse", feather=0.0)
    assert mask is not None
    frame = np.zeros((FRAME_WH[1], FRAME_WH[0]), dtype=np.uint8)
    frame[region.window] = mask.binary[region.mask_window]
    assert frame[region.window].shape == (10, 10)
    assert frame[79, 0] == 255, "the ellipse's centre is the frame's corner pixel"
    assert frame[70, 9] == 0, "the ellipse's outside stays untouched"


def test_a_hard_rectangle_masks_every_pixel_so_it_needs_no_mask() -> None:
    assert shape_mask(30, 20, shape="rect", feather=0.0) is None


@pytest.mark.parametrize(("width", "height"), [(40, 30), (1, 1), (2, 7), (600, 500), (3000, 2000)])
def test_an_ellipse_covers_its_centre_and_leaves_its_corners(width: int, height: int) -> None:
    mask = shape_mask(width, height, shape="ellipse", feather=0.0)
    assert mask is not None and mask.binary.shape == (height, width)
    assert mask.binary[height // 2, width // 2] == 255
    if width > 2 and height > 2:
        assert mask.binary[0, 0] == mask.binary[-1, -1] == 0
    assert mask.alpha is None and mask.inverse is None
    covered = (mask.binary == 255).mean()
    if min(width, height) >= 30:
        assert covered == pytest.approx(np.pi / 4, abs=0.02)


@pytest.mark.parametrize("shape", ["ellipse", "rect"])
def test_feathering_blends_only_inside_the_shape(shape: str) -> None:
    mask = shape_mask(50, 40, shape=shape, feather=0.3)  # type: ignore[arg-type]
    assert mask is not None and mask.alpha is not None and mask.inverse is not None
    assert mask.alpha[20, 25] == 1.0, "full strength at the centre"
    assert np.allclose(mask.alpha + mask.inverse, 1.0)
    assert ((mask.alpha > 0) == (mask.binary == 255)).all()
    assert 0.0 < mask.alpha[20, 2] < 1.0, "a soft edge"
    hard = shape_mask(50, 40, shape=shape, feather=0.0)
    assert hard is None or (mask.binary <= hard.binary).all(), "feathering never reaches past the hard shape"


def test_masks_are_shared_so_they_are_read_only() -> None:
    first = shape_mask(24, 24, shape="ellipse", feather=0.2)
    assert first is not None and first is shape_mask(24, 24, shape="ellipse", feather=0.2)
    assert first.alpha is not None
    with pytest.raises(ValueError):
        first.binary[0, 0] = 1
    with pytest.raises(ValueError):
        first.alpha[0, 0] = 0.5


def test_window_restricts_every_array_to_the_same_rectangle() -> None:
    mask = shape_mask(10, 8, shape="ellipse", feather=0.5)
    assert mask is not None
    part = mask.window(slice(2, 6), slice(3, 9))
    assert part.binary.shape == part.alpha.shape == part.inverse.shape == (4, 6)  # type: ignore[union-attr]
    assert np.array_equal(part.binary, mask.binary[2:6, 3:9])
