"""The truth files of a scenario: per site, a GeoJSON feature per (year-state, layer), written
from the layout and read back as ``SiteTruth``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from pipeline.errors import SourceError
from pipeline.sources.synthetic.layout import as_multipolygon, lonlat_polygon, truth_geometries
from pipeline.sources.synthetic.params import ScenarioParams
from pipeline.sources.synthetic.sites import demo_sites


def truth_collection(
    site_id: str, years: Iterable[int], params: ScenarioParams | None = None
) -> dict[str, Any]:
    """The truth GeoJSON of a site: a feature per (year, layer), RFC 7946, 6 decimals, CCW.

    ``params`` brings the hard cases that change the truth (a road, a compound). A year whose
    state began mid-season (``construction_date``) says from when in ``state_from``; before that
    day the previous year's state held.
    """
    (site,) = demo_sites([site_id])
    crs = site.utm_crs
    centre = site.geometry_in(crs).centroid
    features = []
    built_on = params.construction_date if params is not None else None
    for year in years:
        geoms = truth_geometries(site_id, year, params)
        for layer, geom in zip(("footprint", "coal"), geoms, strict=True):
            utm = affinity.translate(geom, centre.x, centre.y)
            lonlat = as_multipolygon(lonlat_polygon(utm, crs)) if not utm.is_empty else utm
            properties: dict[str, Any] = {
                "site_id": site_id,
                "year": year,
                "layer": layer,
                "area_ha": round(float(utm.area) / 1e4, 4),
            }
            if built_on is not None and built_on.year == year and site_id == "demo-camp":
                properties["state_from"] = built_on.isoformat()
            features.append(
                {"type": "Feature", "properties": properties, "geometry": mapping(lonlat)}
            )
    return {"type": "FeatureCollection", "features": features}


def _geojson_text(doc: Mapping[str, Any]) -> str:
    """Compact, one feature per line, deterministic bytes."""
    lines = [json.dumps(f, separators=(",", ":")) for f in doc["features"]]
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def truth_text(site_id: str, years: Iterable[int], params: ScenarioParams | None = None) -> str:
    """The bytes of ``truth/<site_id>.geojson``: ``truth_collection`` as deterministic text."""
    return _geojson_text(truth_collection(site_id, years, params))


@dataclass(frozen=True)
class SiteTruth:
    """The true state of one site in one year-state, as read back from the truth file.

    Geometries are (Multi)Polygons in EPSG:4326 (empty when the layer is absent, e.g. coal at the
    control site); areas are hectares computed in UTM from the exact shapes.
    """

    site_id: str
    year: int
    footprint: Polygon | MultiPolygon
    coal: Polygon | MultiPolygon
    footprint_area_ha: float
    coal_area_ha: float


def read_truth(path: Path) -> dict[int, SiteTruth]:
    """Parse a ``truth/<site_id>.geojson`` file into one ``SiteTruth`` per year."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        layers: dict[tuple[int, str], tuple[Any, float, str]] = {}
        for f in doc["features"]:
            p = f["properties"]
            layers[(int(p["year"]), p["layer"])] = (
                shape(f["geometry"]),
                float(p["area_ha"]),
                p["site_id"],
            )
    except FileNotFoundError:
        raise SourceError(f"{path}: truth file not found") from None
    except (OSError, ValueError, KeyError, TypeError, shapely.errors.ShapelyError) as exc:
        raise SourceError(f"{path}: not a readable truth file ({exc})") from None
    out = {}
    for year in sorted({y for y, _ in layers}):
        try:
            fp, fp_ha, site_id = layers[(year, "footprint")]
            coal, coal_ha, _ = layers[(year, "coal")]
        except KeyError:
            raise SourceError(f"{path}: year {year} lacks a footprint or coal feature") from None
        out[year] = SiteTruth(site_id, year, fp, coal, fp_ha, coal_ha)
    return out
