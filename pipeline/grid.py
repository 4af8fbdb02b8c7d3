"""The pixel grid a site is analysed on: CRS, affine transform and shape."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry.base import BaseGeometry

from pipeline.errors import ConfigError, LimitError, SiteError
from pipeline.model import shorten, shorten_text

# Sentinel-2 pixels are 10, 20 and 60 m; snapping grid origins to 60 m keeps all three aligned.
DEFAULT_SNAP_M = 60.0
# The latitudes WGS84 UTM zones are defined for; beyond them a site needs polar stereographic
# (UPS), which sitewatch does not do.
UTM_LAT_RANGE = (-80.0, 84.0)
# No raster is wider or taller than this many pixels (a UTM zone is ~1,000 km across: 10^7
# pixels at 10 cm); sizes that matter for memory are checked by `sites.check_site_limits`.
MAX_GRID_SIDE = 100_000_000


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
        past a multiple of 30 m, Sentinel-2 tiles on multiples of 60 m).

        Raises ``ConfigError`` for a resolution, snap or origin that is not a positive (origin:
        any) finite number, ``SiteError`` for bounds that are not finite or are inverted."""
        for name, value in (("resolution", resolution), ("snap", snap or resolution)):
            if not (_finite(value) and value > 0):
                raise ConfigError(
                    f"grid {name} {shorten(value)} must be a positive finite number of metres"
                )
        if not (len(origin) == 2 and all(_finite(v) for v in origin)):
            raise ConfigError(f"grid origin {shorten(origin)} must be two finite numbers")
        if not (
            len(bounds) == 4
            and all(_finite(v) for v in bounds)
            and bounds[0] <= bounds[2]
            and bounds[1] <= bounds[3]
        ):
            raise SiteError(
                f"grid bounds {shorten(bounds)} in {shorten(crs)} must be four finite numbers (left, bottom, "
                "right, top) with left <= right and bottom <= top; the site's geometry is "
                "probably outside the area its CRS covers"
            )
        step = snap or resolution
        ox, oy = origin
        spans = (
            (bounds[2] - bounds[0]) / resolution,
            (bounds[3] - bounds[1]) / resolution,
            *((b - o) / step for b, o in zip(bounds, (ox, oy, ox, oy), strict=True)),
        )
        if not all(math.isfinite(v) and abs(v) <= MAX_GRID_SIDE for v in spans):
            raise LimitError(
                f"a grid of {shorten(resolution)} m over bounds {shorten(bounds)} in "
                f"{shorten(crs)} would be more than {MAX_GRID_SIDE:,} pixels across; coarsen the "
                "grid or give smaller bounds"
            )
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
    """The WGS84 UTM zone CRS (``EPSG:326xx`` north, ``EPSG:327xx`` south) containing a point;
    ``SiteError`` (a ``ValueError``) outside the UTM range (latitude -80..84)."""
    lat0, lat1 = UTM_LAT_RANGE
    if not (-180.0 <= lon <= 180.0 and lat0 <= lat <= lat1):
        raise SiteError(
            f"({lon}, {lat}) is outside the UTM range: allowed longitude -180..180 and latitude "
            f"{lat0:g}..{lat1:g} (polar sites would need UPS, which sitewatch does not support)"
        )
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    code = (32600 if lat >= 0 else 32700) + zone
    return CRS.from_epsg(code).to_string()


def reproject_geometry(geom: BaseGeometry, src_crs: str, dst_crs: str) -> BaseGeometry:
    """``geom`` from one CRS to another (x/y = lon/lat order for geographic CRSs). Points
    outside the target's domain come out as ``inf``; an unknown CRS raises ``SiteError``."""
    try:
        tr = Transformer.from_crs(src_crs, dst_crs, always_xy=True)
    except (CRSError, ProjError, TypeError) as exc:
        raise SiteError(
            f"cannot reproject from {shorten(src_crs)} to {shorten(dst_crs)}: "
            f"{shorten_text(str(exc))}"
        ) from None

    def _apply(xy: Any) -> Any:
        return np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geom, _apply)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except TypeError:
        return False
