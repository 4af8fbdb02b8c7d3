"""RFC 7946 GeoJSON feature collections, byte-identical for identical input.

Written by hand rather than through GDAL's GeoJSON driver (``RFC7946=YES``), because the contract
needs things the driver does not give:

- validity after rounding: the driver rounds coordinates (``COORDINATE_PRECISION``) after any
  repair, so a polygon valid in UTM can be written self-touching or collapsed; here rounding comes
  first and the rounded geometry is what is checked, repaired and oriented;
- fixed decimals for property floats: the driver writes ``SIGNIFICANT_FIGURES`` (17 by default), so
  an area of 12.3 ha reaches the file as 12.300000000000001; and NaN needs an extra option;
- bytes that depend only on the input and Python's float repr (stable since 3.1), not on the GDAL
  build a run happens to use (the driver's number formatting has changed between releases).
What the driver does and this module does not: cut geometries at the antimeridian. No site is near
it, so a geometry spanning more than 180 degrees of longitude is refused instead.
The output is checked against GDAL's reader (and geojson-validator) in tests/test_export.py.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)
from shapely.geometry import mapping as geometry_mapping
from shapely.geometry.base import BaseGeometry

from pipeline.export.atomic import atomic_write_text

logger = logging.getLogger(__name__)

#: Decimal places of written coordinates (RFC 7946 section 11.2: about 10 cm).
COORDINATE_DECIMALS = 6
#: Decimal places of property floats unless the caller says otherwise.
DEFAULT_FLOAT_DIGITS = 6
#: Name of the top-level foreign member that carries ``metadata`` (RFC 7946 section 6.1).
METADATA_MEMBER = "sitewatch"

_GRID_SIZE = 10.0**-COORDINATE_DECIMALS

Feature = tuple[BaseGeometry | None, Mapping[str, Any]]
FloatDigits = int | Mapping[str, int]


def write_feature_collection(
    path: str | os.PathLike[str],
    features: Iterable[Feature],
    src_crs: str,
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    float_digits: FloatDigits = DEFAULT_FLOAT_DIGITS,
    promote_to_multi: bool = True,
) -> Path:
    """Write ``(geometry, properties)`` pairs as an RFC 7946 FeatureCollection; return the path.

    Geometries are in ``src_crs`` (e.g. ``"EPSG:32651"``) and are written in EPSG:4326 lon/lat,
    rounded to 6 decimals, counter-clockwise exteriors and clockwise holes, valid after rounding
    (repaired with ``make_valid`` keeping the polygonal parts when rounding breaks them). ``None``
    or an empty geometry becomes a ``null`` geometry: the feature and its properties are kept.
    With ``promote_to_multi`` single geometries are written as their Multi type, so that a layer
    never mixes Polygon and MultiPolygon (GDAL then reports type Unknown and QGIS splits it).

    Properties keep their key order. Floats are rounded to ``float_digits`` decimals (an int for
    all keys, or a mapping from property key to decimals, other keys 6); NaN and infinities are
    written as ``null``. Dates are written as ISO 8601 strings, enums as their value.
    ``name`` becomes the top-level ``name`` member (GDAL's layer name), ``metadata`` the foreign
    member ``"sitewatch"``. No ``crs`` member is written.
    """
    transformer = _transformer_to_wgs84(src_crs)
    feature_lines: list[str] = []
    for index, item in enumerate(features):
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(
                f"feature {index}: expected a (geometry, properties) pair, got {type(item).__name__}"
            )
        geometry, properties = item
        if not isinstance(properties, Mapping):
            raise TypeError(
                f"feature {index}: properties must be a mapping, got {type(properties).__name__}"
            )
        where = f"feature {index}"
        written = _export_geometry(geometry, transformer, where, promote_to_multi)
        feature = {
            "type": "Feature",
            "properties": _properties(properties, float_digits, where),
            "geometry": None if written is None else geometry_mapping(written),
        }
        feature_lines.append(_dumps(feature))

    head = ['"type": "FeatureCollection"']
    if name is not None:
        head.append(f'"name": {_dumps(str(name))}')
    if metadata is not None:
        head.append(f'"{METADATA_MEMBER}": {_dumps(_json_value(metadata, None, "metadata"))}')
    body = ",\n".join(feature_lines)
    text = (
        "{\n" + ",\n".join(head) + ',\n"features": [\n' + body + ("\n" if body else "") + "]\n}\n"
    )
    return atomic_write_text(path, text)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def _transformer_to_wgs84(src_crs: str) -> Transformer:
    try:
        crs = CRS.from_user_input(src_crs)
    except CRSError as error:
        raise ValueError(
            f"src_crs {src_crs!r} is not a CRS PROJ knows (expected e.g. 'EPSG:32651'): {error}"
        ) from error
    # only_best: fail rather than fall back to a coarser ("ballpark") transformation when the
    # best one needs a datum grid that is not installed, which would move coordinates silently.
    return Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True, only_best=True)


# --- geometry -------------------------------------------------------------------------------


def lonlat_geometry(
    geometry: BaseGeometry | None, src_crs: str, where: str = "geometry"
) -> BaseGeometry | None:
    """``geometry`` (in ``src_crs``) as this module writes it: WGS84, rounded to
    ``COORDINATE_DECIMALS``, valid after rounding; None when empty or collapsed. Other formats
    (the GeoPackage) use it so that every format holds the same coordinates."""
    return _export_geometry(geometry, _transformer_to_wgs84(src_crs), where, promote=False)


def _export_geometry(
    geometry: BaseGeometry | None, transformer: Transformer, where: str, promote: bool
) -> BaseGeometry | None:
    if geometry is None:
        return None
    if not isinstance(geometry, BaseGeometry):
        raise TypeError(
            f"{where}: geometry must be a shapely geometry or None, got {type(geometry).__name__}"
        )
    if geometry.is_empty:
        return None
    if isinstance(geometry, GeometryCollection):
        raise ValueError(
            f"{where}: a GeometryCollection cannot be written (RFC 7946 discourages it and GIS "
            "layers need one geometry family); pass Polygon/MultiPolygon, LineString/"
            "MultiLineString or Point/MultiPoint"
        )
    if isinstance(geometry, (Polygon, MultiPolygon)) and not geometry.is_valid:
        logger.warning(
            "%s: the input geometry is invalid (%s); writing its make_valid repair",
            where,
            shapely.is_valid_reason(geometry),
        )
    lonlat = _reproject(shapely.force_2d(geometry), transformer, where)
    if isinstance(lonlat, (Polygon, MultiPolygon)):
        cleaned = _polygonal_rounded(lonlat, where)
    elif isinstance(lonlat, (LineString, MultiLineString)):
        cleaned = _lineal_rounded(lonlat)
    else:
        cleaned = _round(lonlat)
    if cleaned is None or cleaned.is_empty:
        logger.info(
            "%s: the geometry collapses at %d decimals; writing null", where, COORDINATE_DECIMALS
        )
        return None
    return _promoted(cleaned) if promote else cleaned


def _reproject(geometry: BaseGeometry, transformer: Transformer, where: str) -> BaseGeometry:
    def to_lonlat(
        x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        lon, lat = transformer.transform(x, y, errcheck=True)
        return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)

    try:
        lonlat: BaseGeometry = shapely.transform(geometry, to_lonlat, interleaved=False)
    except ProjError as error:
        raise ValueError(f"{where}: cannot reproject the geometry to EPSG:4326: {error}") from error
    coords = shapely.get_coordinates(lonlat)
    inside = np.isfinite(coords).all() and (np.abs(coords) <= (180.0, 90.0)).all()
    if not inside:
        raise ValueError(
            f"{where}: the geometry reaches outside longitude -180..180, latitude -90..90 in "
            f"EPSG:4326 (bounds {lonlat.bounds})"
        )
    west, _, east, _ = lonlat.bounds
    if east - west > 180.0:
        raise ValueError(
            f"{where}: the geometry spans {east - west:.1f} degrees of longitude (it crosses the "
            "antimeridian), which this writer does not cut (RFC 7946 section 3.1.9)"
        )
    return lonlat


def _round(geometry: BaseGeometry) -> BaseGeometry:
    def rounded(coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # rint(x * 1e6) / 1e6 is the double nearest to a 6-decimal number, so its repr is short.
        return np.round(coords, COORDINATE_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0

    result: BaseGeometry = shapely.transform(geometry, rounded)
    return result


def _polygonal_rounded(geometry: Polygon | MultiPolygon, where: str) -> BaseGeometry | None:
    candidate = _round(geometry)
    repairs: tuple[Callable[[BaseGeometry], BaseGeometry], ...] = (
        # "structure" reads rings as area (shells) and not-area (holes), as a polygon means;
        # the default "linework" re-nodes all rings and can fill a hole whose ring now touches
        # its shell, adding area nobody measured.
        _make_valid_polygonal,
        # make_valid adds vertices at crossings, and rounding those can break validity again;
        # snap rounding onto the 1e-6 grid is valid by construction.
        lambda geom: shapely.set_precision(_make_valid_polygonal(geom), _GRID_SIZE),
    )
    for repair in repairs:
        if candidate.is_valid:
            break
        logger.info(
            "%s: invalid after rounding to %d decimals (%s); repairing",
            where,
            COORDINATE_DECIMALS,
            shapely.is_valid_reason(candidate),
        )
        polygons = _polygonal_parts(repair(candidate))
        if polygons is None:
            return None
        candidate = _round(polygons)
    if not candidate.is_valid:
        raise ValueError(
            f"{where}: the polygon cannot be made valid at {COORDINATE_DECIMALS} decimals "
            f"({shapely.is_valid_reason(candidate)})"
        )
    # Dropping repeated vertices of a valid polygon keeps it valid (each ring keeps 3+ points).
    oriented: BaseGeometry = shapely.orient_polygons(
        shapely.remove_repeated_points(candidate), exterior_cw=False
    )
    return oriented


def _make_valid_polygonal(geometry: BaseGeometry) -> BaseGeometry:
    valid: BaseGeometry = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
    return valid


def _polygonal_parts(geometry: BaseGeometry) -> BaseGeometry | None:
    if isinstance(geometry, (Polygon, MultiPolygon)):
        return None if geometry.is_empty else geometry
    parts = [
        part
        for part in shapely.get_parts(geometry)
        if isinstance(part, (Polygon, MultiPolygon)) and not part.is_empty
    ]
    if not parts:
        return None
    merged: BaseGeometry = shapely.union_all(parts)
    return None if merged.is_empty else merged


def _lineal_rounded(geometry: LineString | MultiLineString) -> BaseGeometry | None:
    lines = []
    for part in shapely.get_parts(_round(geometry)):
        deduplicated = shapely.remove_repeated_points(part)
        if len(deduplicated.coords) >= 2 and deduplicated.length > 0:
            lines.append(deduplicated)
    if not lines:
        return None
    if isinstance(geometry, LineString) and len(lines) == 1:
        single: LineString = lines[0]
        return single
    return MultiLineString(lines)


def _promoted(geometry: BaseGeometry) -> BaseGeometry:
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    if isinstance(geometry, LineString):
        return MultiLineString([geometry])
    if isinstance(geometry, Point):
        return MultiPoint([geometry])
    return geometry


# --- properties -----------------------------------------------------------------------------


def _properties(properties: Mapping[str, Any], float_digits: FloatDigits, where: str) -> Any:
    out: dict[str, Any] = {}
    for key, value in properties.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: property names must be strings, got {key!r}")
        out[key] = _json_value(value, _digits_for(float_digits, key), f"{where} property {key!r}")
    return out


def _digits_for(float_digits: FloatDigits, key: str) -> int:
    digits = (
        float_digits.get(key, DEFAULT_FLOAT_DIGITS)
        if isinstance(float_digits, Mapping)
        else (float_digits)
    )
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"float_digits for {key!r} must be an int >= 0, got {digits!r}")
    return digits


def _json_value(value: Any, digits: int | None, where: str) -> Any:
    """A JSON-ready copy of ``value``: floats rounded (unless ``digits`` is None), NaN -> None."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, enum.Enum):
        return _json_value(value.value, digits, where)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return None
        return (number if digits is None else round(number, digits)) + 0.0
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: object keys must be strings, got {key!r}")
            out[key] = _json_value(item, digits, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_json_value(item, digits, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{where}: cannot write a {type(value).__name__} ({value!r}) to GeoJSON; allowed are "
        "None, bool, int, float, str, date/datetime, enum, lists and str-keyed mappings of these"
    )
