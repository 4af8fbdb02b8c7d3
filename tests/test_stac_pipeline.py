"""End to end: real imagery (tests/support/realscenes.py archives) searched through a real STAC
API (pgstac + stac-fastapi-pgstac) and read over HTTP byte ranges (the counting range server),
offline on loopback only.

One range server serves the archive root for the whole module; the archives are loaded into the
session's shared pgstac API under collection ids that no other module loads (a guard fails
loudly if one already exists): the Earth Search flavour as ``sentinel-2-l2a``, the Planetary
Computer flavour as ``sentinel-2-l2a-pc`` (its profile follows from the asset keys B02/SCL),
Collection-1 as ``sentinel-2-c1-l2a`` and Landsat as ``landsat-c2-l2``.

Config choices beyond source, sites, years and grid, both from the archives' documented truth:

* ``classify.coal.min_observations: 2``: the Sentinel-2 archive has 3 looks a year, and in 2021
  the haze of the last one (blue +0.015) puts the coal's SWIR1 - blue below 0, the shadow test,
  so the pile is flagged on 2 of 3 clear looks; DOMAIN.md asks for coal thresholds calibrated per
  site. (Where clouds leave 2 looks, as in 2022, the rule already asks for 2.)
* the Landsat cloud block of 2021 covers the whole site: the pile has one clear look that year,
  and the counting rule never counts one look alone (``classify.CoalFrequency.mask``), so 2021 is
  checked for its flag and its masked cloud, not for coal.
"""

from __future__ import annotations

import copy
import csv
import fcntl
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
import yaml
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.windows import Window
from shapely.geometry import mapping, shape
from support import realscenes as rs
from support.pgstac import PgstacServer
from support.rangeserver import RangeServer

from pipeline.cli import main as cli_main
from pipeline.config import load_config
from pipeline.grid import Grid
from pipeline.run import run
from pipeline.sources.read import ReadSettings, read_chip

pytestmark = pytest.mark.realdata

StartRange = Callable[[Path], RangeServer]

#: collection ids of this module in the shared API, by flavour
COLLECTIONS = {
    "earthsearch": "sentinel-2-l2a",
    "planetary": "sentinel-2-l2a-pc",
    "earthsearch-c1": "sentinel-2-c1-l2a",
    "landsat": "landsat-c2-l2",
}
S2_SITE = "s2-desert"
LS_SITE = "ls-forest"
#: the outputs compared byte for byte between runs (README: GeoJSON and CSV are byte-identical)
TEXT_OUTPUTS = (
    "footprints.geojson",
    "expansion.geojson",
    "stockpiles.geojson",
    "trends.csv",
    "trend_summary.csv",
)
RASTER_KINDS = ("footprint", "coal_frequency", "clear_count", "composite", "spread")
#: read settings for the fault runs: timeout below the injected stall
FAULT_READ = {"retries": 4, "backoff_s": 0.05, "timeout_s": 2}

# --------------------------------------------------------------------------------------------
# Archives, servers, API


@dataclass
class Served:
    root: Path
    server: RangeServer
    s2: rs.S2Archive
    landsat: rs.LandsatArchive
    api_url: str
    sites: dict[str, Path]  # archive -> site GeoJSON


def _api_has_collection(api_url: str, cid: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{api_url}/collections/{cid}", timeout=10) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def _as_collection(
    collection: dict[str, Any], items: list[dict[str, Any]], cid: str, api_url: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Copies of a collection and its items under the id ``cid``, links pointing at it."""
    coll = copy.deepcopy(collection)
    coll["id"] = cid
    coll["title"] = cid
    coll["links"] = []
    out = []
    for item in items:
        it = copy.deepcopy(item)
        it["collection"] = cid
        it["links"] = [
            link
            for link in it.get("links", [])
            if link.get("rel") not in ("collection", "parent", "root")
        ] + [
            {
                "rel": "collection",
                "href": f"{api_url}/collections/{cid}",
                "type": "application/json",
            }
        ]
        out.append(it)
    return coll, out


def _site_file(path: Path, site_id: str, name: str, polygon: Any) -> Path:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id": site_id, "name": name, "kind": "other", "source": "test"},
                "geometry": mapping(polygon),
            }
        ],
    }
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def served(
    real_data: Path, pgstac_api: PgstacServer, tmp_path_factory: pytest.TempPathFactory
) -> Generator[Served]:
    """Both archives built once, served by one range server, loaded into the API."""
    root = tmp_path_factory.mktemp("stac-archive")
    server = RangeServer(root).start()
    try:
        s2 = rs.build_sentinel2_archive(real_data, root / "s2", f"{server.url}/s2")
        landsat = rs.build_landsat_archive(real_data, root / "landsat", f"{server.url}/landsat")
        taken = [c for c in COLLECTIONS.values() if _api_has_collection(pgstac_api.url, c)]
        assert not taken, (
            f"collections {taken} already exist in the shared STAC API: another test module "
            "loads the same ids; give one of them its own ids"
        )
        for flavour in rs.S2_FLAVOURS:
            coll, items = _as_collection(
                s2.collections[flavour], s2.items[flavour], COLLECTIONS[flavour], pgstac_api.url
            )
            pgstac_api.load([coll], items)
        coll, items = _as_collection(
            landsat.collection, landsat.items, COLLECTIONS["landsat"], pgstac_api.url
        )
        pgstac_api.load([coll], items)
        sites_dir = tmp_path_factory.mktemp("sites")
        sites = {
            "s2": _site_file(
                sites_dir / "s2.geojson", S2_SITE, "Saharan test site", s2.site_polygon_wgs84
            ),
            "landsat": _site_file(
                sites_dir / "landsat.geojson",
                LS_SITE,
                "Forest test site",
                landsat.site_polygon_wgs84,
            ),
        }
        yield Served(root, server, s2, landsat, pgstac_api.url, sites)
    finally:
        server.stop()


@pytest.fixture
def clean_server(served: Served) -> Iterator[RangeServer]:
    """The module's range server with no faults and zeroed counts, faults cleared afterwards."""
    served.server.clear_faults()
    served.server.reset()
    try:
        yield served.server
    finally:
        served.server.clear_faults()


# --------------------------------------------------------------------------------------------
# Configs and runs


def write_config(
    served: Served,
    folder: Path,
    flavour: str,
    cache_dir: Path,
    *,
    read: dict[str, Any] | None = None,
) -> Path:
    """A YAML run config for one archive flavour (Sentinel-2 at 100 m, Landsat at 600 m)."""
    folder.mkdir(parents=True, exist_ok=True)
    landsat = flavour == "landsat"
    years = rs.LS_YEARS if landsat else rs.S2_YEARS
    config: dict[str, Any] = {
        "name": f"stac-{flavour}",
        "sites": str(served.sites["landsat" if landsat else "s2"]),
        "years": {"start": min(years), "end": max(years)},
        "source": {
            "kind": "stac-api",
            "url": served.api_url,
            "collections": [COLLECTIONS[flavour]],
            "max_cloud_cover": 100,
        },
        "grid": {"resolution_m": 600 if landsat else 100},
        "classify": {"coal": {"min_observations": 2}},
        "cache_dir": str(cache_dir),
    }
    if read is not None:
        config["read"] = read
    path = folder / f"{flavour}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_config(path: Path, out: Path) -> Path:
    run(load_config(path), out)
    return out


def text_outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in TEXT_OUTPUTS}


def manifest_scenes(out: Path) -> list[dict[str, Any]]:
    manifest = json.loads((out / "manifest.json").read_text())
    return [s for site in manifest["sites"] for y in site["years"] for s in y["scenes"]]


def features(out: Path, name: str) -> list[dict[str, Any]]:
    doc: dict[str, Any] = json.loads((out / name).read_text())
    return list(doc["features"])


def trends(out: Path) -> list[dict[str, str]]:
    with (out / "trends.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def to_utm(geom: Any, crs: str) -> Any:
    tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def site_crs(out: Path) -> str:
    """The CRS of the (only) site's grid: its UTM zone, not necessarily the scenes' own."""
    manifest = json.loads((out / "manifest.json").read_text())
    return str(manifest["sites"][0]["grid"]["crs"])


def coal_overlap_by_year(out: Path, truth_wgs84: Any) -> dict[int, tuple[float, float]]:
    """Per year: (stockpile area overlapping the truth polygon, total stockpile area) in m2 of
    the site's UTM grid."""
    crs = site_crs(out)
    truth_utm = to_utm(truth_wgs84, crs)
    result = {}
    for f in features(out, "stockpiles.geojson"):
        geom = f["geometry"]
        if geom is None:
            result[f["properties"]["year"]] = (0.0, 0.0)
            continue
        pile = to_utm(shape(geom), crs)
        result[f["properties"]["year"]] = (pile.intersection(truth_utm).area, pile.area)
    return result


@pytest.fixture(scope="module")
def runs(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Run each flavour's config once (lazily, fresh cache each) and share the output folder."""
    done: dict[str, Path] = {}

    def get(flavour: str) -> Path:
        if flavour not in done:
            served.server.clear_faults()
            work = tmp_path_factory.mktemp(f"run-{flavour}")
            config = write_config(served, work, flavour, work / "cache")
            done[flavour] = run_config(config, work / "out")
        return done[flavour]

    return get


# --------------------------------------------------------------------------------------------
# 1. Sentinel-2 end to end, Earth Search flavour


@pytest.mark.slow
def test_s2_run_writes_every_output(served: Served, runs: Callable[[str], Path]) -> None:
    out = runs("earthsearch")
    for name in (*TEXT_OUTPUTS, "manifest.json"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    for year in rs.S2_YEARS:
        for kind in RASTER_KINDS:
            path = out / "rasters" / S2_SITE / f"{S2_SITE}_{year}_{kind}.tif"
            assert path.is_file(), path
    with rasterio.open(out / "rasters" / S2_SITE / f"{S2_SITE}_2021_footprint.tif") as ds:
        assert ds.crs.to_epsg() == 32629
        assert ds.transform.a == pytest.approx(100.0)
        # on the data's own lattice: corners at the archive's 100 m pixel edges
        assert (ds.transform.c - served.s2.grid.transform.c) % 100 == pytest.approx(0, abs=1e-6)
    rows = trends(out)
    assert [int(r["year"]) for r in rows] == list(rs.S2_YEARS)
    assert all(r["n_scenes"] == "3" and r["n_skipped"] == "0" for r in rows)


@pytest.mark.slow
def test_s2_manifest_lists_every_item(served: Served, runs: Callable[[str], Path]) -> None:
    scenes = manifest_scenes(runs("earthsearch"))
    expected = {i["id"] for i in served.s2.items["earthsearch"]}
    assert sorted(s["scene_id"] for s in scenes) == sorted(expected)
    for s in scenes:
        assert s["skipped"] is None, s
        assert s["collection"] == COLLECTIONS["earthsearch"]
        assert s["offset_dn"] in (0.0, -1000.0)
        assert s["scale"] == pytest.approx(1e-4)
        assert s["radiometry"].startswith(("baseline", "no s2:processing_baseline")), s
        assert s["offset_check"], s  # the pixel check ran and said what it found
        assert s["mask"], s
        assert sum(s["mask"].values()) == pytest.approx(1.0, abs=1e-3)
    cloudy = next(t.item_id for t in served.s2.truth["earthsearch"] if t.cloudy)
    shares = next(s["mask"] for s in scenes if s["scene_id"] == cloudy)
    # the 34 x 34 px SCL-9 block is masked (plus its 150 m dilation)
    assert shares.get("cloud", 0) > 0.2
    assert shares.get("cloud", 0) + shares.get("cloud_buffer", 0) < 0.45


@pytest.mark.slow
def test_s2_offsets_follow_the_truth_where_the_flag_is_right(
    served: Served, runs: Callable[[str], Path]
) -> None:
    """Baseline < 04.00 (no offset), 04.00/05.09 with the flag right and raster:bands offset
    right or wrong (earth-search #9): the applied offset is the data's."""
    scenes = {s["scene_id"]: s for s in manifest_scenes(runs("earthsearch"))}
    right = [t for t in served.s2.truth["earthsearch"] if t.flag_correct]
    assert len(right) == 13
    for t in right:
        assert scenes[t.item_id]["offset_dn"] == -float(t.offset_in_data), t
        assert not scenes[t.item_id]["offset_check"].startswith("contradicted"), t


@pytest.mark.slow
def test_s2_wrong_flags_are_caught(served: Served, runs: Callable[[str], Path]) -> None:
    scenes = {s["scene_id"]: s for s in manifest_scenes(runs("earthsearch"))}
    wrong = [t for t in served.s2.truth["earthsearch"] if not t.flag_correct]
    assert len(wrong) == 2
    problems = []
    for t in wrong:
        s = scenes[t.item_id]
        if s["offset_dn"] != -float(t.offset_in_data) or not s["offset_check"].startswith(
            "contradicted"
        ):
            problems.append(
                f"{t.item_id}: data carry +{t.offset_in_data} DN, applied {s['offset_dn']}, "
                f"check {s['offset_check']!r}"
            )
    assert not problems, "\n".join(problems)


def _assert_coal_change(out: Path, truth_wgs84: Any, years: list[int], pixel_m: float) -> None:
    """In each of ``years`` the stockpiles cover most of the truth pile and lie within one
    pixel of it."""
    overlap = coal_overlap_by_year(out, truth_wgs84)
    truth_utm = to_utm(truth_wgs84, site_crs(out))
    area = truth_utm.area
    for year in years:
        inside, total = overlap[year]
        assert inside >= 0.5 * area, f"{year}: {inside / area:.0%} of the truth pile mapped"
        ring = truth_utm.buffer(pixel_m + 1).area
        assert total <= ring, f"{year}: {total / 1e4:.1f} ha of stockpile for {area / 1e4} ha"


@pytest.mark.slow
@pytest.mark.parametrize("flavour", ["earthsearch", "planetary", "earthsearch-c1"])
def test_s2_coal_appears_from_the_change_year(
    served: Served, runs: Callable[[str], Path], flavour: str
) -> None:
    s2 = served.s2
    out = runs(flavour)
    overlap = coal_overlap_by_year(out, s2.change_polygon_wgs84)
    before = [y for y in rs.S2_YEARS if y < rs.S2_CHANGE_FIRST_YEAR]
    for year in before:
        assert overlap[year] == (0.0, 0.0), f"{year}: stockpile before the change"
    _assert_coal_change(out, s2.change_polygon_wgs84, list(s2.change_years), pixel_m=100)


# --------------------------------------------------------------------------------------------
# 2. The same reflectance whatever the provider and flag

#: trends.csv columns that are areas (ha); compared within AREA_TOLERANCE_PX pixels
AREA_COLUMNS = (
    "footprint_ha",
    "footprint_pm_ha",
    "coal_ha",
    "coal_pm_ha",
    "added_ha",
    "removed_ha",
    "coal_added_ha",
    "coal_removed_ha",
)
#: columns that must be equal
EXACT_COLUMNS = (
    "site_id",
    "year",
    "compared_to_year",
    "net_change_significant",
    "n_scenes",
    "n_skipped",
    "coverage",
    "median_clear_obs",
    "window_start",
    "window_end",
)
#: After correction the DN -> reflectance arithmetic differs only in float rounding (Collection-1
#: takes its offset from raster:bands: -0.1 / 1e-4 = -1000.0000000000001, not -1000), which can
#: flip a pixel sitting exactly on a class threshold; such a pixel moves an area, and its edge
#: uncertainty, by one pixel (1 ha at 100 m). Two pixels allow one flip on each side.
AREA_TOLERANCE_PX = 2


def _compare_trends(a: Path, b: Path, pixel_ha: float) -> list[str]:
    rows_a, rows_b = trends(a), trends(b)
    assert len(rows_a) == len(rows_b)
    diffs = []
    for ra, rb in zip(rows_a, rows_b, strict=True):
        for col in EXACT_COLUMNS:
            if ra[col] != rb[col]:
                diffs.append(f"{ra['year']} {col}: {ra[col]} != {rb[col]}")
        for col in AREA_COLUMNS:
            va = float(ra[col]) if ra[col] else None
            vb = float(rb[col]) if rb[col] else None
            if (va is None) != (vb is None) or (
                va is not None and vb is not None and abs(va - vb) > AREA_TOLERANCE_PX * pixel_ha
            ):
                diffs.append(f"{ra['year']} {col}: {va} != {vb}")
    return diffs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flavour", "reference"),
    [("planetary", "earthsearch"), ("earthsearch-c1", "earthsearch")],
)
def test_s2_flavours_give_the_same_numbers(
    runs: Callable[[str], Path], flavour: str, reference: str
) -> None:
    """Planetary Computer (baseline rule, B02/SCL keys), Collection-1 (raster:bands, offset in
    every item) and Earth Search (flag + baseline + pixel check) are the same data once
    corrected, so trends.csv agrees; its flags may not (``radiometry-break`` records each
    provider's own offset history) and are not compared."""
    diffs = _compare_trends(runs(flavour), runs(reference), pixel_ha=1.0)
    assert not diffs, "\n".join(diffs)


# --------------------------------------------------------------------------------------------
# 3. Landsat end to end


@pytest.mark.slow
def test_landsat_end_to_end(served: Served, runs: Callable[[str], Path]) -> None:
    ls = served.landsat
    out = runs("landsat")
    for name in (*TEXT_OUTPUTS, "manifest.json"):
        assert (out / name).is_file(), name
    for year in rs.LS_YEARS:
        for kind in RASTER_KINDS:
            assert (out / "rasters" / LS_SITE / f"{LS_SITE}_{year}_{kind}.tif").is_file()

    scenes = {s["scene_id"]: s for s in manifest_scenes(out)}
    assert sorted(scenes) == sorted(i["id"] for i in ls.items)
    for s in scenes.values():
        assert s["skipped"] is None
        assert s["collection"] == COLLECTIONS["landsat"]
        assert s["scale"] == pytest.approx(rs.LS_SCALE, rel=1e-9)
        assert s["offset_dn"] == pytest.approx(rs.LS_OFFSET / rs.LS_SCALE, rel=1e-9)
    cloudy = next(t for t in ls.truth if t.cloudy)
    assert scenes[cloudy.item_id]["mask"].get("cloud", 0) > 0.5, scenes[cloudy.item_id]
    for t in ls.truth:
        if not t.cloudy:
            assert scenes[t.item_id]["mask"].get("cloud", 0) < 0.05, scenes[t.item_id]

    # the QA cloud block is masked: the change pixels have one clear look in its year
    # (the site's grid is in its UTM zone, EPSG:32720; the scenes in EPSG:32620)
    change = to_utm(ls.change_polygon_wgs84, site_crs(out))
    path = out / "rasters" / LS_SITE / f"{LS_SITE}_{cloudy.date.year}_clear_count.tif"
    with rasterio.open(path) as ds:
        assert ds.crs.to_string() == site_crs(out)
        row, col = ds.index(*change.centroid.coords[0])
        assert int(ds.read(1)[row, col]) == 1

    overlap = coal_overlap_by_year(out, ls.change_polygon_wgs84)
    for year in rs.LS_YEARS:
        if year < rs.LS_CHANGE_FIRST_YEAR:
            assert overlap[year] == (0.0, 0.0), f"{year}: stockpile before the change"
    seen_twice = [y for y in ls.change_years if y != cloudy.date.year]
    assert seen_twice
    _assert_coal_change(out, ls.change_polygon_wgs84, seen_twice, pixel_m=600)
    # the year the cloud leaves the pile one look: flagged, never silently a clean zero
    row_cloudy = next(r for r in trends(out) if int(r["year"]) == cloudy.date.year)
    assert "few-clear-observations" in row_cloudy["flags"]


# --------------------------------------------------------------------------------------------
# 4. Bytes read for one site window of a full-size band


def fullsize_cache_root() -> Path:
    """Per machine: ``$SITEWATCH_CACHE_DIR/realscenes`` (shared with test_realscenes.py) or
    ``<tmp>/sitewatch-test-cache``; the band is built there once and reused."""
    env = os.environ.get("SITEWATCH_CACHE_DIR")
    return Path(env) / "realscenes" if env else Path(tempfile.gettempdir()) / "sitewatch-test-cache"


def fullsize_band(real_data: Path) -> rs.FullSizeBand:
    """The full-size band, built under a file lock (two xdist workers may ask at once)."""
    root = fullsize_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".fullsize.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return rs.build_fullsize_band(root, real_data=real_data)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def lattice_grid(band: rs.FullSizeBand, window: Window, resolution: float) -> Grid:
    """A grid over ``window`` (band pixels) at ``resolution``, on the band's lattice."""
    t = band.transform
    left, top = t.c + window.col_off * t.a, t.f + window.row_off * t.e
    width = math.ceil(window.width * t.a / resolution)
    height = math.ceil(window.height * t.a / resolution)
    return Grid(band.crs, Affine(resolution, 0, left, 0, -resolution, top), width, height)


#: a 2 x 2 km site at 10 m that straddles a tile corner (four 512 px tiles), on the 160 m lattice
SITE_WINDOW = Window(5024, 2976, 200, 200)


@pytest.mark.slow
def test_site_window_reads_only_its_tiles(
    real_data: Path, range_server: StartRange, record_property: Callable[[str, object], None]
) -> None:
    """The full-size 10980 x 10980 band (``rs.build_fullsize_band``) is built once per machine
    under ``fullsize_cache_root()`` and reused. A 2 x 2 km window at 10 m over ``/vsicurl/``
    fetches at most twice the compressed bytes of the tiles it covers; at 160 m the same window
    comes from an overview, for fewer bytes than those tiles."""
    band = fullsize_band(real_data)
    tiles = band.tile_bytes(SITE_WINDOW)
    rel = band.path.name
    # one server per read: a fresh URL, so GDAL's in-process /vsicurl/ cache cannot help either
    full_srv = range_server(band.path.parent)
    grid = lattice_grid(band, SITE_WINDOW, 10.0)
    data = read_chip(f"/vsicurl/{full_srv.url}/{rel}", grid, Resampling.bilinear, ReadSettings())
    sent = full_srv.stats()["total_bytes"]
    ratio = sent / tiles
    record_property("bytes_sent_10m", sent)
    record_property("tile_bytes", tiles)
    record_property("bytes_ratio_10m", round(ratio, 3))
    assert ratio <= 2.0, f"{sent} bytes sent for {tiles} bytes of tiles: ratio {ratio:.3f}"
    with rasterio.open(band.path) as ds:
        truth = ds.read(1, window=SITE_WINDOW).astype(np.float32)
    np.testing.assert_array_equal(data, truth)  # on the lattice, bilinear is the identity

    ovr_srv = range_server(band.path.parent)
    coarse = lattice_grid(band, SITE_WINDOW, 160.0)
    small = read_chip(f"/vsicurl/{ovr_srv.url}/{rel}", coarse, Resampling.bilinear, ReadSettings())
    ovr_sent = ovr_srv.stats()["total_bytes"]
    record_property("bytes_sent_160m", ovr_sent)
    assert small.shape == (coarse.height, coarse.width)
    assert np.isfinite(small).all()
    assert ovr_sent < tiles, f"{ovr_sent} bytes at 160 m, {tiles} bytes of full-resolution tiles"


# --------------------------------------------------------------------------------------------
# 5. A rerun fetches nothing


@pytest.mark.slow
def test_rerun_fetches_nothing(served: Served, clean_server: RangeServer, tmp_path: Path) -> None:
    config = write_config(served, tmp_path, "earthsearch", tmp_path / "cache")
    first = run_config(config, tmp_path / "first")
    assert clean_server.stats()["requests"], "the first run must read over HTTP"
    clean_server.reset()
    second = run_config(config, tmp_path / "second")
    stats = clean_server.stats()
    assert stats["requests"] == [], f"{len(stats['requests'])} requests on the rerun"
    assert text_outputs(first) == text_outputs(second)


# --------------------------------------------------------------------------------------------
# 6. Offline


@pytest.mark.slow
def test_offline_runs_from_the_cache_only(
    served: Served,
    clean_server: RangeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    config = write_config(served, tmp_path, "earthsearch", cache)

    def sitewatch(out: str, *extra: str) -> tuple[int, str]:
        code = cli_main(["-q", "run", str(config), "--out", str(tmp_path / out), *extra])
        return code, capsys.readouterr().err

    code, err = sitewatch("empty", "--offline")
    assert code == 3, err  # the environment (the cache), not an input, is at fault
    assert "offline" in err
    assert "no cached search" in err, err
    assert S2_SITE in err, err
    assert "Traceback" not in err
    assert clean_server.stats()["requests"] == []

    code, err = sitewatch("online")
    assert code == 0, err
    clean_server.reset()
    code, err = sitewatch("offline", "--offline")
    assert code == 0, err
    assert clean_server.stats()["requests"] == []
    assert text_outputs(tmp_path / "online") == text_outputs(tmp_path / "offline")

    shutil.rmtree(cache / "chips")
    code, err = sitewatch("no-chips", "--offline")
    assert code == 3, err
    assert "offline" in err, err
    assert "chip" in err, err
    assert "not in the cache" in err, err
    assert served.server.url in err  # names the asset whose chip is missing
    assert "Traceback" not in err
    assert clean_server.stats()["requests"] == []


# --------------------------------------------------------------------------------------------
# 7. Faults


def sitewatch_process(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``sitewatch run CONFIG --out OUT`` in a fresh process: GDAL keeps /vsicurl/ data in the
    process across runs, so only a fresh one asks the server for every byte (and meets its
    faults), as a rerun after a network failure does."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "-q", "run", str(config), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_faults_do_not_change_the_outputs(
    served: Served,
    runs: Callable[[str], Path],
    clean_server: RangeServer,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    clean = runs("earthsearch")  # fresh cache, no faults
    config = write_config(served, tmp_path, "earthsearch", tmp_path / "cache", read=FAULT_READ)
    clean_server.set_faults(
        seed=7, error_rate=0.15, truncate_rate=0.1, stall_rate=0.05, stall_seconds=3.0
    )
    out = tmp_path / "out"
    done = sitewatch_process(config, out)
    assert done.returncode == 0, done.stderr
    faults = [r["fault"] for r in clean_server.stats()["requests"] if r["fault"]]
    record_property("faults", {f: faults.count(f) for f in sorted(set(faults))})
    assert {"error", "stall", "truncate"} <= set(faults)
    assert all(s["skipped"] is None for s in manifest_scenes(out))
    assert text_outputs(out) == text_outputs(clean)


@pytest.mark.slow
def test_an_unreadable_scene_is_skipped_and_recorded(
    served: Served, clean_server: RangeServer, tmp_path: Path
) -> None:
    item = next(
        i for i, t in zip(served.s2.items["earthsearch"], served.s2.truth["earthsearch"], strict=True)
        if t.date.year == 2020 and not t.cloudy
    )  # fmt: skip
    href = item["assets"]["swir22"]["href"]
    path = href.removeprefix(served.server.url)
    config = write_config(served, tmp_path, "earthsearch", tmp_path / "cache", read=FAULT_READ)
    clean_server.set_faults(fail_paths=f"^{re.escape(path)}$")
    out = tmp_path / "out"
    done = sitewatch_process(config, out)
    assert done.returncode == 0, done.stderr
    failed = [r for r in clean_server.stats()["requests"] if r["path"] == path]
    assert failed
    assert all(r["status"] == 503 for r in failed)
    scenes = {s["scene_id"]: s for s in manifest_scenes(out)}
    assert set(scenes) == {i["id"] for i in served.s2.items["earthsearch"]}
    skipped = {k: s["skipped"] for k, s in scenes.items() if s["skipped"]}
    assert list(skipped) == [item["id"]]
    assert "read failed" in skipped[item["id"]]
    row = next(r for r in trends(out) if r["year"] == "2020")
    assert row["n_skipped"] == "1"
    assert "scenes-skipped" in row["flags"]
    assert all(r["n_skipped"] == "0" for r in trends(out) if r["year"] != "2020")
