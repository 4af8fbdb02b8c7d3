"""Tests for pipeline.export.project: the QGIS project of a run.

Fast tests write projects of hand-made specs and check the XML itself. Slow tests build a
run-like folder from one real demo run, write its project and open it in real QGIS 3.22
(Debian's PyQGIS, :mod:`support.qgis`): layers valid and styled, temporal settings, themes, and
a rendered PNG that shows the footprint where it lies.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine
from PIL import Image
from shapely.geometry import box
from shapely.ops import polylabel
from support.qgis import qgis_available, run_pyqgis

from pipeline.api import demo
from pipeline.export.gpkg import write_geopackage
from pipeline.export.project import (
    FeatureTime,
    FixedTime,
    MapTheme,
    ProjectLayer,
    ProjectSpec,
    project_spec_for_run,
    project_xml,
    write_project,
)
from pipeline.export.styles import parse_color, style_for, summarize_qml

UTM = "EPSG:32651"


def _raster_qml(kind: str = "multibandcolor") -> str:
    """A QGIS 3.22 raster style: RGB from bands 3, 2, 1 stretched 0..2000."""
    enhancement = "".join(
        f"<{c}ContrastEnhancement><minValue>0</minValue><maxValue>2000</maxValue>"
        f"<algorithm>StretchToMinimumMaximum</algorithm></{c}ContrastEnhancement>"
        for c in ("red", "green", "blue")
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.22.16-Białowieża" styleCategories="AllStyleCategories" '
        'hasScaleBasedVisibilityFlag="0" maxScale="0" minScale="1e+08">\n'
        f'  <pipe><rasterrenderer type="{kind}" opacity="1" alphaBand="-1" redBand="3" '
        'greenBand="2" blueBand="1" nodataColor=""><rasterTransparency/>'
        f"{enhancement}</rasterrenderer>"
        '<brightnesscontrast brightness="0" contrast="0" gamma="1"/></pipe>\n'
        "  <blendMode>0</blendMode>\n</qgis>\n"
    )


PALETTE = ((0, "#f0f0f0", 0), (1, "#e6550d", 255))


def _spec() -> ProjectSpec:
    footprints = ProjectLayer(
        "sitewatch.gpkg", "footprints", "vector", "All sites", "footprints", "EPSG:4326",
        style_for("footprints"), FeatureTime("date_start", "date_end"),
    )  # fmt: skip
    sites = ProjectLayer("sitewatch.gpkg", "sites", "vector", "All sites", "sites", "EPSG:4326", style_for("sites"))  # fmt: skip
    rgb = [
        ProjectLayer(
            f"rasters/{s}/{s}_{y}_truecolour.tif",
            f"truecolour {y}",
            "raster",
            f"Sites/{s}/{y}",
            crs=UTM,
            qml=_raster_qml(),
            time=FixedTime(dt.date(y, 9, 1), dt.date(y, 11, 15)),
        )
        for s in ("a", "b")
        for y in (2021, 2020)
    ]
    table = ProjectLayer("sitewatch.gpkg", "trends", "vector", "Tables", "trends")
    layers = (sites, footprints, *rgb, table)
    themes = tuple(
        MapTheme(s, (sites.id, footprints.id, *(r.id for r in rgb if f"/{s}/" in r.group)))
        for s in ("a", "b")
    )
    return ProjectSpec(UTM, layers, themes, (2020, 2021), (700_000.0, 4_300_000.0, 701_000.0, 4_301_000.0), "t")  # fmt: skip


def _canonical(element: ET.Element) -> str:
    return ET.canonicalize(ET.tostring(element, encoding="unicode"), strip_text=True)


def _parse(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


# --- the XML of a hand-made spec ----------------------------------------------------------------


def test_xml_well_formed_and_byte_identical(tmp_path: Path) -> None:
    first = write_project(tmp_path / "a" / "project.qgs", _spec())
    second = write_project(tmp_path / "b" / "project.qgs", _spec())
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis ")
    root = _parse(first)
    assert root.tag == "qgis"
    assert root.find("properties/Paths/Absolute").text == "false"  # type: ignore[union-attr]
    assert root.find("projectCrs/spatialrefsys/authid").text == UTM  # type: ignore[union-attr]
    # Nothing that changes between runs: no save time, user or creation date.
    assert "saveDateTime" not in root.attrib
    assert root.find("projectMetadata") is None
    other = ProjectSpec(UTM, _spec().layers[:2])
    assert write_project(tmp_path / "c.qgs", other).read_bytes() != first.read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["project.qgs"]


def test_paths_relative_and_every_layer_once(tmp_path: Path) -> None:
    spec = _spec()
    root = _parse(write_project(tmp_path / "project.qgs", spec))
    sources = [e.text for e in root.iter("datasource")]
    assert sources == [f"./{layer.path}" + (f"|layername={layer.layer_name}" if layer.layer_name else "") for layer in spec.layers]  # fmt: skip
    assert all(s is not None and s.startswith("./") and str(tmp_path) not in s for s in sources)
    tree = [e.get("id") for e in root.find("layer-tree-group").iter("layer-tree-layer")]  # type: ignore[union-attr]
    project = [e.findtext("id") for e in root.iter("maplayer")]
    order = [e.get("id") for e in root.findall("layerorder/layer")]
    ids = [layer.id for layer in spec.layers]
    assert tree == project == order == ids
    assert len(set(ids)) == len(ids)
    groups = [g.get("name") for g in root.iter("layer-tree-group") if g.get("name")]
    assert groups == ["All sites", "Sites", "a", "2021", "2020", "b", "2021", "2020", "Tables"]
    providers = {e.findtext("id"): e.findtext("provider") for e in root.iter("maplayer")}
    assert providers[spec.layers[0].id] == "ogr"
    assert providers[spec.layers[2].id] == "gdal"


def test_styles_temporal_and_themes_in_the_xml(tmp_path: Path) -> None:
    spec = _spec()
    root = _parse(write_project(tmp_path / "project.qgs", spec))
    layers = {e.findtext("id"): e for e in root.iter("maplayer")}
    footprints = layers[spec.layers[1].id]
    # The QML's renderer is embedded as is; its own temporal element is replaced, not doubled.
    embedded = footprints.find("renderer-v2")
    packaged = ET.fromstring(style_for("footprints")).find("renderer-v2")
    assert embedded is not None
    assert packaged is not None
    assert _canonical(embedded) == _canonical(packaged)
    (temporal,) = footprints.findall("temporal")
    wanted = {"enabled": "1", "mode": "2", "startField": "date_start", "endField": "date_end"}
    assert {k: temporal.get(k) for k in wanted} == wanted
    raster = layers[spec.layers[2].id]
    (fixed,) = raster.findall("temporal")
    assert (fixed.get("enabled"), fixed.get("mode")) == ("1", "0")
    assert fixed.findtext("fixedRange/start") == "2021-09-01T00:00:00Z"
    assert fixed.findtext("fixedRange/end") == "2021-11-15T23:59:59Z"
    assert raster.find("pipe/rasterrenderer").get("type") == "multibandcolor"  # type: ignore[union-attr]
    assert layers[spec.layers[-1].id].find("temporal") is None  # the table is not dated
    time = root.find("ProjectTimeSettings")
    assert time is not None
    assert (time.get("timeStep"), time.get("timeStepUnit")) == ("1", "y")
    assert time.findtext("TemporalRange/start") == "2020-01-01T00:00:00Z"
    assert time.findtext("TemporalRange/end") == "2021-12-31T00:00:00Z"
    presets = root.findall("visibility-presets/visibility-preset")
    assert [p.get("name") for p in presets] == ["a", "b"]
    shown = [e.get("id") for e in presets[0].findall("layer")]
    assert shown == list(spec.themes[0].layers)
    checked = [e.get("id") for e in presets[0].iter("checked-group-node")]
    assert checked == ["All sites", "Sites", "Sites/a", "Sites/a/2020", "Sites/a/2021"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"path": "/abs/x.tif"}, "must be relative to the project file"),
        ({"path": "C:/x.tif"}, "must be relative to the project file"),
        ({"name": " "}, "has an empty name"),
        ({"time": FeatureTime("a", "b")}, "start and end fields need a vector layer"),
        ({"crs": "EPSG:0"}, "project layer 'x': CRS 'EPSG:0' is not one PROJ knows"),
    ],
)
def test_bad_layers_are_refused(change: dict[str, Any], match: str) -> None:
    fields = {"path": "x.tif", "name": "x", "kind": "raster"} | change
    with pytest.raises(ValueError, match=match):
        ProjectSpec(UTM, (ProjectLayer(**fields),))


def test_bad_specs_are_refused(tmp_path: Path) -> None:
    one = ProjectLayer("x.tif", "x", "raster", "g")
    with pytest.raises(ValueError, match="get the same id 'g_x'"):
        ProjectSpec(UTM, (one, ProjectLayer("y.tif", "x", "raster", "g")))
    with pytest.raises(ValueError, match=r"map theme 't' shows layers \['nope'\]"):
        ProjectSpec(UTM, (one,), (MapTheme("t", ("nope",)),))
    with pytest.raises(ValueError, match="the last is before the first"):
        ProjectSpec(UTM, (one,), years=(2021, 2020))
    with pytest.raises(ValueError, match=r"ends \(2020-01-01\) before it starts"):
        FixedTime(dt.date(2020, 2, 1), dt.date(2020, 1, 1))
    bad = ProjectSpec(UTM, (ProjectLayer("x.tif", "x", "raster", qml="<style/>"),))
    with pytest.raises(ValueError, match="root element is <style>"):
        write_project(tmp_path / "p.qgs", bad)
    assert not (tmp_path / "p.qgs").exists()


# --- the spec of a run folder -------------------------------------------------------------------


def _tiny_run(root: Path) -> Path:
    """A run folder: a GeoPackage with styled footprints and a table, and per site a yearly
    raster with a QML, one without (left out) and a change raster with a QML."""
    frame = gpd.GeoDataFrame(
        {
            "site_id": ["a", "a"],
            "year": [2020, 2021],
            "date_start": [dt.date(2020, 9, 1), dt.date(2021, 9, 1)],
            "date_end": [dt.date(2020, 11, 15), dt.date(2021, 11, 15)],
        },
        geometry=[box(700_100, 4_300_100, 700_500, 4_300_500)] * 2,
        crs=UTM,
    )
    table = pd.DataFrame({"site_id": ["a"], "value": [1.0]})
    write_geopackage(root / "sitewatch.gpkg", {"footprints": frame, "trends": table}, {"footprints": style_for("footprints")})  # fmt: skip
    folder = root / "rasters" / "a"
    folder.mkdir(parents=True)
    profile = {"driver": "GTiff", "width": 10, "height": 10, "count": 3, "dtype": "uint16", "crs": UTM, "transform": Affine(100.0, 0.0, 700_000.0, 0.0, -100.0, 4_301_000.0)}  # fmt: skip
    for name, qml in [("a_2020_truecolour", True), ("a_2021_truecolour", True), ("a_2021_spread", False), ("a_2020-2021_change", True)]:  # fmt: skip
        with rasterio.open(folder / f"{name}.tif", "w", **profile) as dst:
            dst.write(np.ones((3, 10, 10), dtype="uint16"))
            if name == "a_2021_truecolour":
                dst.update_tags(window="2021-09-01/2021-11-15")
        if qml:
            (folder / f"{name}.qml").write_text(_raster_qml(), encoding="utf-8")
    return root


def test_spec_for_run_folder(tmp_path: Path) -> None:
    spec = project_spec_for_run(_tiny_run(tmp_path))
    summary = [(layer.group, layer.name, layer.path, layer.layer_name) for layer in spec.layers]
    assert summary == [
        ("All sites", "footprints", "sitewatch.gpkg", "footprints"),
        ("Sites/a/2021", "truecolour 2021", "rasters/a/a_2021_truecolour.tif", None),
        ("Sites/a/2020", "truecolour 2020", "rasters/a/a_2020_truecolour.tif", None),
        ("Sites/a/change", "change 2020-2021", "rasters/a/a_2020-2021_change.tif", None),
        ("Tables", "trends", "sitewatch.gpkg", "trends"),
    ]
    footprints, rgb21, rgb20, change, table = spec.layers
    assert footprints.qml == style_for("footprints")  # from the file's layer_styles
    assert footprints.time == FeatureTime("date_start", "date_end")
    assert footprints.crs == "EPSG:4326"
    assert rgb21.time == FixedTime(dt.date(2021, 9, 1), dt.date(2021, 11, 15))  # its window tag
    assert rgb20.time == FixedTime(dt.date(2020, 1, 1), dt.date(2020, 12, 31))  # no tag
    assert change.time == FixedTime(dt.date(2021, 1, 1), dt.date(2021, 12, 31))
    assert (rgb21.visible, change.visible) == (True, False)
    assert table.crs is None
    assert table.time is None
    assert spec.crs == UTM
    assert spec.years == (2020, 2021)
    assert spec.themes == (MapTheme("a", (footprints.id, rgb21.id, rgb20.id)),)
    assert spec.extent is not None
    assert spec.extent == pytest.approx((700_000, 4_300_000, 701_000, 4_301_000), abs=1.0)
    path = write_project(tmp_path / "project.qgs", spec)
    assert path.read_bytes() == write_project(tmp_path / "again.qgs", project_spec_for_run(tmp_path)).read_bytes()  # fmt: skip


# --- a real demo run in real QGIS ---------------------------------------------------------------


@dataclass(frozen=True)
class DemoProject:
    run_dir: Path
    project: Path
    spec: ProjectSpec
    layers: dict[str, pd.DataFrame]


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> DemoProject:
    """One demo run, made into a run-like folder with its project.qgs. Only the QGIS tests use
    it, so without QGIS they skip before the demo runs."""
    reason = qgis_available()
    if reason is not None:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("project")
    folder = demo(work / "demo", workers=2, cache_dir=work / "cache").out_dir
    # The run wrote its project.qgs: the same bytes as the spec of its folder gives.
    project = folder / "project.qgs"
    sites = [s["id"] for s in json.loads((folder / "manifest.json").read_text())["sites"]]
    spec = project_spec_for_run(folder, sites, title="demo")
    assert project.read_text(encoding="utf-8") == project_xml(spec)
    gpkg = folder / "sitewatch.gpkg"
    layers = {str(n): pyogrio.read_dataframe(gpkg, layer=str(n)) for n, _ in pyogrio.list_layers(gpkg) if n != "layer_styles"}  # fmt: skip
    return DemoProject(folder, project, spec, layers)


QGIS_SCRIPT = r"""
from qgis.core import (
    QgsDateTimeRange, QgsInterval, QgsMapRendererSequentialJob, QgsMapSettings, QgsProject,
    QgsRectangle, QgsRenderContext, QgsTemporalNavigationObject, QgsUnitTypes,
    QgsVectorLayerTemporalContext, QgsVectorLayerTemporalProperties, QgsFeatureRequest,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtXml import QDomDocument


def vector_style(layer):
    summary = renderer_summary(layer)
    return {"renderer": summary["renderer"], "colors": summary["colors"]}


def raster_style(layer):
    renderer = layer.renderer()
    found = {"renderer": renderer.type()}
    if renderer.type() == "paletted":
        found["colors"] = [[c.value, rgba(c.color)] for c in renderer.classes()]
    elif renderer.type() == "singlebandpseudocolor":
        items = renderer.shader().rasterShaderFunction().colorRampItemList()
        found["colors"] = [[i.value, rgba(i.color)] for i in items]
    elif renderer.type() == "multibandcolor":
        found["bands"] = [renderer.redBand(), renderer.greenBand(), renderer.blueBand()]
        found["ranges"] = [
            None if e is None else [e.minimumValue(), e.maximumValue()]
            for e in (renderer.redContrastEnhancement(), renderer.greenContrastEnhancement(),
                      renderer.blueContrastEnhancement())
        ]
    return found


def temporal(layer):
    props = layer.temporalProperties()
    out = {"active": props.isActive()}
    if layer.type() == layer.VectorLayer:
        out.update(
            mode=int(props.mode()), start=props.startField(), end=props.endField(),
        )
    else:
        fixed = props.fixedTemporalRange()
        out.update(
            mode=int(props.mode()),
            begin=fixed.begin().toString("yyyy-MM-ddTHH:mm:ss"),
            finish=fixed.end().toString("yyyy-MM-ddTHH:mm:ss"),
        )
    return out


def render(project, layers, extent, size, time_range=None):
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(project.crs())
    settings.setOutputSize(QSize(size, size))
    settings.setExtent(QgsRectangle(*extent))
    settings.setBackgroundColor(QColor(255, 255, 255))
    if time_range is not None:
        settings.setIsTemporal(True)
        settings.setTemporalRange(time_range)
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    visible = settings.visibleExtent()
    return job.renderedImage(), [visible.xMinimum(), visible.yMinimum(), visible.xMaximum(), visible.yMaximum()], [e.message for e in job.errors()]


def main(args):
    project = QgsProject.instance()
    ok = project.read(args["project"])
    out = {"read": ok, "error": project.error(), "crs": project.crs().authid(), "layers": {}}
    root = project.layerTreeRoot()
    out["tree"] = [node.layerId() for node in root.findLayers()]
    for node in root.findLayers():
        layer = node.layer()
        entry = {"valid": layer is not None and layer.isValid(), "name": node.name()}
        if entry["valid"]:
            entry.update(
                crs=layer.crs().authid(), source=layer.source(), temporal=temporal(layer),
                group=node.parent().name(), checked=node.isVisible(),
            )
            if layer.type() == layer.VectorLayer:
                entry["count"] = layer.featureCount()
                entry["spatial"] = layer.isSpatial()
                if layer.isSpatial():
                    entry["style"] = vector_style(layer)
            else:
                entry["style"] = raster_style(layer)
                entry["bands"] = layer.bandCount()
        out["layers"][layer.id() if layer is not None else node.layerId()] = entry
    time = project.timeSettings()
    span = time.temporalRange()
    out["time"] = {
        "begin": span.begin().toString("yyyy-MM-ddTHH:mm:ss"),
        "end": span.end().toString("yyyy-MM-ddTHH:mm:ss"),
        "step": time.timeStep(), "unit": QgsUnitTypes.toString(time.timeStepUnit()),
    }
    themes = project.mapThemeCollection()
    out["themes"] = {
        name: [l.id() for l in themes.mapThemeVisibleLayers(name)] for name in themes.mapThemes()
    }
    document = QDomDocument()
    with open(args["project"], encoding="utf-8") as handle:
        document.setContent(handle.read())
    canvas = QgsMapSettings()
    canvas.readXml(document.elementsByTagName("mapcanvas").at(0))
    box = canvas.extent()
    out["canvas"] = [box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum(), canvas.destinationCrs().authid()]
    view = project.viewSettings().defaultViewExtent()
    out["view_extent"] = [view.xMinimum(), view.yMinimum(), view.xMaximum(), view.yMaximum()]

    # The temporal controller's frames, as the project sets it up: a frame per year.
    navigation = QgsTemporalNavigationObject()
    navigation.setTemporalExtents(span)
    navigation.setFrameDuration(QgsInterval(time.timeStep(), time.timeStepUnit()))
    footprints = project.mapLayer(args["footprints"])
    frames = []
    for n in range(navigation.totalFrameCount()):
        frame = navigation.dateTimeRangeForFrameNumber(n)
        context = QgsVectorLayerTemporalContext()
        context.setLayer(footprints)
        expression = footprints.temporalProperties().createFilterString(context, frame)
        years = sorted(f["year"] for f in footprints.getFeatures(QgsFeatureRequest().setFilterExpression(expression)))
        rasters = sorted(
            l.id() for l in project.mapLayers().values()
            if l.type() == l.RasterLayer and l.temporalProperties().isVisibleInTemporalRange(frame)
        )
        frames.append({"begin": frame.begin().toString("yyyy-MM-dd"), "end": frame.end().toString("yyyy-MM-dd"), "years": years, "rasters": rasters})
    out["frames"] = frames

    # Renders of one site's theme, in tree order, at one year's frame and at another.
    order = [l.id() for l in root.layerOrder()]
    shown = set(out["themes"][args["site"]])
    layers = [project.mapLayer(i) for i in order if i in shown]
    renders = {}
    for key, year, drop in args["renders"]:
        frame = QgsDateTimeRange(navigation.dateTimeRangeForFrameNumber(year - int(out["time"]["begin"][:4])))
        chosen = [l for l in layers if l.id() != drop]
        image, visible, errors = render(project, chosen, args["extent"], args["size"], frame)
        path = args["out"] + f"/{key}.png"
        image.save(path, "PNG")
        renders[key] = {"path": path, "visible": visible, "errors": errors}
    out["renders"] = renders
    project.clear()
    return out
"""

SIZE = 600


@dataclass(frozen=True)
class Probe:
    """Where to look in the render of one site's footprint in one year."""

    site: str
    year: int
    extent: tuple[float, float, float, float]
    point: tuple[float, float]


def _probe(demo: DemoProject) -> Probe:
    """A site-year, a square extent around its footprint and a point inside the footprint
    well away from every other vector drawn at that year (its own outline too)."""
    spec = demo.spec
    footprints = gpd.GeoDataFrame(demo.layers["footprints"], crs="EPSG:4326").to_crs(spec.crs)
    row = footprints.sort_values(["area_ha"]).iloc[-1]
    site, year = str(row["site_id"]), int(row["year"])
    xmin, ymin, xmax, ymax = row.geometry.bounds
    half = max(xmax - xmin, ymax - ymin) * 0.6
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    extent = (cx - half, cy - half, cx + half, cy + half)
    margin = 8 * (2 * half / SIZE)  # 8 px: strokes and antialiasing stay clear
    others = []
    for name in ("sites", "expansion", "stockpiles", "adjacent_zones"):
        frame = gpd.GeoDataFrame(demo.layers[name], crs="EPSG:4326").to_crs(spec.crs)
        if "year" in frame:
            frame = frame[frame["year"] == year]
        # Outlines only for sites and zones; whole areas for the rest.
        shapes = frame.geometry.boundary if name in ("sites", "adjacent_zones") else frame.geometry
        others.extend(shapes)
    others.extend(footprints[footprints["year"] == year].geometry.boundary)
    free = row.geometry.difference(
        shapely.union_all([g.buffer(margin) for g in others if g is not None])
    )
    assert not free.is_empty
    largest = max(getattr(free, "geoms", [free]), key=lambda g: g.area)
    point = polylabel(largest, tolerance=margin / 10)
    return Probe(site, year, extent, (point.x, point.y))


@pytest.fixture(scope="module")
def qgis_result(
    demo_project: DemoProject, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Probe]:
    probe = _probe(demo_project)
    footprints = next(layer.id for layer in demo_project.spec.layers if layer.layer_name == "footprints")  # fmt: skip
    workdir = tmp_path_factory.mktemp("qgis")
    args = {
        "project": str(demo_project.project),
        "footprints": footprints,
        "site": probe.site,
        "extent": list(probe.extent),
        "size": SIZE,
        "out": str(workdir),
        "renders": [
            ["year", probe.year, None],
            ["year_without_footprints", probe.year, footprints],
            ["other_year", probe.year - 1 if probe.year > 2016 else probe.year + 1, None],
        ],
    }
    return run_pyqgis(QGIS_SCRIPT, args, workdir), probe


@pytest.mark.slow
def test_qgis_reads_the_project_every_layer_valid(
    demo_project: DemoProject, qgis_result: tuple[dict[str, Any], Probe]
) -> None:
    found, _ = qgis_result
    spec = demo_project.spec
    assert found["read"], found["error"]
    # The demo's sites lie in UTM zones 51N and 52N: the project falls back to Web Mercator
    # and QGIS reprojects every layer on the fly.
    assert found["crs"] == spec.crs == "EPSG:3857"
    assert found["tree"] == [layer.id for layer in spec.layers]
    for layer in spec.layers:
        entry = found["layers"][layer.id]
        assert entry["valid"], layer.name
        assert entry["name"] == layer.name
        assert entry["group"] == layer.group.rpartition("/")[2]
        assert entry["checked"] == layer.visible, layer.name
        assert entry["source"] == str(demo_project.run_dir / layer.path) + (f"|layername={layer.layer_name}" if layer.layer_name else ""), layer.name  # fmt: skip
        if layer.layer_name is not None:
            assert entry["count"] == len(demo_project.layers[layer.layer_name]), layer.name
            assert entry["spatial"] == (layer.crs is not None)
        if layer.crs is not None:
            assert entry["crs"] == layer.crs, layer.name
        else:
            assert entry["crs"] == ""
    assert {layer.layer_name for layer in spec.layers} >= {"sites", "adjacent_zones", "footprints", "expansion", "stockpiles", "trends"}  # fmt: skip
    # 3 sites x 10 years x (true colour, classes, coal frequency), and 9 change rasters a site
    assert sum(layer.kind == "raster" for layer in spec.layers) == 3 * 10 * 3 + 3 * 9
    # QGIS logged no warning while reading, filtering and rendering.
    assert [m for m in found["qgis_messages"] if m[0] >= 1] == []
    assert all(r["errors"] == [] for r in found["renders"].values())


@pytest.mark.slow
def test_qgis_applies_every_style(
    demo_project: DemoProject, qgis_result: tuple[dict[str, Any], Probe]
) -> None:
    found, _ = qgis_result
    for layer in demo_project.spec.layers:
        entry = found["layers"][layer.id]
        if layer.qml is None:
            assert "style" not in entry, layer.name
        elif layer.kind == "vector":
            summary = summarize_qml(layer.qml)
            assert entry["style"]["renderer"] == summary.renderer, layer.name
            assert entry["style"]["colors"] == sorted(list(c) for c in summary.colors), layer.name
        else:
            assert entry["style"] == _raster_style(layer.qml), layer.name


def _raster_style(qml: str) -> dict[str, Any]:
    """What a raster QML's renderer promises, in the form the QGIS script reports."""
    renderer = ET.fromstring(qml).find("pipe/rasterrenderer")
    assert renderer is not None
    kind = renderer.get("type")
    found: dict[str, Any] = {"renderer": kind}

    def colour(e: ET.Element) -> list[int]:
        rgb = e.get("color", "#000000").lstrip("#")
        return [int(rgb[i : i + 2], 16) for i in (0, 2, 4)] + [int(e.get("alpha", "255"))]

    if kind == "paletted":
        entries = renderer.iter("paletteEntry")
        found["colors"] = [[float(e.get("value", "nan")), colour(e)] for e in entries]
    elif kind == "singlebandpseudocolor":
        items = renderer.iter("item")
        found["colors"] = [[float(e.get("value", "nan")), colour(e)] for e in items]
    elif kind == "multibandcolor":
        channels = ("red", "green", "blue")
        found["bands"] = [int(renderer.get(f"{c}Band", "0")) for c in channels]
        # A channel without a contrast enhancement (8-bit data shown as is) has none.
        found["ranges"] = [
            None
            if renderer.find(f"{c}ContrastEnhancement") is None
            else [
                float(renderer.findtext(f"{c}ContrastEnhancement/{m}Value", "nan"))
                for m in ("min", "max")
            ]
            for c in channels
        ]
    return found


@pytest.mark.slow
def test_qgis_temporal_settings_and_themes(
    demo_project: DemoProject, qgis_result: tuple[dict[str, Any], Probe]
) -> None:
    found, _ = qgis_result
    spec = demo_project.spec
    years = sorted(set(demo_project.layers["footprints"]["year"]))
    assert spec.years == (years[0], years[-1])
    assert found["time"] == {
        "begin": f"{years[0]}-01-01T00:00:00",
        "end": f"{years[-1]}-12-31T00:00:00",
        "step": 1.0,
        "unit": "years",
    }
    for layer in spec.layers:
        temporal = found["layers"][layer.id]["temporal"]
        if isinstance(layer.time, FeatureTime):
            assert temporal == {"active": True, "mode": 2, "start": "date_start", "end": "date_end"}
        elif isinstance(layer.time, FixedTime):
            assert temporal == {
                "active": True,
                "mode": 0,
                "begin": f"{layer.time.start}T00:00:00",
                "finish": f"{layer.time.end}T23:59:59",
            }, layer.name
        else:
            assert temporal["active"] is False, layer.name
    # A frame per year: the footprints of that year (one per site) and that year's rasters.
    sites = sorted(set(demo_project.layers["footprints"]["site_id"]))
    assert [(f["begin"], f["end"]) for f in found["frames"]] == [(f"{y}-01-01", f"{y + 1}-01-01") for y in years]  # fmt: skip
    for frame, year in zip(found["frames"], years, strict=True):
        assert frame["years"] == [year] * len(sites)
        # The year's rasters, and the change rasters that end in it (shown in their last year).
        expected = sorted(
            r.id for r in spec.layers
            if r.kind == "raster" and isinstance(r.time, FixedTime)
            and int(str(r.time.start)[:4]) <= year <= int(str(r.time.end)[:4])
        )  # fmt: skip
        assert frame["rasters"] == expected
    # A theme per site: the layers of every site and that site's rasters, no other site's.
    assert sorted(found["themes"]) == sites
    for theme in spec.themes:
        assert sorted(found["themes"][theme.name]) == sorted(theme.layers)
        groups = {layer.group for layer in spec.layers if layer.id in theme.layers}
        assert groups == {"All sites"} | {f"Sites/{theme.name}/{y}" for y in years}
    # The view QGIS opens on (the desktop canvas, and the project's default view) shows all.
    assert found["view_extent"] == pytest.approx(list(spec.extent or ()))
    assert found["canvas"][:4] == pytest.approx(list(spec.extent or ()))
    assert found["canvas"][4] == spec.crs


def _pixel(probe: Probe, visible: list[float]) -> tuple[int, int]:
    xmin, ymin, xmax, ymax = visible
    x, y = probe.point
    return int((x - xmin) / (xmax - xmin) * SIZE), int((ymax - y) / (ymax - ymin) * SIZE)


@pytest.mark.slow
def test_qgis_renders_the_footprint_where_it_lies(
    demo_project: DemoProject, qgis_result: tuple[dict[str, Any], Probe]
) -> None:
    found, probe = qgis_result
    renders = found["renders"]
    images = {k: np.asarray(Image.open(r["path"]).convert("RGBA")).astype(int) for k, r in renders.items()}  # fmt: skip
    for key, image in images.items():
        assert image.shape == (SIZE, SIZE, 4), key
        assert renders[key]["visible"] == pytest.approx(list(probe.extent), rel=1e-9), key
        # Not blank: the composite fills most of the view with many colours.
        colours = np.unique(image[..., :3].reshape(-1, 3), axis=0)
        assert len(colours) > 1000, key
    col, row = _pixel(probe, renders["year"]["visible"])
    with_fill, without = (
        images["year"][row, col, :3],
        images["year_without_footprints"][row, col, :3],
    )
    # At the point, the footprint's fill is blended over the raster with its alpha.
    fill = parse_color(next(iter(c for c in _fill_colours())))
    alpha = fill[3] / 255
    expected = np.round(without * (1 - alpha) + np.array(fill[:3]) * alpha)
    assert np.abs(with_fill - expected).max() <= 3, (with_fill, without, expected)
    assert np.abs(with_fill - without).max() >= 10  # the check above is not vacuous
    # Another year draws another composite (and footprint): the picture changes.
    assert np.abs(images["year"] - images["other_year"]).max() > 0


def _fill_colours() -> list[str]:
    root = ET.fromstring(style_for("footprints"))
    return [p.get("v", "") for p in root.iter("prop") if p.get("k") == "color"]
