"""Tests for pipeline.export.layers: declared columns, the one conversion of values to plain
data, and that every writer (GeoJSON, CSV, Parquet, GeoPackage) serialises the same plain values.

Tables of a real run are checked in tests/test_export.py (``build_tables`` on hand-made analyses)
and tests/test_gpkg.py (the ``sitewatch.gpkg`` of a demo run, opened by GDAL and QGIS).
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pyogrio
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from pipeline.export.gpkg import table_layer, write_geopackage
from pipeline.export.layers import Column, Kind, Table, json_text, plain
from pipeline.export.run_outputs import write_geojson, write_table_csv
from pipeline.export.tables import write_parquet


class Colour(enum.Enum):
    RED = "red"


# --- the conversion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (np.int64(7), "int", 7),
        (np.int32(-3), "int", -3),
        (np.float32(0.5), "float", 0.5),
        (np.int16(2), "float", 2.0),
        (math.nan, "float", None),
        (np.float64("inf"), "float", None),
        (math.nan, "text", None),  # a missing cell of any kind
        (np.bool_(True), "bool", True),
        ("2021-09-01", "date", dt.date(2021, 9, 1)),
        (dt.datetime(2021, 9, 1, 13, 5), "date", dt.date(2021, 9, 1)),
        (np.datetime64("2021-09-01"), "date", dt.date(2021, 9, 1)),
        (Colour.RED, "text", "red"),
        (
            {"a": np.float32(0.25), "b": [np.int64(1), math.nan], "c": dt.date(2020, 1, 2), "d": Colour.RED},
            "json",
            {"a": 0.25, "b": [1, None], "c": "2020-01-02", "d": "red"},
        ),
        ((1, (2, 3)), "json", [1, [2, 3]]),
        (None, "json", None),
    ],
)  # fmt: skip
def test_plain_known_answers(value: Any, kind: Kind, expected: Any) -> None:
    got = plain(value, kind)
    assert got == expected
    assert type(got) is type(expected)
    assert plain(got, kind) == got  # plain values stay as they are


@pytest.mark.parametrize(
    ("value", "kind", "error", "match"),
    [
        (True, "int", TypeError, "expected an int"),
        (1.5, "int", TypeError, "expected an int"),
        (2**40, "int", ValueError, "outside the 32-bit range"),
        ("1.5", "float", TypeError, "expected a number"),
        (1, "bool", TypeError, "expected a bool"),
        ("2021-13-01", "date", ValueError, "month must be in 1..12"),
        (2021, "date", TypeError, "expected a date"),
        (3, "text", TypeError, "expected a str"),
        ({1: "a"}, "json", TypeError, "mapping keys must be strings"),
        (object(), "json", TypeError, "expected None, bool, int"),
    ],
)
def test_plain_refuses_what_the_kind_does_not_allow(
    value: Any, kind: Kind, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        plain(value, kind)


def test_json_text_is_compact_with_sorted_keys() -> None:
    assert json_text({"b": 1, "a": [1.5, None]}) == '{"a":[1.5,null],"b":1}'
    assert json_text(None) is None


# --- the schema ---------------------------------------------------------------------------------

COLUMNS = (
    Column("site_id", "text", "id"),
    Column("year", "int", "year"),
    Column("area_ha", "float", "area", digits=2),
    Column("share", "float", "a float at the writers' default decimals"),
    Column("significant", "bool", "flag"),
    Column("date_start", "date", "start"),
    Column("colour", "text", "an enum"),
    Column("detail", "json", "nested"),
)


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "site_id": "a", "year": np.int64(2021), "area_ha": np.float32(1.125),
            "share": 1 / 3, "significant": np.bool_(True), "date_start": "2021-09-01",
            "colour": Colour.RED, "detail": {"z": np.float64(0.5), "a": [np.int32(1), math.nan]},
        },
        {
            "site_id": "b", "year": 2022, "area_ha": math.nan, "share": None,
            "significant": None, "date_start": dt.date(2022, 8, 15), "colour": "blue",
            "detail": None,
        },
    ]  # fmt: skip


def _geometries() -> tuple[Polygon | MultiPolygon, ...]:
    return (box(125.0, 39.0, 125.01, 39.01), MultiPolygon([box(125.1, 39.1, 125.11, 39.11)]))


def _table() -> Table:
    return Table("things", COLUMNS, tuple(_rows()), _geometries(), "EPSG:4326")


def test_table_rows_are_plain_with_every_column() -> None:
    t = _table()
    assert t.column_names == tuple(c.name for c in COLUMNS)
    assert t.rows[0] == {
        "site_id": "a", "year": 2021, "area_ha": 1.125, "share": 1 / 3, "significant": True,
        "date_start": dt.date(2021, 9, 1), "colour": "red",
        "detail": {"z": 0.5, "a": [1, None]},
    }  # fmt: skip
    assert t.rows[1]["area_ha"] is None
    assert type(t.rows[0]["year"]) is int
    assert t.float_digits() == {"area_ha": 2}
    assert t.flat_rows()[0]["detail"] == '{"a":[1,null],"z":0.5}'
    assert t.features()[1] == (_geometries()[1], t.rows[1])
    attributes = Table("t", COLUMNS[:2], ({"site_id": "a", "year": 1},))
    assert not attributes.spatial
    with pytest.raises(ValueError, match="table 't' has no geometries"):
        attributes.features()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Table("t", COLUMNS[:2], ({"site_id": "a"},)), r"table 't' row 0: no column 'year'"),
        (
            lambda: Table("t", COLUMNS[:1], ({"site_id": "a", "extra": 1},)),
            r"table 't' row 0: columns \['extra'\] are not in the schema",
        ),
        (
            lambda: Table("t", COLUMNS[:2], ({"site_id": "a", "year": "2021"},)),
            r"table 't' row 0 column 'year': '2021' is not a int value: expected an int",
        ),
        (lambda: Table("t", (*COLUMNS[:1], *COLUMNS[:1]), ()), r"columns \['site_id'\] appear more"),
        (
            lambda: Table("t", COLUMNS[:1], ({"site_id": "a"},), (), "EPSG:4326"),
            "0 geometries for 1 rows",
        ),
        (lambda: Table("t", COLUMNS[:1], (), (), None), "geometries and a crs go together"),
        (lambda: Column("x", "float", "x", digits=-1), "digits -1 need a float or json column"),
        (lambda: Column("x", "text", "x", digits=2), "digits 2 need a float or json column"),
        (lambda: Column("x", "decimal", "x"), "kind 'decimal' is not one of"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_schema_violations_name_table_row_and_column(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


# --- one conversion, every format ---------------------------------------------------------------


def test_every_format_writes_the_same_values(tmp_path: Path) -> None:
    t = _table()
    geojson = json.loads(write_geojson(tmp_path / "t.geojson", t, {"run": "x"}).read_text())
    with write_table_csv(tmp_path / "t.csv", t).open(newline="") as fh:
        text = list(csv.DictReader(fh))
    parquet = pq.read_table(write_parquet(tmp_path / "t.parquet", t)).to_pylist()
    gpkg = write_geopackage(tmp_path / "t.gpkg", {"things": table_layer(t)})
    con = sqlite3.connect(gpkg)
    try:
        stored = con.execute(
            "SELECT site_id, year, area_ha, share, significant, date_start, colour, detail "
            "FROM things ORDER BY fid"
        ).fetchall()
    finally:
        con.close()
    props = [f["properties"] for f in geojson["features"]]
    # Row 0: numpy scalars, an ISO date string, an enum and a mapping with NaN.
    assert props[0] == {
        "site_id": "a", "year": 2021, "area_ha": 1.12, "share": 0.333333, "significant": True,
        "date_start": "2021-09-01", "colour": "red", "detail": {"z": 0.5, "a": [1, None]},
    }  # fmt: skip
    assert text[0] == {
        "site_id": "a", "year": "2021", "area_ha": "1.12", "share": "0.3333",
        "significant": "true", "date_start": "2021-09-01", "colour": "red",
        "detail": '{"a":[1,null],"z":0.5}',
    }  # fmt: skip
    assert parquet[0] == {
        "site_id": "a", "year": 2021, "area_ha": 1.125, "share": 1 / 3, "significant": True,
        "date_start": dt.date(2021, 9, 1), "colour": "red", "detail": '{"a":[1,null],"z":0.5}',
    }  # fmt: skip
    assert stored[0] == ("a", 2021, 1.125, 1 / 3, 1, "2021-09-01", "red", '{"a":[1,null],"z":0.5}')
    # Row 1: NaN and None are missing everywhere, a date object reads as the same date.
    assert [props[1][k] for k in ("area_ha", "share", "significant", "detail")] == [None] * 4
    assert [text[1][k] for k in ("area_ha", "share", "significant", "detail")] == [""] * 4
    assert [parquet[1][k] for k in ("area_ha", "share", "significant", "detail")] == [None] * 4
    assert stored[1] == ("b", 2022, None, None, None, "2022-08-15", "blue", None)
    assert props[1]["date_start"] == text[1]["date_start"] == "2022-08-15"
    assert parquet[1]["date_start"] == dt.date(2022, 8, 15)


def test_empty_tables_keep_their_types(tmp_path: Path) -> None:
    """A layer with no feature (a run without adjacent zones) still has its fields' types and
    its geometry type, so that QGIS styles it like a full one."""
    empty = Table("things", COLUMNS, (), (), "EPSG:4326")
    path = write_geopackage(
        tmp_path / "e.gpkg", {"things": table_layer(empty)}, geometry_types={"things": "MultiPolygon"}
    )  # fmt: skip
    info = pyogrio.read_info(path, layer="things")
    assert info["features"] == 0
    assert info["geometry_type"] == "MultiPolygon"
    assert dict(zip(info["fields"], info["ogr_types"], strict=True)) == {
        "site_id": "OFTString", "year": "OFTInteger", "area_ha": "OFTReal", "share": "OFTReal",
        "significant": "OFTInteger", "date_start": "OFTDate", "colour": "OFTString",
        "detail": "OFTString",
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"geometry types for \['nope'\]"):
        write_geopackage(tmp_path / "f.gpkg", {"things": table_layer(empty)}, geometry_types={"nope": "Point"})  # fmt: skip
    parquet = pq.read_schema(write_parquet(tmp_path / "e.parquet", empty))
    assert [str(f.type) for f in parquet] == ["string", "int32", "double", "double", "bool", "date32[day]", "string", "string"]  # fmt: skip
