"""The STAC side of a built scenario: item ids, item JSON and the static catalog around them.

Items look like Earth Search v1 Sentinel-2 L2A items (asset keys, ``raster:bands`` scale and
offset, ``s2:processing_baseline``), and each asset carries the pixel lattice it is written on
(``proj:shape``, ``proj:transform``, with ``proj:epsg`` on the item), so a reader can take the
native grid from the item without opening the file. Landsat scenes of the ``landsat_until`` hard
case are Earth Search ``landsat-c2-l2`` items (30 m, ``raster:bands`` scale 2.75e-5 and offset
-0.2, ``qa_pixel``) in a collection of their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import shapely
from shapely.geometry import box, mapping

from pipeline.grid import Grid
from pipeline.radiometry import S2_SCALE
from pipeline.sources.sensors import LANDSAT_OFFSET, LANDSAT_SCALE, S2_BAND_IDS, S2_RESOLUTION
from pipeline.sources.synthetic.layout import lonlat_polygon
from pipeline.sources.synthetic.params import GENERATOR_VERSION, ScenarioParams
from pipeline.sources.synthetic.render import LANDSAT_ASSETS, LANDSAT_RESOLUTION, SceneMeta
from pipeline.sources.synthetic.schedule import acquired_at, boa_offset_dn
from pipeline.sources.synthetic.spectra import SPECTRAL_BANDS

COLLECTION_ID = "sentinel-2-l2a"
LANDSAT_COLLECTION_ID = "landsat-c2-l2"
_BAND_ID = {name: band_id for band_id, name in S2_BAND_IDS.items()}
# OLI band names of the Landsat asset keys.
_OLI_BAND = {"blue": "B2", "green": "B3", "red": "B4", "nir08": "B5", "swir16": "B6",
             "swir22": "B7", "qa_pixel": "QA_PIXEL"}  # fmt: skip
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
]


def item_id(site_id: str, day: date, platform: str) -> str:
    """An Earth-Search-like id, unique per site and date."""
    if platform.startswith("landsat"):
        return f"LC0{platform[-1]}_L2SP_SYN-{site_id}_{day:%Y%m%d}_02_T1"
    return f"S2{platform[-1].upper()}_SYN-{site_id}_{day:%Y%m%d}_0_L2A"


def _footprint(meta: SceneMeta) -> Any:
    left, bottom, right, top = meta.grid.bounds
    return lonlat_polygon(shapely.segmentize(box(left, bottom, right, top), 500.0), meta.grid.crs)


def _asset_lattice(written: Grid) -> dict[str, Any]:
    return {
        "proj:shape": [written.height, written.width],
        "proj:transform": [float(v) for v in written.transform[:6]],
    }


def item_dict(meta: SceneMeta, grids: Mapping[str, Grid]) -> dict[str, Any]:
    """The STAC item of a scene whose assets were written on ``grids`` (asset key -> grid)."""
    if meta.landsat:
        return _landsat_item_dict(meta, grids)
    grid = meta.grid
    epsg = int(grid.crs.split(":")[1])
    left, bottom, right, top = grid.bounds
    footprint = shapely.segmentize(box(left, bottom, right, top), 500.0)
    geom = lonlat_polygon(footprint, grid.crs)
    assets: dict[str, Any] = {}
    for key in (*SPECTRAL_BANDS, "scl"):
        res = S2_RESOLUTION[key]
        written = grids[key]
        band: dict[str, Any] = {"nodata": 0, "data_type": "uint8" if key == "scl" else "uint16"}
        asset: dict[str, Any] = {
            "href": f"./{key}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": f"{_BAND_ID[key]} - {res}m",
            "gsd": res,
            "proj:shape": [written.height, written.width],
            "proj:transform": [float(v) for v in written.transform[:6]],
            "roles": ["data"],
        }
        if key != "scl":
            offset = -boa_offset_dn(meta.baseline) * S2_SCALE
            band.update({"scale": S2_SCALE, "offset": offset, "spatial_resolution": res})
            asset["eo:bands"] = [{"name": _BAND_ID[key], "common_name": key}]
            asset["roles"] = ["data", "reflectance"]
        asset["raster:bands"] = [band]
        assets[key] = asset
    dt = acquired_at(meta.site_id, meta.day)
    properties: dict[str, Any] = {
        "datetime": dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "platform": meta.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        **meta.percentages,
        "proj:epsg": epsg,
        "s2:processing_baseline": meta.baseline,
        "s2:product_type": "S2MSI2A",
        "earthsearch:boa_offset_applied": meta.boa_offset_applied,
        "view:sun_elevation": round(meta.sun[0], 3),
        "view:sun_azimuth": round(meta.sun[1], 3),
        "sitewatch:synthetic": True,
        "sitewatch:generator_version": GENERATOR_VERSION,
        # Ground features appear this many 10 m pixels east (x) and north (y) of their true place.
        "sitewatch:shift_px": [meta.shift_m[0] / 10.0, meta.shift_m[1] / 10.0],
    }
    if meta.pixel_offset_dn is not None:  # the wrong-offset hard case: what the pixels carry
        properties["sitewatch:offset_in_pixels_dn"] = meta.pixel_offset_dn
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "id": item_id(meta.site_id, meta.day, meta.platform),
        "geometry": mapping(geom),
        "bbox": [round(v, 6) for v in geom.bounds],
        "properties": properties,
        "links": [],
        "assets": assets,
        "collection": COLLECTION_ID,
    }


def _landsat_item_dict(meta: SceneMeta, grids: Mapping[str, Grid]) -> dict[str, Any]:
    """An Earth Search v1 ``landsat-c2-l2``-like item (Landsat 8/9 OLI, Collection 2 Level-2)."""
    epsg = int(meta.grid.crs.split(":")[1])
    geom = _footprint(meta)
    assets: dict[str, Any] = {}
    for key in LANDSAT_ASSETS:
        band: dict[str, Any] = {"data_type": "uint16", "spatial_resolution": LANDSAT_RESOLUTION}
        asset: dict[str, Any] = {
            "href": f"./{key}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": f"{_OLI_BAND[key]} - {LANDSAT_RESOLUTION}m",
            "gsd": LANDSAT_RESOLUTION,
            **_asset_lattice(grids[key]),
            "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"],
        }
        if key == "qa_pixel":
            band.update({"nodata": 1, "unit": "bit index"})
        else:
            band.update({"nodata": 0, "scale": LANDSAT_SCALE, "offset": LANDSAT_OFFSET})
            asset["eo:bands"] = [{"name": _OLI_BAND[key], "common_name": key}]
            asset["roles"] = ["data", "reflectance"]
        asset["raster:bands"] = [band]
        assets[key] = asset
    dt = acquired_at(meta.site_id, meta.day)
    properties: dict[str, Any] = {
        "datetime": dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "platform": meta.platform,
        "constellation": "landsat",
        "instruments": ["oli", "tirs"],
        **meta.percentages,
        "proj:epsg": epsg,
        "landsat:collection_category": "T1",
        "landsat:collection_number": "02",
        "landsat:correction": "L2SP",
        "view:sun_elevation": round(meta.sun[0], 3),
        "view:sun_azimuth": round(meta.sun[1], 3),
        "sitewatch:synthetic": True,
        "sitewatch:generator_version": GENERATOR_VERSION,
        "sitewatch:shift_px": [meta.shift_m[0] / 10.0, meta.shift_m[1] / 10.0],
    }
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": _EXTENSIONS,
        "id": item_id(meta.site_id, meta.day, meta.platform),
        "geometry": mapping(geom),
        "bbox": [round(v, 6) for v in geom.bounds],
        "properties": properties,
        "links": [],
        "assets": assets,
        "collection": LANDSAT_COLLECTION_ID,
    }


def write_catalog(params: ScenarioParams, root: Path, items: list[dict[str, Any]]) -> Path:
    """Save ``items`` as a self-contained static catalog in ``root``; return its catalog.json."""
    catalog = pystac.Catalog(
        id="sitewatch-synthetic",
        title="sitewatch synthetic demo scenario",
        description=(
            "Generated Sentinel-2 L2A-like scenes of fictional sites with known truth "
            f"(pipeline.sources.synthetic, generator {GENERATOR_VERSION}, seed {params.seed}). "
            "Not real imagery."
        ),
    )
    landsat = [d for d in items if d["collection"] == LANDSAT_COLLECTION_ID]
    sentinel = [d for d in items if d["collection"] != LANDSAT_COLLECTION_ID]
    groups = [(COLLECTION_ID, sentinel)]
    if landsat:  # the landsat_until hard case only: the demo's catalog is as it was
        groups.append((LANDSAT_COLLECTION_ID, landsat))
    for collection_id, members in groups:
        collection = _collection(collection_id, members)
        catalog.add_child(collection)
        for d in members:
            collection.add_item(pystac.Item.from_dict(d, migrate=False, preserve_dict=False))
    # The trailing separator tells pystac ``root`` is a folder even when its name has a dot.
    catalog.normalize_hrefs(os.path.join(str(root), ""))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def _collection(collection_id: str, items: list[dict[str, Any]]) -> pystac.Collection:
    times = [datetime.fromisoformat(d["properties"]["datetime"]) for d in items]
    boxes = [d["bbox"] for d in items]
    corners = np.array(boxes, dtype=float).reshape(-1, 4)
    # Python floats: numpy scalars are not JSON for every serializer pystac may use (orjson).
    bbox: list[float] = (
        [float(v) for v in (*corners[:, :2].min(axis=0), *corners[:, 2:].max(axis=0))]
        if boxes
        else [-180, -90, 180, 90]
    )
    extent = pystac.Extent(
        pystac.SpatialExtent([bbox]),
        pystac.TemporalExtent([[min(times, default=None), max(times, default=None)]]),
    )
    if collection_id == LANDSAT_COLLECTION_ID:
        return pystac.Collection(
            id=collection_id,
            title="Landsat Collection 2 Level-2 (synthetic)",
            description="Synthetic Landsat 8/9 OLI C2 L2 with Earth Search v1 asset keys.",
            extent=extent,
        )
    return pystac.Collection(
        id=collection_id,
        title="Sentinel-2 Level-2A (synthetic)",
        description="Synthetic Sentinel-2 L2A with Earth Search v1 asset keys and DN conventions.",
        extent=extent,
    )
