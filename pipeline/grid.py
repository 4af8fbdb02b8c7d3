"""The pixel grid a site is analysed on: CRS, affine transform and shape."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

# Sentinel-2 pixels are 10, 20 and 60 m; snapping grid origins to 60 m keeps all three aligned.
DEFAULT_SNAP_M = 60.0


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid. ``crs`` is an authority string such as ``EPSG:32651``."""

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        return float(self.transform.a)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid CRS."""
        left, top = self.transform.c, self.transform.f
        return (
            left,
            top + self.transform.e * self.height,
            left + self.transform.a * self.width,
            top,
        )

    @property
    def pixel_area_ha(self) -> float:
        return abs(self.transform.a * self.transform.e) / 10_000.0

    @classmethod
    def from_bounds(
        cls,
        crs: str,
        bounds: tuple[float, float, float, float],
        resolution: float,
        snap: float | None = None,
        origin: tuple[float, float] = (0.0, 0.0),
    ) -> Grid:
        """The grid of ``resolution`` covering ``bounds``, its edges snapped outward to the
        lattice ``origin + k * snap`` (the data's own pixel lattice: Landsat corners sit at 15 m
        past a multiple of 30 m, Sentinel-2 tiles on multiples of 60 m)."""
        step = snap or resolution
        ox, oy = origin
        left = math.floor((bounds[0] - ox) / step) * step + ox
        bottom = math.floor((bounds[1] - oy) / step) * step + oy
        right = math.ceil((bounds[2] - ox) / step) * step + ox
        top = math.ceil((bounds[3] - oy) / step) * step + oy
        width = round((right - left) / resolution)
        height = round((top - bottom) / resolution)
        return cls(crs, Affine(resolution, 0.0, left, 0.0, -resolution, top), width, height)

    def rescaled(self, resolution: float) -> Grid:
        """The same extent at another resolution (which must divide the extent evenly)."""
        left, bottom, right, top = self.bounds
        return Grid.from_bounds(self.crs, (left, bottom, right, top), resolution)


def utm_crs_for(lon: float, lat: float) -> str:
    """The WGS84 UTM zone CRS (``EPSG:326xx`` north, ``EPSG:327xx`` south) containing a point."""
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise ValueError(f"({lon}, {lat}) is outside the UTM range (lon -180..180, lat -80..84)")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    code = (32600 if lat >= 0 else 32700) + zone
    return CRS.from_epsg(code).to_string()


def reproject_geometry(geom: BaseGeometry, src_crs: str, dst_crs: str) -> BaseGeometry:
    """``geom`` from one CRS to another (x/y = lon/lat order for geographic CRSs)."""
    tr = Transformer.from_crs(src_crs, dst_crs, always_xy=True)

    def _apply(xy: Any) -> Any:
        return np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geom, _apply)
