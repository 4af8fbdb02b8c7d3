"""The QGIS-ready rasters of a site (``pipeline.export.site_rasters``) and ``write_cog``'s
colour, category and overview options, on a small hand-built analysis with known answers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import box
from support.qgis import qgis_available, run_pyqgis

from pipeline.analysis import analyse_site
from pipeline.classify import CoalFrequency
from pipeline.composite import Composite
from pipeline.export.rasters import write_cog
from pipeline.export.site_rasters import (
    CHANGE_LEGEND,
    CLASS_LEGEND,
    NODATA,
    change_raster_path,
    raster_style,
    site_stretch,
    truecolour_rgba,
    write_qgis_rasters,
    year_raster_path,
)
from pipeline.results import SceneRecord, SiteAnalysis, SiteYear
from pipeline.sites import Site

SITE = Site("camp", "Camp", "kwanliso", box(127.0, 39.0, 127.02, 39.016), "test")
GRID = SITE.grid(10.0, 0.0)
SHAPE = GRID.shape
# Ground that never changes and has the same reflectance every year: one stretch shows it alike.
STILL = (150, 30)
# Never seen clear in 2021: no data there.
HOLE = (slice(120, 140), slice(120, 140))
ADDED = (slice(20, 60), slice(100, 110))  # 4 ha of footprint added in 2021
PILE = (slice(40, 60), slice(40, 60))  # 4 ha of coal, every year
PILE_GROWN = (slice(40, 60), slice(60, 80))  # 4 more ha of coal from 2022
SCENES = (
    SceneRecord("S2B_51SVD_20200910", "2020-09-10T02:00:00+00:00", offset_dn=-1000.0,
                radiometry="baseline 04.00 >= 04.00: DN - 1000", platform="sentinel-2b",
                collection="sentinel-2-l2a", processing_baseline="04.00", clear_fraction=0.9),
    SceneRecord("S2A_51SVD_20201005", "2020-10-05T02:00:00+00:00", offset_dn=0.0,
                radiometry="baseline 02.09 < 04.00: no BOA offset", platform="sentinel-2a",
                collection="sentinel-2-l2a", processing_baseline="02.09", clear_fraction=0.8),
    SceneRecord("LC08_116032_20201012", "2020-10-12T02:10:00+00:00", platform="landsat-8",
                skipped="read failed: 503"),
    SceneRecord("S2A_51SVD_20200612", "2020-06-12T02:00:00+00:00", role="greenness",
                platform="sentinel-2a", processing_baseline="02.09"),
)  # fmt: skip


def site_year(year: int, footprint: np.ndarray | None, coal: np.ndarray | None = None,
          brightness: float = 0.0, hole: bool = False) -> SiteYear:  # fmt: skip
    """A site-year: ground 0.08-0.16 reflectance (seeded), footprint 0.3, coal 0.04, each year
    ``brightness`` brighter except at ``STILL``; ``hole``: ``HOLE`` never seen clear."""
    if footprint is None:
        nothing = np.zeros(SHAPE, bool)
        return SiteYear(SITE.id, year, (f"{year}-08-15", f"{year}-11-30"), True, (), None, None,
                        nothing, nothing, nothing, 0.0, 0.0)  # fmt: skip
    coal = np.zeros(SHAPE, bool) if coal is None else coal
    rng = np.random.default_rng(year)
    refl = rng.uniform(0.08, 0.16, (6, *SHAPE)).astype(np.float32) + np.float32(brightness)
    refl[:, footprint] = 0.3
    refl[:, coal] = 0.04
    refl[:, STILL[0], STILL[1]] = (0.05, 0.08, 0.11, 0.2, 0.25, 0.2)
    clear = np.full(SHAPE, 6, np.int16)
    valid = np.ones(SHAPE, bool)
    if hole:
        refl[:, HOLE[0], HOLE[1]] = np.nan
        clear[HOLE] = 0
        valid[HOLE] = False
    freq = coal.astype(np.float32)
    return SiteYear(
        SITE.id, year, (f"{year}-09-01", f"{year}-11-15"), False, SCENES,
        Composite(refl, clear, np.zeros_like(refl)),
        CoalFrequency(freq, (freq * 6).astype(np.int16), clear),
        footprint | coal, coal, valid, 6.0, 1.0,
    )  # fmt: skip


def build_analysis() -> SiteAnalysis:
    """2020 a camp with a coal pile; 2021 4 ha added east (part of it unseen); 2022 the pile
    doubles; 2023 no data; 2024 as 2022."""
    camp = np.zeros(SHAPE, bool)
    camp[20:100, 20:100] = True
    grown = camp.copy()
    grown[ADDED] = True
    pile = np.zeros(SHAPE, bool)
    pile[PILE] = True
    piles = pile.copy()
    piles[PILE_GROWN] = True
    years = [
        site_year(2020, camp, pile),
        site_year(2021, grown, pile, brightness=0.02, hole=True),
        site_year(2022, grown, piles, brightness=0.04),
        site_year(2023, None),
        site_year(2024, grown, piles, brightness=0.01),
    ]
    return analyse_site(
        SITE, GRID, years, buffer_m=0.0, min_mapping_unit_ha=0.25, change_opening_px=1
    )


@pytest.fixture(scope="module")
def analysis() -> SiteAnalysis:
    return build_analysis()


@pytest.fixture(scope="module")
def written(analysis: SiteAnalysis, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_qgis_rasters(tmp_path_factory.mktemp("run"), analysis)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_paths_one_per_year_with_data_and_consecutive_pair(
    written: list[Path], analysis: SiteAnalysis
) -> None:
    out = written[0].parents[2]
    stems = [p.name for p in written]
    expected = [f"camp_{y}_{k}.{e}" for y in (2020, 2021, 2022, 2024)
                for k in ("truecolour", "classes") for e in ("tif", "qml")]  # fmt: skip
    expected += [f"camp_{p}_change.{e}" for p in ("2020-2021", "2021-2022", "2022-2024")
                 for e in ("tif", "qml")]  # fmt: skip
    assert stems == expected  # no 2023 (no data), no first-vs-last 2020-2024
    assert sorted(p for p in (out / "rasters").rglob("*") if p.is_file()) == sorted(written)
    assert year_raster_path(out, "camp", 2021, "classes") in written
    assert change_raster_path(out, "camp", 2022, 2024) in written
    assert any(c.year_from == 2020 and c.year_to == 2024 for c in analysis.changes)


def test_class_map_values(written: list[Path]) -> None:
    out = written[0].parents[2]
    (classes,) = _read(year_raster_path(out, "camp", 2021, "classes"))
    assert classes.dtype == np.uint8
    assert (classes[PILE] == 2).all()
    assert (classes[ADDED] == 1).all()
    assert (classes[HOLE] == NODATA).all()
    assert classes[STILL] == 0
    counts = dict(zip(*np.unique(classes, return_counts=True), strict=True))
    assert counts[2] == 400
    assert counts[1] == (80 * 80 - 400) + 400  # the camp but its pile, and the added 4 ha
    assert counts[NODATA] == 400
    (classes_2022,) = _read(year_raster_path(out, "camp", 2022, "classes"))
    assert (classes_2022[PILE_GROWN] == 2).all()
    assert (classes_2022 != NODATA).all()


def test_change_map_values(written: list[Path], analysis: SiteAnalysis) -> None:
    out = written[0].parents[2]
    (change,) = _read(change_raster_path(out, "camp", 2020, 2021))
    assert (change[ADDED] == 1).all()
    assert (change[HOLE] == NODATA).all()  # not seen in 2021
    counts = dict(zip(*np.unique(change, return_counts=True), strict=True))
    assert counts[1] == 400 == round(analysis.changes[0].added_ha / GRID.pixel_area_ha)
    assert 2 not in counts
    assert counts[NODATA] == 400
    # Coal grew on footprint: the footprint did not change, so neither does the map.
    (later,) = _read(change_raster_path(out, "camp", 2021, 2022))
    assert set(np.unique(later)) == {0, NODATA}
    (still,) = _read(change_raster_path(out, "camp", 2022, 2024))
    assert set(np.unique(still)) == {0}


@pytest.mark.parametrize(("kind", "legend"), [("classes", CLASS_LEGEND), ("change", CHANGE_LEGEND)])
def test_colour_table_category_names_and_tags(written: list[Path], kind: str, legend: Any) -> None:
    path = next(p for p in written if p.name.endswith(f"_{kind}.tif"))
    with rasterio.open(path) as ds:
        assert ds.nodata == NODATA
        colormap = ds.colormap(1)
        for c in legend:
            assert colormap[c.value] == (*c.colour, 255)
        names = {k: v for k, v in ds.tags(1).items() if k.startswith("category_")}
        expected = {**{c.value: c.label for c in legend}, NODATA: "no data"}
        assert names == {f"category_{value}": label for value, label in expected.items()}
        tags = ds.tags()
        assert tags["site_id"] == "camp"
        if kind == "classes":
            assert (tags["year"], tags["window"]) == ("2020", "2020-09-01/2020-11-15")
        else:
            assert (tags["year_from"], tags["year_to"]) == ("2020", "2021")
            assert tags["window_to"] == "2021-09-01/2021-11-15"


def test_every_raster_is_a_cog_with_overviews_and_a_qml(written: list[Path]) -> None:
    rasters = [p for p in written if p.suffix == ".tif"]
    assert len(rasters) == 11
    for path in rasters:
        valid, errors, _warnings = cog_validate(str(path))
        assert valid, (path, errors)
        with rasterio.open(path) as ds:
            assert ds.crs.to_string() == GRID.crs
            assert ds.transform == GRID.transform
            assert ds.overviews(1) == [2, 4], path  # 178 px: down to 45 px
        kind = path.stem.rsplit("_", 1)[1]
        assert path.with_suffix(".qml").read_text(encoding="utf-8") == raster_style(kind)


def test_one_stretch_for_every_year(written: list[Path], analysis: SiteAnalysis) -> None:
    out = written[0].parents[2]
    stretch = site_stretch(analysis)
    pixels = {}
    for sy in analysis.years:
        if sy.composite is None:
            continue
        path = year_raster_path(out, "camp", sy.year, "truecolour")
        with rasterio.open(path) as ds:
            rgba = ds.read()
            assert [c.name for c in ds.colorinterp] == ["red", "green", "blue", "alpha"]
            assert ds.tags()["stretch"] == stretch.describe()
        np.testing.assert_array_equal(rgba, truecolour_rgba(sy.composite.reflectance, stretch))
        pixels[sy.year] = tuple(rgba[:, STILL[0], STILL[1]])
        if sy.year == 2021:
            assert (rgba[3][HOLE] == 0).all()
            assert (rgba[:3][:, HOLE[0], HOLE[1]] == 0).all()
        assert (rgba[3] == 255).sum() == rgba[3].size - (400 if sy.year == 2021 else 0)
    # The same reflectance shows the same colour whatever the rest of its year looks like.
    assert len(set(pixels.values())) == 1
    # A brighter year is shown brighter, not stretched back to the others.
    means = {y: _read(year_raster_path(out, "camp", y, "truecolour"))[0][150:170, 0:20].mean()
             for y in (2020, 2022)}  # fmt: skip
    assert means[2022] > means[2020] + 5


def test_rerun_writes_identical_bytes(
    written: list[Path], analysis: SiteAnalysis, tmp_path: Path
) -> None:
    again = write_qgis_rasters(tmp_path, analysis)
    out = written[0].parents[2]
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(out) for p in written]
    for first, second in zip(written, again, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name


@pytest.mark.parametrize(("kind", "legend"), [("classes", CLASS_LEGEND), ("change", CHANGE_LEGEND)])
def test_packaged_qml_matches_the_legend(kind: str, legend: Any) -> None:
    root = ET.fromstring(raster_style(kind))
    renderer = root.find("pipe/rasterrenderer")
    assert renderer is not None
    assert (renderer.get("type"), renderer.get("band")) == ("paletted", "1")
    entries = [(int(e.get("value", "")), e.get("label"), e.get("color"), e.get("alpha"))
               for e in renderer.iter("paletteEntry")]  # fmt: skip
    assert entries == [
        (c.value, c.label, "#{:02x}{:02x}{:02x}".format(*c.colour), "255") for c in legend
    ]


def test_packaged_truecolour_qml_draws_the_bytes_as_they_are() -> None:
    root = ET.fromstring(raster_style("truecolour"))
    renderer = root.find("pipe/rasterrenderer")
    assert renderer is not None
    got = {k: renderer.get(k) for k in ("type", "redBand", "greenBand", "blueBand", "alphaBand")}
    assert got == {"type": "multibandcolor", "redBand": "1", "greenBand": "2", "blueBand": "3",
                   "alphaBand": "4"}  # fmt: skip
    assert renderer.find("redContrastEnhancement") is None  # 0-255 shown as 0-255
    with pytest.raises(KeyError, match="no raster style 'nope'"):
        raster_style("nope")


def test_write_cog_rejects_bad_colour_options(tmp_path: Path) -> None:
    data = np.zeros(SHAPE, np.uint8)
    with pytest.raises(ValueError, match=r"category_names need a single integer band"):
        write_cog(tmp_path / "a.tif", data.astype(np.float32), GRID, nodata=None,
                  category_names={0: "x"})  # fmt: skip
    with pytest.raises(ValueError, match=r"category value 300 is not a uint8 value"):
        write_cog(tmp_path / "a.tif", data, GRID, nodata=None, category_names={300: "x"})
    with pytest.raises(ValueError, match=r"category 1: name '' must be a non-empty string"):
        write_cog(tmp_path / "a.tif", data, GRID, nodata=None, category_names={1: ""})
    with pytest.raises(ValueError, match=r"has a name not in .*'alpha'"):
        write_cog(tmp_path / "a.tif", data, GRID, nodata=None, colour_interpretation=["rouge"])
    with pytest.raises(ValueError, match=r"must name each of the 1 bands"):
        write_cog(tmp_path / "a.tif", data, GRID, nodata=None,
                  colour_interpretation=["red", "alpha"])  # fmt: skip
    with pytest.raises(ValueError, match=r"overview_count -1 must be None or an integer 0\.\.20"):
        write_cog(tmp_path / "a.tif", data, GRID, nodata=None, overview_count=-1)
    assert not list(tmp_path.iterdir())
    path = write_cog(tmp_path / "none.tif", data, GRID, nodata=None, overview_count=0)
    with rasterio.open(path) as ds:
        assert ds.overviews(1) == []


QGIS_SCRIPT = """
from qgis.core import QgsRasterLayer


def describe(path):
    # One layer per call: its renderer's Python wrapper dies with it (SIP reuses wrappers by
    # address, so a wrapper kept across layers can come back with the wrong class).
    layer = QgsRasterLayer(path, "r", "gdal")
    entry = {"valid": layer.isValid(), "crs": layer.crs().authid()}
    message, ok = layer.loadNamedStyle(path[: -len(".tif")] + ".qml")
    entry["style_loaded"] = bool(ok)
    entry["message"] = message
    renderer = layer.renderer()
    entry["renderer"] = renderer.type()
    if renderer.type() == "paletted":
        entry["classes"] = [
            [c.value, c.label, [c.color.red(), c.color.green(), c.color.blue(), c.color.alpha()]]
            for c in renderer.classes()
        ]
    else:
        entry["bands"] = [renderer.redBand(), renderer.greenBand(), renderer.blueBand(),
                          renderer.alphaBand()]
        entry["contrast"] = renderer.redContrastEnhancement() is not None
    provider = layer.dataProvider()
    entry["nodata"] = provider.sourceNoDataValue(1) if provider.sourceHasNoDataValue(1) else None
    entry["gdal_colour_table"] = [
        [int(item.value), [item.color.red(), item.color.green(), item.color.blue()]]
        for item in provider.colorTable(1)
    ]
    return entry


def main(args):
    return {"layers": {path: describe(path) for path in args["rasters"]}}
"""


def test_qgis_loads_each_raster_with_its_style(written: list[Path], tmp_path: Path) -> None:
    reason = qgis_available()
    if reason is not None:
        pytest.skip(reason)
    rasters = [str(p) for p in written if p.suffix == ".tif"]
    result = run_pyqgis(QGIS_SCRIPT, {"rasters": rasters}, tmp_path / "qgis")
    legends = {"classes": CLASS_LEGEND, "change": CHANGE_LEGEND}
    for path in rasters:
        entry = result["layers"][path]
        assert entry["valid"], path
        assert entry["crs"] == GRID.crs
        assert entry["style_loaded"], (path, entry["message"])
        kind = Path(path).stem.rsplit("_", 1)[1]
        if kind == "truecolour":
            assert entry["renderer"] == "multibandcolor"
            assert entry["bands"] == [1, 2, 3, 4]
            assert entry["contrast"] is False
            continue
        assert entry["renderer"] == "paletted"
        assert entry["nodata"] == NODATA
        table = dict(entry["gdal_colour_table"])
        assert [c[0] for c in entry["classes"]] == [c.value for c in legends[kind]]
        for value, label, rgba in entry["classes"]:
            assert rgba == [*table[value], 255], (path, value)
            assert label == next(c.label for c in legends[kind] if c.value == value)
    critical = [m for m in result["qgis_messages"] if m[0] >= 2]
    assert not critical
