"""pipeline.perimeters: analyst-drawn perimeters read from real GeoJSON, GeoPackage and KML files
written into tmp_path by GDAL (through geopandas/pyogrio) or by hand."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from pipeline.errors import SiteError
from pipeline.perimeters import MIN_YEAR, Perimeter, load_perimeters, max_year, perimeters_by_site

ROOT = Path(__file__).resolve().parents[1]
UTM = "EPSG:32652"  # UTM zone 52N: the DPRK's north-east, Yodok (Kwanliso 15) included
X0, Y0 = 311_000.0, 4_391_000.0  # ~126.8 E, 39.65 N: Yodok
HAS_LIBKML = "LIBKML" in pyogrio.list_drivers()
_TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
_TO_WGS84 = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def utm_box(dx: float = 0.0, dy: float = 0.0, w: float = 1_000.0, h: float = 800.0) -> Polygon:
    """A w x h m rectangle in UTM 52N, dx/dy m from the reference corner: area w*h m2."""
    return box(X0 + dx, Y0 + dy, X0 + dx + w, Y0 + dy + h)


def _project(geom: BaseGeometry, tr: Transformer) -> Any:
    return shapely.transform(geom, tr.transform, interleaved=False)


def wgs84(geom: BaseGeometry) -> Any:
    return _project(geom, _TO_WGS84)


def utm_area(geom: BaseGeometry) -> float:
    return float(_project(geom, _TO_UTM).area)


def write(path: Path, rows: list[dict[str, Any]], crs: str | None = "EPSG:4326", **kw: Any) -> Path:
    """``rows`` (with a ``geometry``) written by GDAL to ``path``; the driver from the suffix
    unless ``driver=`` is given."""
    frame = gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=crs)
    frame.to_file(path, **kw)
    return path


def error_of(path: Path, **kwargs: Any) -> str:
    with pytest.raises(SiteError) as info:
        load_perimeters(path, **kwargs)
    return str(info.value)


def geojson(tmp_path: Path, *features: dict[str, Any], name: str = "perimeters.geojson") -> Path:
    """A GeoJSON file written by hand: properties given as they are, geometry in lon/lat."""
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {k: v for k, v in f.items() if k != "geometry"},
                "geometry": f.get("geometry", shapely.geometry.mapping(wgs84(utm_box()))),
            }
            for f in features
        ],
    }
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


# ---- values read ---------------------------------------------------------------------------------


def test_geojson_years_dates_sites_and_areas(tmp_path: Path) -> None:
    shapes = [utm_box(), utm_box(2_000, 0, 1_500, 900), utm_box(0, 5_000, 700, 700), utm_box(w=600)]
    path = write(
        tmp_path / "perims.geojson",
        [
            {"site_id": "yodok", "year": 2019, "date": None, "geometry": wgs84(shapes[0])},
            {"site_id": "yodok", "year": None, "date": "2021-06-01", "geometry": wgs84(shapes[1])},
            {
                "site_id": "hwasong",
                "year": 2020,
                "date": "2020-07-15T10:30:00Z",
                "geometry": wgs84(shapes[2]),
            },
            {"site_id": "yodok", "year": 2017, "date": None, "geometry": wgs84(shapes[3])},
        ],
    )
    got = load_perimeters(path)
    # sorted by site, then year; origin keeps the position in the file
    assert [(p.site_id, p.year, p.date, p.origin) for p in got] == [
        ("hwasong", 2020, datetime.date(2020, 7, 15), f"{path}#2"),
        ("yodok", 2017, None, f"{path}#3"),
        ("yodok", 2019, None, f"{path}#0"),
        ("yodok", 2021, datetime.date(2021, 6, 1), f"{path}#1"),
    ]
    for p, index in zip(got, [2, 3, 0, 1], strict=True):
        assert isinstance(p, Perimeter)
        assert isinstance(p.geometry, Polygon)
        assert utm_area(p.geometry) == pytest.approx(shapes[index].area, rel=1e-3)


def test_json_suffix_and_year_as_text(tmp_path: Path) -> None:
    path = geojson(tmp_path, {"site_id": "yodok", "year": "2018"}, name="perims.json")
    [p] = load_perimeters(path)
    assert (p.site_id, p.year, p.date) == ("yodok", 2018, None)


def test_gpkg_in_utm_is_reprojected_to_wgs84(tmp_path: Path) -> None:
    shape = utm_box(w=1_234.0, h=987.0)
    path = tmp_path / "perims.gpkg"
    # "Year" in another case than year_field: GeoPackage (SQLite) and QGIS ignore the case
    write(path, [{"site_id": "yodok", "Year": 2016, "geometry": shape}], crs=UTM, layer="fence")
    # a style table saved by QGIS has no geometry: not a second perimeter layer
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["fence"]}), path, layer="layer_styles")
    [p] = load_perimeters(path)
    assert (p.site_id, p.year, p.date, p.origin) == ("yodok", 2016, None, f"{path}:fence#0")
    lon0, lat0, lon1, lat1 = p.geometry.bounds
    assert 126.0 < lon0 < lon1 < 127.5
    assert 39.0 < lat0 < lat1 < 40.5
    assert utm_area(p.geometry) == pytest.approx(shape.area, rel=1e-3)


def test_gpkg_layer_picks_one_of_two(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    write(path, [{"site_id": "yodok", "year": 2019, "geometry": utm_box()}], crs=UTM, layer="y2019")
    write(path, [{"site_id": "yodok", "year": 2020, "geometry": utm_box()}], crs=UTM, layer="y2020")
    [p] = load_perimeters(path, layer="y2020")
    assert (p.year, p.origin) == (2020, f"{path}:y2020#0")


def test_kml_written_by_gdal(tmp_path: Path) -> None:
    shape = utm_box(w=900, h=1_100)
    path = write(
        tmp_path / "perims.kml",
        [{"Name": "Yodok 2019", "site_id": "yodok", "year": 2019, "geometry": wgs84(shape)}],
        driver="KML",
    )
    if not HAS_LIBKML:  # GDAL's KML driver does not read the ExtendedData GDAL itself wrote
        assert "LIBKML" in error_of(path)
        return
    [p] = load_perimeters(path)
    assert (p.site_id, p.year, p.date) == ("yodok", 2019, None)
    assert p.origin.startswith(f"{path}:")
    assert p.origin.endswith("#0")
    assert utm_area(p.geometry) == pytest.approx(shape.area, rel=1e-3)


def _ring(shape: Polygon) -> str:
    return " ".join(f"{x!r},{y!r},0" for x, y in wgs84(shape).exterior.coords)


def hand_written_kml(tmp_path: Path) -> Path:
    """Google Earth style: a polygon with <TimeStamp> and a site_id in <ExtendedData>, then a
    folder holding a closed path (LineString) with a <TimeSpan>."""
    path = tmp_path / "drawn.kml"
    path.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2">
<Document>
  <Placemark>
    <name>Yodok fence 2019</name>
    <description>traced on Pleiades, 2019-06-01</description>
    <TimeStamp><when>2019-06-01</when></TimeStamp>
    <ExtendedData><Data name="site_id"><value>yodok</value></Data></ExtendedData>
    <Polygon><outerBoundaryIs><LinearRing>
      <coordinates>{_ring(utm_box())}</coordinates>
    </LinearRing></outerBoundaryIs></Polygon>
  </Placemark>
  <Folder><name>paths</name>
    <Placemark>
      <name>Yodok fence 2020</name>
      <TimeSpan><begin>2020-05-03</begin></TimeSpan>
      <ExtendedData><Data name="site_id"><value>yodok</value></Data></ExtendedData>
      <LineString><coordinates>{_ring(utm_box(w=1_300))}</coordinates></LineString>
    </Placemark>
  </Folder>
</Document>
</kml>
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.skipif(not HAS_LIBKML, reason="needs GDAL's LIBKML driver (see the test below)")
def test_hand_written_kml_timestamp_extended_data_and_closed_path(tmp_path: Path) -> None:
    path = hand_written_kml(tmp_path)
    first, second = load_perimeters(path)
    assert (first.site_id, first.year, first.date) == ("yodok", 2019, datetime.date(2019, 6, 1))
    assert first.origin.startswith(f"{path}:")
    assert first.origin.endswith("#0")
    assert utm_area(first.geometry) == pytest.approx(800_000.0, rel=1e-3)
    # a closed path is read as the polygon it encloses
    assert (second.year, second.date, second.origin) == (
        2020,
        datetime.date(2020, 5, 3),
        f"{path}:paths#0",
    )
    assert isinstance(second.geometry, Polygon)
    assert utm_area(second.geometry) == pytest.approx(1_300 * 800.0, rel=1e-3)
    [only] = load_perimeters(path, layer="paths")
    assert only == second


def test_kml_driver_without_libkml_says_what_is_missing(tmp_path: Path) -> None:
    """With only GDAL's plain KML driver (LIBKML skipped) the TimeStamp and ExtendedData are not
    read: the error says so instead of just 'no year'."""
    path = hand_written_kml(tmp_path)
    code = (
        "from pipeline.perimeters import load_perimeters\n"
        "from pipeline.errors import SiteError\n"
        "import sys\n"
        "try:\n"
        "    load_perimeters(sys.argv[1], default_site='yodok')\n"
        "except SiteError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "GDAL_SKIP": "LIBKML"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "LIBKML" in done.stdout
    assert str(path) in done.stdout
    assert "feature 0 (name 'Yodok fence 20" in done.stdout


def test_union_of_polygons_of_one_site_year(tmp_path: Path) -> None:
    a, b = utm_box(), utm_box(500, 300)  # overlapping
    far = utm_box(10_000, 0)
    path = write(
        tmp_path / "perims.geojson",
        [
            {"site_id": "yodok", "year": 2019, "geometry": wgs84(b)},
            {"site_id": "yodok", "year": 2019, "geometry": wgs84(a)},
            {"site_id": "yodok", "year": 2018, "geometry": wgs84(a)},
            {"site_id": "chongori", "year": 2019, "geometry": wgs84(a)},
            {"site_id": "chongori", "year": 2019, "geometry": wgs84(far)},
        ],
    )
    merged = perimeters_by_site(load_perimeters(path))
    assert list(merged) == ["chongori", "yodok"]
    assert list(merged["yodok"]) == [2018, 2019]
    union = merged["yodok"][2019]
    assert isinstance(union, Polygon)
    assert utm_area(union) == pytest.approx(a.union(b).area, rel=1e-3)
    assert utm_area(union) < a.area + b.area
    apart = merged["chongori"][2019]
    assert isinstance(apart, MultiPolygon)
    assert utm_area(apart) == pytest.approx(a.area + far.area, rel=1e-3)


def test_default_site(tmp_path: Path) -> None:
    path = write(
        tmp_path / "no_site.geojson",
        [
            {"year": 2019, "geometry": wgs84(utm_box())},
            {"year": 2020, "geometry": wgs84(utm_box())},
        ],
    )
    assert [p.site_id for p in load_perimeters(path, default_site="yodok")] == ["yodok", "yodok"]
    # the default fills empty site fields only
    path = geojson(tmp_path, {"site_id": "", "year": 2019}, {"site_id": "hwasong", "year": 2019})
    got = load_perimeters(path, default_site="yodok")
    assert [(p.site_id, p.origin) for p in got] == [
        ("hwasong", f"{path}#1"),
        ("yodok", f"{path}#0"),
    ]


# ---- errors: each names the file, the feature and the field or value ----------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.gpkg"
    with pytest.raises(SiteError, match="not found"):
        load_perimeters(path)
    assert str(path) in error_of(path)


def test_bad_suffix(tmp_path: Path) -> None:
    path = tmp_path / "perims.csv"
    path.write_text("site_id,year\nyodok,2019\n", encoding="utf-8")
    msg = error_of(path)
    assert str(path) in msg
    assert "'.csv'" in msg
    assert ".geojson" in msg
    assert ".gpkg" in msg
    assert ".kml" in msg


def test_a_folder_named_like_a_file(tmp_path: Path) -> None:
    # geopandas' to_file("x.kml") without driver= writes a shapefile folder of that name
    path = tmp_path / "perims.kml"
    path.mkdir()
    assert "not a file" in error_of(path)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    msg = error_of(path)
    assert msg.startswith(f"{path}: cannot read as GeoJSON (")


def test_missing_year_and_date(tmp_path: Path) -> None:
    path = geojson(
        tmp_path,
        {"site_id": "yodok", "year": 2019, "name": "south"},
        {"site_id": "yodok", "name": "north fence"},
    )
    msg = error_of(path)
    assert f"{path} feature 1 (name 'north fence'): no year" in msg
    assert "'year', 'date'" in msg


def test_year_and_date_disagree(tmp_path: Path) -> None:
    path = geojson(tmp_path, {"site_id": "yodok", "year": 2019, "date": "2020-06-01"})
    with pytest.raises(SiteError, match="disagrees") as info:
        load_perimeters(path)
    msg = str(info.value)
    assert f"{path} feature 0" in msg
    assert "'year' = 2019" in msg
    assert "'date' = 2020-06-01" in msg


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"year": 1960}, "'year' = 1960 gives year 1960, out of range"),
        ({"year": max_year() + 1}, f"'year' = {max_year() + 1} gives year"),
        ({"date": "1969-07-20"}, "'date' = '1969-07-20' gives year 1969, out of range"),
        ({"year": "19"}, "'year' = '19' is not a year"),
        ({"year": 2019.5}, "'year' = 2019.5 is not a year"),
        ({"date": "June 2019"}, "'date' = 'June 2019' is not a date"),
        ({"date": "2019"}, "put a bare year in 'year'"),
    ],
)
def test_bad_year_or_date(tmp_path: Path, props: dict[str, Any], expected: str) -> None:
    path = geojson(tmp_path, {"site_id": "yodok", **props})
    msg = error_of(path)
    assert f"{path} feature 0" in msg
    assert expected in msg
    if "range" in expected:
        assert f"{MIN_YEAR}" in msg
        assert f"{max_year()}" in msg


def test_bad_site_id(tmp_path: Path) -> None:
    path = geojson(
        tmp_path, {"site_id": "yodok", "year": 2019}, {"site_id": "Yodok Camp", "year": 2019}
    )
    msg = error_of(path)
    assert f"{path} feature 1: field 'site_id' = 'Yodok Camp' is not a valid site id" in msg
    assert "lower-case" in msg


def test_bad_default_site(tmp_path: Path) -> None:
    path = geojson(tmp_path, {"year": 2019})
    assert "default site (--site) '../etc'" in error_of(path, default_site="../etc")


def test_missing_site_field_without_default(tmp_path: Path) -> None:
    path = geojson(tmp_path, {"camp": "yodok", "year": 2019})
    msg = error_of(path)
    assert msg.startswith(f"{path}: no field 'site_id'")
    assert "'camp'" in msg
    assert "--site" in msg
    assert "default_site" in msg


def test_empty_site_without_default(tmp_path: Path) -> None:
    path = geojson(tmp_path, {"site_id": None, "year": 2019})
    assert f"{path} feature 0: field 'site_id' is empty" in error_of(path)


def test_line_geometry(tmp_path: Path) -> None:
    line = wgs84(LineString(utm_box().exterior.coords))  # closed, but only KML paths are polygons
    path = write(tmp_path / "lines.geojson", [{"site_id": "yodok", "year": 2019, "geometry": line}])
    msg = error_of(path)
    assert f"{path} feature 0: geometry type LineString not allowed" in msg


def test_invalid_bowtie_polygon(tmp_path: Path) -> None:
    x, y = X0, Y0
    bowtie = wgs84(Polygon([(x, y), (x + 1_000, y + 1_000), (x + 1_000, y), (x, y + 1_000)]))
    path = write(tmp_path / "bowtie.gpkg", [{"site_id": "yodok", "year": 2019, "geometry": bowtie}])
    msg = error_of(path)
    assert f"{path}:bowtie feature 0 (fid 1): invalid Polygon (Self-intersection" in msg
    assert "Vector > Geometry Tools > Fix Geometries" in msg


def test_empty_geometry(tmp_path: Path) -> None:
    path = write(
        tmp_path / "empty.geojson", [{"site_id": "yodok", "year": 2019, "geometry": Polygon()}]
    )
    assert f"{path} feature 0: geometry Polygon is empty" in error_of(path)


def test_null_geometry(tmp_path: Path) -> None:
    path = geojson(tmp_path, {"site_id": "yodok", "year": 2019, "geometry": None})
    assert f"{path} feature 0: no geometry" in error_of(path)


def test_coordinates_outside_wgs84(tmp_path: Path) -> None:
    # UTM metres in a GeoJSON without a crs member, so taken as longitude/latitude
    path = geojson(
        tmp_path,
        {"site_id": "yodok", "year": 2019, "geometry": shapely.geometry.mapping(utm_box())},
    )
    msg = error_of(path)
    assert f"{path} feature 0: geometry bounds" in msg
    assert "outside WGS84" in msg


def test_gpkg_two_layers_without_layer(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    write(path, [{"site_id": "yodok", "year": 2019, "geometry": utm_box()}], crs=UTM, layer="y2019")
    write(path, [{"site_id": "yodok", "year": 2020, "geometry": utm_box()}], crs=UTM, layer="y2020")
    msg = error_of(path)
    assert msg.startswith(f"{path}: 2 layers with geometry, 'y2019', 'y2020'")
    assert "--layer" in msg


def test_unknown_layer(tmp_path: Path) -> None:
    path = write(
        tmp_path / "one.gpkg",
        [{"site_id": "yodok", "year": 2019, "geometry": utm_box()}],
        crs=UTM,
        layer="y2019",
    )
    msg = error_of(path, layer="y2091")
    assert msg == f"{path}: layer 'y2091' not found; layers in the file: 'y2019'"


def test_gpkg_layer_without_crs(tmp_path: Path) -> None:
    path = tmp_path / "nocrs.gpkg"
    with warnings.catch_warnings():  # pyogrio warns that the file will have no CRS: the point
        warnings.simplefilter("ignore", UserWarning)
        write(path, [{"site_id": "yodok", "year": 2019, "geometry": utm_box()}], crs=None)
    msg = error_of(path)
    assert msg.startswith(f"{path}:nocrs: the layer has no CRS")


def test_file_without_features(tmp_path: Path) -> None:
    path = tmp_path / "none.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    assert f"{path}: no features" in error_of(path)
