"""Tests for pipeline.sources.synthetic: the scenario with known truth, its files and its cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError
from rasterio.features import rasterize
from rio_cogeo.cogeo import cog_validate
from shapely import affinity

from pipeline.errors import SiteError, SourceError
from pipeline.grid import reproject_geometry
from pipeline.sites import load_sites
from pipeline.sources import synthetic
from pipeline.sources.catalog import StaticCatalogSource
from pipeline.sources.sensors import S2_RESOLUTION, s2_radiometry
from pipeline.sources.synthetic import (
    DEMO_SITE_IDS,
    DEMO_SITES_GEOJSON,
    ScenarioParams,
    SyntheticSource,
    acquisition_dates,
    block_fractions,
    block_mean,
    build_scenario,
    demo_sites,
    render_scene,
    scene_grid,
    state_year,
    truth_geometries,
)
from pipeline.sources.synthetic.atmosphere import MASK_MARGIN_M
from pipeline.sources.synthetic.render import scene_window

ROOT = Path(__file__).resolve().parents[1]
# Where SyntheticSource looks build_scenario up: the name to patch.
BUILD_SCENARIO = "pipeline.sources.synthetic.source.build_scenario"
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None)
# Small but covering the 04.00 baseline switch (25 Jan 2022) and every site.
SMALL = ScenarioParams(
    start_year=2021, end_year=2022, acquisitions_per_year=(5, 7), autumn_min_acquisitions=3
)
YEARS = range(2016, 2026)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SMALL scenario, built once in-process; returns its root."""
    root = tmp_path_factory.mktemp("small") / "scenario"
    seen: list[tuple[int, int]] = []
    catalog = build_scenario(SMALL, root, lambda d, t: seen.append((d, t)), workers=1)
    assert catalog == root / "catalog.json"
    assert seen[0][0] == 0
    assert seen[-1][0] == seen[-1][1] > 0
    return root


def _items(root: Path) -> list[dict[str, Any]]:
    paths = sorted((root / "sentinel-2-l2a").glob("*/*.json"))
    return [json.loads(p.read_text()) | {"_dir": p.parent} for p in paths]


def _read(path: Path) -> np.ndarray[Any, Any]:
    with rasterio.open(path) as ds:
        return np.asarray(ds.read(1))


# ------------------------------------------------------------------------------------------------
# Sites and parameters


def test_demo_geojson_file_is_the_constant_and_loads() -> None:
    path = ROOT / "aoi" / "demo.geojson"
    assert json.loads(path.read_text(encoding="utf-8")) == DEMO_SITES_GEOJSON
    sites = load_sites(path)
    assert [(s.id, s.kind) for s in sites] == [
        ("demo-camp", "kwanliso"),
        ("demo-port", "coal_port"),
        ("demo-control", "control"),
    ]
    assert [s.utm_crs for s in sites] == ["EPSG:32651", "EPSG:32651", "EPSG:32652"]
    for s, d in zip(sites, demo_sites(), strict=True):
        assert "synthetic" in s.source
        assert "not a real place" in s.source
        assert s.confidence == "high"
        assert s.geometry.equals(d.geometry)
    sizes = {s.id: s.geometry_in(s.utm_crs).bounds for s in sites}
    width, height = (
        sizes["demo-camp"][2] - sizes["demo-camp"][0],
        sizes["demo-camp"][3] - sizes["demo-camp"][1],
    )
    assert width == pytest.approx(2400, abs=5)
    assert height == pytest.approx(2000, abs=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start_year": 2020, "end_year": 2019}, "end_year 2019 is before start_year 2020"),
        ({"acquisitions_per_year": (0, 3)}, r"need 1 <= min <= max <= 36"),
        ({"acquisitions_per_year": (20, 10)}, r"need 1 <= min <= max <= 36"),
        ({"sites": ("demo-camp", "camp-16")}, "need distinct ids among"),
        ({"sites": ("demo-camp", "demo-camp")}, "need distinct ids among"),
        ({"max_shift_m": 3.0}, "must be a multiple of 2.5 m"),
        ({"seed": -1}, "greater than or equal to 0"),
        ({"clouds": 0.5}, "Extra inputs are not permitted"),
    ],
)
def test_params_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScenarioParams(**kwargs)


def test_params_are_frozen_and_key_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    p = ScenarioParams()
    with pytest.raises(ValidationError, match="frozen"):
        p.seed = 1  # type: ignore[misc]
    assert p.cache_key() == ScenarioParams(seed=42).cache_key()
    assert p.cache_key() != ScenarioParams(seed=43).cache_key()
    before = p.cache_key()
    monkeypatch.setattr("pipeline.sources.synthetic.params.GENERATOR_VERSION", "999")
    assert p.cache_key() != before


def test_params_import_without_the_generator() -> None:
    """The config layer imports ScenarioParams: that must not load numpy, rasterio or shapely."""
    heavy = "{'numpy', 'rasterio', 'shapely', 'scipy', 'pystac', 'pyproj'}"
    code = (
        "import sys; from pipeline.sources.synthetic import ScenarioParams; ScenarioParams(); "
        f"print(sorted({heavy} & {{m.split('.')[0] for m in sys.modules}}))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_package_exports_resolve() -> None:
    for name in synthetic.__all__:
        assert getattr(synthetic, name) is not None, name
    assert synthetic.ScenarioParams is ScenarioParams
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        synthetic.nothing  # noqa: B018


# ------------------------------------------------------------------------------------------------
# Truth design (pure)


@pytest.mark.parametrize("site_id", DEMO_SITE_IDS)
def test_truth_parts_are_big_compact_and_inside_the_site(site_id: str) -> None:
    (site,) = demo_sites([site_id])
    crs = site.utm_crs
    centre = site.geometry_in(crs).centroid
    area = affinity.translate(site.geometry_in(crs), -centre.x, -centre.y)
    for year in YEARS:
        footprint, coal = truth_geometries(site_id, year)
        assert footprint.area > 0
        assert area.buffer(1.0).contains(footprint), (site_id, year)
        assert coal.is_empty or footprint.buffer(1e-6).contains(coal)
        for part in getattr(footprint, "geoms", [footprint]):
            assert part.area >= 5000, (site_id, year, part.area)
        piles = list(getattr(coal, "geoms", [coal])) if not coal.is_empty else []
        for pile in piles:
            assert pile.area >= 5000
            assert 4 * np.pi * pile.area / pile.length**2 > 0.8  # compact, not a thin strip
            assert not pile.buffer(-25.0).is_empty
        # Piles never touch one another: each counts as its own stockpile.
        assert sum(p.area for p in piles) == pytest.approx(coal.area)


def test_truth_schedule_changes_where_designed() -> None:
    camp = {y: truth_geometries("demo-camp", y) for y in YEARS}
    growth = {y: camp[y][0].area / camp[y - 1][0].area - 1 for y in YEARS if y > 2016}
    grown = {y for y, g in growth.items() if g > 1e-9}
    assert grown == {2018, 2020, 2021, 2023, 2025}
    assert all(0.02 < growth[y] < 0.25 for y in grown)
    assert all(camp[y][0].equals(camp[y - 1][0]) for y in (2017, 2019, 2022, 2024))
    assert camp[2025][1].area > 2 * camp[2016][1].area  # more coal at the mine
    port_coal = {y: truth_geometries("demo-port", y)[1].area for y in YEARS}
    assert port_coal[2018] < 0.3 * port_coal[2016]  # smaller after 2017
    assert all(port_coal[y] > port_coal[y - 1] for y in range(2019, 2025))  # growing from 2019
    port_fp = [truth_geometries("demo-port", y)[0] for y in YEARS]
    assert all(fp.equals(port_fp[0]) for fp in port_fp)
    control = [truth_geometries("demo-control", y) for y in YEARS]
    assert all(fp.equals(control[0][0]) and coal.is_empty for fp, coal in control)


def test_year_state_runs_april_to_march() -> None:
    assert state_year(date(2020, 3, 31)) == 2019
    assert state_year(date(2020, 4, 1)) == 2020
    assert state_year(date(2020, 12, 31)) == 2020


def test_acquisitions_follow_the_revisit_and_fill_the_autumn() -> None:
    p = ScenarioParams()
    for site_id in DEMO_SITE_IDS:
        for year in (2016, 2021):
            days = acquisition_dates(p, site_id, year)
            assert 15 <= len(days) <= 30
            assert days == sorted(set(days))
            autumn = [d for d in days if date(year, 9, 1) <= d <= date(year, 11, 15)]
            assert len(autumn) >= (7 if year == 2016 else 8)  # 2016: S2A alone, 10-day revisit
            assert all(synthetic.platform_of(site_id, d) is not None for d in days)
    # Seeded per (seed, site, year): a subset or another order gives the same days.
    assert acquisition_dates(p, "demo-port", 2021) == acquisition_dates(
        p.model_copy(update={"sites": ("demo-port",)}), "demo-port", 2021
    )


# ------------------------------------------------------------------------------------------------
# Pure rendering helpers


@SETTINGS
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 5)).map(lambda s: (4 * s[0], 4 * s[1])),
           elements=st.integers(0, 9))
)  # fmt: skip
def test_block_fractions_match_a_direct_count(labels: np.ndarray[Any, Any]) -> None:
    frac = block_fractions(labels, 10, 4)
    h, w = labels.shape[0] // 4, labels.shape[1] // 4
    assert frac.shape == (h, w, 10)
    np.testing.assert_allclose(frac.sum(axis=2), 1.0, atol=1e-6)
    for c in range(10):
        direct = (labels == c).reshape(h, 4, w, 4).mean(axis=(1, 3))
        np.testing.assert_allclose(frac[..., c], direct, atol=1e-6)


@SETTINGS
@given(arrays(np.float32, (6, 8, 3), elements=st.floats(-1, 1, width=32)))
def test_block_mean_matches_reshape_mean(a: np.ndarray[Any, Any]) -> None:
    expected = a.reshape(3, 2, 4, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(block_mean(a, 2), expected, atol=1e-6)


def test_different_seed_gives_different_pixels_same_seed_same() -> None:
    day = acquisition_dates(SMALL, "demo-control", 2021)[0]
    a, meta_a = render_scene(SMALL, "demo-control", day)
    b, _ = render_scene(SMALL, "demo-control", day)
    c, _ = render_scene(SMALL.model_copy(update={"seed": 7}), "demo-control", day)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["red"], c["red"])
    assert meta_a.day == day
    with pytest.raises(SourceError, match="no synthetic satellite passes that day"):
        render_scene(SMALL, "demo-control", day + timedelta(days=1))  # revisit is 5 days


# ------------------------------------------------------------------------------------------------
# The built scenario


def test_catalog_is_a_self_contained_static_catalog(small: Path) -> None:
    text = "".join(p.read_text() for p in small.rglob("*.json"))
    assert str(small) not in text
    assert '"rel": "self"' not in text
    catalog = json.loads((small / "catalog.json").read_text())
    children = [link["href"] for link in catalog["links"] if link["rel"] == "child"]
    assert children == ["./sentinel-2-l2a/collection.json"]
    items = _items(small)
    expected = sum(len(acquisition_dates(SMALL, s, y)) for s in DEMO_SITE_IDS for y in SMALL.years)
    assert len(items) == expected == len(StaticCatalogSource(small / "catalog.json"))
    scenario = json.loads((small / "scenario.json").read_text())
    assert scenario["params"] == SMALL.model_dump(mode="json")
    assert scenario["scenes"] == expected


def test_items_carry_earth_search_keys_and_radiometry(small: Path) -> None:
    items = _items(small)
    for item in items:
        props = item["properties"]
        assert set(item["assets"]) == {
            "blue",
            "green",
            "red",
            "nir",
            "nir08",
            "swir16",
            "swir22",
            "scl",
        }
        assert props["platform"] in ("sentinel-2a", "sentinel-2b")
        assert props["constellation"] == "sentinel-2"
        assert props["sitewatch:synthetic"] is True
        assert props["earthsearch:boa_offset_applied"] is False
        assert props["proj:epsg"] in (32651, 32652)
        day = date.fromisoformat(props["datetime"][:10])
        radiometry = s2_radiometry(props)
        if day >= date(2022, 1, 25):
            assert props["s2:processing_baseline"] >= "04.00"
            assert radiometry.offset_dn == -1000
        else:
            assert props["s2:processing_baseline"] < "04.00"
            assert radiometry.offset_dn == 0
        dx, dy = props["sitewatch:shift_px"]
        assert abs(dx) <= 1
        assert abs(dy) <= 1
        assert (4 * dx).is_integer()
        assert (4 * dy).is_integer()
    shifts = {tuple(i["properties"]["sitewatch:shift_px"]) for i in items}
    assert len(shifts) > 5


def test_cogs_are_valid_and_cover_the_grid_plus_margin(small: Path) -> None:
    sites = {s.id: s for s in demo_sites()}
    for item in _items(small)[::7]:
        site = sites[item["id"].split("SYN-")[1].rsplit("_", 3)[0]]
        grid = site.grid(10, 200)
        left, bottom, right, top = grid.bounds
        for key, asset in item["assets"].items():
            path = item["_dir"] / asset["href"]
            valid, errors, warnings = cog_validate(str(path), quiet=True)
            assert valid, (path, errors)
            assert (errors, warnings) == ([], []), path
            with rasterio.open(path) as ds:
                assert ds.driver == "GTiff"
                assert ds.compression.name == "deflate"
                assert ds.nodata == 0
                assert ds.crs.to_string() == grid.crs
                assert ds.dtypes[0] == ("uint8" if key == "scl" else "uint16")
                assert ds.res == (S2_RESOLUTION[key], S2_RESOLUTION[key])
                # The mask reaches further, as a tile's does: clouds beyond the scene cast
                # shadows into it (``read.shadow_grid``).
                m = 120 + (MASK_MARGIN_M if key == "scl" else 0)
                assert ds.bounds == pytest.approx((left - m, bottom - m, right + m, top + m))
                # The item describes the lattice the asset is written on.
                assert [ds.height, ds.width] == asset["proj:shape"]
                assert list(ds.transform)[:6] == asset["proj:transform"]
                assert ds.crs.to_epsg() == item["properties"]["proj:epsg"]


def _coal_and_water_dn(item: dict[str, Any]) -> tuple[float, float]:
    """Median swir22 DN over the eroded true coal piles, and swir16 DN over SCL water."""
    site_id = item["id"].split("SYN-")[1].rsplit("_", 3)[0]
    (site,) = demo_sites([site_id])
    day = date.fromisoformat(item["properties"]["datetime"][:10])
    _, coal = truth_geometries(site_id, state_year(day))
    centre = site.geometry_in(site.utm_crs).centroid
    core = affinity.translate(coal, centre.x, centre.y).buffer(-25.0)
    with rasterio.open(item["_dir"] / "swir22.tif") as ds:
        swir22 = ds.read(1)
        inside = rasterize([core], out_shape=ds.shape, transform=ds.transform).astype(bool)
    swir16, scl = (
        _read(item["_dir"] / "swir16.tif"),
        _read(item["_dir"] / "scl.tif")[scene_window("scl")],
    )
    return float(np.median(swir22[inside])), float(np.median(swir16[scl == 6]))


def test_dark_surfaces_carry_the_04_00_offset(small: Path) -> None:
    clear = [
        i
        for i in _items(small)
        if "demo-port" in i["id"]
        and i["properties"]["eo:cloud_cover"] == 0
        and i["properties"]["s2:cloud_shadow_percentage"] == 0
        and i["properties"]["s2:snow_ice_percentage"] == 0
    ]
    before = [_coal_and_water_dn(i) for i in clear if i["properties"]["datetime"] < "2022-01-25"]
    after = [_coal_and_water_dn(i) for i in clear if i["properties"]["datetime"] >= "2022-01-25"]
    assert before
    assert after
    for coal, water in before:
        assert 450 <= coal <= 700
        assert water <= 200
    for coal, water in after:
        assert 1450 <= coal <= 1700
        assert 1000 <= water <= 1200


def test_scl_clouds_are_bright_and_cloud_cover_is_their_share(small: Path) -> None:
    cloud_blue: list[np.ndarray[Any, Any]] = []
    veg_blue: list[np.ndarray[Any, Any]] = []
    for item in _items(small):
        props = item["properties"]
        scl = _read(item["_dir"] / "scl.tif")[scene_window("scl")]
        valid = scl != 0
        share = 100 * np.isin(scl, (8, 9, 10)).sum() / max(valid.sum(), 1)
        assert props["eo:cloud_cover"] == pytest.approx(share, abs=1e-3)
        offset = -s2_radiometry(props).offset_dn
        blue = (_read(item["_dir"] / "blue.tif")[::2, ::2].astype(float) - offset) / 1e4
        cloud_blue.append(blue[scl == 9])
        veg_blue.append(blue[scl == 4])
    clouds, veg = np.concatenate(cloud_blue), np.concatenate(veg_blue)
    assert clouds.size > 1000
    assert veg.size > 1000
    assert np.median(clouds) > 0.25
    assert np.percentile(clouds, 5) > 0.15
    assert np.median(veg) < 0.08


def test_truth_files_are_rfc7946_and_read_back(small: Path, tmp_path: Path) -> None:
    text = (small / "truth" / "demo-camp.geojson").read_text()
    doc = json.loads(text)
    assert "crs" not in doc
    assert text == synthetic.truth_text("demo-camp", SMALL.years)
    for f in doc["features"]:
        assert set(f["properties"]) == {"site_id", "year", "layer", "area_ha"}
        for polygon in f["geometry"]["coordinates"]:
            ring = polygon[0]
            assert all(len(str(v).split(".")[-1]) <= 6 for xy in ring for v in xy)
            assert shapely.Polygon(ring).exterior.is_ccw
    truth = synthetic.read_truth(small / "truth" / "demo-camp.geojson")
    assert sorted(truth) == [2021, 2022]
    for year, t in truth.items():
        assert t.footprint.is_valid
        assert t.coal.is_valid
        fp_utm = reproject_geometry(t.footprint, "EPSG:4326", "EPSG:32651")
        assert fp_utm.area / 1e4 == pytest.approx(t.footprint_area_ha, rel=1e-4)
        assert t.footprint_area_ha == pytest.approx(
            truth_geometries("demo-camp", year)[0].area / 1e4, abs=1e-4
        )
        assert t.coal_area_ha > 0.5
    # 2022 keeps the 2021 footprint (by design) but not its coal; 2023 adds a wing.
    assert truth[2022].footprint.equals(truth[2021].footprint)
    assert not truth[2022].coal.equals(truth[2021].coal)
    later = tmp_path / "camp.geojson"
    later.write_text(synthetic.truth_text("demo-camp", [2022, 2023]))
    grown = synthetic.read_truth(later)
    assert not grown[2023].footprint.equals(grown[2022].footprint)
    assert grown[2023].footprint_area_ha > grown[2022].footprint_area_ha
    control = synthetic.read_truth(small / "truth" / "demo-control.geojson")
    assert control[2021].footprint.equals(control[2022].footprint)
    assert control[2021].coal.is_empty
    assert control[2021].coal_area_ha == 0


def test_subset_with_a_pool_writes_identical_bytes(small: Path, tmp_path: Path) -> None:
    """Seeding per (seed, site, date): another subset, in 2 processes, gives the same files."""
    subset = SMALL.model_copy(update={"sites": ("demo-port", "demo-control"), "end_year": 2021})
    root = tmp_path / "subset"
    build_scenario(subset, root, workers=2)
    items = sorted((root / "sentinel-2-l2a").glob("*/*"))
    assert len(items) > 20
    for path in items:
        twin = small / path.relative_to(root)
        assert path.read_bytes() == twin.read_bytes(), path.name


def test_search_respects_dates_and_site(small: Path) -> None:
    source = StaticCatalogSource(small / "catalog.json")
    camp, port, control = demo_sites()
    scenes = source.search(port, date(2021, 9, 1), date(2021, 11, 15))
    assert scenes
    assert all("SYN-demo-port_" in s.id for s in scenes)
    assert all(date(2021, 9, 1) <= s.date <= date(2021, 11, 15) for s in scenes)
    assert [(s.datetime, s.id) for s in scenes] == sorted((s.datetime, s.id) for s in scenes)
    assets = [a for s in scenes for a in s.assets.values()]
    assert all(Path(a.href).is_absolute() and Path(a.href).is_file() for a in assets)
    # Readers take the native lattice from the item: it is the one the file is written on.
    for a in assets[::5]:
        with rasterio.open(a.href) as ds:
            assert a.shape == ds.shape
            assert a.transform == tuple(ds.transform)[:6]
    everything = source.search(control, date(2000, 1, 1), date(2030, 1, 1))
    assert {s.id.split("SYN-")[1].rsplit("_", 3)[0] for s in everything} == {"demo-control"}
    # The scene extent contains the whole site grid (readers do windowed reads).
    left, bottom, right, top = camp.grid(10, 200).bounds
    assert scene_grid(camp).bounds == (left - 120, bottom - 120, right + 120, top + 120)


def test_build_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(SourceError, match="not empty"):
        build_scenario(SMALL, tmp_path)


# ------------------------------------------------------------------------------------------------
# The source and its cache

TINY = ScenarioParams(
    start_year=2022, end_year=2022, acquisitions_per_year=(2, 2), autumn_min_acquisitions=2,
    sites=("demo-control",),
)  # fmt: skip


def test_source_builds_once_then_reuses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = SyntheticSource(TINY, tmp_path)
    assert first.root == tmp_path / f"synthetic-{TINY.cache_key()}"
    stamp = first.catalog_path.stat().st_mtime_ns
    (site,) = first.sites()
    found = first.search(site, date(2022, 1, 1), date(2022, 12, 31))
    assert len(found) == 2
    assert found[0].properties["sitewatch:synthetic"] is True
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert left == [first.root.name]  # no temporary folder left

    def refuse(*args: object, **kwargs: object) -> Path:
        raise AssertionError("build_scenario called: the cache was not reused")

    monkeypatch.setattr(BUILD_SCENARIO, refuse)
    second = SyntheticSource(TINY, tmp_path)
    assert [s.id for s in second.search(site, date(2022, 1, 1), date(2022, 12, 31))] == [
        s.id for s in found
    ]
    assert set(second.truth("demo-control")) == {2022}
    assert second.catalog_path.stat().st_mtime_ns == stamp
    with pytest.raises(SiteError, match="'demo-camp' is not in this synthetic scenario"):
        second.truth("demo-camp")


def test_a_killed_build_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synthetic.build_scenario

    def dies(params: ScenarioParams, root: Path, *args: Any, **kwargs: Any) -> Path:
        real(params, root, *args, **kwargs)
        raise KeyboardInterrupt  # killed after writing everything but before the rename

    monkeypatch.setattr(BUILD_SCENARIO, dies)
    with pytest.raises(KeyboardInterrupt):
        SyntheticSource(TINY, tmp_path).root  # noqa: B018
    assert [p.name for p in tmp_path.iterdir()] == [f".synthetic-{TINY.cache_key()}.lock"]
    # A temp folder left by a killed process (SIGKILL: no cleanup) is removed by the next build.
    orphan = tmp_path / f".synthetic-{TINY.cache_key()}.tmp-abc123"
    (orphan / "sentinel-2-l2a").mkdir(parents=True)
    monkeypatch.setattr(BUILD_SCENARIO, real)
    source = SyntheticSource(TINY, tmp_path)
    assert source.catalog_path.is_file()
    assert not orphan.exists()


def test_a_foreign_folder_in_place_of_the_cache_is_an_error(tmp_path: Path) -> None:
    (tmp_path / f"synthetic-{TINY.cache_key()}").mkdir()
    with pytest.raises(SourceError, match=r"holds no catalog\.json"):
        SyntheticSource(TINY, tmp_path).search(
            demo_sites(["demo-control"])[0], date(2022, 1, 1), date(2022, 2, 1)
        )


@pytest.mark.slow
def test_default_scenario_builds_and_keeps_autumn_usable(tmp_path: Path) -> None:
    # Build time is a benchmark (benchmarks/demo_timing.py), not an assert here.
    params = ScenarioParams()
    progress: list[tuple[int, int]] = []
    source = SyntheticSource(params, tmp_path, progress=lambda d, t: progress.append((d, t)))
    root = source.root
    total = sum(len(acquisition_dates(params, s, y)) for s in DEMO_SITE_IDS for y in params.years)
    assert progress[-1] == (total, total)
    medians = []
    on_scene = scene_window("scl")
    for site in source.sites():
        for year in params.years:
            scenes = source.search(site, date(year, 9, 1), date(year, 11, 15))
            clear = sum(
                ~np.isin(_read(Path(s.assets["scl"].href))[on_scene], (0, 1, 8, 9, 10, 11))
                for s in scenes
            )
            medians.append(float(np.median(clear)))
    assert np.median(medians) >= 5
    assert min(medians) >= 1
    truth = source.truth("demo-camp")
    assert sorted(truth) == list(params.years)
    assert (root / "truth" / "demo-port.geojson").is_file()
    assert os.path.getsize(root / "catalog.json") > 0


def test_concurrent_sources_build_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synthetic.build_scenario
    calls: list[Path] = []

    def slow(params: ScenarioParams, root: Path, *args: Any, **kwargs: Any) -> Path:
        calls.append(root)
        time.sleep(0.3)  # long enough for the other thread to reach the lock
        return real(params, root, *args, **kwargs)

    monkeypatch.setattr(BUILD_SCENARIO, slow)
    roots: list[Path] = []
    threads = [
        threading.Thread(target=lambda: roots.append(SyntheticSource(TINY, tmp_path).root))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert roots[0] == roots[1]
    assert (roots[0] / "catalog.json").is_file()


def test_relative_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make demo` uses the default cache `.sitewatch-cache`, a path relative to the working
    directory: the build must land inside it and be found again."""
    monkeypatch.chdir(tmp_path)
    params = ScenarioParams(
        start_year=2022, end_year=2022, sites=("demo-control",), acquisitions_per_year=(2, 3),
        autumn_min_acquisitions=1,
    )  # fmt: skip
    source = SyntheticSource(params, Path(".sitewatch-cache"))
    catalog = source.catalog_path
    assert catalog.is_file()
    assert catalog.is_relative_to(tmp_path / ".sitewatch-cache")
    assert sorted(
        p.name for p in (tmp_path / ".sitewatch-cache").iterdir() if not p.name.startswith(".")
    ) == [catalog.parent.name]
    (site,) = demo_sites(["demo-control"])
    assert source.search(site, date(2022, 1, 1), date(2022, 12, 31))
