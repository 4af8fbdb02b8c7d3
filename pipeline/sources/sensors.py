"""Per-collection facts: band names, asset keys, DN scale/offset and mask classes.

Canonical band names are the Earth Search v1 asset keys. Every stage after ``read`` works on
surface reflectance (float32) in the order of ``BANDS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.bands import BAND_INDEX, BANDS

__all__ = ["BANDS", "BAND_INDEX", "Radiometry", "radiometry_for", "s2_radiometry"]

# Sentinel-2 band ids <-> canonical names (Earth Search v1 keys).
S2_BAND_IDS: Mapping[str, str] = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B09": "nir09",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}
# Native resolution (m) of each Sentinel-2 asset.
S2_RESOLUTION: Mapping[str, int] = {
    "coastal": 60, "blue": 10, "green": 10, "red": 10, "rededge1": 20, "rededge2": 20,
    "rededge3": 20, "nir": 10, "nir08": 20, "nir09": 60, "swir16": 20, "swir22": 20, "scl": 20,
}  # fmt: skip

# Sentinel-2 L2A: reflectance = (DN + BOA_ADD_OFFSET) * 1e-4; offset -1000 from baseline 04.00.
S2_SCALE = 1e-4
S2_BOA_OFFSET_DN = -1000
S2_OFFSET_BASELINE = (4, 0)

# Scene classification (SCL) classes; see DOMAIN.md "Masks".
SCL_CLASSES: Mapping[int, str] = {
    0: "no data", 1: "saturated or defective", 2: "dark area / topographic shadow",
    3: "cloud shadow", 4: "vegetation", 5: "not vegetated", 6: "water", 7: "unclassified",
    8: "cloud medium probability", 9: "cloud high probability", 10: "thin cirrus", 11: "snow",
}  # fmt: skip


@dataclass(frozen=True)
class Radiometry:
    """How to turn one scene's DN into reflectance: ``reflectance = (DN + offset_dn) * scale``."""

    scale: float
    offset_dn: float
    reason: str


def parse_baseline(value: Any) -> tuple[int, int] | None:
    """``"04.00"`` -> (4, 0); None when absent or unparseable."""
    if value is None:
        return None
    try:
        major, minor = str(value).split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return None


def s2_radiometry(properties: Mapping[str, Any]) -> Radiometry:
    """Decide the BOA offset of a Sentinel-2 L2A item from its processing baseline and flags.

    The acquisition date is not a reliable test (Collection-1 reprocessing puts baseline 05.xx on
    old dates); ``s2:processing_baseline`` is. ``earthsearch:boa_offset_applied: true`` means the
    provider already shifted the DN, so no offset is applied again.
    """
    baseline = parse_baseline(properties.get("s2:processing_baseline"))
    applied = properties.get("earthsearch:boa_offset_applied")
    if baseline is None:
        return Radiometry(S2_SCALE, 0.0, "no s2:processing_baseline; assumed pre-04.00, no offset")
    label = f"{baseline[0]:02d}.{baseline[1]:02d}"
    if baseline < S2_OFFSET_BASELINE:
        return Radiometry(S2_SCALE, 0.0, f"baseline {label} < 04.00: no BOA offset")
    if applied is True:
        return Radiometry(S2_SCALE, 0.0, f"baseline {label}, offset already applied by provider")
    return Radiometry(S2_SCALE, float(S2_BOA_OFFSET_DN), f"baseline {label} >= 04.00: DN - 1000")


def radiometry_for(collection: str, properties: Mapping[str, Any]) -> Radiometry:
    """The DN -> reflectance rule for an item of ``collection``."""
    if collection.startswith("sentinel-2"):
        return s2_radiometry(properties)
    raise ValueError(f"collection {collection!r} has no radiometry rule; supported: sentinel-2-l2a")
