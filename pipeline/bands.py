"""The reflectance bands every stage after ``read`` works on, in array order.

Canonical names are the Earth Search v1 asset keys; ``sources.sensors`` maps each collection's
band ids onto them. Kept at the bottom of the package so pure stages need no source module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
BAND_INDEX: Mapping[str, int] = {b: i for i, b in enumerate(BANDS)}

# The native pixel (m) of the visible and NIR bands by platform prefix: 10 m on Sentinel-2
# (its SWIR bands are 20 m), 30 m on Landsat. A surface's mixed rim is this wide.
_NATIVE_PIXEL_M: Mapping[str, float] = {"sentinel-2": 10.0, "landsat": 30.0}


def native_pixel_m(platform: str) -> float | None:
    """The native pixel size (m) of ``platform``'s visible and NIR bands; None if unknown."""
    key = platform.lower()
    for prefix, size in _NATIVE_PIXEL_M.items():
        if key.startswith(prefix):
            return size
    return None


def rim_px(platforms: Iterable[str], grid_m: float) -> int:
    """How many pixels of a ``grid_m`` grid the mixed rim of a surface spans when the coarsest
    of ``platforms`` imaged it: one for Sentinel-2 on a 10 m grid, three for Landsat's 30 m
    pixels resampled to 10 m; one when no platform is known."""
    sizes = [s for s in (native_pixel_m(p) for p in platforms) if s is not None]
    if not sizes or grid_m <= 0:
        return 1
    return max(1, round(max(sizes) / grid_m))
