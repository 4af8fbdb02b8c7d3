"""The site (AOI) library: load and validate site GeoJSON, and derive each site's grid."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import shapely
from pyproj import Geod
from shapely.errors import ShapelyError
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from pipeline.errors import ConfigError, LimitError, SiteError
from pipeline.grid import DEFAULT_SNAP_M, UTM_LAT_RANGE, Grid, reproject_geometry, utm_crs_for
from pipeline.model import shorten, shorten_text

SITE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SITE_KINDS = ("camp", "mine", "camp-mine", "port", "control", "other")
REQUIRED_PROPERTIES = ("id", "name", "kind", "source")
# A site file is a few features typed or drawn by hand; larger is a mistake (a whole country's
# boundaries, a raster exported as polygons) that would exhaust memory before any check.
MAX_SITE_FILE_BYTES = 50_000_000

# Memory of one site-year, per pixel of its grid (buffer included), measured with tracemalloc
# on `recipe.site_year` (60 looks from June to November, the README's 40-60 Sentinel-2 scenes):
# the looks hold 6 float32 bands + a clear mask each (60 x 25 B = 1.5 KB), the recipe's stacks,
# NaN-masked copy and median/percentile temporaries add 2.8 KB at peak: ~4.3 KB, rounded up
# to 4.5 KB for the reads' own buffers. Each worker holds one site-year.
BYTES_PER_GRID_PIXEL = 4_500
# 4 Mpx x 4.5 KB = 18 GB: one worker's site-year fits in 24 GB with room for the OS, Python,
# GDAL's cache and the driver's per-year results. 2,000 x 2,000 pixels: 400 km2 at 10 m.
DEFAULT_MAX_GRID_PIXELS = 4_000_000
# At 20 m (1 km2 = 2,500 pixels) a 1,500 km2 site with its buffer is just under 4 Mpx: any site
# within this area fits the default pixel limit at 20 m or coarser. The whole-camp box of
# Kwanliso 16 (1,025 km2, the largest documented) fits; at 10 m its 10.7 Mpx grid is refused
# with the resolution that would fit.
DEFAULT_MAX_SITE_AREA_KM2 = 1_500.0

_GEOD = Geod(ellps="WGS84")


class SiteLimits(Protocol):
    """What ``check_site_limits`` needs (``config.LimitsConfig`` is one)."""

    @property
    def max_site_area_km2(self) -> float: ...

    @property
    def max_grid_pixels(self) -> int: ...


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
        """The UTM zone of the site's centroid; ``SiteError`` naming the site outside the UTM
        latitudes (-80..84)."""
        c = self.geometry.centroid
        try:
            return utm_crs_for(c.x, c.y)
        except SiteError as exc:
            raise SiteError(f"site {self.id}: centroid {exc}; move or split the site") from None

    @property
    def area_km2(self) -> float:
        """The geodesic area of the site (WGS84 ellipsoid), without the buffer."""
        area, _perimeter = _GEOD.geometry_area_perimeter(self.geometry)
        return abs(float(area)) / 1e6

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
        if not (math.isfinite(buffer_m) and buffer_m >= 0):
            raise ConfigError(f"grid buffer {shorten(buffer_m)} must be a finite number of m >= 0")
        crs = self.utm_crs
        try:
            projected = self.geometry_in(crs)
            if not all(math.isfinite(v) for v in projected.bounds):
                lon0, _, lon1, _ = self.geometry.bounds
                raise SiteError(
                    f"longitudes {lon0:g}..{lon1:g} do not project into the UTM zone of the "
                    f"centroid ({crs}); a site must span a few degrees at most: split it"
                )
            try:
                bounds = projected.buffer(buffer_m).bounds
            except ShapelyError as exc:
                raise SiteError(
                    f"its geometry cannot be buffered in {crs} ({shorten_text(str(exc))})"
                ) from None
            return Grid.from_bounds(
                crs, bounds, resolution_m, snap=max(snap_m, resolution_m), origin=origin
            )
        except SiteError as exc:
            raise SiteError(f"site {self.id}: {exc}") from None


def check_site_limits(sites: Sequence[Site], grids: Mapping[str, Grid], limits: SiteLimits) -> None:
    """Refuse, before any search or read, a site larger than ``limits.max_site_area_km2`` or
    whose grid (``grids[site.id]``) has more than ``limits.max_grid_pixels`` pixels, with a
    ``LimitError`` naming the site, its size, the limit and what to do. Sites without a grid in
    ``grids`` get the area check only."""
    for site in sites:
        area = site.area_km2
        if not area <= limits.max_site_area_km2:
            raise LimitError(
                f"site {site.id}: area {area:,.0f} km2 exceeds limits.max_site_area_km2 = "
                f"{limits.max_site_area_km2:,.0f} km2 (about what 24 GB holds at 20 m); split it "
                "into smaller sites in the site file, or raise limits.max_site_area_km2 on a "
                f"machine with more memory (each worker needs ~{BYTES_PER_GRID_PIXEL:,} bytes per "
                "grid pixel)"
            )
    for site in sites:
        grid = grids.get(site.id)
        if grid is None:
            continue
        pixels = grid.width * grid.height
        if pixels <= limits.max_grid_pixels:
            continue
        res = grid.resolution
        fits = res * math.sqrt(pixels / limits.max_grid_pixels)
        coarser = math.ceil(fits / 10.0) * 10.0
        raise LimitError(
            f"site {site.id}: its grid is {grid.width:,} x {grid.height:,} = {pixels:,} pixels at "
            f"{res:g} m (buffer included), over limits.max_grid_pixels = "
            f"{limits.max_grid_pixels:,} (one site-year needs ~{BYTES_PER_GRID_PIXEL:,} bytes per "
            f"pixel per worker: ~{pixels * BYTES_PER_GRID_PIXEL / 1e9:,.0f} GB); coarsen the grid "
            f"(grid.resolution_m: {coarser:g} or more fits), split the site, or raise "
            "limits.max_grid_pixels on a machine with more memory"
        )


def load_sites(path: str | Path, only: Iterable[str] | None = None) -> list[Site]:
    """Load and validate a site FeatureCollection; ``only`` keeps the listed ids (in file order)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_SITE_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SiteError(f"{path}: site file not found") from None
    except (OSError, ValueError) as exc:
        raise SiteError(f"{path}: cannot read the site file ({exc})") from None
    if len(data) > MAX_SITE_FILE_BYTES:
        raise LimitError(
            f"{path}: site file larger than {MAX_SITE_FILE_BYTES // 1_000_000} MB; a site file "
            "holds a few hand-made polygons: simplify or split it"
        )
    try:
        doc = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise SiteError(f"{path}: not readable as GeoJSON (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise SiteError(f"{path}: not readable as GeoJSON ({shorten_text(str(exc))})") from None
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
            raise SiteError(
                f"{path}: site id(s) {shorten(missing)} not found; available: "
                f"{shorten(sorted(seen), 1000)}"
            )
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
                f"{where}.properties.{key}: required non-empty string, got "
                f"{shorten(props.get(key))}"
            )
    site_id = props["id"]
    if not SITE_ID_PATTERN.match(site_id):
        raise SiteError(
            f"{where}.properties.id: {shorten(site_id)} is not safe as a file name; allowed: lower-case "
            "letters, digits, '-' and '_', starting with a letter or digit, at most 63 characters"
        )
    if props["kind"] not in SITE_KINDS:
        raise SiteError(
            f"{where}.properties.kind: {shorten(props['kind'])} is not one of {SITE_KINDS}"
        )
    try:
        geom = shape(feature.get("geometry"))
    except Exception as exc:  # shapely raises several types for malformed GeoJSON geometry
        raise SiteError(
            f"{where}.geometry: not a valid GeoJSON geometry ({shorten_text(str(exc))})"
        ) from None
    if not isinstance(geom, Polygon | MultiPolygon):
        raise SiteError(
            f"{where}.geometry: type {geom.geom_type} not allowed; use Polygon or MultiPolygon"
        )
    if geom.is_empty:
        raise SiteError(f"{where}.geometry: empty")
    lon0, lat0, lon1, lat1 = geom.bounds
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise SiteError(
            f"{where}.geometry: bounds {shorten(geom.bounds)} outside WGS84 (lon -180..180, lat -90..90); "
            "coordinates must be longitude, latitude in EPSG:4326"
        )
    if not (UTM_LAT_RANGE[0] <= lat0 and lat1 <= UTM_LAT_RANGE[1]):
        raise SiteError(
            f"{where} (site {site_id}): latitudes {lat0:g}..{lat1:g} reach outside the UTM "
            f"range; allowed latitudes {UTM_LAT_RANGE[0]:g}..{UTM_LAT_RANGE[1]:g} (polar sites "
            "would need UPS, which sitewatch does not support)"
        )
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise SiteError(
            f"{where}.geometry: invalid polygon ({shorten_text(reason)}); fix it, e.g. with QGIS 'Fix geometries'"
        )
    extra = {k: v for k, v in props.items() if k not in REQUIRED_PROPERTIES}
    return Site(site_id, props["name"], props["kind"], geom, props["source"], extra)
