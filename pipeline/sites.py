"""The site (AOI) library: load and validate site GeoJSON, and derive each site's grid."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from pipeline.errors import SiteError
from pipeline.grid import DEFAULT_SNAP_M, Grid, reproject_geometry, utm_crs_for

SITE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SITE_KINDS = ("camp", "mine", "camp-mine", "port", "control", "other")
REQUIRED_PROPERTIES = ("id", "name", "kind", "source")


@dataclass(frozen=True)
class Site:
    """One watched place. ``geometry`` is a (Multi)Polygon in WGS84 longitude/latitude."""

    id: str
    name: str
    kind: str
    geometry: Polygon | MultiPolygon
    source: str
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def utm_crs(self) -> str:
        c = self.geometry.centroid
        return utm_crs_for(c.x, c.y)

    def geometry_in(self, crs: str) -> BaseGeometry:
        """The site geometry in another CRS (always_xy: lon/lat order)."""
        return reproject_geometry(self.geometry, "EPSG:4326", crs)

    def grid(
        self,
        resolution_m: float = 10.0,
        buffer_m: float = 200.0,
        snap_m: float = DEFAULT_SNAP_M,
        origin: tuple[float, float] = (0.0, 0.0),
    ) -> Grid:
        """The site's analysis grid: UTM zone of its centroid, site bounds + buffer, snapped to
        the data's lattice (``origin``, see ``Grid.from_bounds``)."""
        crs = self.utm_crs
        bounds = self.geometry_in(crs).buffer(buffer_m).bounds
        return Grid.from_bounds(
            crs, bounds, resolution_m, snap=max(snap_m, resolution_m), origin=origin
        )


def load_sites(path: str | Path, only: Iterable[str] | None = None) -> list[Site]:
    """Load and validate a site FeatureCollection; ``only`` keeps the listed ids (in file order)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SiteError(f"{path}: site file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SiteError(f"{path}: not readable as GeoJSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise SiteError(f"{path}: top level must be a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise SiteError(f"{path}: 'features' must be a non-empty list of site features")

    sites = [_parse_feature(path, i, f) for i, f in enumerate(features)]
    seen: dict[str, int] = {}
    for i, s in enumerate(sites):
        if s.id in seen:
            raise SiteError(
                f"{path}: features[{i}].properties.id {s.id!r} repeats features[{seen[s.id]}]; "
                "site ids must be unique"
            )
        seen[s.id] = i
    if only is not None:
        wanted = list(only)
        missing = [w for w in wanted if w not in seen]
        if missing:
            raise SiteError(f"{path}: site id(s) {missing} not found; available: {sorted(seen)}")
        sites = [s for s in sites if s.id in set(wanted)]
    return sites


def _parse_feature(path: Path, index: int, feature: Any) -> Site:
    where = f"{path}: features[{index}]"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise SiteError(f"{where}: must be a GeoJSON Feature")
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise SiteError(f"{where}.properties: must be an object")
    for key in REQUIRED_PROPERTIES:
        if not isinstance(props.get(key), str) or not props[key].strip():
            raise SiteError(
                f"{where}.properties.{key}: required non-empty string, got {props.get(key)!r}"
            )
    site_id = props["id"]
    if not SITE_ID_PATTERN.match(site_id):
        raise SiteError(
            f"{where}.properties.id: {site_id!r} is not safe as a file name; allowed: lower-case "
            "letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters"
        )
    if props["kind"] not in SITE_KINDS:
        raise SiteError(f"{where}.properties.kind: {props['kind']!r} is not one of {SITE_KINDS}")
    try:
        geom = shape(feature.get("geometry"))
    except Exception as exc:  # shapely raises several types for malformed GeoJSON geometry
        raise SiteError(f"{where}.geometry: not a valid GeoJSON geometry ({exc})") from None
    if not isinstance(geom, Polygon | MultiPolygon):
        raise SiteError(
            f"{where}.geometry: type {geom.geom_type} not allowed; use Polygon or MultiPolygon"
        )
    if geom.is_empty:
        raise SiteError(f"{where}.geometry: empty")
    lon0, lat0, lon1, lat1 = geom.bounds
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise SiteError(
            f"{where}.geometry: bounds {geom.bounds} outside WGS84 (lon -180..180, lat -90..90); "
            "coordinates must be longitude, latitude in EPSG:4326"
        )
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise SiteError(
            f"{where}.geometry: invalid polygon ({reason}); fix it, e.g. with QGIS 'Fix geometries'"
        )
    extra = {k: v for k, v in props.items() if k not in REQUIRED_PROPERTIES}
    return Site(site_id, props["name"], props["kind"], geom, props["source"], extra)
