"""The reflectance bands every stage after ``read`` works on, in array order.

Canonical names are the Earth Search v1 asset keys; ``sources.sensors`` maps each collection's
band ids onto them. Kept at the bottom of the package so pure stages need no source module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
BAND_INDEX: Mapping[str, int] = {b: i for i, b in enumerate(BANDS)}

T = TypeVar("T")

# Native pixel size (m) of each band by platform prefix: Sentinel-2's visible and NIR bands are
# 10 m and its SWIR bands 20 m (resampled to 10 m they blur an edge over two pixels); every
# Landsat band here is 30 m.
_NATIVE_PIXEL_M: Mapping[str, Mapping[str, float]] = {
    "sentinel-2": {"blue": 10, "green": 10, "red": 10, "nir": 10, "swir16": 20, "swir22": 20},
    "landsat": dict.fromkeys(BANDS, 30.0),
}


def by_platform(table: Mapping[str, T], platform: str) -> T | None:
    """The entry of ``table`` (keyed by platform prefix, e.g. ``sentinel-2``) for ``platform``
    (e.g. ``Sentinel-2A``, any case); None when no prefix matches."""
    key = platform.lower()
    for prefix, value in table.items():
        if key.startswith(prefix):
            return value
    return None


def native_pixel_m(platform: str, band: str) -> float | None:
    """The native pixel size (m) of ``band`` on ``platform``; None if the platform is unknown."""
    sizes = by_platform(_NATIVE_PIXEL_M, platform)
    return None if sizes is None else float(sizes[band])


def rim_px(platforms: Iterable[str], grid_m: float, bands: Iterable[str] = BANDS) -> int:
    """How many pixels of a ``grid_m`` grid the mixed rim of a surface spans in ``bands``, as
    imaged by the coarsest of ``platforms``: the coarsest native pixel over the grid's. On a 10 m
    grid: 2 for Sentinel-2's SWIR, 1 for its visible and NIR, 3 for Landsat; 1 when no platform
    is known."""
    names = tuple(bands)
    sizes = [
        size
        for platform in platforms
        for size in (native_pixel_m(platform, band) for band in names)
        if size is not None
    ]
    if not sizes or grid_m <= 0:
        return 1
    return max(1, round(max(sizes) / grid_m))
