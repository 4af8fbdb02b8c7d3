"""Scaling: time and peak memory of site-years against site area and number of years, by chunks
(``pipeline.chunks``) and on the whole grid where it fits.

Each site is a square of synthetic Sentinel-2 L2A scenes written here as local COGs (10 m
bands at 10 m, SWIR and SCL at 20 m, cloud blocks over a third of each scene), a few distinct
looks reused on every date, ``--scenes`` dates a year from June to November (the read window).
Every (area, years, path) runs in a fresh process that computes its site-years one after the
other, as a worker does, and keeps only small records: its peak RSS is the worker's.

    .venv/bin/python benchmarks/scaling.py                      # short: 10 km2, 1 year
    .venv/bin/python benchmarks/scaling.py --areas 10 100 550 --years 1 10 --scenes 30

Prints one JSON line per run and a table at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import box

from pipeline.grid import Grid, reproject_geometry
from pipeline.masking import MaskRules
from pipeline.recipe import RecipeParams
from pipeline.sites import Site
from pipeline.sources.base import Asset, Scene
from pipeline.sources.read import ReadSettings
from pipeline.tasks import SiteYearTask, observe

CRS = "EPSG:32652"
LEFT, TOP = 400_020.0, 4_300_020.0  # on the 60 m lattice
LOOKS = 6  # distinct scenes written per site; the dates reuse them
BANDS10 = ("blue", "green", "red", "nir")
BANDS20 = ("swir16", "swir22")
SURFACES = np.array(
    [
        (0.06, 0.08, 0.10, 0.20, 0.25, 0.18),  # bare / grass
        (0.12, 0.13, 0.15, 0.20, 0.28, 0.24),  # built
        (0.04, 0.04, 0.045, 0.05, 0.055, 0.05),  # coal
        (0.04, 0.07, 0.04, 0.40, 0.22, 0.12),  # crops
        (0.08, 0.07, 0.05, 0.03, 0.012, 0.011),  # water
    ]
)


def side_px(area_km2: float) -> int:
    """Pixels (10 m) a side of a square site of ``area_km2``, even (20 m assets)."""
    return 2 * math.ceil(math.sqrt(area_km2 * 1e6) / 20)


def write(path: Path, data: np.ndarray, res: float) -> str:
    profile = {
        "driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1,
        "dtype": data.dtype.name, "crs": CRS, "transform": Affine(res, 0, LEFT, 0, -res, TOP),
        "nodata": 0, "compress": "DEFLATE",
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return str(path)


def write_looks(folder: Path, n: int) -> list[dict[str, str]]:
    """``LOOKS`` scenes of ``n`` x ``n`` px: surfaces in 200 m blocks, clouds in 500 m blocks."""
    rng = np.random.default_rng(7)
    blocks = -(-n // 20)
    kind = np.kron(rng.integers(0, len(SURFACES), (blocks, blocks)), np.ones((20, 20), int))
    kind = kind[:n, :n]
    looks = []
    for v in range(LOOKS):
        refl = SURFACES[kind].transpose(2, 0, 1) + rng.normal(0, 0.005, (6, n, n))
        cloud_blocks = -(-n // 50)
        cloudy = np.kron(rng.random((cloud_blocks, cloud_blocks)) < 0.33, np.ones((50, 50), bool))
        cloudy = cloudy[:n, :n]
        refl[:, cloudy] = 0.45
        dn = np.clip(np.round(refl * 1e4 + 1000), 1, 65535).astype(np.uint16)
        hrefs = {}
        for b, band in enumerate(BANDS10):
            hrefs[band] = write(folder / f"v{v}_{band}.tif", dn[b], 10.0)
        for b, band in enumerate(BANDS20, start=4):
            coarse = dn[b].reshape(n // 2, 2, n // 2, 2).mean(axis=(1, 3)).round()
            hrefs[band] = write(folder / f"v{v}_{band}.tif", coarse.astype(np.uint16), 20.0)
        scl = np.where(cloudy, 9, np.where(kind == 4, 6, 5)).astype(np.uint8)[::2, ::2]
        hrefs["scl"] = write(folder / f"v{v}_scl.tif", scl, 20.0)
        looks.append(hrefs)
        del refl, dn
    return looks


def tasks(
    looks: list[dict[str, str]], n: int, years: int, scenes: int, chunk_px: int | None
) -> list[SiteYearTask]:
    grid = Grid(CRS, Affine(10, 0, LEFT, 0, -10, TOP), n, n)
    outline = reproject_geometry(box(*grid.bounds), CRS, "EPSG:4326")
    site = Site("bench", "Bench", "mine", outline, "benchmark")
    out = []
    for year in range(2015, 2015 + years):
        start, days = date(year, 6, 1), (date(year, 11, 30) - date(year, 6, 1)).days
        year_scenes = []
        for i in range(scenes):
            day = start + timedelta(days=round(i * days / max(scenes - 1, 1)))
            hrefs = looks[i % len(looks)]
            props = {"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": False}
            when = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
            assets = {k: Asset(h) for k, h in hrefs.items()}
            year_scenes.append(
                Scene(f"S2_{day:%Y%m%d}", "sentinel-2-l2a", when, assets, props, crs=CRS)
            )
        out.append(
            SiteYearTask(
                site,
                year,
                grid,
                tuple(year_scenes),
                RecipeParams(),
                MaskRules(),
                ReadSettings(),
                0.0,
                None,
                chunk_px,
            )
        )
    return out


def run_one(folder: Path, n: int, years: int, scenes: int, chunk_px: int | None) -> dict[str, Any]:
    """In this process: the site-years one after the other, keeping small records only."""
    looks = json.loads((folder / "looks.json").read_text())
    t0 = time.perf_counter()
    footprint_px = []
    for task in tasks(looks, n, years, scenes, chunk_px):
        result = observe(task)
        footprint_px.append(int(result.footprint.sum()))
        del result
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_mb),
        "footprint_px": footprint_px,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--areas", type=float, nargs="+", default=[10.0])
    parser.add_argument("--years", type=int, nargs="+", default=[1])
    parser.add_argument("--scenes", type=int, default=12, help="dates a year")
    parser.add_argument("--chunk-px", type=int, default=1024)
    parser.add_argument("--whole-max-km2", type=float, default=100.0,
                        help="also run the whole-grid path for sites up to this area")  # fmt: skip
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--one", nargs=4, metavar=("FOLDER", "N", "YEARS", "CHUNK"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.one:
        folder, n, years, chunk = args.one
        chunk_px = None if chunk == "none" else int(chunk)
        print(json.dumps(run_one(Path(folder), int(n), int(years), args.scenes, chunk_px)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="sitewatch-scaling-"))
    rows = []
    for area in args.areas:
        n = side_px(area)
        folder = work / f"{area:g}km2"
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "looks.json").is_file():
            t0 = time.perf_counter()
            (folder / "looks.json").write_text(json.dumps(write_looks(folder, n)))
            print(f"wrote {LOOKS} looks of {n} x {n} px in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr)  # fmt: skip
        paths: list[int | None] = [args.chunk_px]
        if area <= args.whole_max_km2:
            paths.append(None)
        for years in args.years:
            for chunk_px in paths:
                cmd = [sys.executable, __file__, "--scenes", str(args.scenes), "--one",
                       str(folder), str(n), str(years), str(chunk_px or "none")]  # fmt: skip
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                row = {"area_km2": area, "px": n * n, "years": years, "scenes": args.scenes,
                       "chunk_px": chunk_px, **json.loads(out.strip().splitlines()[-1])}  # fmt: skip
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(
        "\n| area km2 | pixels | years | scenes/yr | path | time s | s per site-year | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        path = f"chunks {r['chunk_px']}" if r["chunk_px"] else "whole grid"
        print(f"| {r['area_km2']:g} | {r['px']:,} | {r['years']} | {r['scenes']} | {path} | "
              f"{r['seconds']} | {r['seconds'] / r['years']:.1f} | {r['peak_rss_mb']} |")  # fmt: skip


if __name__ == "__main__":
    main()
