"""Analyst-drawn site perimeters: read them from GeoJSON, GeoPackage or KML.

An analyst digitises a site's perimeter on high-resolution imagery (in QGIS or Google Earth),
one polygon per site and year or date, and saves it as GeoJSON, GeoPackage or KML. This module
reads such a file with pyogrio into validated :class:`Perimeter` records in EPSG:4326, and
:func:`perimeters_by_site` merges them per site and year for the expansion metrics.

Decisions worth knowing:

- **Layers.** A GeoJSON or GeoPackage file must hold one layer with geometry (tables without
  geometry, such as the ``layer_styles`` table QGIS saves styles to, are not counted), or
  ``layer`` must name one. In a KML file every ``<Folder>`` is a layer; since folders are how
  Google Earth users organise placemarks (often one per year), a KML file is read whole unless
  ``layer`` names one folder.
- **KML.** GDAL reads KML with its LIBKML driver when it has one, else with its KML driver
  (``pyogrio.list_drivers()``). LIBKML gives the placemark name as ``Name``, the description as
  ``description``, ``<TimeStamp><when>`` as ``timestamp``, ``<TimeSpan><begin>`` as ``begin`` and
  every ``<ExtendedData>`` field (``<Data>`` or ``<SchemaData>``) as a column of its own. The
  plain KML driver reads only ``Name`` and ``Description``, so a KML perimeter then needs
  ``default_site`` and cannot carry a year: the error says so. A ``<when>`` of a bare year
  (``2019``) is read by LIBKML as empty and one of a year and month (``2019-06``) as its first
  day.
- **Geometry.** Polygon and MultiPolygon only, plus two KML shapes that can only mean a polygon:
  a closed ``LineString``/``LinearRing`` (a Google Earth "path" drawn around the site) is read
  as the polygon it encloses, and a ``<MultiGeometry>`` of polygons (which GDAL may hand over as
  a GeometryCollection) as a MultiPolygon. Nothing is repaired: an invalid polygon is refused
  with GEOS's reason, to be fixed where it was drawn.
- **Fields.** ``site_field``, ``year_field`` and ``date_field`` match a field of the same name,
  or else the one field whose name differs only in case (QGIS and SQLite do not mind case, so
  ``Year`` is common). A feature whose site field is empty takes ``default_site``; a feature
  whose site field has a value keeps it.
"""

from __future__ import annotations

import datetime
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pyogrio.errors
import shapely
from pyogrio.raw import read as ogr_read
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry import GeometryCollection, LinearRing, LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from pipeline.errors import LimitError, SiteError
from pipeline.model import shorten, shorten_text
from pipeline.sites import MAX_SITE_FILE_BYTES, SITE_ID_PATTERN

__all__ = [
    "FORMATS",
    "MIN_YEAR",
    "Perimeter",
    "load_perimeters",
    "max_year",
    "perimeters_by_site",
]

logger = logging.getLogger(__name__)

# Suffix -> (format name, the GDAL drivers that may read it).
FORMATS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    ".geojson": ("GeoJSON", ("GeoJSON",)),
    ".json": ("GeoJSON", ("GeoJSON",)),
    ".gpkg": ("GeoPackage", ("GPKG",)),
    ".kml": ("KML", ("LIBKML", "KML")),
}
_ALLOWED_FORMATS = ".geojson or .json (GeoJSON), .gpkg (GeoPackage), .kml (KML)"
# Landsat 1 (1972) opens the civil imagery archive the pipeline compares perimeters with.
MIN_YEAR = 1972
# Where GDAL's LIBKML driver puts a placemark's <TimeStamp><when> and <TimeSpan><begin>; ``when``
# for files whose ExtendedData carries a field of that name.
KML_TIME_FIELDS = ("timestamp", "begin", "when")
# RFC 7946 and the KML spec fix these formats' coordinates to WGS84 longitude/latitude.
_DEFAULT_CRS = {"GeoJSON": "EPSG:4326", "KML": "EPSG:4326"}
_FOUR_DIGITS = re.compile(r"^\d{4}$")
_SITE_ID_RULE = (
    "allowed: lower-case letters, digits, '-' and '_', starting with a letter or digit, at most "
    "63 characters"
)
_FIX_HINT = "fix it in QGIS with Vector > Geometry Tools > Fix Geometries, or redraw it"


def max_year() -> int:
    """The latest allowed perimeter year: next year, as slack for clocks and time zones around
    New Year."""
    return datetime.date.today().year + 1


@dataclass(frozen=True)
class Perimeter:
    """One site's perimeter in one year. ``geometry`` is in EPSG:4326 (lon/lat); ``date`` is set
    when the file gives one (``year`` is then its year); ``origin`` is
    ``"<file>[:<layer>]#<feature index>"`` (0-based, in file order; the layer for GeoPackage and
    KML files)."""

    site_id: str
    year: int
    date: datetime.date | None
    geometry: Polygon | MultiPolygon
    origin: str


def load_perimeters(
    path: str | Path,
    *,
    layer: str | None = None,
    site_field: str = "site_id",
    year_field: str = "year",
    date_field: str = "date",
    default_site: str | None = None,
) -> list[Perimeter]:
    """Read and validate the perimeters in a GeoJSON, GeoPackage or KML file, sorted by site,
    year, then position in the file.

    The year comes from ``year_field`` (a whole number or 4-digit text) or else from
    ``date_field`` (ISO date or date-time); in KML from ``timestamp``/``begin``/``when`` when
    the date field is empty. The site comes from ``site_field``, or ``default_site`` where the
    field is absent or empty. Any bad file, layer or feature raises ``SiteError`` naming the
    file, the feature, the field and the value (``LimitError`` for a file over 50 MB).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if default_site is not None and not (
        isinstance(default_site, str) and SITE_ID_PATTERN.match(default_site)
    ):
        raise SiteError(
            f"default site (--site) {shorten(default_site)} is not a valid site id; {_SITE_ID_RULE}"
        )
    if not path.exists():
        raise SiteError(f"{path}: perimeter file not found")
    if not path.is_file():
        raise SiteError(f"{path}: not a file; a perimeter file is one {_ALLOWED_FORMATS} file")
    if suffix not in FORMATS:
        hint = " (a .kmz is a zip holding doc.kml: unzip it)" if suffix == ".kmz" else ""
        raise SiteError(
            f"{path}: suffix {suffix or '(none)'!r} is not a perimeter format{hint}; allowed: "
            f"{_ALLOWED_FORMATS}"
        )
    size = path.stat().st_size
    if size > MAX_SITE_FILE_BYTES:
        raise LimitError(
            f"{path}: perimeter file of {size:,} bytes is larger than "
            f"{MAX_SITE_FILE_BYTES // 1_000_000} MB; a perimeter file holds a few hand-drawn "
            "polygons: simplify or split it"
        )
    fmt, drivers = FORMATS[suffix]
    available = pyogrio.list_drivers()
    if not any(d in available for d in drivers):
        raise SiteError(
            f"{path}: this GDAL ({pyogrio.__gdal_version_string__}) has no {'/'.join(drivers)} "
            f"driver to read {fmt}; convert the file to GeoPackage"
        )

    perimeters: list[tuple[tuple[str, int, int, int], Perimeter]] = []
    for layer_pos, layer_name in enumerate(_pick_layers(path, fmt, layer)):
        for index, perimeter in _read_layer(
            path,
            fmt,
            drivers,
            layer_name,
            site_field=site_field,
            year_field=year_field,
            date_field=date_field,
            default_site=default_site,
        ):
            key = (perimeter.site_id, perimeter.year, layer_pos, index)
            perimeters.append((key, perimeter))
    if not perimeters:
        where = f"{path}:{layer}" if layer is not None else str(path)
        raise SiteError(f"{where}: no features; a perimeter file holds one polygon per site-year")
    perimeters.sort(key=lambda item: item[0])
    return [p for _, p in perimeters]


def perimeters_by_site(
    perimeters: Iterable[Perimeter],
) -> dict[str, dict[int, Polygon | MultiPolygon]]:
    """Each site's perimeters merged per year (the union of its polygons of that year), as
    ``{site_id: {year: geometry}}`` with sites and years sorted."""
    groups: dict[str, dict[int, list[BaseGeometry]]] = {}
    for p in perimeters:
        groups.setdefault(p.site_id, {}).setdefault(p.year, []).append(p.geometry)
    return {
        site: {year: _union(years[year]) for year in sorted(years)}
        for site, years in sorted(groups.items())
    }


def _union(geometries: Sequence[BaseGeometry]) -> Polygon | MultiPolygon:
    merged = shapely.make_valid(shapely.union_all(geometries))
    if isinstance(merged, Polygon | MultiPolygon):
        return merged
    # make_valid may return a collection with lines or points where polygons touch: keep the area
    polygons = [g for g in shapely.get_parts(merged) if isinstance(g, Polygon | MultiPolygon)]
    parts = [q for g in polygons for q in shapely.get_parts(g)]
    if len(parts) == 1:
        single: Polygon = parts[0]
        return single
    return MultiPolygon(parts) if parts else Polygon()


# ---- file and layer -----------------------------------------------------------------------------


def _listing(names: Iterable[str]) -> str:
    """Names for a message, all of them (an analyst looks for the one misspelt), within reason."""
    return shorten_text(", ".join(repr(n) for n in names) or "none")


def _gdal_message(exc: Exception) -> str:
    return shorten_text(" ".join(str(exc).split()) or type(exc).__name__)


def _pick_layers(path: Path, fmt: str, layer: str | None) -> list[str]:
    try:
        listed = pyogrio.list_layers(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        raise SiteError(f"{path}: cannot read as {fmt} ({_gdal_message(exc)})") from None
    names = [str(name) for name, _ in listed]
    if layer is not None:
        if layer not in names:
            raise SiteError(
                f"{path}: layer {shorten(layer)} not found; layers in the file: {_listing(names)}"
            )
        return [layer]
    if fmt == "KML":
        return names
    spatial = [str(name) for name, geometry_type in listed if geometry_type is not None]
    if len(spatial) == 1:
        return spatial
    if not spatial:
        raise SiteError(
            f"{path}: no layer with geometry (layers: {_listing(names)}); a perimeter "
            "file needs a polygon layer"
        )
    raise SiteError(
        f"{path}: {len(spatial)} layers with geometry, {_listing(spatial)}; pass the one "
        "to read as layer= (--layer)"
    )


def _read_layer(
    path: Path,
    fmt: str,
    drivers: tuple[str, ...],
    layer: str,
    *,
    site_field: str,
    year_field: str,
    date_field: str,
    default_site: str | None,
) -> list[tuple[int, Perimeter]]:
    source = str(path) if fmt == "GeoJSON" else f"{path}:{layer}"
    try:
        info = pyogrio.read_info(path, layer=layer)
        if info.get("geometry_type") is None:
            raise SiteError(
                f"{source}: the layer has no geometry column; a perimeter layer holds polygons"
            )
        driver = str(info["driver"])
        if driver not in drivers:
            raise SiteError(
                f"{source}: GDAL reads this file as {driver}, not {fmt}; save it as {fmt} "
                f"(allowed: {_ALLOWED_FORMATS})"
            )
        meta, fids, wkbs, columns = ogr_read(
            path, layer=layer, force_2d=True, datetime_as_string=True, return_fids=True
        )
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        raise SiteError(f"{source}: cannot read as {fmt} ({_gdal_message(exc)})") from None
    if wkbs is None or len(wkbs) == 0:
        return []

    field_names = [str(f) for f in meta["fields"]]
    values = dict(zip(field_names, columns, strict=True))
    fields = _Fields(source, field_names, fmt, driver)
    site_col = fields.find(site_field)
    if site_col is None and default_site is None:
        raise SiteError(
            f"{source}: no field {site_field!r} to give each perimeter's site "
            f"(fields: {_listing(field_names)}{fields.kml_note()}); pass the site id of "
            "the whole file as --site (default_site=), or name the field (site_field=)"
        )
    transformer = _to_wgs84(source, fmt, meta.get("crs"))
    year_col = fields.find(year_field)
    date_cols = [c for c in [fields.find(date_field)] if c is not None]
    if fmt == "KML":
        date_cols += [c for c in (fields.find(k) for k in KML_TIME_FIELDS) if c is not None]
    name_col = fields.find("name")

    out: list[tuple[int, Perimeter]] = []
    for index, wkb in enumerate(wkbs):
        name = _text(_item(values[name_col][index])) if name_col is not None else None
        details = []
        if fmt == "GeoPackage" and fids is not None:
            details.append(f"fid {int(fids[index])}")
        if name:
            details.append(f"name {shorten(name)}")
        where = f"{source} feature {index}" + (f" ({', '.join(details)})" if details else "")

        site_id = _site(where, site_col, values, index, default_site)
        year_value = _item(values[year_col][index]) if year_col is not None else None
        dates = [(c, _item(values[c][index])) for c in date_cols]
        year, date = _year_and_date(where, fields, year_field, date_field, year_value, dates)
        geometry = _geometry(where, fmt, wkb, transformer)
        out.append((index, Perimeter(site_id, year, date, geometry, f"{source}#{index}")))
    return out


class _Fields:
    """A layer's field names, looked up exactly or else case-insensitively."""

    def __init__(self, source: str, names: list[str], fmt: str, driver: str) -> None:
        self.source = source
        self.names = names
        self.fmt = fmt
        self.driver = driver

    def find(self, wanted: str) -> str | None:
        if wanted in self.names:
            return wanted
        folded = [n for n in self.names if n.casefold() == wanted.casefold()]
        return folded[0] if len(folded) == 1 else None

    def kml_note(self) -> str:
        if self.driver == "KML":
            return (
                "; GDAL's KML driver reads only Name and Description, not ExtendedData or "
                "TimeStamp: use a GDAL with the LIBKML driver, or convert the file to GeoPackage"
            )
        return ""


def _to_wgs84(source: str, fmt: str, crs: Any) -> Transformer | None:
    if not crs:
        if fmt not in _DEFAULT_CRS:
            raise SiteError(
                f"{source}: the layer has no CRS; set it in QGIS (Layer Properties > Source > "
                "Assigned Coordinate Reference System) and save the layer again"
            )
        crs = _DEFAULT_CRS[fmt]
    try:
        src = CRS.from_user_input(crs)
        if src == CRS.from_epsg(4326):
            return None
        return Transformer.from_crs(src, "EPSG:4326", always_xy=True)
    except (CRSError, ProjError) as exc:
        raise SiteError(
            f"{source}: cannot reproject from the layer's CRS {shorten(crs)} to EPSG:4326 "
            f"({shorten_text(str(exc))})"
        ) from None


# ---- one feature --------------------------------------------------------------------------------


def _item(value: Any) -> Any:
    """A numpy scalar as the Python value; missing values (None, NaN, NaT, blank text) as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _site(
    where: str,
    column: str | None,
    values: Mapping[str, Any],
    index: int,
    default_site: str | None,
) -> str:
    value = _item(values[column][index]) if column is not None else None
    if value is None:
        if default_site is None:
            raise SiteError(
                f"{where}: field {column!r} is empty; fill in the site id, or pass the site id "
                "of the whole file as --site (default_site=)"
            )
        return default_site
    if not isinstance(value, str):
        raise SiteError(
            f"{where}: field {column!r} = {shorten(value)} ({type(value).__name__}) is not a "
            f"site id; a site id is text: {_SITE_ID_RULE}"
        )
    site_id = value.strip()
    if not SITE_ID_PATTERN.match(site_id):
        raise SiteError(
            f"{where}: field {column!r} = {shorten(value)} is not a valid site id; {_SITE_ID_RULE}"
        )
    return site_id


def _year_and_date(
    where: str,
    fields: _Fields,
    year_field: str,
    date_field: str,
    year_value: Any,
    dates: list[tuple[str, Any]],
) -> tuple[int, datetime.date | None]:
    year_col = fields.find(year_field) or year_field
    year: int | None = None
    if year_value is not None:
        year = _parse_year(year_value)
        if year is None:
            raise SiteError(
                f"{where}: field {year_col!r} = {shorten(year_value)} is not a year; allowed: a "
                f"whole number or 4-digit text, {MIN_YEAR}..{max_year()}"
            )
        _check_year(where, year_col, year_value, year)

    date: datetime.date | None = None
    date_col = ""
    for column, value in dates:
        if value is None:
            continue
        date = _parse_date(value)
        if date is None:
            hint = f" (put a bare year in {year_field!r})" if _parse_year(value) is not None else ""
            raise SiteError(
                f"{where}: field {column!r} = {shorten(value)} is not a date{hint}; allowed: an "
                "ISO date such as 2019-06-01 or date-time such as 2019-06-01T10:30:00Z"
            )
        date_col = column
        _check_year(where, column, value, date.year)
        break

    if year is not None and date is not None and date.year != year:
        raise SiteError(
            f"{where}: field {year_col!r} = {shorten(year_value)} disagrees with field "
            f"{date_col!r} = {date.isoformat()} (year {date.year}); correct one, or leave "
            f"{date_col!r} empty"
        )
    if date is not None:
        return date.year, date
    if year is None:
        looked = [year_field, date_field]
        if fields.fmt == "KML":
            looked += [f for f in KML_TIME_FIELDS if f not in looked]
        note = fields.kml_note()
        if fields.driver == "LIBKML":
            note = (
                "; note: a KML <when> of a bare year such as 2019 reads as empty: write 2019-01-01"
            )
        raise SiteError(
            f"{where}: no year; fields looked for: {', '.join(map(repr, looked))} (none has a "
            f"value; fields in the layer: {_listing(fields.names)}{note}); give the year "
            "(year_field=) or date (date_field=) of the imagery the perimeter was drawn on"
        )
    return year, None


def _parse_year(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _FOUR_DIGITS.match(value.strip()):
        return int(value.strip())
    return None


def _check_year(where: str, column: str, value: Any, year: int) -> None:
    if not MIN_YEAR <= year <= max_year():
        raise SiteError(
            f"{where}: field {column!r} = {shorten(value)} gives year {year}, out of range; "
            f"allowed years {MIN_YEAR} (Landsat 1) to {max_year()}"
        )


def _parse_date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, np.datetime64) and not np.isnat(value):
        return datetime.date.fromisoformat(str(value.astype("datetime64[D]")))
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text).date()
    except ValueError:
        return None


def _geometry(
    where: str, fmt: str, wkb: Any, transformer: Transformer | None
) -> Polygon | MultiPolygon:
    geom = shapely.from_wkb(wkb, on_invalid="ignore") if wkb is not None else None
    if geom is None:
        raise SiteError(
            f"{where}: no geometry (missing, or unreadable); draw the perimeter polygon"
        )
    geom = _as_polygonal(where, fmt, geom)
    if geom.is_empty:
        raise SiteError(f"{where}: geometry {geom.geom_type} is empty; draw the perimeter polygon")
    if not geom.is_valid:
        raise SiteError(
            f"{where}: invalid {geom.geom_type} ({shorten_text(shapely.is_valid_reason(geom))}); "
            f"{_FIX_HINT}"
        )
    if transformer is not None:
        tr = transformer

        def _apply(xy: Any) -> Any:
            return np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))

        geom = shapely.transform(geom, _apply)
    lon0, lat0, lon1, lat1 = geom.bounds
    bounds_ok = all(math.isfinite(v) for v in geom.bounds)
    if not (bounds_ok and -180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        hint = (
            "; the layer's CRS may be wrong (projected coordinates in a file said to be "
            "longitude/latitude?)"
            if transformer is None
            else ""
        )
        raise SiteError(
            f"{where}: geometry bounds {shorten(tuple(round(v, 6) for v in geom.bounds))} in "
            f"EPSG:4326 are outside WGS84 (lon -180..180, lat -90..90){hint}"
        )
    if not geom.is_valid:  # only a reprojection can get here, squeezing nearly touching rings
        raise SiteError(
            f"{where}: the {geom.geom_type} becomes invalid in EPSG:4326 "
            f"({shorten_text(shapely.is_valid_reason(geom))}); {_FIX_HINT}"
        )
    result: Polygon | MultiPolygon = geom
    return result


def _as_polygonal(where: str, fmt: str, geom: BaseGeometry) -> Polygon | MultiPolygon:
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    if fmt == "KML" and isinstance(geom, LineString | LinearRing) and not geom.is_empty:
        coords = list(geom.coords)
        if geom.is_closed and len(coords) >= 4:
            logger.info("%s: closed %s read as the polygon it encloses", where, geom.geom_type)
            return Polygon(coords)
        raise SiteError(
            f"{where}: geometry type {geom.geom_type} is an open path (first point "
            f"{coords[0]}, last {coords[-1]}); draw the perimeter as a Polygon, or close the path"
        )
    if fmt == "KML" and isinstance(geom, GeometryCollection) and not geom.is_empty:
        parts = list(shapely.get_parts(geom))
        if all(isinstance(p, Polygon | MultiPolygon) for p in parts):
            return MultiPolygon([q for p in parts for q in shapely.get_parts(p)])
        kinds = sorted({p.geom_type for p in parts})
        raise SiteError(
            f"{where}: geometry type GeometryCollection of {', '.join(kinds)}; a perimeter is "
            "Polygon or MultiPolygon only: remove the other parts"
        )
    raise SiteError(
        f"{where}: geometry type {geom.geom_type} not allowed; draw the perimeter as a Polygon "
        "or MultiPolygon"
    )
