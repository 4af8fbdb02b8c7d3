"""GeoPackage files: vector layers and attribute tables in one file, with their QGIS styles.

Owns the rules every GeoPackage sitewatch writes follows (a run's ``sitewatch.gpkg``, the
reference sample of ``sitewatch sample``):

- GeoPackage 1.3 (``application_id`` 'GPKG', ``user_version`` 10300). GDAL 3.7.1 and later write
  1.4 by default, which the GDAL 3.6 under QGIS 3.22 (Debian bookworm) opens with a warning.
- Vector layers in EPSG:4326, like the GeoJSON outputs: one layer holds sites that lie in
  different UTM zones, and QGIS reprojects on the fly onto any basemap. A frame in another CRS
  is reprojected; one without a CRS is refused.
- A ``pandas.DataFrame`` without geometry is an attribute table (``data_type`` 'attributes').
- Layers in mapping order, features in frame order (``fid`` 1..n); the index is not written.
- Values go through Arrow, so int32, bool and date columns stay OFTInteger, Boolean and OFTDate
  (the temporal controller of QGIS needs real dates). GeoPackage has no nested types: lists and
  mappings are written as JSON text with sorted keys.
- Default styles in ``layer_styles`` (the table QGIS itself writes), registered in
  ``gpkg_contents``: QGIS ignores an unregistered one. ``useAsDefault`` = 1, so QGIS applies
  the style when the layer is loaded.
- The same layers and styles give the same bytes: every timestamp is :data:`FIXED_TIMESTAMP`.

:func:`table_layer` makes the frame of a declared table (``pipeline.export.layers``), each column
typed from its kind, so that a column with no value still gets its field type.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors

from pipeline.export.atomic import atomic_path
from pipeline.export.geojson import lonlat_geometry
from pipeline.export.tables import ARROW_TYPES

if TYPE_CHECKING:
    from pipeline.export.layers import Table

__all__ = [
    "FIXED_TIMESTAMP",
    "GPKG_CRS",
    "GPKG_VERSION",
    "LAYER_STYLES",
    "Layer",
    "add_layer_styles",
    "table_layer",
    "write_geopackage",
]

#: ``gpkg_contents.last_change`` and ``layer_styles.update_time`` of every file written: fixed,
#: so that the bytes depend on the content only.
FIXED_TIMESTAMP = "2000-01-01T00:00:00.000Z"
#: The CRS of every vector layer.
GPKG_CRS = "EPSG:4326"
#: The GeoPackage version written (GDAL's ``VERSION`` creation option).
GPKG_VERSION = "1.3"
#: The table QGIS reads default styles from.
LAYER_STYLES = "layer_styles"

#: A layer: a GeoDataFrame (features) or a DataFrame without geometry (an attribute table).
Layer: TypeAlias = pd.DataFrame

# The schema QGIS creates when it saves a style into a GeoPackage (QgsOgrProviderMetadata).
_LAYER_STYLES_DDL = """
CREATE TABLE layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    f_table_catalog TEXT(256),
    f_table_schema TEXT(256),
    f_table_name TEXT(256),
    f_geometry_column TEXT(256),
    styleName TEXT(30),
    styleQML TEXT,
    styleSLD TEXT,
    useAsDefault BOOLEAN,
    description TEXT,
    owner TEXT(30),
    ui TEXT(30),
    update_time DATETIME DEFAULT CURRENT_TIMESTAMP
)
"""
# Table names GeoPackage, SQLite or GDAL own.
_RESERVED_PREFIXES = ("gpkg_", "sqlite_", "rtree_")


def write_geopackage(
    path: str | os.PathLike[str],
    layers: Mapping[str, Layer],
    styles: Mapping[str, str] | None = None,
    *,
    geometry_types: Mapping[str, str] | None = None,
) -> Path:
    """Write ``layers`` (name -> frame, in order) and their default QGIS ``styles`` (name ->
    QML text) to the GeoPackage ``path`` atomically; return the path.

    An existing file is replaced whole. ``ValueError`` for no layers, a bad layer name (empty,
    reserved, repeated ignoring case), a GeoDataFrame without a CRS or a style of no layer.
    ``geometry_types`` (layer name -> OGR type name, e.g. ``"MultiPolygon"``) declares a
    layer's geometry type; without it an empty GeoDataFrame is written with geometry type
    GEOMETRY (no row tells its type)."""
    target = Path(path)
    _check_names(target, layers, styles or {})
    declared = dict(geometry_types or {})
    undeclared = sorted(set(declared) - set(layers))
    if undeclared:
        raise ValueError(
            f"{target}: geometry types for {undeclared}, which are not among the layers"
        )
    with atomic_path(target) as temp:
        for n, (name, frame) in enumerate(layers.items()):
            try:
                pyogrio.write_dataframe(
                    _plain(target, name, frame),
                    temp,
                    layer=name,
                    driver="GPKG",
                    use_arrow=True,
                    geometry_type=declared.get(name),
                    promote_to_multi=(
                        _has_multi(frame) or declared.get(name, "").startswith("Multi")
                    ),
                    # Dataset options apply when the first layer creates the file.
                    dataset_options={"VERSION": GPKG_VERSION} if n == 0 else None,
                )
            except (pyogrio.errors.DataLayerError, pyogrio.errors.DataSourceError) as exc:
                # GDAL's message names neither the file nor the layer.
                raise type(exc)(f"{target.name}, layer {name}: {exc}") from exc
        add_layer_styles(temp, styles or {})
    return target


def add_layer_styles(
    path: str | os.PathLike[str],
    styles: Mapping[str, str],
    *,
    descriptions: Mapping[str, str] | None = None,
) -> None:
    """Store each QML of ``styles`` (layer name -> QML text) as the default QGIS style of that
    layer of the GeoPackage ``path``, in place, and set every timestamp to
    :data:`FIXED_TIMESTAMP`.

    Creates ``layer_styles`` and registers it in ``gpkg_contents`` when the file has none; a
    layer's earlier style of the same name is replaced. The style is named after the layer;
    ``descriptions`` (layer name -> text) fills ``description``. ``ValueError`` naming the file
    for a layer the file does not have."""
    source = Path(path)
    con = sqlite3.connect(source)
    try:
        with con:
            tables = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents"))
            missing = sorted(set(styles) - set(tables))
            if missing:
                raise ValueError(f"{source}: no layer {missing} to style; it has {sorted(tables)}")
            if styles and LAYER_STYLES not in tables:
                con.execute(_LAYER_STYLES_DDL)
                con.execute(
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, "
                    "last_change) VALUES (?, 'attributes', ?, '', ?)",
                    (LAYER_STYLES, LAYER_STYLES, FIXED_TIMESTAMP),
                )
            columns = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
            for layer, qml in styles.items():
                # QGIS matches f_geometry_column to the layer's; an attribute table has none.
                geometry_column = columns.get(layer, "")
                con.execute(
                    "DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?",
                    (layer, layer),
                )
                con.execute(
                    "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                    "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, "
                    "description, owner, ui, update_time) "
                    "VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', NULL, ?)",
                    (layer, geometry_column, layer, qml,
                     (descriptions or {}).get(layer, f"sitewatch: {layer}"), FIXED_TIMESTAMP),
                )  # fmt: skip
            con.execute("UPDATE gpkg_contents SET last_change = ?", (FIXED_TIMESTAMP,))
    finally:
        con.close()
    reset_change_counter(source)


#: Byte offsets of SQLite's file change counter and its "version-valid-for" copy in the
#: database header (sqlite.org/fileformat2.html, 1.3.8 and 1.3.18).
_CHANGE_COUNTERS = (24, 92)


def reset_change_counter(path: str | os.PathLike[str]) -> None:
    """Set the SQLite header's file change counter (and its copy, which must match it) to 1:
    it counts write transactions, which GDAL batches differently from run to run, so the same
    content would otherwise not give the same bytes. SQLite only uses the counter to notice
    other writers, and the file is not open anywhere else."""
    with open(path, "r+b") as handle:
        for offset in _CHANGE_COUNTERS:
            handle.seek(offset)
            handle.write((1).to_bytes(4, "big"))


def _check_names(target: Path, layers: Mapping[str, Layer], styles: Mapping[str, str]) -> None:
    if not layers:
        raise ValueError(f"{target}: no layers to write")
    seen: dict[str, str] = {}
    for name in layers:
        folded = name.lower()
        if not name or name != name.strip():
            raise ValueError(f"{target}: layer name {name!r} is empty or has blanks at its ends")
        if folded.startswith(_RESERVED_PREFIXES) or folded == LAYER_STYLES:
            raise ValueError(
                f"{target}: layer name {name!r} is reserved (names starting with "
                f"{', '.join(_RESERVED_PREFIXES)} and {LAYER_STYLES!r} are)"
            )
        if folded in seen:
            # SQLite table names ignore case.
            raise ValueError(f"{target}: layer names {seen[folded]!r} and {name!r} collide")
        seen[folded] = name
    unstyled = sorted(set(styles) - set(layers))
    if unstyled:
        raise ValueError(
            f"{target}: styles for {unstyled}, which are not among the layers {list(layers)}"
        )


def _has_multi(frame: Layer) -> bool:
    """Whether any geometry is a multi-part one: then single parts are promoted, so that the
    layer has one geometry type (MultiPolygon rather than GEOMETRY)."""
    if not isinstance(frame, gpd.GeoDataFrame):
        return False
    kinds = frame.geometry.geom_type.dropna()
    return bool(kinds.str.startswith("Multi").any())


def _plain(target: Path, name: str, frame: Layer) -> Layer:
    """``frame`` as it is written: a fresh RangeIndex, nested values as JSON text, and for
    features the geometry in :data:`GPKG_CRS`."""
    out = frame.reset_index(drop=True)
    for column in out.columns:
        values = out[column]
        if values.dtype == object and values.map(_is_nested).any():
            out[column] = values.map(_json_text)
    if isinstance(out, gpd.GeoDataFrame):
        if out.crs is None:
            raise ValueError(f"{target}: layer {name!r} has no CRS; set one (e.g. EPSG:4326)")
        if not out.crs.equals(GPKG_CRS):
            out = out.to_crs(GPKG_CRS)
    return out


def _is_nested(value: Any) -> bool:
    return isinstance(value, (list, tuple, dict, np.ndarray))


def _json_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def table_layer(table: Table) -> Layer:
    """``table`` as a frame for :func:`write_geopackage`: a column per schema column typed from
    its kind (``tables.ARROW_TYPES``: nullable, typed even when empty; ``json`` as JSON text);
    for a spatial table a GeoDataFrame with the GeoJSON's geometries (WGS84, rounded to its
    decimals: every format holds the same coordinates), empty ones as None."""
    import pyarrow as pa

    rows = table.flat_rows()
    index = pd.RangeIndex(len(rows))
    data = {
        c.name: pd.Series(
            [r[c.name] for r in rows],
            index=index,
            dtype=pd.ArrowDtype(pa.type_for_alias(ARROW_TYPES[c.kind])),
        )
        for c in table.columns
    }
    frame = pd.DataFrame(data, index=index)
    if table.geometries is None:
        return frame
    if table.crs is None:
        raise ValueError(f"table {table.name!r} has geometries but no CRS")
    # The GeoJSON's coordinates: WGS84, rounded, valid after rounding.
    geometries = [
        lonlat_geometry(g, table.crs, f"{table.name} row {i}")
        for i, g in enumerate(table.geometries)
    ]
    layer: Layer = gpd.GeoDataFrame(
        frame, geometry=gpd.GeoSeries(geometries, index=index, crs=GPKG_CRS)
    )
    return layer
