"""Tests for pipeline.boundaries: mask <-> polygon conversions."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.boundaries import (
    label_regions,
    min_pixels_for_area,
    rasterize,
    remove_small_regions,
    vectorize,
)

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)
# A realistic UTM grid: 10 m pixels, origin snapped to 60 m.
UTM_10M = Affine(10.0, 0.0, 500_040.0, 0.0, -10.0, 4_500_000.0)

masks = st.tuples(st.integers(1, 14), st.integers(1, 14)).flatmap(
    lambda shape: arrays(np.bool_, shape)
)


def test_remove_small_regions_drops_only_small() -> None:
    mask = np.zeros((6, 6), dtype=bool)
    mask[0:2, 0:2] = True  # 4 pixels
    mask[4, 4] = True  # 1 pixel
    out = remove_small_regions(mask, min_pixels=4)
    expected = np.zeros_like(mask)
    expected[0:2, 0:2] = True
    np.testing.assert_array_equal(out, expected)
    assert mask[4, 4], "input must not be modified"


def test_remove_small_regions_min_pixels_inclusive_and_trivial() -> None:
    mask = np.eye(3, dtype=bool)
    np.testing.assert_array_equal(remove_small_regions(mask, 3), mask)  # diagonal: 8-connected
    np.testing.assert_array_equal(remove_small_regions(mask, 0), mask)
    assert not remove_small_regions(mask, 4).any()


def test_remove_small_regions_connectivity() -> None:
    mask = np.eye(3, dtype=bool)
    assert not remove_small_regions(mask, 2, connectivity=4).any()
    np.testing.assert_array_equal(remove_small_regions(mask, 2, connectivity=8), mask)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_pixels": -1}, "min_pixels must be >= 0"),
        ({"min_pixels": 2, "connectivity": 6}, "connectivity must be 4 or 8"),
    ],
)
def test_remove_small_regions_rejects_bad_parameters(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        remove_small_regions(np.ones((2, 2), dtype=bool), **kwargs)  # type: ignore[arg-type]


def test_masks_must_be_boolean_2d() -> None:
    with pytest.raises(ValueError, match="boolean"):
        vectorize(np.ones((2, 2), dtype=np.uint8), UTM_10M)
    with pytest.raises(ValueError, match="2-D"):
        remove_small_regions(np.ones(3, dtype=bool), 1)


def test_label_regions_counts_8_and_4() -> None:
    mask = np.eye(3, dtype=bool)
    assert label_regions(mask)[1] == 1
    assert label_regions(mask, connectivity=4)[1] == 3


def test_vectorize_square_in_crs_coordinates() -> None:
    mask = np.zeros((5, 5), dtype=bool)
    mask[1:3, 2:4] = True
    (poly,) = vectorize(mask, UTM_10M)
    assert poly.is_valid
    assert poly.area == pytest.approx(4 * 100.0)
    assert poly.bounds == pytest.approx((500_060.0, 4_499_970.0, 500_080.0, 4_499_990.0))


def test_vectorize_keeps_holes() -> None:
    mask = np.ones((5, 5), dtype=bool)
    mask[2, 2] = False
    (poly,) = vectorize(mask, Affine.identity())
    assert len(poly.interiors) == 1
    assert poly.area == 24.0


def test_vectorize_hole_with_nested_island() -> None:
    mask = np.ones((7, 7), dtype=bool)
    mask[1:6, 1:6] = False
    mask[3, 3] = True
    polys = vectorize(mask, Affine.identity())
    assert [p.area for p in polys] == [24.0, 1.0]  # ring first: its first pixel is row 0
    assert len(polys[0].interiors) == 1


def test_vectorize_diagonal_region_gives_valid_polygons() -> None:
    # One 8-connected region; as OGC polygons it is three squares touching at corners.
    mask = np.eye(3, dtype=bool)
    polys = vectorize(mask, Affine.identity(), min_pixels=3)
    assert len(polys) == 3
    assert all(p.is_valid for p in polys)
    assert vectorize(mask, Affine.identity(), min_pixels=3, connectivity=4) == []


def test_vectorize_scanline_order() -> None:
    mask = np.zeros((6, 6), dtype=bool)
    mask[4:6, 0] = True  # third
    mask[0, 4:6] = True  # second
    mask[0:3, 0:2] = True  # first
    polys = vectorize(mask, UTM_10M)
    assert [round(p.area) for p in polys] == [600, 200, 200]
    assert polys[1].bounds[0] > polys[2].bounds[0]


def test_vectorize_min_pixels() -> None:
    mask = np.zeros((5, 5), dtype=bool)
    mask[0, 0] = True
    mask[2:5, 2:5] = True
    polys = vectorize(mask, Affine.identity(), min_pixels=2)
    assert [p.area for p in polys] == [9.0]


def test_vectorize_empty_mask() -> None:
    assert vectorize(np.zeros((3, 4), dtype=bool), UTM_10M) == []


def test_rasterize_empty_inputs() -> None:
    out = rasterize([], UTM_10M, (3, 4))
    assert out.dtype == np.bool_
    assert out.shape == (3, 4)
    assert not out.any()


def test_rasterize_uses_pixel_centres() -> None:
    # A box covering less than half of pixel (0, 1) and more than half of pixel (0, 0).
    box = shapely.box(0.0, -1.0, 1.4, 0.0)
    out = rasterize([box], Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0), (1, 3))
    np.testing.assert_array_equal(out, [[True, False, False]])


@SETTINGS
@given(masks, st.integers(0, 6), st.sampled_from([4, 8]))
def test_round_trip_vectorize_rasterize(
    mask: np.ndarray, min_pixels: int, conn: Literal[4, 8]
) -> None:
    expected = remove_small_regions(mask, min_pixels, connectivity=conn)
    polys = vectorize(mask, UTM_10M, min_pixels=min_pixels, connectivity=conn)
    assert all(isinstance(p, shapely.Polygon) and p.is_valid for p in polys)
    np.testing.assert_array_equal(rasterize(polys, UTM_10M, mask.shape), expected)
    # Pixel-exact: total polygon area is the pixel count times the pixel area.
    assert sum(p.area for p in polys) == pytest.approx(expected.sum() * 100.0)
    # Polygons never overlap.
    if len(polys) > 1:
        assert shapely.union_all(polys).area == pytest.approx(sum(p.area for p in polys))


@SETTINGS
@given(masks)
def test_vectorize_is_deterministic_and_ordered(mask: np.ndarray) -> None:
    polys = vectorize(mask, UTM_10M)
    again = vectorize(mask.copy(), UTM_10M)
    assert [p.wkb for p in polys] == [p.wkb for p in again]
    tops = [(-p.bounds[3], p.bounds[0]) for p in polys]
    assert [t[0] for t in tops] == sorted(t[0] for t in tops)


@pytest.mark.parametrize(
    ("area_ha", "pixel_area_ha", "expected"),
    [
        (0.25, 0.01, 25),  # Sentinel-2 minimum mapping unit
        (0.45, 0.09, 5),  # Landsat minimum mapping unit
        (0.3, 0.1, 3),
        (0.26, 0.01, 26),
        (0.251, 0.01, 26),
        (0.0, 0.01, 0),
        (1.0, 0.09, 12),
    ],
)
def test_min_pixels_for_area(area_ha: float, pixel_area_ha: float, expected: int) -> None:
    assert min_pixels_for_area(area_ha, pixel_area_ha) == expected


@pytest.mark.parametrize(
    ("area_ha", "pixel_area_ha", "match"),
    [
        (1.0, 0.0, "pixel_area_ha"),
        (1.0, float("nan"), "pixel_area_ha"),
        (-1.0, 0.01, "area_ha"),
        (float("inf"), 0.01, "area_ha"),
    ],
)
def test_min_pixels_for_area_rejects(area_ha: float, pixel_area_ha: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        min_pixels_for_area(area_ha, pixel_area_ha)


@SETTINGS
@given(st.floats(0, 1e4), st.sampled_from([0.01, 0.04, 0.09, 0.36]))
def test_min_pixels_covers_area(area_ha: float, pixel_area_ha: float) -> None:
    px = min_pixels_for_area(area_ha, pixel_area_ha)
    assert px >= 0
    ratio = area_ha / pixel_area_ha
    assert px >= ratio - 1e-9 * max(1.0, ratio)  # covers the area, up to float noise
    assert px - 1 < ratio  # and is the smallest count that does


def test_pinched_polygon_is_split_into_valid_parts() -> None:
    # GDAL's 8-connected polygonizing emits rings like this one; vectorize never asks for them,
    # but the safety net must turn them into valid polygons.
    from pipeline.boundaries import _valid_polygons

    pinched = shapely.Polygon([(0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 1), (1, 1), (1, 0)])
    assert not pinched.is_valid
    parts = _valid_polygons(pinched)
    assert len(parts) == 2
    assert all(p.is_valid and p.area == 1.0 for p in parts)
