"""End to end (issue 11, part 2): one site-year through `sitewatch run` against the code a user
would otherwise write (pystac-client search, odc-stac load with Dask, SCL mask, xarray median),
both over HTTP on loopback. Prints a table and JSON; asserts nothing.

The site-year is synthetic, Sentinel-2 L2A as Earth Search v1 serves it: ``--scenes`` scenes
(default 24, every 3 days from 1 September, inside sitewatch's default season) of 6 bands + SCL
over a square site of ``--size`` x ``--size`` pixels at 10 m (default 1000: 10 km), as
Deflate COGs (512 px blocks, overviews) that cover the site plus 1 km on each side, the 10 m
bands at 10 m and SWIR and SCL at 20 m (their native pixels). Clouds fall in 500 m blocks, each
cloudy with probability 0.4 per scene (SCL 8 or 9, bright). The COGs are served by the counting
range server (tests/support/rangeserver.py), the items by a real STAC API (pgstac +
stac-fastapi-pgstac, tests/support/pgstac.py).

Each contender runs in a fresh subprocess (cold GDAL cache, nothing imported): its wall time
(interpreter start included), its peak RSS (the child process and its descendants, sampled with
psutil every 20 ms and summed over the tree, and ``ru_maxrss`` of the child itself), and the
bytes the range server sent it.

* ``odc-stac``: the user's code, :func:`user_code` below. Not clear: SCL 0 (no data), 3 (cloud
  shadow), 8, 9 (cloud) and 10 (cirrus), and DN 0 (no data) per band; no buffer around clouds.
  DN to reflectance with the item's scale and offset; per band median over time (skipna).
* ``sitewatch``: ``sitewatch -q --debug run`` on a config for the same site, year and STAC API
  (grid buffer 0, other keys at their defaults, one worker: one site-year), a fresh output
  folder and chip cache. Its grid snaps outward to 60 m (1002 x 1002 px for the default size;
  odc-stac loads 1000 x 1000). It does more than the median: SCL 0, 1, 8, 9, 10, 11 masked and
  clouds buffered by 150 m, offset checks, MAD, classification, change, trends and every export
  (COGs, GeoPackage, charts, report), and it caches every chip it fetches.

Run: .venv/bin/python benchmarks/end_to_end.py [--size 1000] [--scenes 24] [--repeat 1]
     [--workdir DIR (keeps and reuses the archive)] [--profile (cProfile of sitewatch, top costs)]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CRS = "EPSG:32652"
EPSG = 32652
# The site's upper-left corner: on the 60 m lattice of a Sentinel-2 tile (399960 + k * 60), so the
# 10 m and 20 m pixels of the files and both loaders' grids share one lattice.
SITE_LEFT, SITE_TOP = 400_020.0, 4_400_040.0
MARGIN_M = 1_000.0
YEAR = 2023
COLLECTION = "sentinel-2-l2a"
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
BAND_ID = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "swir16": "B11",
           "swir22": "B12", "scl": "SCL"}  # fmt: skip
NATIVE_M = {"blue": 10, "green": 10, "red": 10, "nir": 10, "swir16": 20, "swir22": 20, "scl": 20}
BOA_OFFSET_DN = 1000  # baseline 05.09: DN = 10000 * reflectance + 1000
SCALE, OFFSET = 1e-4, -0.1
CLOUD_BLOCK_M = 500.0
CLOUD_SHARE = 0.4
USER_NOT_CLEAR = (0, 3, 8, 9, 10)  # SCL no data, cloud shadow, cloud medium/high, cirrus
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


# ---- the synthetic site-year -------------------------------------------------------------------


def scene_days(n: int) -> list[date]:
    return [date(YEAR, 9, 1) + timedelta(days=3 * i) for i in range(n)]


def item_id(day: date) -> str:
    return f"S2B_52SDG_{day:%Y%m%d}_0_L2A"


def _field(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """A blocky smooth-ish surface in [0, 1): random cells upsampled, plus fine noise."""
    coarse = rng.random((math.ceil(shape[0] / cell) + 1, math.ceil(shape[1] / cell) + 1))
    up = np.kron(coarse, np.ones((cell, cell)))[: shape[0], : shape[1]]
    return np.asarray(0.8 * up + 0.2 * rng.random(shape))


def build_archive(root: Path, size_px: int, n_scenes: int, seed: int = 0) -> list[dict[str, Any]]:
    """Write the scenes' COGs under ``root/<item id>/`` and return the items (hrefs relative to
    ``root``, made absolute by :func:`with_base`)."""
    import rasterio
    from affine import Affine

    side_m = size_px * 10.0
    left, top = SITE_LEFT - MARGIN_M, SITE_TOP + MARGIN_M
    extent_m = side_m + 2 * MARGIN_M
    rng = np.random.default_rng(seed)
    base10 = int(extent_m / 10)
    ground = {b: 0.05 + 0.3 * _field(rng, (base10, base10), 37) for b in BANDS}
    land = (_field(rng, (base10 // 2, base10 // 2), 23) * 3).astype(np.uint8) + 4  # SCL 4, 5, 6
    block = round(CLOUD_BLOCK_M / 10)
    items = []
    for day in scene_days(n_scenes):
        blocks = rng.random((math.ceil(base10 / block),) * 2) < CLOUD_SHARE
        cloud10 = np.kron(blocks, np.ones((block, block), bool))[:base10, :base10]
        folder = root / item_id(day)
        folder.mkdir(parents=True, exist_ok=True)
        assets: dict[str, Any] = {}
        for key, res in NATIVE_M.items():
            step = res // 10
            cloud = cloud10[::step, ::step]
            if key == "scl":
                data = np.where(cloud, np.where(rng.random(cloud.shape) < 0.5, 8, 9), land)
                data = data.astype(np.uint8)
            else:
                refl = ground[key][::step, ::step] + rng.normal(0, 0.01, cloud.shape)
                refl = np.where(cloud, 0.5 + 0.1 * rng.random(cloud.shape), refl)
                dn = np.clip(np.round(refl * 10_000) + BOA_OFFSET_DN, 1, 65_535)
                data = dn.astype(np.uint16)
            transform = Affine(res, 0, left, 0, -res, top)
            path = folder / f"{key}.tif"
            with rasterio.open(
                path, "w", driver="COG", width=data.shape[1], height=data.shape[0], count=1,
                dtype=data.dtype.name, crs=CRS, transform=transform, nodata=0,
                compress="deflate", blocksize=512,
            ) as dst:  # fmt: skip
                dst.write(data, 1)
            band: dict[str, Any] = {"nodata": 0, "data_type": data.dtype.name,
                                    "spatial_resolution": res}  # fmt: skip
            if key != "scl":
                band.update(scale=SCALE, offset=OFFSET)
            assets[key] = {
                "href": f"{item_id(day)}/{key}.tif",
                "type": COG_TYPE,
                "title": f"{BAND_ID[key]} - {res}m",
                "proj:shape": list(data.shape),
                "proj:transform": [float(v) for v in transform[:6]],
                "raster:bands": [band],
                "roles": ["data"],
                **(
                    {"eo:bands": [{"name": BAND_ID[key], "common_name": key}]}
                    if key != "scl"
                    else {}
                ),
            }
        items.append(_item(day, assets, left, top, extent_m, float(cloud10.mean() * 100)))
    return items


def _item(
    day: date, assets: dict[str, Any], left: float, top: float, extent_m: float, cloud: float
) -> dict[str, Any]:
    from shapely.geometry import box, mapping

    footprint = _lonlat(box(left, top - extent_m, left + extent_m, top))
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": item_id(day),
        "collection": COLLECTION,
        "geometry": mapping(footprint),
        "bbox": list(footprint.bounds),
        "properties": {
            "datetime": f"{day:%Y-%m-%d}T02:15:00.000000Z",
            "platform": "sentinel-2b",
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": round(cloud, 2),
            "proj:epsg": EPSG,
            "s2:processing_baseline": "05.09",
            "s2:product_type": "S2MSI2A",
            "earthsearch:boa_offset_applied": False,
        },
        "links": [],
        "assets": assets,
    }


def _lonlat(geom: Any) -> Any:
    import shapely
    from pyproj import Transformer

    to_ll = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    return shapely.transform(
        shapely.segmentize(geom, 250.0),
        lambda xy: np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1])),
    )


def with_base(items: Sequence[dict[str, Any]], base: str) -> list[dict[str, Any]]:
    out = json.loads(json.dumps(list(items)))
    for item in out:
        for asset in item["assets"].values():
            asset["href"] = f"{base}/{asset['href']}"
    return out


def collection(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    times = sorted(i["properties"]["datetime"] for i in items)
    lon0 = min(i["bbox"][0] for i in items)
    lat0 = min(i["bbox"][1] for i in items)
    lon1 = max(i["bbox"][2] for i in items)
    lat1 = max(i["bbox"][3] for i in items)
    return {
        "type": "Collection",
        "stac_version": "1.1.0",
        "id": COLLECTION,
        "description": "Synthetic Sentinel-2 L2A site-year (Earth Search v1 layout), benchmark",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[lon0, lat0, lon1, lat1]]},
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "links": [],
    }


def site_square(size_px: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of the site in the UTM CRS."""
    side = size_px * 10.0
    return (SITE_LEFT, SITE_TOP - side, SITE_LEFT + side, SITE_TOP)


def write_sitewatch_config(
    work: Path, api_url: str, size_px: int, cache: Path, chunk_px: int | None = None
) -> Path:
    import yaml
    from shapely.geometry import box, mapping

    left, bottom, right, top = site_square(size_px)
    # 1 m inside the square, so that the lon/lat round trip cannot push an edge onto the next
    # 60 m of the snapped grid
    site = _lonlat(box(left + 1, bottom + 1, right - 1, top - 1))
    feature = {
        "type": "Feature",
        "properties": {
            "id": "bench-site",
            "name": "Benchmark site",
            "kind": "other",
            "source": "benchmarks/end_to_end.py",
        },
        "geometry": mapping(site),
    }
    (work / "sites.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [feature]})
    )
    config = {
        "name": "bench-end-to-end",
        "sites": str(work / "sites.geojson"),
        "years": {"start": YEAR, "end": YEAR},
        "source": {
            "kind": "stac-api",
            "url": api_url,
            "collections": [COLLECTION],
            "max_cloud_cover": 100,
        },
        "grid": {"resolution_m": 10, "buffer_m": 0, "chunk_px": chunk_px or 1024},
        "workers": 1,
        "cache_dir": str(cache),
    }
    path = work / "sitewatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ---- the contenders (run in a child process) ---------------------------------------------------


def user_code(api_url: str, size_px: int) -> dict[str, Any]:
    """What a user writes instead: search, odc-stac load with Dask, SCL mask, xarray median."""
    import odc.stac
    import pystac_client
    from shapely.geometry import box

    odc.stac.configure_rio(cloud_defaults=True)  # GDAL settings for COGs over HTTP
    left, bottom, right, top = site_square(size_px)
    bbox = _lonlat(box(left, bottom, right, top)).bounds
    catalog = pystac_client.Client.open(api_url)
    items = catalog.search(
        collections=[COLLECTION], bbox=bbox, datetime=f"{YEAR}-01-01/{YEAR}-12-31"
    ).item_collection()
    ds = odc.stac.load(
        items,
        bands=[*BANDS, "scl"],
        crs=CRS,
        resolution=10,
        x=(left, right),
        y=(bottom, top),
        chunks={"x": 512, "y": 512},
        groupby="solar_day",
        resampling={"scl": "nearest", "*": "bilinear"},
    )
    clear = ~ds["scl"].isin(USER_NOT_CLEAR)
    dn = ds[list(BANDS)].astype("float32")
    reflectance = (dn * np.float32(SCALE) + np.float32(OFFSET)).where(clear & (dn != 0))
    median = reflectance.chunk(time=-1).median("time", skipna=True).compute()
    blue = median["blue"].values
    return {
        "scenes": len(items),
        "grid": list(blue.shape),
        "composite_valid_share": round(float(np.isfinite(blue).mean()), 4),
    }


def sitewatch_code(config: Path, out: Path) -> dict[str, Any]:
    from pipeline.cli import main as cli_main

    code = cli_main(["-q", "--debug", "run", str(config), "--out", str(out)])
    if code != 0:
        raise SystemExit(f"sitewatch run exited with {code}")
    return {"exit_code": code}


def child(args: argparse.Namespace) -> None:
    """One contender in this (fresh) process; prints a JSON line of its results."""
    import resource

    t0 = time.perf_counter()
    if args.child == "odc-stac":
        result = user_code(args.api, args.size)
    else:
        result = sitewatch_code(Path(args.config), Path(args.out))
    result["work_s"] = round(time.perf_counter() - t0, 3)
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print("RESULT " + json.dumps(result), flush=True)


# ---- the parent: servers, children, measures ---------------------------------------------------


@contextlib.contextmanager
def tree_rss_peak(pid: int) -> Iterator[dict[str, float]]:
    """Sample the summed RSS of process ``pid`` and its descendants every 20 ms."""
    import psutil

    peak = {"mb": 0.0}
    stop = threading.Event()

    def sample() -> None:
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            total = 0
            try:
                for p in [proc, *proc.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        total += p.memory_info().rss
            except psutil.NoSuchProcess:
                break
            peak["mb"] = max(peak["mb"], total / 2**20)
            stop.wait(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def run_child(argv: list[str], server: Any, profile: Path | None = None) -> dict[str, Any]:
    server.reset()
    cmd = [sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += [str(Path(__file__).resolve()), *argv]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with tree_rss_peak(proc.pid) as peak:
        stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:2]} failed ({proc.returncode}):\n{stderr[-3000:]}")
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    stats = server.stats()
    result.update(
        wall_s=round(wall, 3),
        peak_rss_mb=round(peak["mb"], 1),
        http_bytes=int(stats["total_bytes"]),
        http_requests=len(stats["requests"]),
    )
    return result


def run_sitewatch(
    work: Path,
    api_url: str,
    size_px: int,
    server: Any,
    profile: Path | None = None,
    chunk_px: int | None = None,
) -> dict[str, Any]:
    """A cold `sitewatch run`: a fresh output folder and chip cache (a kept one would resume)."""
    out, cache = work / "sitewatch-out", work / "sitewatch-cache"
    for folder in (out, cache):
        shutil.rmtree(folder, ignore_errors=True)
    config = write_sitewatch_config(work, api_url, size_px, cache, chunk_px)
    argv = ["--child", "sitewatch", "--config", str(config), "--out", str(out)]
    return run_child(argv, server, profile=profile)


def profile_top(path: Path, n: int = 25) -> str:
    import io
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(str(path), stream=buf)
    stats.sort_stats("cumulative").print_stats(n)
    stats.sort_stats("tottime").print_stats(n)
    return buf.getvalue()


def machine() -> str:
    import psutil

    mem = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{len(os.sched_getaffinity(0))} cores, {mem:.0f} GiB, {platform.platform()}, "
        f"Python {platform.python_version()}, load average {load}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="site side in 10 m pixels")
    parser.add_argument("--scenes", type=int, default=24, help="scenes in the site-year")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender")
    parser.add_argument("--workdir", type=Path, help="keep the archive here (reused if built)")
    parser.add_argument("--profile", action="store_true", help="also profile a sitewatch run")
    parser.add_argument(
        "--chunk-px", type=int, help="sitewatch's grid.chunk_px (default 1024: the site is whole)"
    )
    parser.add_argument("--child", choices=["odc-stac", "sitewatch"], help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    if args.scenes > 25:
        parser.error("--scenes: at most 25 (every 3 days inside the default season window)")

    from support.pgstac import PgstacServer
    from support.rangeserver import RangeServer

    report: dict[str, Any] = {
        "machine": machine(),
        "command": " ".join(
            [".venv/bin/python", "benchmarks/end_to_end.py", *(argv or sys.argv[1:])]
        ),
        "size_px": args.size,
        "scenes": args.scenes,
    }
    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="sitewatch-e2e-"))
        )
        archive = work / f"archive-{args.size}-{args.scenes}"
        done = archive / "items.json"
        t0 = time.perf_counter()
        if done.exists():
            items = json.loads(done.read_text())
        else:
            items = build_archive(archive, args.size, args.scenes)
            done.write_text(json.dumps(items))
        report["archive_build_s"] = round(time.perf_counter() - t0, 1)
        report["archive_mb"] = round(sum(p.stat().st_size for p in archive.rglob("*.tif")) / 1e6, 1)
        server = stack.enter_context(RangeServer(archive))
        api = stack.enter_context(PgstacServer())
        served = with_base(items, server.url)
        api.load([collection(served)], served)
        runs: dict[str, list[dict[str, Any]]] = {"odc-stac": [], "sitewatch": []}
        for _ in range(args.repeat):
            runs["odc-stac"].append(
                run_child(
                    ["--child", "odc-stac", "--api", api.url, "--size", str(args.size)], server
                )
            )
            runs["sitewatch"].append(
                run_sitewatch(work, api.url, args.size, server, chunk_px=args.chunk_px)
            )
        report["runs"] = runs
        if args.profile:
            prof = work / "sitewatch.prof"
            run_sitewatch(work, api.url, args.size, server, profile=prof)
            report["profile"] = profile_top(prof)
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    runs = report["runs"]

    def med(name: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[name]))

    profile = report.pop("profile", None)
    print(json.dumps(report, indent=2))
    if profile:
        print(profile)
    print(f"\n{report['machine']}\n{report['command']}\n")
    print("| | wall (s), median (best) | peak RSS (MB) | bytes read (MB) | requests |")
    print("|---|---:|---:|---:|---:|")
    for name in ("odc-stac", "sitewatch"):
        best = min(r["wall_s"] for r in runs[name])
        print(
            f"| {name} | {med(name, 'wall_s'):.1f} ({best:.1f}) | "
            f"{med(name, 'peak_rss_mb'):.0f} | {med(name, 'http_bytes') / 1e6:.1f} | "
            f"{med(name, 'http_requests'):.0f} |"
        )
    print(
        f"| sitewatch / odc-stac | {med('sitewatch', 'wall_s') / med('odc-stac', 'wall_s'):.2f}x | "
        f"{med('sitewatch', 'peak_rss_mb') / med('odc-stac', 'peak_rss_mb'):.2f}x | "
        f"{med('sitewatch', 'http_bytes') / med('odc-stac', 'http_bytes'):.2f}x | |"
    )


if __name__ == "__main__":
    main()
