"""The site (AOI) library: load and validate site GeoJSON, and derive each site's grid."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import shapely
from pyproj import Geod
from shapely.errors import ShapelyError
from shapely.geometry import LinearRing, MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from pipeline.errors import ConfigError, LimitError, SiteError
from pipeline.grid import DEFAULT_SNAP_M, UTM_LAT_RANGE, Grid, reproject_geometry, utm_crs_for
from pipeline.model import shorten, shorten_text

SITE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: What a site is. ``adjacent_zone`` sites are derived by :func:`adjacent_zones`, not drawn.
SITE_KINDS = ("kwanliso", "kyohwaso", "coal_mine", "coal_port", "adjacent_zone", "control", "other")
#: Kinds a site file used before the site library (issue 7), and what they are now.
RENAMED_KINDS = {
    "camp": "kwanliso",
    "camp-mine": "kwanliso",
    "mine": "coal_mine",
    "port": "coal_port",
}
#: Kinds whose whole-site polygons get an adjacent zone by default (the zones beside the camps,
#: where released prisoners and their families live).
CAMP_KINDS = ("kwanliso", "kyohwaso")
CONFIDENCE_LEVELS = ("high", "medium", "low")
SCOPES = ("whole-site", "focus-area")
REQUIRED_PROPERTIES = ("id", "name", "kind")
ADJACENT_SUFFIX = "-adjacent"
# A site file is a few features typed or drawn by hand; larger is a mistake (a whole country's
# boundaries, a raster exported as polygons) that would exhaust memory before any check.
MAX_SITE_FILE_BYTES = 50_000_000

# Memory of one site-year, per pixel of its grid (buffer included). Read whole (``grid.chunk_px:
# null``), measured with tracemalloc on `recipe.site_year` (60 looks from June to November): the
# looks hold 6 float32 bands + a clear mask each (60 x 25 B = 1.5 KB), the recipe's stacks and
# temporaries add 2.8 KB at peak: ~4.3 KB, rounded up to 4.5 KB. Read by chunks (the default,
# ``pipeline.chunks``), only the whole-site products stay: measured peak RSS of a whole run,
# 1.99 GB for a 5.5 Mpx site over ten years of 12 looks and 2.6 GB for one year of 30 looks
# (benchmarks/whole_run.py, benchmarks/scaling.py): ~500 B per pixel.
WHOLE_GRID_BYTES_PER_PIXEL = 4_500
BYTES_PER_GRID_PIXEL = 500
# 12 Mpx x 500 B = 6 GB by chunks: the whole-camp box of Kwanliso 16 (1,025 km2, the largest
# documented; 10.7 Mpx at 10 m) runs at 10 m. Read whole, a grid must also stay within 4 Mpx
# (x 4.5 KB = 18 GB: one worker's site-year fits in 24 GB).
DEFAULT_MAX_GRID_PIXELS = 12_000_000
WHOLE_GRID_MAX_PIXELS = 4_000_000
# At 20 m (1 km2 = 2,500 pixels) a 1,500 km2 site with its buffer is just under 4 Mpx: any site
# within this area fits a whole-grid read at 20 m or coarser.
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
    def parent(self) -> str | None:
        """The id of the site this one is a focus area (or adjacent zone) of."""
        parent = self.properties.get("parent")
        return parent if isinstance(parent, str) else None

    @property
    def confidence(self) -> str | None:
        """``location_confidence.level`` (high, medium, low), if the file gives one."""
        conf = self.properties.get("location_confidence")
        level = conf.get("level") if isinstance(conf, Mapping) else None
        return level if isinstance(level, str) else None

    @property
    def sources(self) -> tuple[str, ...]:
        """Every cited source: ``sources`` (a list) or else ``source``."""
        listed = self.properties.get("sources")
        if isinstance(listed, list) and listed:
            return tuple(str(v) for v in listed)
        return (self.source,)

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


def check_site_limits(
    sites: Sequence[Site],
    grids: Mapping[str, Grid],
    limits: SiteLimits,
    *,
    chunked: bool = True,
) -> None:
    """Refuse, before any search or read, a site larger than ``limits.max_site_area_km2`` or
    whose grid (``grids[site.id]``) has more than ``limits.max_grid_pixels`` pixels (and, read
    whole, not ``chunked``, more than ``WHOLE_GRID_MAX_PIXELS``), with a ``LimitError`` naming
    the site, its size, the limit and what to do. Sites without a grid in ``grids`` get the area
    check only."""
    per_pixel = BYTES_PER_GRID_PIXEL if chunked else WHOLE_GRID_BYTES_PER_PIXEL
    for site in sites:
        area = site.area_km2
        if not area <= limits.max_site_area_km2:
            raise LimitError(
                f"site {site.id}: area {area:,.0f} km2 exceeds limits.max_site_area_km2 = "
                f"{limits.max_site_area_km2:,.0f} km2; split it into smaller sites in the site "
                "file, or raise limits.max_site_area_km2 on a machine with more memory (each "
                f"worker needs ~{per_pixel:,} bytes per grid pixel)"
            )
    for site in sites:
        grid = grids.get(site.id)
        if grid is None:
            continue
        pixels = grid.width * grid.height
        limit = (
            limits.max_grid_pixels
            if chunked
            else min(limits.max_grid_pixels, WHOLE_GRID_MAX_PIXELS)
        )
        if pixels <= limit:
            continue
        res = grid.resolution
        fits = res * math.sqrt(pixels / limit)
        coarser = math.ceil(fits / 10.0) * 10.0
        name = "limits.max_grid_pixels" if limit == limits.max_grid_pixels else "a whole-grid read"
        raise LimitError(
            f"site {site.id}: its grid is {grid.width:,} x {grid.height:,} = {pixels:,} pixels at "
            f"{res:g} m (buffer included), over {name} = {limit:,} (one site-year needs "
            f"~{per_pixel:,} bytes per pixel per worker: ~{pixels * per_pixel / 1e9:,.1f} GB); "
            f"coarsen the grid (grid.resolution_m: {coarser:g} or more fits), split the site"
            + (
                ", or raise limits.max_grid_pixels on a machine with more memory"
                if chunked
                else ", or read it by chunks (grid.chunk_px: 1024)"
            )
        )


def load_sites(path: str | Path, only: Iterable[str] | None = None) -> list[Site]:
    """Load and validate a site FeatureCollection; ``only`` keeps the listed ids (in file order).

    This checks what a run needs (ids, kinds, a source, valid WGS84 polygons); the site
    library's further rules (confidence, winding, precision, references) are
    :func:`validate_site_files`."""
    path = Path(path)
    features = _read_features(path)
    sites = [_parse_feature(path, i, f) for i, f in enumerate(features)]
    _check_unique(path, sites)
    return sites if only is None else select_sites(sites, only, where=str(path))


def select_sites(sites: Sequence[Site], only: Iterable[str], where: str) -> list[Site]:
    """The sites whose ids are in ``only``, in their order; ``SiteError`` naming ``where`` and
    the ids available when one is unknown."""
    wanted = set(only)
    known = sorted({s.id for s in sites})
    missing = sorted(wanted - set(known))
    if missing:
        close = {m: difflib.get_close_matches(m, known, n=3, cutoff=0.6) for m in missing}
        hints = "; ".join(f"for {m!r} did you mean {', '.join(c)}?" for m, c in close.items() if c)
        raise SiteError(
            f"{where}: site id(s) {shorten(missing)} not found"
            + (f"; {hints}" if hints else "")
            + f"; available ({len(known)}): {', '.join(known)}"
        )
    return [s for s in sites if s.id in wanted]


def _read_features(path: Path) -> list[Any]:
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
    return features


def _check_unique(path: Path, sites: Sequence[Site]) -> None:
    seen: dict[str, int] = {}
    for i, s in enumerate(sites):
        if s.id in seen:
            raise SiteError(
                f"{path}: features[{i}].properties.id {s.id!r} repeats features[{seen[s.id]}]; "
                "site ids must be unique"
            )
        seen[s.id] = i


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
    kind = props["kind"]
    if kind not in SITE_KINDS:
        renamed = RENAMED_KINDS.get(kind)
        hint = f" ('{kind}' is now '{renamed}')" if renamed else ""
        raise SiteError(
            f"{where}.properties.kind: {shorten(kind)} is not one of {SITE_KINDS}{hint}"
        )
    source = _main_source(where, props)
    geom = _parse_geometry(where, site_id, feature.get("geometry"))
    extra = {k: v for k, v in props.items() if k not in (*REQUIRED_PROPERTIES, "source")}
    return Site(site_id, props["name"], kind, geom, source, extra)


def _main_source(where: str, props: Mapping[str, Any]) -> str:
    """``source`` (prose) or else the ``sources`` list joined: a site without one is refused."""
    source, sources = props.get("source"), props.get("sources")
    if isinstance(source, str) and source.strip():
        return source
    if (
        isinstance(sources, list)
        and sources
        and all(isinstance(v, str) and v.strip() for v in sources)
    ):
        return "; ".join(sources)
    raise SiteError(
        f"{where}.properties: no source; give 'sources' (a list of URLs or citations) or "
        f"'source' (text): a site without a source cannot be reported (got source="
        f"{shorten(source)}, sources={shorten(sources)})"
    )


def _parse_geometry(where: str, site_id: str, raw: Any) -> Polygon | MultiPolygon:
    try:
        geom = shape(raw)
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
    return geom


# -- the site library's rules ---------------------------------------------------------------

#: Coordinates of a shipped site: RFC 7946 recommends 6 decimals (~10 cm); more claims a
#: precision no public source has.
MAX_COORDINATE_DECIMALS = 6
#: Below this a site is a handful of Sentinel-2 pixels: its footprint cannot be measured.
MIN_SITE_AREA_HA = 1.0


@dataclass(frozen=True)
class SiteFileCheck:
    """What :func:`validate_site_files` found in one file: its sites, and every problem, each
    naming the file, the feature, the field, the bad value and what is allowed."""

    path: Path
    sites: tuple[Site, ...]
    problems: tuple[str, ...]


def validate_site_files(
    paths: Sequence[str | Path], max_site_area_km2: float = DEFAULT_MAX_SITE_AREA_KM2
) -> list[SiteFileCheck]:
    """Check site files against the site library's rules and report every problem, not just
    the first: what :func:`load_sites` checks, plus RFC 7946 winding (counter-clockwise
    exteriors, clockwise holes), closed rings, at most 6 decimals, the library properties
    (``sources``, ``aliases``, ``status``, ``location_confidence``, ``extent_note``,
    ``geometry_basis``), size (1 ha .. ``max_site_area_km2``), ids unique across all files, and
    references (``parent``, ``control_for``) that name a site in one of the files."""
    checks: list[tuple[Path, list[tuple[int, Any, Site]], list[str]]] = []
    for raw_path in paths:
        path = Path(raw_path)
        problems: list[str] = []
        parsed: list[tuple[int, Any, Site]] = []
        try:
            features = _read_features(path)
        except SiteError as exc:
            checks.append((path, parsed, [str(exc)]))
            continue
        for i, feature in enumerate(features):
            try:
                parsed.append((i, feature, _parse_feature(path, i, feature)))
            except SiteError as exc:
                problems.append(str(exc))
        checks.append((path, parsed, problems))

    first_seen: dict[str, str] = {}
    for path, parsed, problems in checks:
        for i, _feature, site in parsed:
            here = f"{path}: features[{i}]"
            if site.id in first_seen:
                problems.append(
                    f"{here}.properties.id: {site.id!r} repeats {first_seen[site.id]}; site ids "
                    "must be unique across the library"
                )
            else:
                first_seen[site.id] = here
    kinds = {s.id: s.kind for _p, parsed, _pr in checks for _i, _f, s in parsed}
    for path, parsed, problems in checks:
        for i, feature, site in parsed:
            where = f"{path}: features[{i}] ({site.id})"
            problems.extend(_library_problems(where, feature, site, kinds, max_site_area_km2))
    return [
        SiteFileCheck(path, tuple(s for _i, _f, s in parsed), tuple(problems))
        for path, parsed, problems in checks
    ]


def _library_problems(
    where: str,
    feature: Mapping[str, Any],
    site: Site,
    kinds: Mapping[str, str],
    max_site_area_km2: float,
) -> Iterator[str]:
    props = feature["properties"]
    yield from _property_problems(where, props)
    yield from _reference_problems(where, site, kinds)
    yield from _ring_problems(where, feature["geometry"])
    area_km2 = site.area_km2
    if area_km2 * 100 < MIN_SITE_AREA_HA:
        yield (
            f"{where}.geometry: area {area_km2 * 100:.3g} ha is under {MIN_SITE_AREA_HA:g} ha "
            "(100 Sentinel-2 pixels): too small to measure; draw at least the compound with a "
            "2-pixel margin"
        )
    if area_km2 > max_site_area_km2:
        yield (
            f"{where}.geometry: area {area_km2:,.0f} km2 is over {max_site_area_km2:,.0f} km2 "
            "(limits.max_site_area_km2); split the site into focus areas"
        )


def _property_problems(where: str, props: Mapping[str, Any]) -> Iterator[str]:
    at = f"{where}.properties"

    def text(value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip())

    sources = props.get("sources")
    if not (isinstance(sources, list) and sources and all(text(v) for v in sources)):
        yield (
            f"{at}.sources: {shorten(sources)}; required: a non-empty list of URLs or citations "
            "(never ship a site without a source)"
        )
    aliases = props.get("aliases")
    if not (isinstance(aliases, list) and all(text(v) for v in aliases)):
        yield f"{at}.aliases: {shorten(aliases)}; required: a list of names (may be empty)"
    status = props.get("status")
    if not (
        isinstance(status, Mapping)
        and text(status.get("summary"))
        and isinstance(status.get("disputed"), bool)
        and isinstance(status.get("claims"), list)
    ):
        yield (
            f"{at}.status: {shorten(status)}; required: an object with 'summary' (text), "
            "'disputed' (true/false) and 'claims' (a list of {date, claim, source})"
        )
    else:
        for k, claim in enumerate(status["claims"]):
            if not (
                isinstance(claim, Mapping)
                and all(text(claim.get(f)) for f in ("date", "claim", "source"))
            ):
                yield (
                    f"{at}.status.claims[{k}]: {shorten(claim)}; each claim needs 'date', "
                    "'claim' and 'source' (text)"
                )
    conf = props.get("location_confidence")
    if not (
        isinstance(conf, Mapping)
        and conf.get("level") in CONFIDENCE_LEVELS
        and text(conf.get("reason"))
    ):
        yield (
            f"{at}.location_confidence: {shorten(conf)}; required: {{level: one of "
            f"{', '.join(CONFIDENCE_LEVELS)}, reason: why}}"
        )
    for key, meaning in (
        ("extent_note", "how well the extent is known, with the sources' contradictions"),
        ("geometry_basis", "e.g. 'approximate box from a published extent' or 'digitised ...'"),
    ):
        if not text(props.get(key)):
            yield f"{at}.{key}: {shorten(props.get(key))}; required text: {meaning}"
    scope = props.get("scope")
    if scope is not None and scope not in SCOPES:
        yield f"{at}.scope: {shorten(scope)}; allowed: {', '.join(SCOPES)}"
    if scope == "focus-area" and not isinstance(props.get("parent"), str):
        yield f"{at}.parent: a focus area names its parent site's id"


def _reference_problems(where: str, site: Site, kinds: Mapping[str, str]) -> Iterator[str]:
    at = f"{where}.properties"
    parent = site.properties.get("parent")
    if parent is not None and (parent == site.id or parent not in kinds):
        yield f"{at}.parent: {shorten(parent)} is not another site in the given files"
    if site.kind == "control":
        served = site.properties.get("control_for")
        if not (isinstance(served, list) and served):
            yield (
                f"{at}.control_for: {shorten(served)}; a control names the site ids it is the "
                "control for (a non-empty list)"
            )
        else:
            for ref in served:
                if ref not in kinds or kinds[ref] == "control":
                    yield f"{at}.control_for: {shorten(ref)} is not a watched site in the given files"


def _ring_problems(where: str, geometry: Mapping[str, Any]) -> Iterator[str]:
    """RFC 7946 on the coordinates as written: closed rings, winding, decimals."""
    polygons = (
        [geometry["coordinates"]]
        if geometry["type"] == "Polygon"
        else list(geometry["coordinates"])
    )
    for p, rings in enumerate(polygons):
        for r, ring in enumerate(rings):
            name = f"{where}.geometry polygon {p} {'exterior' if r == 0 else f'hole {r}'}"
            if ring[0] != ring[-1]:
                yield f"{name}: not closed (first position {ring[0]} != last {ring[-1]})"
                continue
            ccw = LinearRing(ring).is_ccw
            if ccw != (r == 0):
                want = "counter-clockwise" if r == 0 else "clockwise"
                yield (
                    f"{name}: wound {'counter-clockwise' if ccw else 'clockwise'}; RFC 7946 "
                    f"wants {want} (QGIS: Vector > Geometry Tools > Force Right-Hand-Rule)"
                )
            fine = [v for pos in ring for v in pos[:2] if round(v, MAX_COORDINATE_DECIMALS) != v]
            if fine:
                yield (
                    f"{name}: coordinate {fine[0]!r} has more than {MAX_COORDINATE_DECIMALS} "
                    "decimals; round to 6 at most (~10 cm; no public source is finer)"
                )


# -- adjacent zones -------------------------------------------------------------------------


def adjacent_zones(
    sites: Sequence[Site], width_m: float, kinds: Iterable[str] = CAMP_KINDS
) -> list[Site]:
    """A ring ``width_m`` wide outside each whole site of ``kinds`` (sites without a
    ``parent``), as its own site ``<id>-adjacent`` of kind ``adjacent_zone``.

    The ring is built in the parent's UTM zone and leaves out every whole site of ``kinds``
    (the parent and its neighbours: a zone never counts another camp's ground), then goes back
    to WGS84 at 6 decimals. Its edges are as uncertain as the parent's."""
    if not (math.isfinite(width_m) and width_m > 0):
        raise ConfigError(f"adjacent zone width {shorten(width_m)} must be a number of m > 0")
    wanted = set(kinds)
    parents = [s for s in sites if s.kind in wanted and s.parent is None]
    zones = []
    for site in parents:
        zone_id = f"{site.id}{ADJACENT_SUFFIX}"
        if not SITE_ID_PATTERN.match(zone_id):
            raise SiteError(
                f"site {site.id}: its adjacent zone id {zone_id!r} is longer than 63 characters; "
                f"shorten the site id to {63 - len(ADJACENT_SUFFIX)} characters at most"
            )
        crs = site.utm_crs
        outer = site.geometry_in(crs).buffer(width_m, quad_segs=8)
        others = [
            o.geometry_in(crs)
            for o in parents
            if o.geometry.intersects(shapely.box(*_lonlat_bounds(site, width_m)))
        ]
        ring = shapely.make_valid(outer.difference(shapely.union_all(others)))
        wgs84 = _polygonal(shapely.set_precision(reproject_geometry(ring, crs, "EPSG:4326"), 1e-6))
        if wgs84 is None:
            continue  # surrounded by other camps: no ground of its own
        props = dict(site.properties)
        conf = props.get("location_confidence")
        zones.append(
            Site(
                zone_id,
                f"{site.name}: adjacent zone ({width_m:g} m ring)",
                "adjacent_zone",
                shapely.orient_polygons(wgs84),
                f"derived: a {width_m:g} m ring outside {site.id} ({site.source})",
                {
                    "parent": site.id,
                    "scope": "whole-site",
                    "sources": list(site.sources),
                    "aliases": [],
                    "width_m": width_m,
                    "location_confidence": conf,
                    "extent_note": (
                        f"a {width_m:g} m ring outside the polygon of {site.id}, without any "
                        "watched camp; as uncertain as that polygon's edges (see its extent_note)"
                    ),
                    "geometry_basis": (
                        f"derived by sitewatch: {site.id} buffered by {width_m:g} m in {crs}, "
                        "minus the camps"
                    ),
                },
            )
        )
    return zones


def _lonlat_bounds(site: Site, margin_m: float) -> tuple[float, float, float, float]:
    """The site's lon/lat bounds widened by at least ``margin_m`` (1 deg >= 80 km below 44 N;
    generously: 1 deg = 50 km)."""
    pad = margin_m / 50_000.0 + 0.01
    lon0, lat0, lon1, lat1 = site.geometry.bounds
    return lon0 - pad, lat0 - pad, lon1 + pad, lat1 + pad


def _polygonal(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)
