"""The STAC side of a built scenario: item ids, item JSON and the static catalog around them.

Items look like Earth Search v1 Sentinel-2 L2A items (asset keys, ``raster:bands`` scale and
offset, ``s2:processing_baseline``), and each asset carries the pixel lattice it is written on
(``proj:shape``, ``proj:transform``, with ``proj:epsg`` on the item), so a reader can take the
native grid from the item without opening the file.
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
from pipeline.sources.sensors import S2_BAND_IDS, S2_RESOLUTION
from pipeline.sources.synthetic.layout import lonlat_polygon
from pipeline.sources.synthetic.params import GENERATOR_VERSION, ScenarioParams
from pipeline.sources.synthetic.render import SceneMeta
from pipeline.sources.synthetic.schedule import acquired_at, boa_offset_dn
from pipeline.sources.synthetic.spectra import SPECTRAL_BANDS

COLLECTION_ID = "sentinel-2-l2a"
_BAND_ID = {name: band_id for band_id, name in S2_BAND_IDS.items()}


def item_id(site_id: str, day: date, platform: str) -> str:
    """An Earth-Search-like id, unique per site and date."""
    return f"S2{platform[-1].upper()}_SYN-{site_id}_{day:%Y%m%d}_0_L2A"


def item_dict(meta: SceneMeta, grids: Mapping[str, Grid]) -> dict[str, Any]:
    """The STAC item of a scene whose assets were written on ``grids`` (asset key -> grid)."""
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
        "earthsearch:boa_offset_applied": False,
        "view:sun_elevation": round(meta.sun[0], 3),
        "view:sun_azimuth": round(meta.sun[1], 3),
        "sitewatch:synthetic": True,
        "sitewatch:generator_version": GENERATOR_VERSION,
        # Ground features appear this many 10 m pixels east (x) and north (y) of their true place.
        "sitewatch:shift_px": [meta.shift_m[0] / 10.0, meta.shift_m[1] / 10.0],
    }
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
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="Sentinel-2 Level-2A (synthetic)",
        description="Synthetic Sentinel-2 L2A with Earth Search v1 asset keys and DN conventions.",
        extent=extent,
    )
    catalog.add_child(collection)
    for d in items:
        collection.add_item(pystac.Item.from_dict(d, migrate=False, preserve_dict=False))
    # The trailing separator tells pystac ``root`` is a folder even when its name has a dot.
    catalog.normalize_hrefs(os.path.join(str(root), ""))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"
