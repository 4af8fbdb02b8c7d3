"""Tests for pipeline.export.gpkg and pipeline.export.styles: the GeoPackage writer and the
packaged QGIS styles.

Fast tests write tiny hand-made frames. Slow tests write the layers of one real demo run (one
run per module) and open the file with GDAL (pyogrio, and GDAL 3.6's ``ogrinfo``/``ogr2ogr``
when installed) and with real QGIS 3.22 (Debian's PyQGIS, :mod:`support.qgis`), which must apply
every layer's default style from ``layer_styles`` on its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Point, box
from support.qgis import qgis_available, run_pyqgis

from pipeline.api import demo
from pipeline.export.gpkg import FIXED_TIMESTAMP, add_layer_styles, write_geopackage
from pipeline.export.layers import (
    EVENT_SCHEMA,
    EXPANSION_SCHEMA,
    FOOTPRINT_SCHEMA,
    SITE_SCHEMA,
    STOCKPILE_SCHEMA,
    SUMMARY_SCHEMA,
    TREND_SCHEMA,
    Column,
)
from pipeline.export.styles import StyleSummary, style_for, style_names, summarize_qml
from pipeline.sampling import draw_samples, samples_qml, write_samples
from pipeline.sites import SITE_KINDS, adjacent_zones, load_sites

UTM = "EPSG:32652"
GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
GPKG_1_3 = 10300


def _features() -> gpd.GeoDataFrame:
    """Two site-years in UTM 52N: a polygon and a two-part multipolygon, with typed fields."""
    square = box(500_000, 4_300_000, 500_100, 4_300_100)
    two = MultiPolygon([box(501_000, 4_300_000, 501_050, 4_300_050), box(501_100, 4_300_000, 501_150, 4_300_050)])  # fmt: skip
    return gpd.GeoDataFrame(
        {
            "site_id": ["a", "b"],
            "year": pd.Series([2020, 2021], dtype="int32"),
            "significant": [True, None],
            "date_start": [dt.date(2020, 9, 1), dt.date(2021, 9, 1)],
            "sectors": [[{"sector": "N", "max_m": 1.5}], None],
        },
        geometry=[square, two],
        crs=UTM,
    )


def _table() -> pd.DataFrame:
    return pd.DataFrame({"site_id": ["a", "b"], "footprint_ha": [1.0, None]})


def _connect_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --- write_geopackage on tiny frames ------------------------------------------------------------


def test_layers_types_and_crs(tmp_path: Path) -> None:
    path = write_geopackage(tmp_path / "t.gpkg", {"footprints": _features(), "trends": _table()})
    assert [tuple(x) for x in pyogrio.list_layers(path)] == [
        ("footprints", "MultiPolygon"),
        ("trends", None),
    ]
    info = pyogrio.read_info(path, layer="footprints")
    assert info["crs"] == "EPSG:4326"
    kinds = zip(info["ogr_types"], info["ogr_subtypes"], strict=True)
    assert dict(zip(info["fields"], kinds, strict=True)) == {
        "site_id": ("OFTString", "OFSTNone"),
        "year": ("OFTInteger", "OFSTNone"),
        "significant": ("OFTInteger", "OFSTBoolean"),
        "date_start": ("OFTDate", "OFSTNone"),
        "sectors": ("OFTString", "OFSTNone"),
    }
    back = gpd.read_file(path, layer="footprints", engine="pyogrio")
    # Reprojected to EPSG:4326: the square's corner lands where pyproj puts it.
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(500_000, 4_300_000)
    assert back.geometry[0].geom_type == "MultiPolygon"  # promoted: one geometry type
    assert Point(lon, lat).distance(back.geometry[0]) < 1e-9
    assert json.loads(back["sectors"][0]) == [{"max_m": 1.5, "sector": "N"}]
    assert pd.isna(back["sectors"][1])
    stored = _connect_rows(path, "SELECT significant, date_start FROM footprints ORDER BY fid")
    assert stored == [(1, "2020-09-01"), (None, "2021-09-01")]  # NULL stays NULL
    trends = pyogrio.read_dataframe(path, layer="trends")
    assert trends["footprint_ha"].tolist()[0] == 1.0
    assert pd.isna(trends["footprint_ha"].tolist()[1])
    contents = dict(_connect_rows(path, "SELECT table_name, data_type FROM gpkg_contents"))
    assert contents == {"footprints": "features", "trends": "attributes"}
    assert _connect_rows(path, "PRAGMA application_id") == [(GPKG_APPLICATION_ID,)]
    assert _connect_rows(path, "PRAGMA user_version") == [(GPKG_1_3,)]


def test_same_layers_same_bytes(tmp_path: Path) -> None:
    styles = {"footprints": style_for("footprints")}
    layers = {"footprints": _features(), "trends": _table()}
    first = write_geopackage(tmp_path / "1.gpkg", layers, styles).read_bytes()
    second = write_geopackage(tmp_path / "2.gpkg", layers, styles).read_bytes()
    changed = {"footprints": _features().assign(year=pd.Series([2020, 2022], dtype="int32")), "trends": _table()}  # fmt: skip
    other = write_geopackage(tmp_path / "3.gpkg", changed, styles).read_bytes()
    assert first == second
    assert first != other


def test_styles_are_registered_defaults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    styles = {"footprints": style_for("footprints"), "trends": "<qgis/>"}
    path = write_geopackage(tmp_path / "t.gpkg", {"footprints": _features(), "trends": _table()}, styles)  # fmt: skip
    rows = _connect_rows(
        path,
        "SELECT f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
        "styleQML, useAsDefault, update_time FROM layer_styles ORDER BY id",
    )
    assert rows == [
        ("", "", "footprints", "geom", "footprints", style_for("footprints"), 1, FIXED_TIMESTAMP),
        ("", "", "trends", "", "trends", "<qgis/>", 1, FIXED_TIMESTAMP),
    ]
    contents = _connect_rows(path, "SELECT table_name, data_type, last_change FROM gpkg_contents")
    assert ("layer_styles", "attributes", FIXED_TIMESTAMP) in contents
    assert {r[2] for r in contents} == {FIXED_TIMESTAMP}
    assert _connect_rows(path, "PRAGMA integrity_check") == [("ok",)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        caplog.set_level("WARNING")
        names = [str(n) for n, _ in pyogrio.list_layers(path)]
        for name in names:
            pyogrio.read_dataframe(path, layer=name)
    assert names == ["footprints", "trends", "layer_styles"]
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_restyling_replaces_the_default(tmp_path: Path) -> None:
    path = write_geopackage(tmp_path / "t.gpkg", {"footprints": _features()}, {"footprints": "<a/>"})  # fmt: skip
    add_layer_styles(path, {"footprints": "<b/>"}, descriptions={"footprints": "new"})
    rows = _connect_rows(path, "SELECT f_table_name, styleQML, description FROM layer_styles")
    assert rows == [("footprints", "<b/>", "new")]
    with pytest.raises(ValueError, match=r"t\.gpkg: no layer \['sites'\] to style"):
        add_layer_styles(path, {"sites": "<c/>"})


@pytest.mark.parametrize(
    ("layers", "styles", "match"),
    [
        ({"gpkg_x": _table()}, {}, "layer name 'gpkg_x' is reserved"),
        ({"layer_styles": _table()}, {}, "layer name 'layer_styles' is reserved"),
        ({"Sites": _table(), "sites": _table()}, {}, "layer names 'Sites' and 'sites' collide"),
        ({"": _table()}, {}, "layer name '' is empty"),
        ({}, {}, "no layers to write"),
        ({"a": _table()}, {"b": "<qgis/>"}, r"styles for \['b'\], which are not among"),
        (
            {"a": _table(), "b": _features().set_crs(None, allow_override=True)},
            {},
            "'b' has no CRS",
        ),
    ],
)
def test_bad_layers_are_refused_and_nothing_is_replaced(
    tmp_path: Path, layers: dict[str, pd.DataFrame], styles: dict[str, str], match: str
) -> None:
    target = tmp_path / "t.gpkg"
    target.write_bytes(b"earlier run")
    with pytest.raises(ValueError, match=match):
        write_geopackage(target, layers, styles)
    assert target.read_bytes() == b"earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.gpkg"]  # no temporary left


# --- the packaged styles ------------------------------------------------------------------------


def test_summarize_qml_known_answer() -> None:
    qml = """<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.16"><renderer-v2 type="categorizedSymbol" attr="kind"><categories>
<category value="x" symbol="0" label="x"/><category value="" symbol="1" label="other"/>
</categories><symbols>
<symbol type="fill" name="0"><layer class="SimpleFill"><prop k="color" v="1,2,3,4"/>
<prop k="outline_color" v="5,6,7,255"/><prop k="outline_width" v="0.5"/></layer></symbol>
<symbol type="line" name="1"><layer class="SimpleLine"><Option type="Map">
<Option name="line_color" type="QString" value="9,9,9,255,rgb:0.1,0.1,0.1,1"/></Option></layer>
</symbol></symbols></renderer-v2></qgis>"""
    assert summarize_qml(qml) == StyleSummary(
        renderer="categorizedSymbol",
        attribute="kind",
        categories=("x", ""),
        colors=frozenset({(1, 2, 3, 4), (5, 6, 7, 255), (9, 9, 9, 255)}),
    )
    with pytest.raises(ValueError, match="no <renderer-v2>"):
        summarize_qml("<qgis/>")


def test_packaged_styles() -> None:
    assert style_names() == ("adjacent_zones", "expansion", "footprints", "samples", "sites", "stockpiles")  # fmt: skip
    assert style_for("samples") == samples_qml()
    summaries = {name: summarize_qml(style_for(name)) for name in style_names()}
    assert summaries["sites"].attribute == "kind"
    assert summaries["sites"].categories == SITE_KINDS
    assert summaries["expansion"].attribute == "change"
    assert summaries["expansion"].categories == ("added", "removed")
    red, blue = (215, 25, 28, 255), (44, 123, 182, 255)
    assert {red, blue} <= summaries["expansion"].colors
    for name in ("footprints", "stockpiles", "adjacent_zones"):
        assert summaries[name].renderer == "singleSymbol", name
    # Stockpiles dark: every colour of the symbol is near black.
    assert all(max(c[:3]) <= 60 for c in summaries["stockpiles"].colors)
    with pytest.raises(KeyError, match="no packaged QGIS style for layer 'nope'"):
        style_for("nope")


# --- a real demo run: GDAL and QGIS open the file -----------------------------------------------

VECTOR_LAYERS = ("sites", "adjacent_zones", "footprints", "expansion", "stockpiles")
TEMPORAL_LAYERS = ("footprints", "stockpiles")


@dataclass(frozen=True)
class DemoGpkg:
    path: Path
    layers: dict[str, pd.DataFrame]
    samples: Path
    run_dir: Path


def _dated(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``date_start``/``date_end`` (dates) from the ``window`` field ("start/end")."""
    parts = frame["window"].str.split("/", expand=True)
    return frame.assign(
        date_start=[dt.date.fromisoformat(v) for v in parts[0]],
        date_end=[dt.date.fromisoformat(v) for v in parts[1]],
    )


def _site_frame(sites: list[Any]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "site_id": [s.id for s in sites],
            "name": [s.name for s in sites],
            "kind": [s.kind for s in sites],
            "parent": [s.parent for s in sites],
        },
        geometry=[s.geometry for s in sites],
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def demo_gpkg(tmp_path_factory: pytest.TempPathFactory) -> DemoGpkg:
    """The demo run's layers (sites and their 1000 m adjacent zones from the demo's sites file)
    in a styled GeoPackage, and the run's reference sample file."""
    work = tmp_path_factory.mktemp("gpkg")
    run = demo(work / "run", workers=2, cache_dir=work / "cache").out_dir
    sites = load_sites(run / "demo_sites.geojson")
    read = lambda name: gpd.read_file(run / f"{name}.geojson", engine="pyogrio")  # noqa: E731
    layers: dict[str, pd.DataFrame] = {
        "sites": _site_frame(sites),
        "adjacent_zones": _site_frame(adjacent_zones(sites, 1000.0)),
        "footprints": _dated(read("footprints")),
        "expansion": read("expansion"),
        "stockpiles": _dated(read("stockpiles")),
        "trends": pd.read_csv(run / "trends.csv"),
    }
    styles = {name: style_for(name) for name in VECTOR_LAYERS}
    path = write_geopackage(work / "sitewatch.gpkg", layers, styles)
    samples = write_samples(draw_samples(run, per_stratum=3), work / "samples.gpkg")
    return DemoGpkg(path, layers, samples, run)


@pytest.mark.slow
def test_demo_gpkg_layers_counts_crs_no_warning(
    demo_gpkg: DemoGpkg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    layers = demo_gpkg.layers
    assert len(layers["adjacent_zones"]) >= 1  # the demo's camp has a zone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        caplog.set_level("WARNING")
        listed = {str(n): g for n, g in pyogrio.list_layers(demo_gpkg.path)}
        infos = {name: pyogrio.read_info(demo_gpkg.path, layer=name) for name in layers}
    assert list(listed) == [*VECTOR_LAYERS, "trends", "layer_styles"]
    for name, frame in layers.items():
        assert infos[name]["features"] == len(frame), name
        spatial = name in VECTOR_LAYERS
        assert infos[name]["crs"] == ("EPSG:4326" if spatial else None), name
        assert (listed[name] is not None) == spatial, name
    assert {listed[n] for n in ("footprints", "expansion", "stockpiles")} == {"MultiPolygon"}
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert set(layers["expansion"]["change"]) == {"added", "removed"}  # the style's categories
    # Rewriting the same layers gives the same bytes.
    styles = {name: style_for(name) for name in VECTOR_LAYERS}
    again = write_geopackage(tmp_path / "again.gpkg", layers, styles)
    assert again.read_bytes() == demo_gpkg.path.read_bytes()


def _gdal_env() -> dict[str, str]:
    # The venv's pyogrio wheel carries its own GDAL and PROJ data; the system tools use theirs.
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "GDAL_DATA", "PROJ_LIB", "PROJ_DATA")
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.mark.slow
def test_gdal_tools_round_trip_to_rfc7946(demo_gpkg: DemoGpkg, tmp_path: Path) -> None:
    ogrinfo, ogr2ogr = shutil.which("ogrinfo"), shutil.which("ogr2ogr")
    if ogrinfo is None or ogr2ogr is None:
        pytest.skip(
            "GDAL's ogrinfo/ogr2ogr not installed (Debian gdal-bin, which python3-qgis "
            "qgis-providers bring): make test installs them as root"
        )
    info = subprocess.run(
        [ogrinfo, "-ro", "-so", "-al", str(demo_gpkg.path)],
        env=_gdal_env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "Warning" not in info.stderr, info.stderr
    assert "ERROR" not in info.stderr, info.stderr
    for name in ("footprints", "expansion", "stockpiles"):
        assert f"Layer name: {name}\n" in info.stdout
    for name in VECTOR_LAYERS:
        out = tmp_path / f"{name}.geojson"
        done = subprocess.run(
            [ogr2ogr, "-f", "GeoJSON", "-lco", "RFC7946=YES", str(out), str(demo_gpkg.path), name],
            env=_gdal_env(), capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert "Warning" not in done.stderr, done.stderr
        assert "ERROR" not in done.stderr, done.stderr
        back = gpd.read_file(out, engine="pyogrio")
        frame = demo_gpkg.layers[name]
        assert len(back) == len(frame), name
        assert list(back[frame.columns.drop("geometry")[0]]) == list(frame.iloc[:, 0]), name
        # RFC 7946: 7 decimals (~1 cm); the geometries survive to within that.
        before, after = frame.geometry.reset_index(drop=True), back.geometry
        for a, b in zip(before, after, strict=True):
            if a is None or a.is_empty:
                assert b is None or b.is_empty, name
            else:
                assert a.symmetric_difference(b).area <= 1e-6 * max(a.area, 1e-12) + 1e-12, name


# --- the run's own sitewatch.gpkg -----------------------------------------------------------------

RUN_GPKG = "sitewatch.gpkg"
#: Layers of a run's GeoPackage, in order, with their declared columns.
RUN_SCHEMAS: dict[str, tuple[Column, ...]] = {
    "sites": SITE_SCHEMA, "adjacent_zones": SITE_SCHEMA, "footprints": FOOTPRINT_SCHEMA,
    "expansion": EXPANSION_SCHEMA, "stockpiles": STOCKPILE_SCHEMA, "trends": TREND_SCHEMA,
    "trend_summary": SUMMARY_SCHEMA, "trend_events": EVENT_SCHEMA,
}  # fmt: skip
#: OGR field type of each column kind (json as JSON text).
OGR_TYPES = {"int": "OFTInteger", "float": "OFTReal", "bool": "OFTInteger", "date": "OFTDate",
             "text": "OFTString", "json": "OFTString"}  # fmt: skip


def _run_counts(run: Path) -> dict[str, int]:
    """Features/rows each layer must have: the run's own GeoJSON and CSV files, and its sites
    file (the demo analyses no adjacent zone: ``adjacent_zones.width_m`` is 0)."""
    geojson = lambda name: len(json.loads((run / f"{name}.geojson").read_text())["features"])  # noqa: E731
    rows = lambda name: len(pd.read_csv(run / f"{name}.csv"))  # noqa: E731
    return {
        "sites": len(load_sites(run / "demo_sites.geojson")), "adjacent_zones": 0,
        "footprints": geojson("footprints"), "expansion": geojson("expansion"),
        "stockpiles": geojson("stockpiles"), "trends": rows("trends"),
        "trend_summary": rows("trend_summary"), "trend_events": rows("trend_events"),
    }  # fmt: skip


@pytest.mark.slow
def test_run_gpkg_layers_fields_and_styles(
    demo_gpkg: DemoGpkg, caplog: pytest.LogCaptureFixture
) -> None:
    run = demo_gpkg.run_dir
    path = run / RUN_GPKG
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        caplog.set_level("WARNING")
        listed = {str(n): g for n, g in pyogrio.list_layers(path)}
        infos = {name: pyogrio.read_info(path, layer=name) for name in RUN_SCHEMAS}
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert list(listed) == [*RUN_SCHEMAS, "layer_styles"]
    counts = _run_counts(run)
    assert counts["footprints"] == counts["trends"] == 30
    for name, schema in RUN_SCHEMAS.items():
        info = infos[name]
        assert info["features"] == counts[name], name
        spatial = name in VECTOR_LAYERS
        assert listed[name] == ("MultiPolygon" if spatial else None), name
        assert info["crs"] == ("EPSG:4326" if spatial else None), name
        fields = dict(zip(info["fields"], info["ogr_types"], strict=True))
        assert fields == {c.name: OGR_TYPES[c.kind] for c in schema}, name
    # The temporal controller's fields are dates, equal to the GeoJSON's.
    for name in TEMPORAL_LAYERS:
        frame = pyogrio.read_dataframe(path, layer=name, columns=["date_start", "date_end"])
        features = json.loads((run / f"{name}.geojson").read_text())["features"]
        assert [str(d)[:10] for d in frame["date_start"]] == [f["properties"]["date_start"] for f in features]  # fmt: skip
        assert [str(d)[:10] for d in frame["date_end"]] == [f["properties"]["date_end"] for f in features]  # fmt: skip
    styles = _connect_rows(
        path,
        "SELECT f_table_name, f_geometry_column, styleName, styleQML, useAsDefault "
        "FROM layer_styles ORDER BY id",
    )
    assert styles == [(name, "geom", name, style_for(name), 1) for name in VECTOR_LAYERS]
    assert ("layer_styles", "attributes") in _connect_rows(path, "SELECT table_name, data_type FROM gpkg_contents")  # fmt: skip
    assert _connect_rows(path, "PRAGMA user_version") == [(GPKG_1_3,)]
    manifest = json.loads((run / "manifest.json").read_text())
    listed_outputs = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    assert listed_outputs[RUN_GPKG] == hashlib.sha256(path.read_bytes()).hexdigest()


QGIS_SCRIPT = r"""
from osgeo import gdal
from qgis.core import (
    QgsRenderContext, QgsVectorLayer, QgsVectorLayerTemporalProperties,
    QgsWkbTypes,
)


def temporal_findings(layer):
    temporal = layer.temporalProperties()
    return {
        "active": temporal.isActive(),
        "from_fields": temporal.mode()
        == QgsVectorLayerTemporalProperties.ModeFeatureDateTimeStartAndEndFromFields,
        "start": temporal.startField(),
        "end": temporal.endField(),
    }


def layer_findings(path, name):
    layer = QgsVectorLayer(f"{path}|layername={name}", name, "ogr")
    found = {"valid": layer.isValid()}
    if not layer.isValid():
        return found
    invalid = 0
    empty = 0
    for feature in layer.getFeatures():
        geometry = feature.geometry()
        if geometry.isNull() or geometry.isEmpty():
            empty += 1
        elif not geometry.isGeosValid():
            invalid += 1
    found.update(
        count=layer.featureCount(),
        crs=layer.crs().authid(),
        spatial=layer.isSpatial(),
        geometry_type=QgsWkbTypes.displayString(layer.wkbType()),
        invalid_geometries=invalid,
        null_or_empty=empty,
        style=renderer_summary(layer) if layer.isSpatial() else None,  # as loaded
        fields=[[f.name(), f.typeName()] for f in layer.fields()],
        temporal_on_load=temporal_findings(layer),
    )
    # The style again, explicitly (Layer Properties > Style > Load Default Style; a project
    # stores what it sets): QGIS 3.22 resets a default style's temporal settings on load.
    message, loaded = layer.loadDefaultStyle()
    found["default_style"] = [message, loaded]
    found["temporal_default_style"] = temporal_findings(layer)
    return found


def gdal_findings(path):
    messages = []
    gdal.PushErrorHandler(lambda level, number, text: messages.append([level, number, text]))
    try:
        dataset = gdal.OpenEx(path, gdal.OF_VECTOR | gdal.OF_READONLY)
        names = [dataset.GetLayer(i).GetName() for i in range(dataset.GetLayerCount())]
        counts = {n: dataset.GetLayerByName(n).GetFeatureCount() for n in names}
        dataset = None
    finally:
        gdal.PopErrorHandler()
    from osgeo_utils.samples import validate_gpkg

    errors = validate_gpkg.check(
        path, abort_at_first_error=False, extra_checks=True, warning_as_error=True,
        warning_msg=False,
    )
    return {"messages": messages, "counts": counts, "validate_gpkg": [list(e) for e in errors]}


def main(args):
    out = {"gdal_version": gdal.__version__, "files": {}}
    for path, names in args["files"].items():
        out["files"][path] = {
            "gdal": gdal_findings(path),
            "layers": {name: layer_findings(path, name) for name in names},
        }
    return out
"""


@pytest.fixture(scope="module")
def qgis_findings(demo_gpkg: DemoGpkg, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reason = qgis_available()
    if reason is not None:
        pytest.skip(reason)
    files = {
        str(demo_gpkg.path): list(demo_gpkg.layers),
        str(demo_gpkg.samples): ["samples", "strata"],
        str(demo_gpkg.run_dir / RUN_GPKG): list(RUN_SCHEMAS),
    }
    return run_pyqgis(QGIS_SCRIPT, {"files": files}, tmp_path_factory.mktemp("qgis"))


def _expected_style(name: str) -> dict[str, Any]:
    s = summarize_qml(style_for(name))
    return {
        "renderer": s.renderer,
        "attribute": s.attribute,
        "categories": list(s.categories),
        "colors": sorted(list(c) for c in s.colors),
    }


@pytest.mark.slow
def test_qgis_loads_every_layer_styled(demo_gpkg: DemoGpkg, qgis_findings: dict[str, Any]) -> None:
    assert qgis_findings["qgis_version"].startswith("3.")
    found = qgis_findings["files"][str(demo_gpkg.path)]["layers"]
    for name in VECTOR_LAYERS:
        layer, frame = found[name], demo_gpkg.layers[name]
        assert layer["valid"], name
        assert layer["count"] == len(frame), name
        assert layer["crs"] == "EPSG:4326", name
        assert layer["spatial"], name
        assert layer["invalid_geometries"] == 0, name
        assert layer["null_or_empty"] == int(frame.geometry.isna().sum() + frame.geometry.is_empty.sum()), name  # fmt: skip
        # The default style from layer_styles, applied by QGIS itself on load.
        assert layer["style"] == _expected_style(name), name
    # QGIS 3.22 builds the layer, applies its default style, then resets the temporal settings
    # from the provider (none) and guesses start and end fields by name: date_start/date_end
    # are found but the layer is not active until the style is loaded again (or a project
    # sets it). Loaded again, the style's temporal settings apply.
    for name in TEMPORAL_LAYERS:
        fields = dict(found[name]["fields"])
        assert fields["date_start"].lower() == "date", name
        assert fields["date_end"].lower() == "date", name
        dated = {"from_fields": True, "start": "date_start", "end": "date_end"}
        assert found[name]["temporal_on_load"] == {"active": False, **dated}, name
        assert found[name]["default_style"] == ["Loaded from Provider", True], name
        assert found[name]["temporal_default_style"] == {"active": True, **dated}, name
    assert found["expansion"]["temporal_default_style"]["active"] is False


@pytest.mark.slow
def test_qgis_loads_trends_as_a_table(demo_gpkg: DemoGpkg, qgis_findings: dict[str, Any]) -> None:
    trends = qgis_findings["files"][str(demo_gpkg.path)]["layers"]["trends"]
    assert trends["valid"]
    assert trends["spatial"] is False
    assert trends["geometry_type"] == "NoGeometry"
    assert trends["count"] == len(demo_gpkg.layers["trends"])
    names = [name for name, _ in trends["fields"]]
    assert names == ["fid", *demo_gpkg.layers["trends"].columns]


@pytest.mark.slow
def test_qgis_loads_the_sample_file_with_its_style(
    demo_gpkg: DemoGpkg, qgis_findings: dict[str, Any]
) -> None:
    found = qgis_findings["files"][str(demo_gpkg.samples)]["layers"]
    assert found["samples"]["valid"]
    assert found["samples"]["invalid_geometries"] == 0
    assert found["samples"]["style"] == _expected_style("samples")
    assert found["strata"]["valid"]
    assert not found["strata"]["spatial"]


@pytest.mark.slow
def test_gdal_3_6_reads_without_warnings(
    demo_gpkg: DemoGpkg, qgis_findings: dict[str, Any]
) -> None:
    """QGIS 3.22's own GDAL (3.6 on Debian bookworm) opens the file silently and its GeoPackage
    validator finds nothing, warnings included; QGIS logs no warning while loading."""
    gdal = qgis_findings["files"][str(demo_gpkg.path)]["gdal"]
    assert gdal["messages"] == []
    assert gdal["validate_gpkg"] == []
    assert gdal["counts"] == {
        **{n: len(f) for n, f in demo_gpkg.layers.items()},
        "layer_styles": len(VECTOR_LAYERS),
    }
    warnings_logged = [m for m in qgis_findings["qgis_messages"] if m[0] >= 1]
    assert warnings_logged == []


@pytest.mark.slow
def test_gdal_3_6_reads_the_sample_file_without_warnings(
    demo_gpkg: DemoGpkg, qgis_findings: dict[str, Any]
) -> None:
    gdal = qgis_findings["files"][str(demo_gpkg.samples)]["gdal"]
    assert gdal["messages"] == []
    assert gdal["validate_gpkg"] == []


@pytest.mark.slow
def test_qgis_loads_the_runs_gpkg_styled(
    demo_gpkg: DemoGpkg, qgis_findings: dict[str, Any]
) -> None:
    """The run's own ``sitewatch.gpkg``: QGIS opens every layer, applies each vector layer's
    default style on load (also the empty ``adjacent_zones``), reads the trend tables as
    tables, and its GDAL and GeoPackage validator find nothing."""
    path = demo_gpkg.run_dir / RUN_GPKG
    found = qgis_findings["files"][str(path)]
    counts = _run_counts(demo_gpkg.run_dir)
    for name, schema in RUN_SCHEMAS.items():
        layer = found["layers"][name]
        assert layer["valid"], name
        assert layer["count"] == counts[name], name
        assert [n for n, _ in layer["fields"]] == ["fid", *(c.name for c in schema)], name
        if name in VECTOR_LAYERS:
            assert layer["spatial"], name
            assert layer["crs"] == "EPSG:4326", name
            assert layer["geometry_type"] == "MultiPolygon", name
            assert layer["invalid_geometries"] == 0, name
            assert layer["style"] == _expected_style(name), name
        else:
            assert layer["geometry_type"] == "NoGeometry", name
    for name in TEMPORAL_LAYERS:
        dated = {"from_fields": True, "start": "date_start", "end": "date_end"}
        assert found["layers"][name]["temporal_default_style"] == {"active": True, **dated}, name
    assert found["gdal"]["messages"] == []
    assert found["gdal"]["validate_gpkg"] == []
    assert found["gdal"]["counts"] == {**counts, "layer_styles": len(VECTOR_LAYERS)}
