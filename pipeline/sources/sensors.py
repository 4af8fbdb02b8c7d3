"""Sensor profiles: what the read edge must know about one collection of one provider.

A profile holds the asset-key map (provider keys for the canonical bands of ``pipeline.bands``),
the DN -> reflectance rule, the mask decoder (Sentinel-2 SCL classes or Landsat QA_PIXEL bits)
and how the native pixel lattice is found (``proj:transform`` of the item, never a constant).
Every stage after ``read`` sees reflectance and a clear mask only, never a sensor's own bands.

The rules follow DOMAIN.md "Radiometry": Sentinel-2 L2A reflectance = (DN + BOA_ADD_OFFSET) /
10000 with the offset -1000 from processing baseline 04.00 on, decided from the baseline and the
provider's flag, then verified from the pixels (``radiometry.verify_boa_offset``); Landsat C2 L2 reflectance
= DN * 0.0000275 - 0.2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from rasterio.crs import CRS

from pipeline.bands import BAND_INDEX, BANDS
from pipeline.grid import DEFAULT_SNAP_M
from pipeline.radiometry import S2_BOA_OFFSET_DN, S2_SCALE, Radiometry
from pipeline.sources.base import Scene

__all__ = [
    "BANDS",
    "BAND_INDEX",
    "PROFILES",
    "Radiometry",
    "SensorProfile",
    "detect_profile",
    "s2_radiometry",
]

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
S2_OFFSET_BASELINE = (4, 0)
# Landsat Collection 2 Level-2 surface reflectance.
LANDSAT_SCALE = 0.0000275
LANDSAT_OFFSET = -0.2

# Scene classification (SCL) classes; see DOMAIN.md "Masks".
SCL_CLASSES: Mapping[int, str] = {
    0: "no data", 1: "saturated or defective", 2: "dark area / topographic shadow",
    3: "cloud shadow", 4: "vegetation", 5: "not vegetated", 6: "water", 7: "unclassified",
    8: "cloud medium probability", 9: "cloud high probability", 10: "thin cirrus", 11: "snow",
}  # fmt: skip
# Landsat Collection 2 QA_PIXEL bits (USGS LSDS-1619); 8-15 are two-bit confidences.
QA_PIXEL_BITS: Mapping[int, str] = {
    0: "fill", 1: "dilated cloud", 2: "cirrus", 3: "cloud", 4: "cloud shadow", 5: "snow",
    6: "clear", 7: "water",
}  # fmt: skip

MaskKind = Literal["scl", "qa_pixel"]


def parse_baseline(value: Any) -> tuple[int, int] | None:
    """``"04.00"`` -> (4, 0); None when absent or unparseable."""
    if value is None:
        return None
    try:
        major, minor = str(value).split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return None


def s2_radiometry(properties: Mapping[str, Any], *, honour_flag: bool = True) -> Radiometry:
    """Decide the BOA offset of a Sentinel-2 L2A item from its processing baseline and flag.

    The acquisition date is not a reliable test (Collection-1 reprocessing puts baseline 05.xx on
    old dates); ``s2:processing_baseline`` is. With ``honour_flag`` (Earth Search),
    ``earthsearch:boa_offset_applied: true`` means the provider already shifted the DN.
    """
    baseline = parse_baseline(properties.get("s2:processing_baseline"))
    applied = properties.get("earthsearch:boa_offset_applied") if honour_flag else None
    if baseline is None:
        return Radiometry(S2_SCALE, 0.0, "no s2:processing_baseline; assumed pre-04.00, no offset")
    label = f"{baseline[0]:02d}.{baseline[1]:02d}"
    if baseline < S2_OFFSET_BASELINE:
        return Radiometry(S2_SCALE, 0.0, f"baseline {label} < 04.00: no BOA offset")
    if applied is True:
        return Radiometry(S2_SCALE, 0.0, f"baseline {label}, offset already applied by provider")
    return Radiometry(S2_SCALE, S2_BOA_OFFSET_DN, f"baseline {label} >= 04.00: DN - 1000")


def raster_bands_radiometry(
    raster_bands: Sequence[Mapping[str, Any]], default: Radiometry, what: str
) -> Radiometry:
    """The STAC ``raster:bands`` scale/offset of an asset where present, else ``default``."""
    if not raster_bands or "scale" not in raster_bands[0]:
        return default
    scale = float(raster_bands[0]["scale"])
    offset = float(raster_bands[0].get("offset", 0.0))
    if not np.isfinite(scale) or scale <= 0 or not np.isfinite(offset):
        return default
    return Radiometry(
        scale, offset / scale, f"{what}: raster:bands scale {scale:g} offset {offset:g}"
    )


@dataclass(frozen=True)
class SensorProfile:
    """What reading one collection of one provider takes.

    ``assets`` maps canonical band names to the provider's asset keys; ``mask_asset`` is the
    SCL or QA_PIXEL asset, decoded as ``mask_kind``; ``snap_m`` is the coarsest native pixel of
    the bands used, so grids snapped to it keep every band's pixels aligned; ``version`` enters
    the chip cache key (bump it when a read rule changes).
    """

    name: str
    family: Literal["sentinel-2", "landsat"]
    assets: Mapping[str, str]
    mask_asset: str
    mask_kind: MaskKind
    radiometry_rule: Literal["s2-earth-search", "s2-baseline", "raster-bands"]
    native_resolution_m: float
    snap_m: float
    saturation_asset: str | None = None
    verify_offset: bool = False
    version: str = "1"

    def radiometry(
        self, properties: Mapping[str, Any], raster_bands: Sequence[Mapping[str, Any]] = ()
    ) -> Radiometry:
        """The DN -> reflectance rule for one item (before the pixel check)."""
        if self.radiometry_rule == "s2-earth-search":
            # raster:bands offset is unreliable here (earth-search#9): flag and baseline decide.
            return s2_radiometry(properties, honour_flag=True)
        if self.radiometry_rule == "s2-baseline":
            return s2_radiometry(properties, honour_flag=False)
        default = (
            Radiometry(LANDSAT_SCALE, LANDSAT_OFFSET / LANDSAT_SCALE, "Landsat C2 L2 rule")
            if self.family == "landsat"
            else Radiometry(S2_SCALE, S2_BOA_OFFSET_DN, "Collection-1 rule: DN - 1000")
        )
        return raster_bands_radiometry(raster_bands, default, self.name)

    def asset_keys(self) -> tuple[str, ...]:
        """Every asset this profile reads, reflectance bands first."""
        extra = (self.saturation_asset,) if self.saturation_asset else ()
        return (*(self.assets[b] for b in BANDS), self.mask_asset, *extra)


_ES_S2 = {b: b for b in BANDS}
_PC_S2 = {v: k for k, v in S2_BAND_IDS.items() if v in BANDS}
_USGS_OLI = {b: f"SR_B{n}.TIF" for b, n in zip(BANDS, (2, 3, 4, 5, 6, 7), strict=True)}
_USGS_TM = {b: f"SR_B{n}.TIF" for b, n in zip(BANDS, (1, 2, 3, 4, 5, 7), strict=True)}
_LANDSAT = {"blue": "blue", "green": "green", "red": "red", "nir": "nir08", "swir16": "swir16",
            "swir22": "swir22"}  # fmt: skip

PROFILES: Mapping[str, SensorProfile] = {
    p.name: p
    for p in (
        SensorProfile(
            "earth-search/sentinel-2-l2a", "sentinel-2", _ES_S2, "scl", "scl",
            "s2-earth-search", 10.0, 60.0, verify_offset=True,
        ),
        SensorProfile(
            "earth-search/sentinel-2-c1-l2a", "sentinel-2", _ES_S2, "scl", "scl",
            "raster-bands", 10.0, 60.0, verify_offset=True,
        ),
        SensorProfile(
            "planetary-computer/sentinel-2-l2a", "sentinel-2", _PC_S2, "SCL", "scl",
            "s2-baseline", 10.0, 60.0, verify_offset=True,
        ),
        SensorProfile(
            "landsat-c2-l2", "landsat", _LANDSAT, "qa_pixel", "qa_pixel",
            "raster-bands", 30.0, 30.0, saturation_asset="qa_radsat",
        ),
        # USGS's own STAC (landsatlook, collection landsat-c2l2-sr): file names as asset keys,
        # band numbers differing between OLI and TM/ETM+.
        SensorProfile(
            "usgs/landsat-c2l2-sr-oli", "landsat", _USGS_OLI, "QA_PIXEL.TIF", "qa_pixel",
            "raster-bands", 30.0, 30.0, saturation_asset="QA_RADSAT.TIF",
        ),
        SensorProfile(
            "usgs/landsat-c2l2-sr-tm", "landsat", _USGS_TM, "QA_PIXEL.TIF", "qa_pixel",
            "raster-bands", 30.0, 30.0, saturation_asset="QA_RADSAT.TIF",
        ),
    )
}  # fmt: skip


def detect_profile(collection: str, asset_keys: Sequence[str], platform: str = "") -> SensorProfile:
    """The profile for an item of ``collection`` with these asset keys (and ``platform``).

    Providers name one collection alike and differ in asset keys (Planetary Computer ``B02``,
    Earth Search ``blue``, USGS ``SR_B2.TIF``), so the keys decide between them. Raises
    ``ValueError`` naming what is supported.
    """
    name = collection.lower()
    keys = set(asset_keys)
    if "landsat" in name:
        if "QA_PIXEL.TIF" in keys:
            oli = any(p in platform.lower().replace("_", "-") for p in ("landsat-8", "landsat-9"))
            return PROFILES["usgs/landsat-c2l2-sr-oli" if oli else "usgs/landsat-c2l2-sr-tm"]
        return PROFILES["landsat-c2-l2"]
    if name.startswith("sentinel-2"):
        if name.startswith("sentinel-2-c1"):
            return PROFILES["earth-search/sentinel-2-c1-l2a"]
        if "B02" in keys or "SCL" in keys:
            return PROFILES["planetary-computer/sentinel-2-l2a"]
        return PROFILES["earth-search/sentinel-2-l2a"]
    raise ValueError(
        f"collection {collection!r} has no sensor profile; supported: Sentinel-2 L2A "
        "(sentinel-2-l2a, sentinel-2-c1-l2a) and Landsat Collection 2 Level-2 (landsat-c2-l2)"
    )


def lattice_origin(scenes: Sequence[Scene], crs: str, snap: float) -> tuple[float, float]:
    """Where the data's pixel lattice lies, modulo ``snap``: from ``proj:transform`` of the
    first scene in ``crs`` that declares one (its finest reflectance band); (0, 0) otherwise.
    A grid snapped to it reads Landsat (corners at 15 m past 30 m multiples) without a
    half-pixel shift."""
    target = CRS.from_user_input(crs)
    for scene in scenes:
        profile = PROFILES.get(scene.profile)
        if profile is None or scene.crs is None or CRS.from_user_input(scene.crs) != target:
            continue
        asset = scene.assets.get(profile.assets["blue"])
        if asset is None or asset.transform is None:
            continue
        return (round(asset.transform[2] % snap, 6), round(asset.transform[5] % snap, 6))
    return (0.0, 0.0)


def snap_for(scenes: Sequence[Scene]) -> float:
    """The coarsest native lattice among the scenes' profiles (Sentinel-2 60 m, Landsat 30 m)."""
    snaps = {PROFILES[s.profile].snap_m for s in scenes if s.profile in PROFILES}
    return max(snaps) if snaps else DEFAULT_SNAP_M
