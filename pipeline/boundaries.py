"""Boundaries: between boolean masks on a pixel grid and polygons in the grid's CRS.

Pure stage: arrays, an affine transform and plain parameters in; arrays or shapely polygons out.

Conventions the rest of the pipeline relies on:

- A *region* is a connected set of True pixels; ``connectivity`` is 8 (default: pixels touching
  at a corner belong together, as a pile or a compound split by a one-pixel diagonal is one thing
  on the ground) or 4. It decides which regions are large enough to keep.
- Polygons are pixel-exact (edges run along pixel edges, no smoothing or simplification) and valid
  OGC polygons, holes included. An OGC polygon cannot be pinched at a single point, so every
  polygon is one 4-connected piece: an 8-connected region whose parts meet only at a corner comes
  out as several polygons. Group by region with :func:`label_regions` if that matters.
- ``rasterize`` uses the pixel-centre rule, so ``rasterize(vectorize(m, t), t, m.shape)`` gives
  back ``remove_small_regions(m, min_pixels)`` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio import features
from scipy import ndimage
from shapely.geometry import Polygon, shape

__all__ = [
    "Connectivity",
    "label_regions",
    "min_pixels_for_area",
    "rasterize",
    "remove_small_regions",
    "vectorize",
]

Connectivity = Literal[4, 8]

# Relative slack when turning an area into a pixel count: 0.25 ha / 0.01 ha must give 25, not 26,
# although binary floating point may land a hair above 25.
_CEIL_RTOL = 1e-9


def _as_mask(
    mask: NDArray[np.bool_] | NDArray[np.generic], name: str = "mask"
) -> NDArray[np.bool_]:
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        raise ValueError(f"{name} must be a boolean array, got dtype {arr.dtype}")
    return arr


def _structure(connectivity: int) -> NDArray[np.bool_]:
    if connectivity == 8:
        return np.ones((3, 3), dtype=bool)
    if connectivity == 4:
        return np.asarray(ndimage.generate_binary_structure(2, 1), dtype=bool)
    raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")


def label_regions(
    mask: NDArray[np.bool_], connectivity: Connectivity = 8
) -> tuple[NDArray[np.int32], int]:
    """Label the True regions of ``mask``: (labels 1..n with 0 for False, n)."""
    arr = _as_mask(mask)
    labels, count = ndimage.label(arr, structure=_structure(connectivity))
    return np.asarray(labels, dtype=np.int32), int(count)


def remove_small_regions(
    mask: NDArray[np.bool_], min_pixels: int, connectivity: Connectivity = 8
) -> NDArray[np.bool_]:
    """A copy of ``mask`` without the regions of fewer than ``min_pixels`` pixels.

    Regions of exactly ``min_pixels`` are kept (a minimum mapping unit is inclusive).
    ``min_pixels <= 1`` keeps everything. The input is never modified.
    """
    arr = _as_mask(mask)
    if min_pixels < 0:
        raise ValueError(f"min_pixels must be >= 0, got {min_pixels}")
    structure = _structure(connectivity)
    if min_pixels <= 1 or not arr.any():
        return arr.copy()
    labels, _ = ndimage.label(arr, structure=structure)
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    return np.asarray(keep[labels], dtype=bool)


def _scanline_key(polygon: Polygon, inverse: Affine) -> tuple[int, int]:
    """(row, col) of the polygon's first pixel in scanline order.

    The topmost vertex row of the exterior is the top edge of the polygon's first row of pixels, and
    the leftmost vertex on it is that pixel's top-left corner; pixels belong to one polygon only, so
    the key is unique and the order does not depend on GDAL's traversal.
    """
    x, y = np.asarray(polygon.exterior.coords).T
    # Written out: affine's ``*`` on arrays is deprecated in favour of ``@`` (affine >= 3.1).
    cols = inverse.a * x + inverse.b * y + inverse.c
    rows = inverse.d * x + inverse.e * y + inverse.f
    rows_i = np.rint(rows).astype(np.int64)
    cols_i = np.rint(cols).astype(np.int64)
    top = int(rows_i.min())
    return top, int(cols_i[rows_i == top].min())


def _valid_polygons(geom: shapely.Geometry) -> list[Polygon]:
    """``geom`` as valid polygons (GDAL's output is already valid for 4-connected polygonizing;
    this is the safety net, not the main path)."""
    if isinstance(geom, Polygon) and geom.is_valid:
        return [geom]
    repaired = shapely.make_valid(geom)
    parts = shapely.get_parts(repaired)
    return [p for p in parts if isinstance(p, Polygon) and not p.is_empty]


def vectorize(
    mask: NDArray[np.bool_],
    transform: Affine,
    min_pixels: int = 0,
    connectivity: Connectivity = 8,
) -> list[Polygon]:
    """Polygons of the True regions of ``mask`` in the CRS of ``transform``.

    Regions (by ``connectivity``) of fewer than ``min_pixels`` pixels are dropped first. The result
    is in scanline order of each polygon's first pixel (top row first, then left to right), so the
    same mask always gives the same list. See the module docstring for why one 8-connected region
    can give several polygons.
    """
    arr = remove_small_regions(mask, min_pixels, connectivity)
    if not arr.any():
        return []
    inverse = ~transform
    polygons: list[Polygon] = []
    # Polygonize 4-connected: an 8-connected polygon pinched at a corner is invalid OGC.
    for geom, _value in features.shapes(
        arr.astype(np.uint8), mask=arr, connectivity=4, transform=transform
    ):
        polygons.extend(_valid_polygons(shape(geom)))
    polygons.sort(key=lambda p: _scanline_key(p, inverse))
    return polygons


def rasterize(
    polygons: Iterable[Polygon | shapely.Geometry],
    transform: Affine,
    shape: tuple[int, int],
) -> NDArray[np.bool_]:
    """Burn ``polygons`` onto the grid: True where a pixel's centre lies inside one (GDAL's default
    rule, not all-touched), so pixel-exact polygons from :func:`vectorize` map back exactly."""
    height, width = shape
    if height < 0 or width < 0:
        raise ValueError(f"shape must be non-negative (rows, cols), got {shape}")
    geoms = [g for g in polygons if g is not None and not g.is_empty]
    if not geoms or height == 0 or width == 0:
        return np.zeros((height, width), dtype=bool)
    burned = features.rasterize(
        ((g, 1) for g in geoms),
        out_shape=(height, width),
        transform=transform,
        fill=0,
        all_touched=False,
        dtype="uint8",
    )
    return np.asarray(burned, dtype=bool)


def min_pixels_for_area(area_ha: float, pixel_area_ha: float) -> int:
    """The smallest pixel count covering ``area_ha``: ceil(area / pixel area).

    A minimum mapping unit of 0.25 ha on 10 m pixels (0.01 ha) is 25 pixels; 0.45 ha on 30 m
    pixels (0.09 ha) is 5. Exact multiples are not pushed up by floating-point noise.
    """
    if not (math.isfinite(pixel_area_ha) and pixel_area_ha > 0):
        raise ValueError(f"pixel_area_ha must be a positive number, got {pixel_area_ha}")
    if not (math.isfinite(area_ha) and area_ha >= 0):
        raise ValueError(f"area_ha must be a non-negative number, got {area_ha}")
    ratio = area_ha / pixel_area_ha
    nearest = round(ratio)
    if abs(ratio - nearest) <= _CEIL_RTOL * max(1.0, ratio):
        return int(nearest)
    return math.ceil(ratio)
