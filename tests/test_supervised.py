"""Supervised mode (``pipeline.supervised``): training polygons in, footprint and coal maps out.

Images are built from known spectra on known layouts, so every map has an exact answer; the
held-out image has another layout, sensor noise and haze, so a model that memorised its
training pixels or its training scene fails.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine
from shapely.geometry import Point, Polygon, box

from pipeline.accuracy import binary_scores
from pipeline.compare import compare
from pipeline.composite import Composite
from pipeline.errors import TrainingDataError
from pipeline.grid import Grid, reproject_geometry
from pipeline.recipe import RecipeParams
from pipeline.results import SeasonEvidence, SiteYear
from pipeline.supervised import (
    CLASSES,
    FEATURE_NAMES,
    TEMPLATE_LAYER,
    class_probabilities,
    features,
    predict,
    read_training_polygons,
    reclassify_site_years,
    train_on_image,
    train_on_site_years,
    write_training_template,
)

CRS = "EPSG:32652"
LEFT, TOP = 500_000.0, 4_500_000.0
GRID = Grid(CRS, Affine(10.0, 0.0, LEFT, 0.0, -10.0, TOP), 64, 64)
#: Surface reflectance (blue, green, red, nir, swir16, swir22), after DOMAIN.md's figures.
SPECTRA = {
    "vegetation": (0.03, 0.06, 0.04, 0.35, 0.18, 0.09),
    "water": (0.06, 0.05, 0.03, 0.02, 0.01, 0.005),
    "footprint": (0.12, 0.14, 0.16, 0.22, 0.28, 0.24),
    "coal": (0.045, 0.045, 0.047, 0.05, 0.055, 0.05),
}
BANDS_S2 = ("B02", "B03", "B04", "B08", "B11", "B12")
PARAMS = RecipeParams(min_mapping_unit_ha=0.04)  # 4 px at 10 m: small test images


def layout(variant: int) -> np.ndarray:
    """Class names per pixel: vegetation with a water body, a footprint block and a coal pile
    inside it; ``variant`` 1 moves and resizes all of them."""
    out = np.full(GRID.shape, "vegetation", dtype="<U10")
    if variant == 0:
        out[40:58, 4:30] = "water"
        out[6:30, 30:60] = "footprint"
        out[12:22, 38:48] = "coal"
    else:
        out[4:20, 6:26] = "water"
        out[30:60, 24:56] = "footprint"
        out[44:56, 28:44] = "coal"
    return out


def image(classes: np.ndarray, seed: int, noise: float = 0.006, haze: float = 0.0) -> np.ndarray:
    """Reflectance (band, y, x) of ``classes`` with Gaussian noise and additive haze (strongest
    in blue, fading toward SWIR, as scattering does)."""
    rng = np.random.default_rng(seed)
    base = np.stack([np.vectorize(lambda c, b=b: SPECTRA[c][b])(classes) for b in range(6)])
    haze_profile = np.array([1.0, 0.7, 0.5, 0.3, 0.1, 0.05])[:, None, None] * haze
    out = base + haze_profile + rng.normal(0.0, noise, base.shape)
    return out.astype(np.float32)


def square(col: float, row: float, side_px: float) -> Polygon:
    """A square polygon in the grid's CRS with its top-left corner at pixel (row, col)."""
    x, y = LEFT + 10 * col, TOP - 10 * row
    return box(x, y - 10 * side_px, x + 10 * side_px, y)


#: Small squares an analyst would draw on layout 0: (class, col, row, side in px).
DRAWN = (
    ("footprint", 32, 8, 4), ("footprint", 52, 24, 5), ("footprint", 50, 8, 4),
    ("coal", 39, 13, 3), ("coal", 43, 17, 3),
    ("water", 6, 42, 5), ("water", 20, 50, 5),
    ("vegetation", 4, 4, 6), ("vegetation", 10, 28, 5), ("vegetation", 50, 44, 6),
    ("other", 40, 60, 3),
)  # fmt: skip


def polygons_file(
    path: Path, drawn: Any = DRAWN, *, year: int | None = 2021, crs: str = "EPSG:4326"
) -> Path:
    """The drawn squares as GeoJSON (EPSG:4326) or GeoPackage (``crs``), with class and year."""
    geoms = [reproject_geometry(square(c, r, s), CRS, crs) for _, c, r, s in drawn]
    frame = gpd.GeoDataFrame(
        {"class": [d[0] for d in drawn], "year": [year] * len(drawn)}, geometry=geoms, crs=crs
    )
    frame.to_file(path, engine="pyogrio")
    return path


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    return binary_scores(pred, truth, np.ones(truth.shape, bool)).iou


# --- training and prediction -----------------------------------------------------------------


def test_features_have_the_declared_names_and_no_nan() -> None:
    refl = image(layout(0), 1)
    refl[:, 0, 0] = np.nan
    out = features(refl)
    assert out.shape == (len(FEATURE_NAMES), *GRID.shape)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    # The bands come first, as named; NDVI of vegetation is high, of water negative.
    np.testing.assert_array_equal(out[3, 1:, 1:], refl[3, 1:, 1:])
    ndvi = out[FEATURE_NAMES.index("ndvi")]
    assert ndvi[2, 2] > 0.6
    assert ndvi[45, 10] < 0


def test_a_model_trained_on_one_image_recovers_the_classes_of_another(tmp_path: Path) -> None:
    drawn = read_training_polygons(polygons_file(tmp_path / "training.geojson"))
    model = train_on_image(image(layout(0), 1), GRID, drawn)
    truth = layout(1)
    held_out = image(truth, 2, noise=0.006, haze=0.02)
    valid = np.ones(GRID.shape, bool)
    pred = predict(model, held_out, valid, pixel_area_ha=GRID.pixel_area_ha, params=PARAMS)
    fp_truth = np.isin(truth, ["footprint", "coal"])
    assert iou(pred.footprint, fp_truth) >= 0.95
    assert iou(pred.coal_mask, truth == "coal") >= 0.9
    # Water (dark, as coal is) is neither coal nor footprint.
    assert not (pred.coal_mask & (truth == "water")).any()
    assert not (pred.footprint & (truth == "water")).any()
    assert pred.probability.dtype == np.float32
    assert np.nanmin(pred.probability) >= 0
    assert np.nanmax(pred.probability) <= 1
    assert pred.probability[fp_truth].mean() > 0.8


def test_provenance_says_what_the_model_was_trained_on(tmp_path: Path) -> None:
    path = polygons_file(tmp_path / "training.geojson")
    model = train_on_image(image(layout(0), 1), GRID, read_training_polygons(path))
    p = model.provenance
    assert p["training_sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    assert p["features"] == list(FEATURE_NAMES)
    assert p["classes"]["coal"]["polygons"] == 2
    assert p["classes"]["coal"]["pixels_used"] == 2 * 9
    assert p["classes"]["footprint"]["polygons"] == 3
    # Cross-validation holds out whole polygons: as many folds as the rarest map class (coal,
    # 2 polygons) allows; water, vegetation and other pool into other.
    assert p["validation"]["method"] == "StratifiedGroupKFold by polygon, 2 folds, pooled"
    assert set(p["validation"]["recall"]) == {"footprint", "coal", "other"}
    assert 0.0 <= p["validation"]["overall_accuracy"] <= 1.0
    json.dumps(p)  # JSON-ready for the manifest


def test_a_class_with_one_polygon_gives_no_cross_validation(tmp_path: Path) -> None:
    one_coal = [d for d in DRAWN if d[:3] != ("coal", 43, 17)]
    path = polygons_file(tmp_path / "t.geojson", one_coal)
    model = train_on_image(image(layout(0), 1), GRID, read_training_polygons(path))
    assert model.provenance["validation"]["method"] is None
    assert "coal" in model.provenance["validation"]["note"]


def test_training_twice_gives_identical_maps(tmp_path: Path) -> None:
    drawn = read_training_polygons(polygons_file(tmp_path / "training.geojson"))
    held_out = image(layout(1), 3, haze=0.01)
    valid = np.ones(GRID.shape, bool)
    runs = []
    for _ in range(2):
        model = train_on_image(image(layout(0), 1), GRID, drawn)
        pred = predict(model, held_out, valid, pixel_area_ha=GRID.pixel_area_ha, params=PARAMS)
        runs.append((pred, model.provenance))
    (a, pa), (b, pb) = runs
    np.testing.assert_array_equal(a.footprint, b.footprint)
    np.testing.assert_array_equal(a.coal_mask, b.coal_mask)
    assert a.probability.tobytes() == b.probability.tobytes()
    assert pa == pb


def site_year(year: int, refl: np.ndarray, vegetated: np.ndarray | None = None) -> SiteYear:
    shape = refl.shape[1:]
    zeros = np.zeros(shape, bool)
    composite = Composite(refl, np.full(shape, 5, np.int16), np.zeros_like(refl))
    evidence = (
        None if vegetated is None else SeasonEvidence(vegetated, vegetated & False, zeros, zeros)
    )
    return SiteYear(
        "camp", year, ("2021-09-01", "2021-11-15"), False, (), composite, None,
        zeros, zeros, np.ones(shape, bool), 5.0, 1.0, evidence,
    )  # fmt: skip


def test_reclassify_site_years_replaces_only_the_maps(tmp_path: Path) -> None:
    drawn = read_training_polygons(polygons_file(tmp_path / "training.geojson"))
    train_sy = site_year(2021, image(layout(0), 1))
    model = train_on_site_years([train_sy], drawn, {"camp": GRID})
    assert model.provenance["site_years"] == ["camp 2021"]
    truth = layout(1)
    green = np.zeros(GRID.shape, bool)
    green[30:40, 24:56] = True  # seen green during the season: a harvested field, not footprint
    other = site_year(2022, image(truth, 4, haze=0.015), green)
    empty = replace_composite(site_year(2023, image(truth, 5)))
    out = reclassify_site_years([other, empty], model, GRID.pixel_area_ha, PARAMS)
    assert out[1] is empty
    new = out[0]
    expected = np.isin(truth, ["footprint", "coal"]) & ~green
    assert iou(new.footprint, expected) >= 0.93
    assert not (new.footprint & green).any()
    assert iou(new.coal_mask, truth == "coal") >= 0.9
    assert new.composite is other.composite
    assert (new.site_id, new.year, new.valid is other.valid) == ("camp", 2022, True)
    assert new.evidence is not None
    assert not (new.evidence.vegetated & new.footprint).any()


def replace_composite(sy: SiteYear) -> SiteYear:
    return replace(sy, composite=None)


def replace_evidence(sy: SiteYear) -> SiteYear:
    return replace(sy, evidence=None)


# --- bad input ---------------------------------------------------------------------------------


def write_frame(path: Path, rows: list[dict[str, Any]], geoms: list[Any], **kw: Any) -> Path:
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs=kw.pop("crs", "EPSG:4326"))
    frame.to_file(path, engine="pyogrio", **kw)
    return path


def lonlat_square(col: float = 32, row: float = 8, side: float = 4) -> Any:
    return reproject_geometry(square(col, row, side), CRS, "EPSG:4326")


BOWTIE = Polygon([(127, 40.6), (127.001, 40.601), (127.001, 40.6), (127, 40.601)])


@pytest.mark.parametrize(
    ("rows", "geom", "match"),
    [
        ({"class": "forest", "year": 2021}, None, r"feature 1: field class is 'forest'; allowed footprint"),
        ({"class": None, "year": 2021}, None, r"feature 1: field class is empty; allowed"),
        ({"class": "coal", "year": None}, None, r"feature 1: field year is empty; allowed a year 1972"),
        ({"class": "coal", "year": "last"}, None, r"feature 1: field year is 'last'; allowed a whole year"),
        ({"class": "coal", "year": 1850}, None, r"field year is '1850'; allowed a whole year 1972..2100"),
        ({"class": "coal", "year": 2021}, Point(127, 40), r"feature 1: geometry is a Point; allowed a Polygon"),
        ({"class": "coal", "year": 2021}, BOWTIE, r"feature 1: geometry is invalid \(Self-intersection"),
        ({"kind": "coal", "year": 2021}, None, r"no field 'class' \(fields: kind, year\)"),
        ({"class": "coal"}, None, r"no field 'year'"),
    ],
)  # fmt: skip
def test_bad_features_are_named_with_file_layer_field_and_value(
    tmp_path: Path, rows: dict[str, Any], geom: Any, match: str
) -> None:
    path = write_frame(tmp_path / "bad.gpkg", [rows], [geom or lonlat_square()], layer="polygons")
    with pytest.raises(TrainingDataError, match=match) as info:
        read_training_polygons(path)
    assert f"{path}, layer polygons" in str(info.value)


def test_class_and_fields_are_matched_ignoring_case(tmp_path: Path) -> None:
    path = write_frame(
        tmp_path / "t.gpkg",
        [{"Class": " Coal ", "YEAR": 2021.0, "Site_ID": "camp"}],
        [lonlat_square()],
        layer="training",
    )
    (poly,) = read_training_polygons(path).polygons
    assert (poly.label, poly.year, poly.site_id, poly.fid) == ("coal", 2021, "camp", 1)


def test_year_is_optional_where_it_is_not_used(tmp_path: Path) -> None:
    path = write_frame(tmp_path / "t.geojson", [{"class": "coal"}], [lonlat_square()])
    (poly,) = read_training_polygons(path, year_required=False).polygons
    assert poly.year is None
    with pytest.raises(TrainingDataError, match="no field 'year'"):
        read_training_polygons(path)


def test_file_and_layer_problems(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="no such file"):
        read_training_polygons(tmp_path / "missing.gpkg")
    (tmp_path / "junk.gpkg").write_text("not a geopackage")
    with pytest.raises(TrainingDataError, match=r"junk\.gpkg: not a GeoPackage or GeoJSON"):
        read_training_polygons(tmp_path / "junk.gpkg")
    two = tmp_path / "two.gpkg"
    for layer in ("a", "b"):
        write_frame(two, [{"class": "coal", "year": 2021}], [lonlat_square()], layer=layer)
    with pytest.raises(TrainingDataError, match=r"2 layers with geometry \(a, b\)"):
        read_training_polygons(two)
    with pytest.raises(TrainingDataError, match=r"layer 'c' not found; layers in the file: a, b"):
        read_training_polygons(two, layer="c")
    assert read_training_polygons(two, layer="b").layer == "b"
    empty = write_frame(tmp_path / "empty.gpkg", [], [], layer="t")
    with pytest.raises(TrainingDataError, match="no feature"):
        read_training_polygons(empty)


def test_polygons_that_do_not_fit_the_image(tmp_path: Path) -> None:
    refl = image(layout(0), 1)
    far = [*DRAWN, ("coal", 500, 500, 4)]
    with pytest.raises(TrainingDataError, match=r"feature 11: the polygon covers no pixel centre"):
        train_on_image(
            refl, GRID, read_training_polygons(polygons_file(tmp_path / "a.geojson", far))
        )
    clash = [*DRAWN, ("vegetation", 33, 9, 2)]  # inside the first footprint square
    with pytest.raises(
        TrainingDataError, match=r"feature 11 \(vegetation\) overlaps feature\(s\) \[0\]"
    ):
        train_on_image(
            refl, GRID, read_training_polygons(polygons_file(tmp_path / "b.geojson", clash))
        )
    one_side = [d for d in DRAWN if d[0] in ("footprint", "coal")]
    with pytest.raises(
        TrainingDataError, match="training needs at least one of footprint or coal and one of other"
    ):
        train_on_image(
            refl, GRID, read_training_polygons(polygons_file(tmp_path / "c.geojson", one_side))
        )
    # Same class overlapping: fine, each pixel counted once.
    same = [*DRAWN, ("footprint", 33, 9, 2)]
    train_on_image(refl, GRID, read_training_polygons(polygons_file(tmp_path / "d.geojson", same)))
    # Polygons over no data (clouds) are left out; the rest still trains.
    cloudy = refl.copy()
    cloudy[:, 40:48, 4:12] = np.nan
    model = train_on_image(cloudy, GRID, read_training_polygons(tmp_path / "d.geojson"))
    assert model.provenance["classes"]["water"]["polygons_with_data"] == 1


def test_run_training_needs_a_site_year_for_each_polygon(tmp_path: Path) -> None:
    sy = site_year(2021, image(layout(0), 1))
    drawn = read_training_polygons(polygons_file(tmp_path / "t.geojson", year=2019))
    with pytest.raises(
        TrainingDataError,
        match=r"feature 0: field year is 2019, but camp has no season composite that year; allowed 2021",
    ):
        train_on_site_years([sy], drawn, {"camp": GRID})
    far = GRID.__class__(CRS, Affine(10.0, 0.0, LEFT + 1e5, 0.0, -10.0, TOP), 64, 64)
    drawn = read_training_polygons(polygons_file(tmp_path / "u.geojson"))
    with pytest.raises(TrainingDataError, match=r"feature 0: the polygon lies on no site's grid"):
        train_on_site_years([sy], drawn, {"camp": far})
    path = write_frame(
        tmp_path / "v.geojson",
        [{"class": "coal", "year": 2021, "site_id": "mine"}],
        [lonlat_square()],
    )
    with pytest.raises(
        TrainingDataError, match=r"field site_id is 'mine'; allowed the run's sites: camp"
    ):
        train_on_site_years([sy], read_training_polygons(path), {"camp": GRID})


# --- the QGIS template ------------------------------------------------------------------------


def test_template_opens_with_pyogrio_and_has_the_fields(tmp_path: Path) -> None:
    path = write_training_template(tmp_path / "training.gpkg")
    info = pyogrio.read_info(path, layer=TEMPLATE_LAYER)
    assert info["geometry_type"] == "Polygon"
    assert info["features"] == 0
    assert list(info["fields"]) == ["class", "year", "site_id", "note"]
    assert dict(zip(info["fields"], info["dtypes"], strict=True))["year"] == "int32"
    assert info["crs"] == "EPSG:4326"
    with sqlite3.connect(path) as con:
        ((qml,),) = con.execute(
            "SELECT styleQML FROM layer_styles WHERE f_table_name = ? AND useAsDefault",
            (TEMPLATE_LAYER,),
        )
    assert 'editWidget type="ValueMap"' in qml
    for cls in CLASSES:
        assert f'value="{cls}"' in qml
    first = path.read_bytes()
    with pytest.raises(TrainingDataError, match="exists and may hold training polygons"):
        write_training_template(path)
    write_training_template(path, overwrite=True)
    assert path.read_bytes() == first  # same arguments, same bytes


def test_a_filled_template_reads_back(tmp_path: Path) -> None:
    path = write_training_template(tmp_path / "training.gpkg")
    frame = gpd.GeoDataFrame(
        {"class": ["coal", "vegetation"], "year": [2021, 2021], "site_id": ["camp", None],
         "note": [None, "paddy"]},
        geometry=[lonlat_square(), lonlat_square(4, 4, 6)], crs="EPSG:4326",
    )  # fmt: skip
    frame.to_file(path, layer=TEMPLATE_LAYER, engine="pyogrio", mode="a")
    got = read_training_polygons(path)
    assert got.layer == TEMPLATE_LAYER
    assert [(p.fid, p.label, p.site_id) for p in got.polygons] == [
        (1, "coal", "camp"),
        (2, "vegetation", None),
    ]
    assert shapely.equals_exact(got.polygons[0].geometry, frame.geometry[0], tolerance=1e-9)


# --- compare ------------------------------------------------------------------------------------


def write_raster(path: Path, refl: np.ndarray) -> Path:
    profile = {
        "driver": "GTiff", "width": refl.shape[2], "height": refl.shape[1], "count": 6,
        "dtype": "float32", "crs": CRS, "transform": GRID.transform,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(refl)
    return path


def test_compare_with_training_polygons_classifies_both_dates_by_the_model(
    tmp_path: Path,
) -> None:
    before_classes = layout(0)
    after_classes = before_classes.copy()
    after_classes[34:50, 34:60] = "footprint"  # 16 x 26 px = 4.16 ha cleared
    before = write_raster(tmp_path / "before.tif", image(before_classes, 1))
    after = write_raster(tmp_path / "after.tif", image(after_classes, 2, haze=0.01))
    # Year is ignored by compare: polygons without one are fine.
    training = polygons_file(tmp_path / "training.gpkg", year=None, crs="EPSG:3857")
    summary = compare(before, after, tmp_path / "out", bands=BANDS_S2, training=training)
    c = summary["classification"]
    assert c["mode"] == "supervised"
    assert c["training_file"] == str(training)
    assert c["classes"]["coal"]["polygons"] == 2
    with rasterio.open(tmp_path / "out" / "expansion.tif") as src:
        expansion = src.read(1) == 1
        assert "supervised" in src.tags()["classification"]
    new = np.isin(after_classes, ["footprint", "coal"]) & ~np.isin(
        before_classes, ["footprint", "coal"]
    )
    assert iou(expansion, new) >= 0.85
    plain = compare(before, after, tmp_path / "plain", bands=BANDS_S2)
    assert plain["classification"] == {"mode": "rules"}


def test_compare_refuses_training_polygons_off_the_before_image(tmp_path: Path) -> None:
    before = write_raster(tmp_path / "before.tif", image(layout(0), 1))
    after = write_raster(tmp_path / "after.tif", image(layout(0), 2))
    bad = write_frame(
        tmp_path / "far.geojson",
        [{"class": "coal"}, {"class": "vegetation"}],
        [Point(0, 0).buffer(0.001), lonlat_square(4, 4, 6)],
    )
    with pytest.raises(
        TrainingDataError, match=r"far.geojson, layer far, feature 0: the polygon covers no pixel"
    ):
        compare(before, after, tmp_path / "out", bands=BANDS_S2, training=bad)
    assert not (tmp_path / "out").exists()


def test_run_models_learn_the_seasons_greenness(tmp_path: Path) -> None:
    """A harvested field is as bare as a yard in a late-season composite; a site-year's season
    evidence says it was green, and a model trained on run site-years uses that."""
    classes = layout(0)
    classes[40:60, 40:62] = "footprint"  # spectrally bare: a harvested field, seen green
    field = np.zeros(GRID.shape, bool)
    field[40:60, 40:62] = True
    drawn = [*DRAWN, ("vegetation", 44, 44, 5), ("vegetation", 54, 52, 4)]
    path = polygons_file(tmp_path / "t.geojson", drawn)
    sy = site_year(2021, image(classes, 1), vegetated=field)
    model = train_on_site_years([sy], read_training_polygons(path), {"camp": GRID})
    assert model.feature_names == (*FEATURE_NAMES, "seen_green")
    assert model.provenance["features"][-1] == "seen_green"
    held_out = image(classes, 6, haze=0.01)
    valid = np.ones(GRID.shape, bool)
    probs = class_probabilities(model, held_out, valid, field)
    assert np.mean(probs["vegetation"][field] > 0.5) > 0.95
    # Without the season's evidence the same polygons cannot separate the field from a yard.
    blind = train_on_site_years(
        [replace_evidence(sy)], read_training_polygons(path), {"camp": GRID}
    )
    blind_probs = class_probabilities(blind, held_out, valid)
    assert np.mean(blind_probs["vegetation"][field] > 0.5) < 0.5
    pred = predict(model, held_out, valid, pixel_area_ha=GRID.pixel_area_ha, params=PARAMS,
                   seen_green=field)  # fmt: skip
    assert not (pred.footprint & field).any()
    assert iou(pred.footprint, np.isin(layout(0), ["footprint", "coal"])) >= 0.93
