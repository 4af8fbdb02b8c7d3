"""The reflectance bands every stage after ``read`` works on, in array order.

Canonical names are the Earth Search v1 asset keys; ``sources.sensors`` maps each collection's
band ids onto them. Kept at the bottom of the package so pure stages need no source module.
"""

from __future__ import annotations

from collections.abc import Mapping

BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
BAND_INDEX: Mapping[str, int] = {b: i for i, b in enumerate(BANDS)}
