"""Tests for pipeline.sampling and the ``sample``/``area-estimate`` commands: the reference
sample GeoPackage, its QGIS style, and the Olofsson et al. 2014 estimates read back from it."""

from __future__ import annotations

import csv
import json
import sqlite3
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from affine import Affine
from pyproj import Transformer

from pipeline import boundaries
from pipeline.accuracy import allocate_sample
from pipeline.cli import main
from pipeline.errors import ConfigError, InsufficientDataError, SampleFileError
from pipeline.export.rasters import write_cog
from pipeline.grid import Grid
from pipeline.sampling import (
    FIXED_TIMESTAMP,
    SAMPLE_CLASSES,
    DrawnSample,
    SamplePoint,
    StratumRow,
    draw_samples,
    estimate_areas,
    map_strata,
    read_labelled_samples,
    sample_based_areas,
    samples_qml,
    write_samples,
)

# --- A tiny run directory: two site-years of known strata ------------------------------------

CRS = "EPSG:32652"
TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_400_000.0)
SHAPE = (40, 50)


def _maps(year: int) -> tuple[np.ndarray, np.ndarray]:
    """Footprint (0/1, 255 outside) and coal of one year: a footprint block with a coal pile."""
    footprint = np.zeros(SHAPE, dtype=np.uint8)
    footprint[:, :3] = 255  # outside the analysis area
    footprint[10:30, 10:35] = 1
    coal = np.zeros(SHAPE, dtype=bool)
    coal[12:18, 12 : 18 + (year - 2020)] = True
    return footprint, coal


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as a run writes it: rasters/<site>/<site>_<year>_footprint.tif and
    _coal_frequency.tif (COGs) and stockpiles.geojson (the coal masks, EPSG:4326)."""
    root = tmp_path_factory.mktemp("run")
    grid = Grid(CRS, TRANSFORM, SHAPE[1], SHAPE[0])
    records = []
    for year in (2020, 2021):
        footprint, coal = _maps(year)
        stem = root / "rasters" / "site-a" / f"site-a_{year}"
        write_cog(f"{stem}_footprint.tif", footprint, grid, nodata=255)
        freq = np.where(footprint == 255, 255, np.where(coal, 80, 0)).astype(np.uint8)
        write_cog(f"{stem}_coal_frequency.tif", freq, grid, nodata=255)
        polygons = boundaries.vectorize(coal, TRANSFORM)
        geom = gpd.GeoSeries(polygons, crs=CRS).union_all()
        records.append({"site_id": "site-a", "year": year, "geometry": geom})
    gpd.GeoDataFrame(records, crs=CRS).to_crs("EPSG:4326").to_file(
        root / "stockpiles.geojson", driver="GeoJSON"
    )
    return root


def _strata(year: int) -> np.ndarray:
    footprint, coal = _maps(year)
    return map_strata(footprint, coal)


def test_map_strata_known_answer() -> None:
    footprint = np.array([[255, 0, 1, 1], [0, 1, 1, 255]], dtype=np.uint8)
    coal = np.array([[True, False, True, False], [False, False, False, True]])
    expected = np.array([[-1, 2, 0, 1], [2, 1, 1, -1]])
    np.testing.assert_array_equal(map_strata(footprint, coal), expected)


def test_draw_samples_total_follows_the_allocation(run_dir: Path) -> None:
    drawn = draw_samples(run_dir, total=60, min_per_stratum=10, seed=7)
    for year in (2020, 2021):
        pixels = tuple(int((_strata(year) == h).sum()) for h in range(3))
        expected = allocate_sample(pixels, 60, 10)
        rows = [r for r in drawn.strata if r.year == year]
        assert [r.stratum for r in rows] == list(SAMPLE_CLASSES)
        assert tuple(r.pixels for r in rows) == pixels
        assert tuple(r.n_sampled for r in rows) == expected
        counted = [
            sum(1 for p in drawn.points if p.year == year and p.stratum == c)
            for c in SAMPLE_CLASSES
        ]
        assert tuple(counted) == expected
        assert all(r.map_area_ha == pytest.approx(r.pixels * 0.01) for r in rows)
    assert [p.sample_id for p in drawn.points] == list(range(1, len(drawn.points) + 1))


def test_points_fall_in_their_stratum_pixels(run_dir: Path) -> None:
    drawn = draw_samples(run_dir, per_stratum=15, seed=3)
    assert {r.n_sampled for r in drawn.strata} == {15}
    to_utm = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    for p in drawn.points:
        col, row = (p.x - TRANSFORM.c) / TRANSFORM.a, (p.y - TRANSFORM.f) / TRANSFORM.e
        assert (col % 1, row % 1) == (0.5, 0.5)  # the pixel centre
        assert _strata(p.year)[int(row), int(col)] == SAMPLE_CLASSES.index(p.stratum)
        x, y = to_utm.transform(p.lon, p.lat)
        assert (x, y) == pytest.approx((p.x, p.y), abs=1e-3)
    # No pixel is drawn twice within a site-year.
    keys = [(p.year, p.x, p.y) for p in drawn.points]
    assert len(set(keys)) == len(keys)


def test_same_seed_same_bytes_other_seed_other_points(run_dir: Path, tmp_path: Path) -> None:
    paths = [tmp_path / "a.gpkg", tmp_path / "b.gpkg", tmp_path / "c.gpkg"]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        write_samples(draw_samples(run_dir, total=60, min_per_stratum=10, seed=seed), path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    a, c = (gpd.read_file(p, layer="samples") for p in (paths[0], paths[2]))
    assert set(zip(a["x"], a["y"], strict=True)) != set(zip(c["x"], c["y"], strict=True))
    # Sampling one year draws the same points for it as sampling both.
    only = draw_samples(run_dir, total=60, min_per_stratum=10, seed=5, years=[2021])
    both = draw_samples(run_dir, total=60, min_per_stratum=10, seed=5)
    assert [(p.x, p.y) for p in only.points] == [(p.x, p.y) for p in both.points if p.year == 2021]


def test_sample_command_writes_the_file(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "samples.gpkg"
    argv = ["sample", str(run_dir), "--out", str(out), "--per-stratum", "4", "--years", "2020"]
    assert main(argv) == 0
    assert f"wrote {out}: 12 points to label" in capsys.readouterr().out
    frame = gpd.read_file(out, layer="samples")
    assert len(frame) == 12
    assert frame.crs.to_epsg() == 4326
    assert frame["label"].isna().all()
    assert list(frame.columns[:7]) == [
        "sample_id",
        "site_id",
        "year",
        "label",
        "note",
        "stratum",
        "pixel_size_m",
    ]
    # A second run must not replace a file that may hold labels.
    assert main(argv) == 2
    assert "exists and may hold labels" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sites": ["nowhere"]}, r"--sites \['nowhere'\]: not in the run; it has \['site-a'\]"),
        ({"years": [1999]}, r"--years \[1999\]"),
        ({"total": 10, "per_stratum": 2}, "not both"),
        ({"total": 20, "min_per_stratum": 10}, "below the minimum allocation"),
        ({"per_stratum": 0}, "--per-stratum 0: allowed 1 or more"),
    ],
)
def test_draw_samples_rejects_bad_options(
    run_dir: Path, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        draw_samples(run_dir, **kwargs)  # type: ignore[arg-type]


def test_draw_samples_needs_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(SampleFileError, match=r"no rasters/<site>/<site>_<year>_footprint\.tif"):
        draw_samples(tmp_path)


# --- The QGIS style ----------------------------------------------------------------------------


def test_layer_styles_is_registered_as_default(
    run_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_samples(draw_samples(run_dir, per_stratum=3), tmp_path / "s.gpkg")
    con = sqlite3.connect(path)
    try:
        styles = con.execute(
            "SELECT f_table_name, f_geometry_column, styleName, styleQML, useAsDefault, "
            "update_time FROM layer_styles"
        ).fetchall()
        contents = dict(con.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
        changes = {r[0] for r in con.execute("SELECT last_change FROM gpkg_contents")}
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()
    assert styles == [("samples", "geom", "samples", samples_qml(), 1, FIXED_TIMESTAMP)]
    assert contents == {"samples": "features", "strata": "attributes", "layer_styles": "attributes"}
    assert changes == {FIXED_TIMESTAMP}
    assert integrity == "ok"
    # GDAL lists the three layers and complains about nothing (an unregistered table or a
    # malformed gpkg_contents row would be a warning).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        caplog.set_level("WARNING")
        layers = pyogrio.list_layers(path)
        info = pyogrio.read_info(path, layer="samples")
    assert [tuple(x) for x in layers] == [
        ("samples", "Point"),
        ("strata", None),
        ("layer_styles", None),
    ]
    assert info["crs"] == "EPSG:4326"
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_qml_offers_exactly_the_classes() -> None:
    root = ET.fromstring(samples_qml())
    renderer = root.find("renderer-v2")
    assert renderer is not None
    assert renderer.get("type") == "categorizedSymbol"
    assert renderer.get("attr") == "label"
    values = [c.get("value") for c in renderer.iter("category")]
    assert values == [*SAMPLE_CLASSES, ""]  # "" = all other values: unlabelled points show
    symbols = {s.get("name") for s in renderer.iter("symbol")}
    assert {c.get("symbol") for c in renderer.iter("category")} <= symbols
    widget = root.find("fieldConfiguration/field[@name='label']/editWidget")
    assert widget is not None
    assert widget.get("type") == "ValueMap"
    mapped = [o.get("value") for o in widget.iter("Option") if o.get("type") == "QString"]
    assert mapped[1:] == list(SAMPLE_CLASSES)  # after the NULL entry
    editable = {f.get("name"): f.get("editable") for f in root.iter("field") if f.get("editable")}
    assert editable["label"] == "1"
    assert editable["stratum"] == "0"


def test_qml_ships_in_the_package() -> None:
    qml = Path(__file__).parents[1] / "pipeline" / "data" / "qml" / "samples.qml"
    assert samples_qml() == qml.read_text(encoding="utf-8")


# --- The Olofsson et al. 2014 worked example, end to end ----------------------------------------

CLASSES = ("deforestation", "forest_gain", "stable_forest", "stable_nonforest")
CONFUSION = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
MAPPED_PX = (200_000, 150_000, 3_200_000, 6_450_000)


def _worked_example_file(path: Path) -> Path:
    """The paper's sample as a sample file: 640 points, strata of Table 8, labels unset."""
    points = []
    strata = []
    for h, name in enumerate(CLASSES):
        strata.append(
            StratumRow("paper", 2014, name, MAPPED_PX[h], MAPPED_PX[h] * 0.09,
                       int(CONFUSION[h].sum()), 30.0, 0)
        )  # fmt: skip
        for _ in range(int(CONFUSION[h].sum())):
            i = len(points)
            x, y = 500_015.0 + 30 * (i % 40), 4_000_015.0 + 30 * (i // 40)
            points.append(
                SamplePoint(i + 1, "paper", 2014, name, 30.0, x, y, "EPSG:32633", 15.0, 36.1)
            )
    return write_samples(DrawnSample(tuple(points), tuple(strata)), path)


def _label_with_geopandas(path: Path, labels: dict[int, str | None]) -> None:
    frame = gpd.read_file(path, layer="samples")
    frame["label"] = [labels.get(int(i)) for i in frame["sample_id"]]
    frame.to_file(path, layer="samples", driver="GPKG")


def _paper_labels(path: Path) -> dict[int, str | None]:
    """Reference labels reproducing the confusion matrix, row by row."""
    frame = gpd.read_file(path, layer="samples")
    labels: dict[int, str | None] = {}
    for h, name in enumerate(CLASSES):
        ids = frame.loc[frame["stratum"] == name, "sample_id"].tolist()
        refs = [CLASSES[j] for j, n in enumerate(CONFUSION[h]) for _ in range(n)]
        labels.update(zip(ids, refs, strict=True))
    return labels


def _close(actual: list[float], expected: list[float], places: list[int]) -> None:
    for a, e, d in zip(actual, expected, places, strict=True):
        assert a == pytest.approx(e, abs=0.5 * 10.0**-d), (actual, expected)


def test_area_estimate_reproduces_the_worked_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _worked_example_file(tmp_path / "paper.gpkg")
    _label_with_geopandas(path, _paper_labels(path))
    out = tmp_path / "areas.csv"
    assert main(["area-estimate", str(path), "--out", str(out), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["class"] for r in rows] == list(CLASSES)
    _close([r["area_ha"] for r in rows], [21_157.76, 11_686.15, 285_769.9, 581_386.2], [2, 2, 1, 1])
    _close([r["area_pm_ha"] for r in rows], [6_157.52, 3_755.76, 15_509.55, 16_281.36], [2] * 4)
    _close([r["users_accuracy"] for r in rows], [0.8800, 0.7333, 0.9273, 0.9631], [4] * 4)
    _close([r["users_pm"] for r in rows], [0.07404, 0.10076, 0.03974, 0.02053], [5] * 4)
    _close([r["producers_accuracy"] for r in rows], [0.74866, 0.84716, 0.93451, 0.96161], [5] * 4)
    _close([r["producers_pm"] for r in rows], [0.21331, 0.25440, 0.03432, 0.01836], [5] * 4)
    assert [r["overall_accuracy"] for r in rows] == [pytest.approx(0.94651, abs=5e-6)] * 4
    assert [r["overall_pm"] for r in rows] == [pytest.approx(0.01848, abs=5e-6)] * 4
    for r in rows:
        assert r["area_low_ha"] == pytest.approx(r["area_ha"] - r["area_pm_ha"])
        assert r["area_se_ha"] == pytest.approx(r["area_pm_ha"] / 1.959964, rel=1e-6)
        assert (r["n_labelled"], r["n_unlabelled"]) == (r["n_sampled"], 0)
    assert sum(r["area_ha"] for r in rows) == pytest.approx(900_000.0)
    # The CSV carries the published precision.
    with out.open(newline="") as handle:
        table = list(csv.DictReader(handle))
    published = (6_157.52, 3_755.76, 15_509.55, 16_281.36)
    assert [float(t["area_pm_ha"]) for t in table] == pytest.approx(published, abs=0.005)
    assert [t["users_pm"] for t in table] == ["0.07404", "0.10076", "0.03974", "0.02053"]
    # The readable table names every class.
    assert main(["area-estimate", str(path)]) == 0
    text = capsys.readouterr().out
    assert "paper 2014: 640 points labelled, 0 not yet; overall accuracy  94.7 +/-  1.8 %" in text
    assert all(name in text for name in CLASSES)


def test_unlabelled_points_are_counted_and_left_out(tmp_path: Path) -> None:
    path = _worked_example_file(tmp_path / "paper.gpkg")
    labels = _paper_labels(path)
    dropped = [i for i in sorted(labels) if labels[i] == "stable_nonforest"][:5]
    _label_with_geopandas(path, {i: (None if i in dropped else v) for i, v in labels.items()})
    rows = {r.class_name: r for r in estimate_areas(path)}
    assert sum(r.n_unlabelled for r in rows.values()) == 5
    assert sum(r.n_labelled for r in rows.values()) == 635


def test_footprint_row_sums_coal_and_other_footprint(run_dir: Path, tmp_path: Path) -> None:
    path = write_samples(draw_samples(run_dir, per_stratum=20, seed=1), tmp_path / "s.gpkg")
    frame = gpd.read_file(path, layer="samples")
    # The analyst sees coal where the map has coal, and a quarter of the mapped footprint
    # without coal is in fact other ground.
    labels = {}
    for i, (sid, stratum) in enumerate(zip(frame["sample_id"], frame["stratum"], strict=True)):
        labels[int(sid)] = "other" if stratum == "footprint_not_coal" and i % 4 == 0 else stratum
    _label_with_geopandas(path, labels)
    rows = estimate_areas(path)
    by = {(r.year, r.class_name): r for r in rows}
    for year in (2020, 2021):
        coal, fp, other, total = (by[(year, c)] for c in (*SAMPLE_CLASSES, "footprint"))
        assert total.area_ha == pytest.approx(coal.area_ha + fp.area_ha)
        assert total.map_area_ha == pytest.approx(coal.map_area_ha + fp.map_area_ha)
        assert total.area_ha + other.area_ha == pytest.approx(
            sum(r.map_area_ha for r in (coal, fp, other))
        )
        assert total.area_ha < total.map_area_ha
        assert total.area_low_ha < total.area_ha < total.area_high_ha
    areas = sample_based_areas(path)
    assert areas[("site-a", 2020, "coal")] == pytest.approx(
        (
            by[(2020, "coal")].area_ha,
            by[(2020, "coal")].area_low_ha,
            by[(2020, "coal")].area_high_ha,
        )
    )
    assert ("site-a", 2021, "footprint") in areas


# --- Errors an analyst can act on ---------------------------------------------------------------


def test_bad_label_names_file_layer_sample_field_value_and_allowed(
    run_dir: Path, tmp_path: Path
) -> None:
    path = write_samples(draw_samples(run_dir, per_stratum=3), tmp_path / "s.gpkg")
    frame = gpd.read_file(path, layer="samples")
    bad_id = int(frame["sample_id"].iloc[4])
    labels = {int(i): s for i, s in zip(frame["sample_id"], frame["stratum"], strict=True)}
    labels[bad_id] = "cola"
    _label_with_geopandas(path, labels)
    with pytest.raises(SampleFileError) as info:
        read_labelled_samples(path)
    message = str(info.value)
    for part in (str(path), "layer samples", f"sample_id {bad_id}", "field label", "'cola'",
                 "allowed coal, footprint_not_coal, other"):  # fmt: skip
        assert part in message


def test_labels_ignore_case_and_blanks(run_dir: Path, tmp_path: Path) -> None:
    path = write_samples(draw_samples(run_dir, per_stratum=3), tmp_path / "s.gpkg")
    frame = gpd.read_file(path, layer="samples")
    _label_with_geopandas(
        path,
        {
            int(i): f" {s.upper()} "
            for i, s in zip(frame["sample_id"], frame["stratum"], strict=True)
        },
    )
    read = read_labelled_samples(path)
    assert [p.label for p in read.points] == list(frame["stratum"])


def test_no_labels_is_a_clear_error(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_samples(draw_samples(run_dir, per_stratum=3), tmp_path / "s.gpkg")
    with pytest.raises(
        InsufficientDataError, match="no point is labelled for site-a 2020, site-a 2021"
    ):
        estimate_areas(path)
    assert sample_based_areas(path) == {}
    assert main(["area-estimate", str(path)]) == 2
    assert "no point is labelled for site-a 2020" in capsys.readouterr().err


def test_too_few_labels_in_a_stratum(run_dir: Path, tmp_path: Path) -> None:
    path = write_samples(draw_samples(run_dir, per_stratum=3, years=[2020]), tmp_path / "s.gpkg")
    frame = gpd.read_file(path, layer="samples")
    coal = frame.loc[frame["stratum"] == "coal", "sample_id"].tolist()
    labels = {
        int(i): s
        for i, s in zip(frame["sample_id"], frame["stratum"], strict=True)
        if i not in coal[1:]
    }
    _label_with_geopandas(path, labels)
    with pytest.raises(
        InsufficientDataError, match=r"site-a 2020: strata coal \(1 labelled\) need at least 2"
    ):
        estimate_areas(path)


def test_not_a_sample_file(tmp_path: Path) -> None:
    with pytest.raises(SampleFileError, match="no such file"):
        read_labelled_samples(tmp_path / "missing.gpkg")
    other = tmp_path / "other.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=gpd.points_from_xy([0], [0]), crs=4326).to_file(
        other, layer="points"
    )
    with pytest.raises(SampleFileError, match=r"layers \['samples', 'strata'\] are missing"):
        read_labelled_samples(other)
