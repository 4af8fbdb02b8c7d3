"""Tests for pipeline.export: RFC 7946 GeoJSON, COGs, CSV, the manifest and atomic writes, and the
trend table rows with their Parquet twin."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine
from geojson_validator import configure_logging, validate_geometries, validate_structure
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import (
    LineString,
    MultiPolygon,
    Point,
    Polygon,
    box,
    shape,
)

import pipeline
import pipeline.export
from pipeline.analysis import analyse_site
from pipeline.classify import CoalFrequency
from pipeline.composite import Composite
from pipeline.config import TrendsConfig
from pipeline.export import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    canonical_json,
    file_checksums,
    format_float,
    sha256_file,
    software_versions,
    write_cog,
    write_csv,
    write_feature_collection,
    write_manifest,
)
from pipeline.export.atomic import TEMP_GLOB
from pipeline.export.expansion import FLOAT_DIGITS as EXPANSION_DIGITS
from pipeline.export.layers import (
    KINDS,
    TREND_COLUMNS,
    TREND_SCHEMA,
    Table,
    TableOptions,
    adjacent_zone_of,
    build_tables,
    trend_rows,
)
from pipeline.export.tables import ARROW_TYPES, write_parquet
from pipeline.grid import Grid
from pipeline.results import SceneRecord, SiteAnalysis, SiteYear
from pipeline.sites import Site
from pipeline.trends import Z95

REPO = Path(__file__).resolve().parents[1]
UTM = "EPSG:32651"  # zone 51N: central meridian 123 E, the zone of most North Korean sites
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)

# Ring geometry checks that hold for every file written; "holes" and "excessive_vertices" are
# allowed by RFC 7946 and the tests use holes on purpose.
PROBLEMATIC = [
    "inner_and_exterior_ring_intersect",
    "self_intersection",
    "duplicate_nodes",
    "excessive_coordinate_precision",
    "3d_coordinates",
    "outside_lat_lon_boundaries",
    "crosses_antimeridian",
]


@pytest.fixture(autouse=True, scope="module")
def quiet_geojson_validator() -> Iterator[None]:
    """geojson-validator logs every call at INFO to stderr through loguru; restore that after."""
    configure_logging(enabled=False)
    yield
    configure_logging(enabled=True)


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def all_positions(geometry: dict[str, Any]) -> list[list[float]]:
    def walk(coords: Any) -> list[list[float]]:
        if coords and isinstance(coords[0], (int, float)):
            return [coords]
        return [p for c in coords for p in walk(c)]

    return walk(geometry["coordinates"])


def assert_rfc7946(path: Path) -> dict[str, Any]:
    """The checks every written FeatureCollection must pass; returns the parsed document."""
    assert validate_structure(path, check_crs=True) == {}
    report = validate_geometries(path, criteria_problematic=PROBLEMATIC)
    assert report["invalid"] == {}, report
    assert report["problematic"] == {}, report
    doc = load(path)
    assert "crs" not in doc
    for feature in doc["features"]:
        geometry = feature["geometry"]
        if geometry is None:
            continue
        for position in all_positions(geometry):
            assert len(position) == 2
            assert all(round(v, 6) == v for v in position), position
        geom = shape(geometry)
        if geom.geom_type in ("Polygon", "MultiPolygon"):
            assert geom.is_valid, shapely.is_valid_reason(geom)
            for polygon in shapely.get_parts(geom):
                assert polygon.exterior.is_ccw
                assert not any(ring.is_ccw for ring in polygon.interiors)
    return doc


def utm_square(x: float, y: float, size: float, *, clockwise: bool = False) -> Polygon:
    ring = [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]
    return Polygon(ring[::-1] if clockwise else ring)


# --- atomic writes --------------------------------------------------------------------------


def test_atomic_path_renames_over_the_target_on_success(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "out.csv"
    with atomic_path(target) as temp:
        assert temp.parent == target.parent
        assert temp.suffix == ".csv"  # GDAL picks drivers by extension
        assert not temp.exists()
        assert temp.match(TEMP_GLOB)
        temp.write_text("done\n")
        assert not target.exists()
    assert target.read_text() == "done\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]


def write_half_then_fail(target: Path, error: BaseException) -> None:
    with atomic_path(target) as temp:
        temp.write_text("half")
        Path(f"{temp}.aux.xml").write_text("a GDAL sidecar")
        raise error


def test_an_exception_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"):
        write_half_then_fail(target, RuntimeError("boom"))
    assert list(tmp_path.iterdir()) == []


def test_an_exception_leaves_an_existing_file_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        write_half_then_fail(target, KeyboardInterrupt())
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_writer_that_wrote_nothing_does_not_replace_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(FileNotFoundError, match="did not create"), atomic_path(target):
        pass
    assert target.read_text() == "old\n"


def test_atomic_write_text_and_bytes(tmp_path: Path) -> None:
    assert atomic_write_text(tmp_path / "a.txt", "x\r\ny\nü") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_bytes() == "x\r\ny\nü".encode()
    atomic_write_bytes(tmp_path / "a.txt", b"\x00\x01")
    assert (tmp_path / "a.txt").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="does not name a file"):
        atomic_write_text(tmp_path / "..", "x")


def test_a_killed_writer_never_leaves_a_partial_file_under_the_final_name(tmp_path: Path) -> None:
    target = tmp_path / "trends.csv"
    target.write_text("complete old table\n")
    child = (
        "import os, signal, sys\n"
        "from pipeline.export import atomic_path\n"
        "with atomic_path(sys.argv[1]) as temp:\n"
        "    with open(temp, 'w') as f:\n"
        "        f.write('half a table')\n"
        "        f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", child, str(target)], env=env, check=False)
    assert done.returncode == -signal.SIGKILL
    assert target.read_text() == "complete old table\n"
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1
    assert leftovers[0].match(TEMP_GLOB)  # hidden, and sweepable by a resumed run


def test_a_cog_writer_failing_midway_leaves_the_previous_cog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = Grid(UTM, Affine(10, 0, 500_000, 0, -10, 4_400_000), 4, 3)
    target = tmp_path / "footprint.tif"
    write_cog(target, np.ones((3, 4), np.uint8), grid, nodata=255)
    before = target.read_bytes()

    def failing_copy(src: Any, dst: str, **options: Any) -> None:
        Path(dst).write_bytes(b"II*\x00 truncated")
        raise rasterio.errors.RasterioIOError("disk full")

    monkeypatch.setattr(rasterio.shutil, "copy", failing_copy)
    with pytest.raises(rasterio.errors.RasterioIOError, match="disk full"):
        write_cog(target, np.zeros((3, 4), np.uint8), grid, nodata=255)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["footprint.tif"]


# --- GeoJSON --------------------------------------------------------------------------------


def test_geojson_is_rfc7946_with_ccw_exteriors_and_cw_holes(tmp_path: Path) -> None:
    # Exterior clockwise and hole counter-clockwise in UTM: both the wrong way round for RFC 7946.
    outer = [(500_000, 4_400_000), (500_000, 4_401_000), (501_000, 4_401_000), (501_000, 4_400_000)]
    hole = [(500_200, 4_400_200), (500_800, 4_400_200), (500_800, 4_400_800), (500_200, 4_400_800)]
    with_hole = Polygon(outer, [hole])
    assert not with_hole.exterior.is_ccw
    assert with_hole.interiors[0].is_ccw
    two_parts = MultiPolygon(
        [utm_square(502_000, 4_400_000, 300, clockwise=True), utm_square(503_000, 4_400_000, 300)]
    )
    path = tmp_path / "footprints.geojson"
    features = [
        (with_hole, {"site_id": "camp-16", "year": 2019, "area_ha": 64.0}),
        (two_parts, {"site_id": "camp-16", "year": 2020, "area_ha": 18.0}),
    ]
    assert write_feature_collection(path, features, UTM, name="footprints") == path
    doc = assert_rfc7946(path)
    assert doc["type"] == "FeatureCollection"
    assert doc["name"] == "footprints"
    assert [f["geometry"]["type"] for f in doc["features"]] == ["MultiPolygon", "MultiPolygon"]
    assert len(doc["features"][0]["geometry"]["coordinates"][0]) == 2  # exterior + hole kept


def test_geojson_coordinates_are_lon_lat_in_wgs84_with_6_decimals(tmp_path: Path) -> None:
    # x = 500 000 m is the zone's central meridian, 123 E exactly.
    square = utm_square(500_000, 4_400_000, 1000)
    path = tmp_path / "f.geojson"
    write_feature_collection(path, [(square, {})], UTM)
    doc = assert_rfc7946(path)
    positions = all_positions(doc["features"][0]["geometry"])
    to_wgs84 = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    for (x, y), (lon, lat) in zip(list(square.exterior.coords), positions, strict=True):
        expected = to_wgs84.transform(x, y)
        assert lon == pytest.approx(expected[0], abs=5e-7)
        assert lat == pytest.approx(expected[1], abs=5e-7)
    assert positions[0][0] == 123.0
    assert 39.7 < positions[0][1] < 39.8
    decimals = [len(repr(v).split(".")[1]) for position in positions for v in position]
    assert max(decimals) == 6  # rounded to 6, not fewer


def test_geojson_bytes_are_identical_for_identical_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    features = [
        (
            Point(500_000 + dx, 4_400_000 + dy).buffer(50 + dx / 10),
            {"site_id": f"s{i}", "year": 2020, "area_ha": float(dx) / 7, "note": "é"},
        )
        for i, (dx, dy) in enumerate(rng.uniform(0, 5000, size=(5, 2)))
    ]
    meta = {"run": "demo", "config_hash": "abc", "threshold": 0.1 + 0.2}
    write_feature_collection(tmp_path / "a.geojson", features, UTM, name="x", metadata=meta)
    write_feature_collection(tmp_path / "b.geojson", features, UTM, name="x", metadata=meta)
    a = (tmp_path / "a.geojson").read_bytes()
    assert a == (tmp_path / "b.geojson").read_bytes()
    assert a.endswith(b"\n]\n}\n")
    assert "é" in a.decode("utf-8")
    assert load(tmp_path / "a.geojson")["sitewatch"] == meta


def test_rounding_that_breaks_a_polygon_is_repaired_keeping_the_polygon(tmp_path: Path) -> None:
    # A square with a slit 4e-7 degrees wide cut in from the east: valid as given, but both slit
    # edges round onto latitude 0.5, which makes the ring overlap itself.
    slit = Polygon(
        [
            (0.0, 0.0),
            (1.0, 0.0),
            (1.0, 0.4999998),
            (0.2, 0.4999998),
            (0.2, 0.5000002),
            (1.0, 0.5000002),
            (1.0, 1.0),
            (0.0, 1.0),
        ]
    )
    assert slit.is_valid
    rounded = shapely.transform(slit, lambda c: np.round(c, 6))
    assert not rounded.is_valid  # the case this test is about
    path = tmp_path / "slit.geojson"
    write_feature_collection(path, [(slit, {"site_id": "a"})], "EPSG:4326")
    doc = assert_rfc7946(path)
    written = shape(doc["features"][0]["geometry"])
    assert written.geom_type == "MultiPolygon"
    assert written.area == pytest.approx(slit.area, abs=1e-6)
    assert written.covers(Point(0.5, 0.25))
    assert written.covers(Point(0.5, 0.75))


def test_a_hole_that_touches_its_shell_after_rounding_is_not_filled(tmp_path: Path) -> None:
    # Found by the property test below: shapely's default make_valid ("linework") filled this
    # hole, adding a third to the area; the "structure" method keeps it out.
    polygon = shapely.from_wkt(
        "POLYGON ((299999.3 4199995, 299999.95 4199995.05, 300004.95 4199998.25, "
        "300003.5 4200001.35, 300004.35 4200004.25, 300000.45 4200002.15, 300000.75 4200004.45, "
        "299999.1 4200003.6, 299999.9 4200001.45, 299998.55 4200001.3, 299997.15 4200001.55, "
        "299995.25 4200001.95, 299999.3 4199995), (299999.78 4199997.93, 300000.11 4199997.96, "
        "300002.61 4199999.56, 300001.88 4200001.11, 300002.31 4200002.56, 300000.36 4200001.51, "
        "300000.51 4200002.66, 299999.68 4200002.23, 300000.08 4200001.16, 299999.41 4200001.08, "
        "299998.71 4200001.21, 299997.76 4200001.41, 299999.78 4199997.93))"
    )
    assert polygon.is_valid
    path = tmp_path / "holed.geojson"
    write_feature_collection(path, [(polygon, {})], UTM)
    written = shape(assert_rfc7946(path)["features"][0]["geometry"])
    to_wgs84 = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    expected = shapely.transform(polygon, lambda x, y: to_wgs84.transform(x, y), interleaved=False)
    assert abs(written.area - expected.area) <= expected.length * 1e-6


def test_a_polygon_that_collapses_at_6_decimals_is_written_as_null(tmp_path: Path) -> None:
    sliver = box(124.0, 40.0, 124.1, 40.0000003)  # 3 cm wide
    path = tmp_path / "sliver.geojson"
    write_feature_collection(path, [(sliver, {"site_id": "a", "area_ha": 0.0})], "EPSG:4326")
    doc = assert_rfc7946(path)
    assert doc["features"][0]["geometry"] is None
    assert doc["features"][0]["properties"] == {"site_id": "a", "area_ha": 0.0}


def test_an_invalid_input_polygon_is_written_as_its_valid_repair(tmp_path: Path) -> None:
    bowtie = Polygon(
        [(500_000, 4_400_000), (501_000, 4_401_000), (501_000, 4_400_000), (500_000, 4_401_000)]
    )
    assert not bowtie.is_valid
    path = tmp_path / "bowtie.geojson"
    write_feature_collection(path, [(bowtie, {})], UTM)
    written = shape(assert_rfc7946(path)["features"][0]["geometry"])
    assert len(written.geoms) == 2  # the two triangles


def test_empty_and_missing_geometries_keep_their_feature_with_null_geometry(
    tmp_path: Path,
) -> None:
    features = [
        (None, {"site_id": "a", "year": 2018, "area_ha": 0.0}),
        (Polygon(), {"site_id": "a", "year": 2019, "area_ha": 0.0}),
        (MultiPolygon(), {"site_id": "a", "year": 2020, "area_ha": 0.0}),
        (shapely.GeometryCollection(), {"site_id": "a", "year": 2021, "area_ha": 0.0}),
    ]
    path = tmp_path / "null.geojson"
    write_feature_collection(path, features, UTM)
    doc = assert_rfc7946(path)
    assert [f["geometry"] for f in doc["features"]] == [None] * 4
    assert [f["properties"]["year"] for f in doc["features"]] == [2018, 2019, 2020, 2021]
    assert validate_geometries(path)["skipped_validation"] == [0, 1, 2, 3]


def test_an_empty_collection_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "empty.geojson"
    write_feature_collection(path, [], UTM)
    assert assert_rfc7946(path)["features"] == []
    assert pyogrio.read_info(path)["features"] == 0


class Kind(enum.Enum):
    CAMP = "camp"


def test_properties_keep_order_and_are_written_deterministically(tmp_path: Path) -> None:
    properties = {
        "year": np.int64(2020),
        "site_id": "camp-16",
        "area_ha": 12.3456789,
        "change_ha": -0.0000001,
        "ratio": 0.1 + 0.2,
        "missing": float("nan"),
        "infinite": np.float32("inf"),
        "none": None,
        "flag": np.bool_(True),
        "kind": Kind.CAMP,
        "date": dt.date(2020, 5, 1),
        "per_year": [1.23456789, float("nan")],
        "nested": {"b": 2.0000004, "a": 1},
    }
    path = tmp_path / "p.geojson"
    write_feature_collection(path, [(None, properties)], UTM, float_digits={"area_ha": 2})
    written = load(path)["features"][0]["properties"]
    assert list(written) == list(properties)
    assert written == {
        "year": 2020,
        "site_id": "camp-16",
        "area_ha": 12.35,
        "change_ha": 0.0,
        "ratio": 0.3,
        "missing": None,
        "infinite": None,
        "none": None,
        "flag": True,
        "kind": "camp",
        "date": "2020-05-01",
        "per_year": [1.234568, None],
        "nested": {"b": 2.0, "a": 1},
    }
    text = path.read_text()
    assert '"change_ha": 0.0,' in text
    assert "NaN" not in text
    assert "Infinity" not in text


def test_gdal_reads_the_file_back_as_a_single_type_layer_in_wgs84(tmp_path: Path) -> None:
    features = [
        (utm_square(500_000, 4_400_000, 500), {"site_id": "a", "year": 2019, "area_ha": 25.0}),
        (None, {"site_id": "a", "year": 2020, "area_ha": 0.0}),
        (
            MultiPolygon(
                [utm_square(501_000, 4_400_000, 100), utm_square(502_000, 4_400_000, 100)]
            ),
            {"site_id": "a", "year": 2021, "area_ha": 2.0},
        ),
    ]
    path = tmp_path / "footprints.geojson"
    write_feature_collection(path, features, UTM, name="footprints")
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4326"
    assert info["geometry_type"] == "MultiPolygon"
    assert info["layer_name"] == "footprints"
    assert list(info["fields"]) == ["site_id", "year", "area_ha"]
    frame = pyogrio.read_dataframe(path)
    assert list(frame["year"]) == [2019, 2020, 2021]
    assert frame.geometry.iloc[1] is None
    written = [shape(f["geometry"]) for f in load(path)["features"] if f["geometry"]]
    for gdal_geom, ours in zip(frame.geometry.dropna(), written, strict=True):
        assert gdal_geom.equals_exact(ours, tolerance=0)
    area_m2 = frame.to_crs(UTM).geometry.area.fillna(0) / 10_000
    assert list(area_m2.round(2)) == [25.0, 0.0, 2.0]


def test_promote_to_multi_can_be_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "points.geojson"
    features = [
        (Point(500_000, 4_400_000), {"id": 1}),
        (LineString([(500_000, 4_400_000), (500_100, 4_400_000)]), {"id": 2}),
        (utm_square(500_000, 4_400_000, 100), {"id": 3}),
    ]
    write_feature_collection(path, features, UTM, promote_to_multi=False)
    doc = assert_rfc7946(path)
    assert [f["geometry"]["type"] for f in doc["features"]] == ["Point", "LineString", "Polygon"]


def test_geojson_rejects_what_it_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "x.geojson"
    with pytest.raises(ValueError, match="not a CRS"):
        write_feature_collection(path, [], "EPSG:99999999")
    # Chukotka, UTM zone 60N: a 2 km square straddling 180 degrees.
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32660", always_xy=True).transform(180.0, 65.0)
    with pytest.raises(ValueError, match=r"feature 0: .*crosses the antimeridian"):
        write_feature_collection(
            path, [(box(x - 1000, y - 1000, x + 1000, y + 1000), {})], "EPSG:32660"
        )
    with pytest.raises(ValueError, match=r"feature 0: .*outside longitude -180\.\.180"):
        write_feature_collection(path, [(box(-180.5, 0, -179.5, 1), {})], "EPSG:4326")
    collection = shapely.GeometryCollection([Point(0, 0), box(0, 0, 1, 1)])
    with pytest.raises(ValueError, match="feature 1: a GeometryCollection"):
        write_feature_collection(path, [(None, {}), (collection, {})], "EPSG:4326")
    with pytest.raises(TypeError, match="feature 0 property 'when': cannot write a set"):
        write_feature_collection(path, [(None, {"when": {1}})], "EPSG:4326")
    with pytest.raises(TypeError, match="feature 0: expected a"):
        write_feature_collection(path, [None], "EPSG:4326")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="float_digits for 'a'"):
        write_feature_collection(path, [(None, {"a": 1.0})], "EPSG:4326", float_digits=-1)
    assert not path.exists()


@st.composite
def star_polygons(draw: st.DrawFn) -> Polygon:
    """Star-shaped UTM polygons, some with a hole, from hectometres down to decimetres.

    At the small scales the 6th decimal (about 9 cm east, 11 cm north here) is coarser than the
    shape, so rounding often breaks or collapses it: the repair paths get exercised.
    """
    scale = draw(st.sampled_from([0.002, 0.005, 0.05, 1.0, 100.0]))
    n = draw(st.integers(3, 12))
    xs = draw(st.lists(st.integers(-100, 100), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(-100, 100), min_size=n, max_size=n))
    points = {(x * scale, y * scale) for x, y in zip(xs, ys, strict=True)}
    assume(len(points) >= 3)
    cx = sum(p[0] for p in points) / len(points)
    cy = sum(p[1] for p in points) / len(points)
    ring = sorted(points, key=lambda p: (math.atan2(p[1] - cy, p[0] - cx), p))
    origin_x = draw(st.floats(300_000, 700_000))
    origin_y = draw(st.floats(4_200_000, 4_700_000))
    shell = [(origin_x + x, origin_y + y) for x, y in ring]
    if not draw(st.booleans()):
        return Polygon(shell)
    # Shrinking a star-shaped ring towards its centre gives a ring strictly inside it.
    hole = [(origin_x + cx + (x - cx) / 2, origin_y + cy + (y - cy) / 2) for x, y in ring]
    return Polygon(shell, [hole])


@SETTINGS
@given(polygon=star_polygons(), clockwise=st.booleans())
def test_any_valid_polygon_is_written_valid_ccw_and_rounded(
    tmp_path_factory: pytest.TempPathFactory, polygon: Polygon, clockwise: bool
) -> None:
    assume(polygon.is_valid and polygon.area > 0)
    if clockwise:
        polygon = polygon.reverse()
    path = tmp_path_factory.mktemp("hyp") / "p.geojson"
    write_feature_collection(path, [(polygon, {"area_ha": polygon.area / 10_000})], UTM)
    doc = assert_rfc7946(path)
    geometry = doc["features"][0]["geometry"]
    to_wgs84 = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    expected = shapely.transform(polygon, lambda x, y: to_wgs84.transform(x, y), interleaved=False)
    written = shape(geometry) if geometry is not None else Polygon()
    # Each vertex moves at most half a unit of the 6th decimal in each axis, so the area moves
    # by at most about the perimeter times that.
    assert abs(written.area - expected.area) <= expected.length * 1e-6 + 1e-12


# --- COGs -----------------------------------------------------------------------------------


@pytest.fixture
def grid() -> Grid:
    return Grid(UTM, Affine(10, 0, 500_000, 0, -10, 4_400_000), 700, 600)


def assert_valid_cog(path: Path) -> None:
    valid, errors, warnings = cog_validate(str(path), quiet=True)
    assert (valid, errors, warnings) == (True, [], [])


def test_cog_is_valid_and_reads_back_exactly(tmp_path: Path, grid: Grid) -> None:
    rng = np.random.default_rng(1)
    data = rng.random(grid.shape).astype(np.float32)
    data[:5, :7] = np.nan
    path = tmp_path / "ndvi.tif"
    tags = {"site_id": "camp-16", "year": "2020", "sitewatch_version": pipeline.__version__}
    assert (
        write_cog(
            path, data, grid, nodata=math.nan, band_names=["ndvi"], tags=tags, resampling="average"
        )
        == path
    )
    assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.crs.to_string() == UTM
        assert src.transform == grid.transform
        assert (src.height, src.width, src.count) == (*grid.shape, 1)
        assert math.isnan(src.nodata)
        assert src.descriptions == ("ndvi",)
        assert src.tags().items() >= tags.items()
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["COMPRESSION"] == "DEFLATE"
        assert structure["PREDICTOR"] == "3"
        assert structure["LAYOUT"] == "COG"
        assert src.overviews(1) == [2]  # 700 x 600 is larger than one 512 tile
        np.testing.assert_array_equal(src.read(1), data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ndvi.tif"]  # no .aux.xml sidecar


def test_cog_bytes_are_identical_for_identical_input(tmp_path: Path, grid: Grid) -> None:
    data = np.random.default_rng(2).integers(0, 5000, size=(3, *grid.shape)).astype(np.uint16)
    kwargs: dict[str, Any] = {
        "nodata": 0,
        "band_names": ["red", "nir", "swir16"],
        "tags": {"b": "2", "a": "1"},
    }
    write_cog(tmp_path / "a.tif", data, grid, **kwargs)
    write_cog(tmp_path / "b.tif", data, grid, **{**kwargs, "tags": {"a": "1", "b": "2"}})
    assert sha256_file(tmp_path / "a.tif") == sha256_file(tmp_path / "b.tif")
    assert_valid_cog(tmp_path / "a.tif")
    with rasterio.open(tmp_path / "a.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        assert src.descriptions == ("red", "nir", "swir16")
        np.testing.assert_array_equal(src.read(), data)


def test_cog_of_a_mask_with_a_palette(tmp_path: Path) -> None:
    small = Grid(UTM, Affine(30, 0, 600_000, 0, -30, 4_300_000), 40, 30)
    change = np.zeros(small.shape, dtype=bool)
    change[10:20, 5:15] = True
    first_row = np.zeros(small.shape, dtype=bool)
    first_row[0, :] = True
    masked = np.ma.MaskedArray(change.astype(np.uint8), mask=first_row)
    palette = {0: (0, 0, 0, 0), 1: (230, 0, 0, 255), 255: (0, 0, 0, 0)}
    path = tmp_path / "change.tif"
    write_cog(path, masked, small, nodata=255, band_names=["change"], colormap=palette)
    assert_valid_cog(path)
    with rasterio.open(path) as src:
        assert src.overviews(1) == []  # one tile: nothing to gain
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", "1") == "1"
        assert src.colormap(1)[1][:3] == (230, 0, 0)
        values = src.read(1)
    assert (values[0] == 255).all()
    assert values[15, 10] == 1
    assert values[25, 30] == 0
    bools = tmp_path / "bools.tif"
    write_cog(bools, change, small, nodata=None)
    with rasterio.open(bools) as src:
        assert src.dtypes == ("uint8",)
        assert src.nodata is None


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        (np.zeros((2, 2), np.uint8), {"nodata": 255}, ValueError, r"does not match the grid"),
        (
            np.zeros((3, 4), np.uint8),
            {"nodata": -9999},
            ValueError,
            r"nodata -9999 is not a value of",
        ),
        (np.zeros((3, 4), np.int16), {"nodata": math.nan}, ValueError, r"nodata nan"),
        (
            np.zeros((3, 4), np.uint8),
            {"nodata": 0, "band_names": ["a", "b"]},
            ValueError,
            r"2 band_names",
        ),
        (
            np.zeros((3, 4), np.uint8),
            {"nodata": 0, "resampling": "median"},
            ValueError,
            r"'median' is not one of",
        ),
        (
            np.zeros((3, 4), np.float32),
            {"nodata": 0, "colormap": {0: (0, 0, 0, 255)}},
            ValueError,
            r"single uint8",
        ),
        (
            np.zeros((3, 4), np.uint8),
            {"nodata": 0, "tags": {"ns": "x"}},
            ValueError,
            r"tag name 'ns'",
        ),
        (
            np.zeros((3, 4), np.uint8),
            {"nodata": 0, "tags": {"a": 1}},
            TypeError,
            r"tag 'a' must be a string",
        ),
        (
            np.zeros((3, 4), np.complex64),
            {"nodata": None},
            ValueError,
            r"complex64 cannot be written",
        ),
        (np.zeros((1, 2, 3, 4), np.uint8), {"nodata": None}, ValueError, r"with 1\+ bands"),
    ],
)
def test_cog_rejects_bad_input_naming_the_value(
    tmp_path: Path,
    data: np.ndarray[Any, Any],
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    small = Grid(UTM, Affine(10, 0, 500_000, 0, -10, 4_400_000), 4, 3)
    with pytest.raises(error, match=match):
        write_cog(tmp_path / "x.tif", data, small, **kwargs)
    assert list(tmp_path.iterdir()) == []


# --- CSV ------------------------------------------------------------------------------------


def test_csv_formatting_is_fixed(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {
            "site_id": "camp-16",
            "year": np.int64(2019),
            "area_ha": 12.34567,
            "change_ha": -0.00001,
            "p": 0.05,
            "flag": True,
            "note": 'has, comma and "quotes"',
            "extra": "not written",
        },
        {
            "site_id": "새 광산",
            "year": 2020,
            "area_ha": float("nan"),
            "change_ha": None,
            "p": np.float32(1e-9),
            "flag": np.bool_(False),
            "note": dt.date(2020, 5, 1),
        },
        {
            "site_id": Kind.CAMP,
            "year": 2021,
            "area_ha": math.inf,
            "change_ha": -math.inf,
            "p": 1,
            "flag": None,
            "note": "",
        },
    ]
    columns = ["site_id", "year", "area_ha", "change_ha", "p", "flag", "note"]
    path = tmp_path / "trends.csv"
    assert write_csv(path, rows, columns, float_digits={"p": 6}) == path
    assert path.read_bytes().decode("utf-8") == (
        "site_id,year,area_ha,change_ha,p,flag,note\n"
        'camp-16,2019,12.3457,0.0000,0.050000,true,"has, comma and ""quotes"""\n'
        "새 광산,2020,,,0.000000,false,2020-05-01\n"
        "camp,2021,inf,-inf,1,,\n"
    )
    write_csv(tmp_path / "again.csv", rows, columns, float_digits={"p": 6})
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()


def test_csv_with_no_rows_has_its_header(tmp_path: Path) -> None:
    write_csv(tmp_path / "t.csv", [], ["site_id", "year"])
    assert (tmp_path / "t.csv").read_text() == "site_id,year\n"


def test_csv_missing_column_names_the_row_and_column(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"site_id": "a", "area_ha": 1.0}, {"site_id": "b"}]
    path = tmp_path / "t.csv"
    path.write_text("previous\n")
    with pytest.raises(ValueError, match=r"row 1 has no column 'area_ha' \(it has \['site_id'\]\)"):
        write_csv(path, rows, ["site_id", "area_ha"])
    assert path.read_text() == "previous\n"


@pytest.mark.parametrize(
    ("columns", "float_digits", "rows", "error", "match"),
    [
        (["a", "a"], 4, [], ValueError, r"columns \['a'\] appear more than once"),
        ([], 4, [], ValueError, "at least one column"),
        (["a"], {"b": 2}, [], ValueError, r"names columns \['b'\] that are not in"),
        (["a"], -1, [], ValueError, "must be an int >= 0"),
        (["a"], 4, [{"a": [1, 2]}], TypeError, r"row 0 column 'a': cannot write a list"),
        (["a"], 4, [["a"]], TypeError, "row 0 must be a mapping"),
    ],
)
def test_csv_rejects_bad_input(
    tmp_path: Path,
    columns: list[str],
    float_digits: Any,
    rows: Any,
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        write_csv(tmp_path / "t.csv", rows, columns, float_digits)
    assert list(tmp_path.iterdir()) == []


def test_format_float() -> None:
    assert format_float(2.5, 0) == "2"  # round half to even, as Python formats
    assert format_float(-0.00004, 4) == "0.0000"
    assert format_float(-0.00005001, 4) == "-0.0001"
    assert format_float(math.nan, 2) == ""


# --- manifest -------------------------------------------------------------------------------


def test_software_versions_name_the_libraries_behind_the_numbers() -> None:
    versions = software_versions()
    for key in (
        "sitewatch",
        "python",
        "numpy",
        "rasterio",
        "GDAL",
        "PROJ",
        "shapely",
        "GEOS",
        "pyproj",
        "scipy",
        "scikit-image",
        "pystac",
        "pydantic",
    ):
        assert versions[key], key
    assert versions["sitewatch"] == pipeline.__version__
    assert versions["GDAL"] == rasterio.__gdal_version__
    assert versions["numpy"] == np.__version__
    assert all(isinstance(v, str) for v in versions.values())
    assert versions == software_versions()


def test_sha256_file_known_answer(tmp_path: Path) -> None:
    (tmp_path / "abc").write_bytes(b"abc")
    assert sha256_file(tmp_path / "abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    big = os.urandom(3 * (1 << 20) + 5)
    (tmp_path / "big").write_bytes(big)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(big).hexdigest()


def test_canonical_json_is_sorted_indented_and_ends_with_a_newline() -> None:
    first = {"b": 1, "a": {"y": [1.5, None], "x": np.float64(0.1)}, "c": "ü"}
    second = {"c": "ü", "a": {"x": 0.1, "y": (1.5, np.nan)}, "b": np.int32(1)}
    text = canonical_json(first)
    assert text == canonical_json(second)
    assert text == (
        '{\n  "a": {\n    "x": 0.1,\n    "y": [\n      1.5,\n      null\n    ]\n  },\n'
        '  "b": 1,\n  "c": "ü"\n}\n'
    )
    extras = {
        "path": Path("out/trends.csv"),
        "when": dt.datetime(2024, 1, 2, 3, 4, 5),
        "ids": {"b", "a"},
        "k": Kind.CAMP,
    }
    assert json.loads(canonical_json(extras)) == {
        "path": "out/trends.csv",
        "when": "2024-01-02T03:04:05",
        "ids": ["a", "b"],
        "k": "camp",
    }


def test_canonical_json_refuses_infinity_and_odd_keys() -> None:
    with pytest.raises(ValueError, match=r"\$\.sites\[1\]\.area_ha is inf"):
        canonical_json({"sites": [{"area_ha": 1.0}, {"area_ha": math.inf}]})
    with pytest.raises(TypeError, match=r"keys must be strings, got 1"):
        canonical_json({1: "x"})
    with pytest.raises(TypeError, match="cannot write a bytes"):
        canonical_json({"a": b"x"})


def test_write_manifest_and_file_checksums(tmp_path: Path) -> None:
    (tmp_path / "rasters").mkdir()
    (tmp_path / "rasters" / "a.tif").write_bytes(b"tif")
    (tmp_path / "trends.csv").write_text("x\n")
    (tmp_path / ".trends.tmp-1-abc.csv").write_text("unfinished")
    manifest = {"outputs": file_checksums(tmp_path), "versions": software_versions()}
    path = write_manifest(tmp_path / "manifest.json", manifest)
    assert path.read_text(encoding="utf-8") == canonical_json(manifest)
    assert json.loads(path.read_text())["outputs"] == {
        "rasters/a.tif": hashlib.sha256(b"tif").hexdigest(),
        "trends.csv": hashlib.sha256(b"x\n").hexdigest(),
    }
    assert "manifest.json" not in file_checksums(tmp_path)
    with pytest.raises(TypeError, match="must be a mapping"):
        write_manifest(tmp_path / "m.json", [1])  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        file_checksums(tmp_path / "nowhere")


def test_public_surface() -> None:
    assert sorted(pipeline.export.__all__) == pipeline.export.__all__
    for name in pipeline.export.__all__:
        assert callable(getattr(pipeline.export, name))


# --- trends.csv and trends.parquet -------------------------------------------------------------

#: The columns trends.csv had before issue 9, in their order: scripts index them.
TREND_COLUMNS_BEFORE = (
    "site_id", "year", "footprint_ha", "footprint_pm_ha", "footprint_perimeter_m", "coal_ha",
    "coal_pm_ha", "compared_to_year", "added_ha", "removed_ha", "coal_added_ha",
    "coal_removed_ha", "net_change_significant", "n_scenes", "n_skipped", "coverage",
    "median_clear_obs", "window_start", "window_end", "flags",
)  # fmt: skip
S2_RULE_0400 = "baseline 04.00 >= 04.00: DN - 1000"
S2_RULE_0209 = "baseline 02.09 < 04.00: no BOA offset"


def _scene(sid: str, platform: str, radiometry: str, **kw: Any) -> SceneRecord:
    return SceneRecord(sid, "2020-09-10T02:00:00+00:00", platform=platform,
                       radiometry=radiometry, **kw)  # fmt: skip


def _year(
    site_id: str,
    year: int,
    footprint: np.ndarray | None,
    coal_frequency: np.ndarray | None = None,
    scenes: tuple[SceneRecord, ...] = (),
) -> SiteYear:
    """A site-year with ``footprint`` seen everywhere (None: no data that year); coal where
    ``coal_frequency`` is >= 0.5."""
    shape = TREND_SHAPE
    if footprint is None:
        nothing = np.zeros(shape, bool)
        return SiteYear(site_id, year, (f"{year}-08-15", f"{year}-11-30"), True, scenes, None,
                        None, nothing, nothing, nothing, 0.0, 0.0)  # fmt: skip
    freq = np.zeros(shape, np.float32) if coal_frequency is None else coal_frequency
    coal = freq >= 0.5
    return SiteYear(
        site_id, year, (f"{year}-09-01", f"{year}-11-15"), False, scenes,
        Composite(np.zeros((6, *shape), np.float32), np.full(shape, 6, np.int16),
                  np.zeros((6, *shape), np.float32)),
        CoalFrequency(freq, np.round(freq * 6).astype(np.int16), np.full(shape, 6, np.int16)),
        footprint | coal, coal, np.ones(shape, bool), 6.0, 1.0,
    )  # fmt: skip


TREND_SITE = Site("t", "t", "kwanliso", box(127.0, 39.0, 127.02, 39.016), "test")
TREND_GRID = TREND_SITE.grid(10.0, 0.0)
TREND_SHAPE = TREND_GRID.shape


def _analyse(site: Site, years: list[SiteYear]) -> SiteAnalysis:
    return analyse_site(
        site, TREND_GRID, years, buffer_m=0.0, min_mapping_unit_ha=0.25, change_opening_px=1
    )


@pytest.fixture(scope="module")
def trend_analyses() -> tuple[SiteAnalysis, SiteAnalysis]:
    """A camp seen in 2020 and 2022 (2021 without data) that grows by 4 ha and holds a coal
    pile, and its adjacent zone, where a 4 ha village appears in 2022."""
    camp = np.zeros(TREND_SHAPE, bool)
    camp[20:100, 20:100] = True  # 64 ha
    grown = camp.copy()
    grown[20:60, 100:110] = True  # +4 ha east
    freq = np.zeros(TREND_SHAPE, np.float32)
    freq[40:60, 40:60] = 1.0  # a 4 ha pile seen as coal in every look...
    freq[40:50, 40:50] = 0.5  # ...but its north-west quarter in half of them
    scenes = (
        _scene("A", "sentinel-2b", S2_RULE_0400),
        _scene("B", "sentinel-2a", S2_RULE_0209),
        # A scene whose rule names no baseline (raster:bands scale and offset): its item's.
        _scene("C", "sentinel-2a", "raster:bands scale 0.0001", processing_baseline="05.11"),
        _scene("D", "landsat-8", "", skipped="read failed: 503"),  # not used
        _scene("E", "landsat-9", "Landsat C2 L2 rule", role="greenness"),  # not in the composite
    )
    camp_years = [
        _year("t", 2020, camp, freq, scenes),
        _year("t", 2021, None),
        _year("t", 2022, grown, freq, scenes[:1]),
    ]
    village = np.zeros(TREND_SHAPE, bool)
    village[120:140, 120:140] = True
    zone_site = Site(
        "t-adjacent", "t: adjacent zone", "adjacent_zone", TREND_SITE.geometry, "derived",
        {"parent": "t"},
    )  # fmt: skip
    zone_years = [
        _year("t-adjacent", 2020, np.zeros(TREND_SHAPE, bool)),
        _year("t-adjacent", 2021, None),
        _year("t-adjacent", 2022, village),
    ]
    return _analyse(TREND_SITE, camp_years), _analyse(zone_site, zone_years)


#: Arrow type of each trends.csv column in trends.parquet, from the declared schema.
TREND_TYPES = {c.name: ARROW_TYPES[c.kind] for c in TREND_SCHEMA}


def write_trends_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    return write_parquet(path, Table("trends", TREND_SCHEMA, tuple(rows)))


def test_trend_columns_keep_their_order_and_have_a_type() -> None:
    assert TREND_COLUMNS[: len(TREND_COLUMNS_BEFORE)] == TREND_COLUMNS_BEFORE
    assert len(set(TREND_COLUMNS)) == len(TREND_COLUMNS)
    assert list(TREND_TYPES) == list(TREND_COLUMNS)


def test_trend_rows_fill_the_new_columns(trend_analyses: tuple[SiteAnalysis, SiteAnalysis]) -> None:
    camp, zone = trend_analyses
    assert adjacent_zone_of([camp, zone]) == {"t": zone}
    samples = {("t", 2022, "footprint"): (69.0, 66.5, 71.5), ("t", 2022, "coal"): (4.2, 3.0, 5.4)}
    r2020, r2021, r2022 = trend_rows(camp, 3, adjacent=zone, sample_areas=samples)
    assert all(set(r) == set(TREND_COLUMNS) for r in (r2020, r2021, r2022))
    # 2020: the first year, no change; areas with edge intervals (internal edges only).
    assert r2020["footprint_ha"] == pytest.approx(64.0)
    assert r2020["footprint_pm_ha"] == pytest.approx(0.5 * 10 * 320 * 10 / 1e4)
    assert r2020["net_change_ha"] is None
    assert r2020["change_kind"] is None
    assert r2020["adjacent_built_ha"] == 0.0
    assert r2020["interval_basis"] == "edge"
    # Coal frequency over the pile: 300 pixels at 1.0, 100 at 0.5.
    assert r2020["coal_mean_frequency"] == pytest.approx(0.875)
    assert r2020["coal_median_frequency"] == 1.0
    # Scenes used: read and in the composite (not the skipped Landsat-8, not the greenness look).
    assert r2020["n_scenes"] == 3
    assert r2020["sensors"] == "sentinel-2a;sentinel-2b"
    assert r2020["processing_baselines"] == "02.09;04.00;05.11"
    # 2021: no data, no areas (never 0), no interval.
    assert r2021["flags"] == "no-data;widened-window"
    for column in ("footprint_ha", "net_change_ha", "adjacent_built_ha", "coal_mean_frequency",
                   "redated_ha", "interval_basis", "footprint_sample_ha"):  # fmt: skip
        assert r2021[column] is None, column
    assert r2021["sensors"] == ""
    # 2022 against 2020: 4 ha east, a significant expansion with its correlated interval.
    assert r2022["compared_to_year"] == 2020
    assert (r2022["added_ha"], r2022["removed_ha"]) == pytest.approx((4.0, 0.0))
    assert r2022["net_change_ha"] == pytest.approx(4.0)
    assert r2022["net_change_pm_ha"] == pytest.approx(
        math.hypot(0.5 * 10 * 100 * 10 / 1e4, Z95 * 100 * math.sqrt(280 / 6) / 1e4)
    )  # 100 edges moved (40 + 10 + 10 new, 40 old), 280 stayed
    assert r2022["added_pm_ha"] == pytest.approx(0.5 * 10 * 100 * 10 / 1e4)
    assert r2022["net_change_significant"] is True
    assert r2022["change_kind"] == "expansion"
    # The pile did not move: only its 80 unchanged edges' year-specific error remains.
    assert r2022["coal_net_change_ha"] == 0.0
    assert r2022["coal_net_change_pm_ha"] == pytest.approx(Z95 * 100 * math.sqrt(80 / 6) / 1e4)
    assert r2022["adjacent_built_ha"] == pytest.approx(4.0)
    assert r2022["adjacent_built_pm_ha"] == pytest.approx(0.5 * 10 * 80 * 10 / 1e4)
    assert r2022["sensors"] == "sentinel-2b"
    assert r2022["processing_baselines"] == "04.00"
    assert "may-lag" in r2022["flags"].split(";")  # the last year cannot be re-dated
    assert (r2022["redated_ha"], r2022["unseen_fields_ha"]) == (0.0, 0.0)
    # The sample-based estimates where given.
    assert r2022["interval_basis"] == "sample"
    assert (
        r2022["footprint_sample_ha"], r2022["footprint_sample_low_ha"],
        r2022["footprint_sample_high_ha"],
    ) == (69.0, 66.5, 71.5)  # fmt: skip
    assert (r2022["coal_sample_ha"], r2022["coal_sample_high_ha"]) == (4.2, 5.4)
    assert r2020["footprint_sample_ha"] is None
    # Without the zone and the samples the columns stay empty.
    alone = trend_rows(camp, 3)
    assert {r["adjacent_built_ha"] for r in alone} == {None}
    assert [r["interval_basis"] for r in alone] == ["edge", None, "edge"]


def test_trend_rows_reject_a_sample_interval_that_does_not_hold_its_estimate(
    trend_analyses: tuple[SiteAnalysis, SiteAnalysis],
) -> None:
    camp, _zone = trend_analyses
    bad = {("t", 2020, "footprint"): (69.0, 71.5, 66.5)}
    with pytest.raises(ValueError, match=r"t 2020 footprint: .*low <= estimate <= high"):
        trend_rows(camp, 3, sample_areas=bad)


def assert_parquet_matches_csv(parquet: Path, csv_path: Path) -> None:
    """``trends.parquet`` read with pandas holds the rows of ``trends.csv`` read with pandas:
    the same columns in the same order, every value equal to the CSV's text at its decimals."""
    import pandas as pd

    frame = pd.read_parquet(parquet)
    text = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == list(text.columns) == list(TREND_COLUMNS)
    assert len(frame) == len(text)
    for column in TREND_COLUMNS:
        kind = TREND_TYPES[column]
        for i, (value, cell) in enumerate(zip(frame[column], text[column], strict=True)):
            where = (column, i, value, cell)
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                assert cell == "", where
            elif kind == "float64":
                assert format_float(value, 4) == cell, where
            elif kind == "int32":  # a column with nulls reads back as float64
                assert value == int(value), where
                assert str(int(value)) == cell, where
            elif kind == "bool":
                assert ("true" if value else "false") == cell, where
            elif kind == "date32":
                assert value.isoformat() == cell, where
            else:
                assert str(value) == cell, where


def test_trends_parquet_schema_round_trip_and_bytes(
    trend_analyses: tuple[SiteAnalysis, SiteAnalysis], tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    camp, zone = trend_analyses
    samples = {("t", 2022, "footprint"): (69.0, 66.5, 71.5)}
    rows = [*trend_rows(camp, 3, adjacent=zone, sample_areas=samples), *trend_rows(zone, 3)]
    rows[0]["coverage"] = math.nan  # NaN is missing in both files
    csv_path = write_csv(tmp_path / "trends.csv", rows, TREND_COLUMNS)
    first = write_trends_parquet(tmp_path / "trends.parquet", rows)
    assert first == tmp_path / "trends.parquet"
    data = first.read_bytes()
    write_trends_parquet(first, rows)  # again, over the first
    assert first.read_bytes() == data
    assert not list(tmp_path.glob(TEMP_GLOB))
    schema = pq.read_schema(first)
    assert schema.names == list(TREND_COLUMNS)
    types = {f.name: f.type for f in schema}
    assert types["year"] == pa.int32()
    assert types["compared_to_year"] == pa.int32()
    assert types["footprint_ha"] == pa.float64()
    assert types["net_change_significant"] == pa.bool_()
    assert types["window_start"] == pa.date32()
    assert types["change_kind"] == pa.string()
    assert all(f.nullable for f in schema)
    table = pq.read_table(first)
    assert table.column("year").to_pylist() == [2020, 2021, 2022] * 2
    assert table.column("window_end").to_pylist()[1] == dt.date(2021, 11, 30)
    assert table.column("compared_to_year").to_pylist()[:3] == [None, None, 2020]
    assert table.column("coverage").to_pylist()[0] is None
    assert_parquet_matches_csv(first, csv_path)


# Python type of a plain value of each column kind (``layers``): what every writer receives.
PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (float,), "bool": (bool,), "date": (dt.date,), "text": (str,),
    "json": (dict, list, str, int, float, bool),
}  # fmt: skip


def test_build_tables_schema_of_every_table(
    trend_analyses: tuple[SiteAnalysis, SiteAnalysis],
) -> None:
    camp, zone = trend_analyses
    samples = {("t", 2022, "footprint"): (69.0, 66.5, 71.5)}
    tables = build_tables([camp, zone], TableOptions(3, TrendsConfig(), samples))
    assert set(PLAIN_TYPES) == set(KINDS)
    by_name = tables.by_name()
    assert list(by_name) == [
        "sites", "adjacent_zones", "footprints", "expansion", "stockpiles", "trends",
        "trend_summary", "trend_events", "expansion_pairs", "expansion_sectors",
    ]  # fmt: skip
    for name, table in by_name.items():
        assert table.name == name
        assert table.spatial == (table in tables.vector_layers), name
        for i, row in enumerate(table.rows):
            assert list(row) == list(table.column_names), (name, i)
            for c in table.columns:
                value = row[c.name]
                assert value is None or isinstance(value, PLAIN_TYPES[c.kind]), (name, i, c, value)
                if c.kind == "int":
                    assert not isinstance(value, bool), (name, i, c)
                if c.kind == "float" and value is not None:
                    assert math.isfinite(value), (name, i, c)
    # The camp is a site, its zone an adjacent zone; both analysed (3 years each).
    assert [r["site_id"] for r in tables.sites.rows] == ["t"]
    assert [(r["site_id"], r["kind"], r["parent"]) for r in tables.adjacent_zones.rows] == [
        ("t-adjacent", "adjacent_zone", "t")
    ]
    assert tables.sites.rows[0]["sources"] == ["test"]
    assert tables.trends.column_names == TREND_COLUMNS
    assert len(tables.trends.rows) == len(tables.footprints.rows) == 6
    assert tables.trends.rows[2]["footprint_sample_ha"] == 69.0
    # Footprints and stockpiles carry their season window as dates (the temporal controller).
    for layer in (tables.footprints, tables.stockpiles):
        for row, trend in zip(layer.rows, tables.trends.rows, strict=True):
            assert (row["date_start"], row["date_end"]) == (
                trend["window_start"],
                trend["window_end"],
            )
            assert row["window"] == f"{row['date_start']}/{row['date_end']}"
    assert tables.footprints.rows[1]["area_ha"] is None  # 2021: no data, no area
    assert tables.footprints.geometries is not None
    assert tables.footprints.geometries[1] is not None
    assert tables.footprints.geometries[1].is_empty
    # Expansion: an added and a removed ring per pair; the CSV tables have no site name.
    assert len(tables.expansion.rows) == 2 * len(tables.expansion_pairs.rows)
    assert "site_name" in tables.expansion.column_names
    assert "site_name" not in tables.expansion_pairs.column_names
    assert {r["change"] for r in tables.expansion.rows} == {"added", "removed"}
    # The decimals of expansion.csv and expansion_sectors.csv stay those of export.expansion
    # (distances at 0.1 m), which ``sitewatch expansion`` writes too.
    for table in (tables.expansion_pairs, tables.expansion_sectors):
        float_columns = [c for c in table.columns if c.kind == "float"]
        assert {c.name: c.digits for c in float_columns if c.digits is not None} == {
            c.name: EXPANSION_DIGITS[c.name] for c in float_columns if c.name in EXPANSION_DIGITS
        }
