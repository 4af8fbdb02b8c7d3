"""Reads through a real STAC API and an HTTP range server, offline on loopback: bytes fetched for
site windows of a full-size Sentinel-2 band, and the time of one site-year of the Sentinel-2
archive (search + read + recipe) cold and from the chip cache. Prints results; asserts nothing.

Starts the counting range server and the pgstac STAC API from tests/support, builds the
real-scene archives (tests/support/realscenes.py) in a temporary folder and the full-size band
in the per-machine test cache (``$SITEWATCH_CACHE_DIR/realscenes`` or
``<tmp>/sitewatch-test-cache``, shared with the tests; built once, ~30-60 s).

Run: .venv/bin/python benchmarks/stac_read.py
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window
from shapely.geometry import mapping

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import realscenes as rs  # noqa: E402
from support.pgstac import PgstacServer  # noqa: E402
from support.rangeserver import RangeServer  # noqa: E402

from pipeline.config import load_config  # noqa: E402
from pipeline.grid import Grid  # noqa: E402
from pipeline.run import make_source, plan, run  # noqa: E402
from pipeline.sites import load_sites  # noqa: E402
from pipeline.sources.read import ReadSettings, read_chip  # noqa: E402
from pipeline.tasks import observe  # noqa: E402

REAL_DATA = ROOT.parent / "shared" / "real-data"
COLLECTION = "sentinel-2-l2a"
PC_COLLECTION = "sentinel-2-l2a-pc"
YEAR = 2022  # the site-year timed: the cloud block and both offsets


def cache_root() -> Path:
    env = os.environ.get("SITEWATCH_CACHE_DIR")
    return Path(env) / "realscenes" if env else Path(tempfile.gettempdir()) / "sitewatch-test-cache"


def lattice_grid(band: rs.FullSizeBand, window: Window, resolution: float) -> Grid:
    t = band.transform
    left, top = t.c + window.col_off * t.a, t.f + window.row_off * t.e
    width = math.ceil(window.width * t.a / resolution)
    height = math.ceil(window.height * t.a / resolution)
    return Grid(band.crs, Affine(resolution, 0, left, 0, -resolution, top), width, height)


def n_tiles(band: rs.FullSizeBand, window: Window) -> int:
    bh, bw = band.block_size
    rows = (window.row_off + window.height - 1) // bh - window.row_off // bh + 1
    cols = (window.col_off + window.width - 1) // bw - window.col_off // bw + 1
    return int(rows * cols)


def bytes_read(band: rs.FullSizeBand) -> list[dict[str, Any]]:
    """One fresh server (a fresh URL: GDAL's in-process cache starts cold) per read."""
    cases = [  # (label, window in band pixels, grid resolution m)
        ("2x2 km across a tile corner", Window(5024, 2976, 200, 200), 10.0),
        ("2x2 km across a tile corner", Window(5024, 2976, 200, 200), 20.0),
        ("2x2 km across a tile corner", Window(5024, 2976, 200, 200), 160.0),
        ("2x2 km inside one tile", Window(5150, 3100, 200, 200), 10.0),
        ("1x1 km inside one tile", Window(5200, 3200, 100, 100), 10.0),
        ("5x5 km", Window(4000, 6000, 500, 500), 10.0),
        ("10x10 km", Window(1000, 1000, 1000, 1000), 10.0),
        ("10x10 km", Window(1000, 1000, 1000, 1000), 60.0),
        ("2x2 km at the image corner", Window(10780, 10780, 200, 200), 10.0),
    ]
    rows = []
    for label, window, res in cases:
        with RangeServer(band.path.parent) as srv:
            grid = lattice_grid(band, window, res)
            href = f"/vsicurl/{srv.url}/{band.path.name}"
            t0 = time.perf_counter()
            read_chip(href, grid, Resampling.bilinear, ReadSettings())
            seconds = time.perf_counter() - t0
            stats = srv.stats()
        tiles = band.tile_bytes(window)
        rows.append(
            {
                "window": label,
                "col_row": [int(window.col_off), int(window.row_off)],
                "resolution_m": res,
                "full_res_tiles": n_tiles(band, window),
                "tile_bytes": tiles,
                "bytes_sent": stats["total_bytes"],
                "requests": len(stats["requests"]),
                "ratio_to_tiles": round(stats["total_bytes"] / tiles, 3),
                "seconds": round(seconds, 3),
            }
        )
    return rows


def site_year(work: Path, server: RangeServer, api: PgstacServer, archive: rs.S2Archive) -> dict:
    sites = work / "sites.geojson"
    feature = {
        "type": "Feature",
        "properties": {"id": "s2-desert", "name": "Saharan", "kind": "other", "source": "bench"},
        "geometry": mapping(archive.site_polygon_wgs84),
    }
    sites.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    config_path = work / "s2.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "sites": str(sites),
                "years": {"start": min(rs.S2_YEARS), "end": max(rs.S2_YEARS)},
                "source": {
                    "kind": "stac-api",
                    "url": api.url,
                    "collections": [COLLECTION],
                    "max_cloud_cover": 100,
                },
                "grid": {"resolution_m": 100},
                "classify": {"coal": {"min_observations": 2}},
                "cache_dir": str(work / "cache"),
            }
        )
    )
    config = load_config(config_path)
    site_list = load_sites(config.sites)
    out: dict[str, Any] = {}
    for label in ("cold", "rerun from the chip cache"):
        server.reset()
        t0 = time.perf_counter()
        source, _ = make_source(config)
        tasks = plan(config, site_list, [YEAR], source)
        t1 = time.perf_counter()
        result = observe(tasks[0])
        t2 = time.perf_counter()
        stats = server.stats()
        out[label] = {
            "search_s": round(t1 - t0, 3),
            "read_and_recipe_s": round(t2 - t1, 3),
            "total_s": round(t2 - t0, 3),
            "scenes": len(tasks[0].scenes),
            "coal_ha": round(float(result.coal_mask.sum()) * tasks[0].grid.pixel_area_ha, 2),
            "http_requests": len(stats["requests"]),
            "http_bytes": stats["total_bytes"],
        }
    # the whole series (5 site-years) as `sitewatch run` does it, cold then rerun; from the
    # Planetary Computer flavour (the same data in other files: GDAL's in-process cache is cold)
    whole = config.updated(
        cache_dir=work / "cache-run",
        source={**config.source.model_dump(), "collections": [PC_COLLECTION]},
    )
    for label in ("cold", "rerun"):
        server.reset()
        t0 = time.perf_counter()
        run(whole, work / f"out-{label}")
        stats = server.stats()
        out[f"whole run ({len(rs.S2_YEARS)} site-years), {label}"] = {
            "total_s": round(time.perf_counter() - t0, 3),
            "http_requests": len(stats["requests"]),
            "http_bytes": stats["total_bytes"],
        }
    return out


def main() -> None:
    report: dict[str, Any] = {}
    band = rs.build_fullsize_band(cache_root(), real_data=REAL_DATA)
    done = json.loads(band.path.with_name(band.path.name + ".done").read_text())
    report["fullsize_band"] = {
        "path": str(band.path),
        "reused_from_cache": band.reused,
        "build_s": round(float(done.get("build_seconds", band.build_seconds)), 1),
        "size_mb": round(band.path.stat().st_size / 1e6, 1),
    }
    report["bytes_read"] = bytes_read(band)
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-") as tmp:
        work = Path(tmp)
        (work / "archive").mkdir()
        with RangeServer(work / "archive") as server, PgstacServer() as api:
            report["pgstac_start_s"] = round(api.startup_seconds or 0.0, 1)
            t0 = time.perf_counter()
            archive = rs.build_sentinel2_archive(
                REAL_DATA, work / "archive" / "s2", f"{server.url}/s2"
            )
            report["s2_archive_build_s"] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            for flavour, cid in (("earthsearch", COLLECTION), ("planetary", PC_COLLECTION)):
                coll = copy.deepcopy(archive.collections[flavour])
                coll["id"] = cid
                items = copy.deepcopy(archive.items[flavour])
                for item in items:
                    item["collection"] = cid
                api.load([coll], items)
            report["load_s"] = round(time.perf_counter() - t0, 1)
            report[f"site_year_{YEAR}"] = site_year(work, server, api, archive)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
