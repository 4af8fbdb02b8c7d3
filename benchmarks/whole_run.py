"""Peak memory and time of a whole `sitewatch run` on one large site over several years.

Writes a folder of synthetic Sentinel-2 L2A scenes in the provider's file names
(``T52SDH_<date>T020000_B02.tif`` ...: 10 m bands, B11/B12/SCL at 20 m, COGs) over a square site
of ``--area-km2``: ``--looks`` distinct looks (fields, built ground, coal, water; cloud blocks
over a third of each), linked under ``--dates`` acquisition dates per year from June to
November for ``--years`` years. Then runs ``sitewatch -q run`` on it in a subprocess (a folder
source, the default recipe) and samples the resident memory of its whole process tree every
0.2 s: the peak of the sum is what the machine must hold.

    .venv/bin/python benchmarks/whole_run.py                         # 550 km2, 10 years
    .venv/bin/python benchmarks/whole_run.py --area-km2 10 --years 2 # a quick check

Prints one JSON line. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psutil
import rasterio
import yaml
from affine import Affine
from pyproj import Transformer

ROOT = Path(__file__).resolve().parents[1]
CRS = "EPSG:32652"
LEFT, TOP = 399_960.0, 4_300_020.0  # on Sentinel-2's 60 m lattice (x0 = 399960 in zone 52)
BANDS10 = ("B02", "B03", "B04", "B08")
BANDS20 = ("B11", "B12")
# Surface reflectance (B02, B03, B04, B08, B11, B12): bare/grass, built, coal, crops, water.
SURFACES = np.array(
    [
        (0.06, 0.08, 0.10, 0.20, 0.25, 0.18),
        (0.12, 0.13, 0.15, 0.20, 0.28, 0.24),
        (0.04, 0.04, 0.045, 0.05, 0.055, 0.05),
        (0.04, 0.07, 0.04, 0.40, 0.22, 0.12),
        (0.08, 0.07, 0.05, 0.03, 0.012, 0.011),
    ]
)


def write_cog(path: Path, data: np.ndarray, resolution: float) -> None:
    profile = {
        "driver": "COG", "dtype": data.dtype.name, "count": 1, "width": data.shape[1],
        "height": data.shape[0], "crs": CRS, "compress": "deflate", "blocksize": 512,
        "transform": Affine(resolution, 0, LEFT, 0, -resolution, TOP), "nodata": 0,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def write_looks(folder: Path, side: int, looks: int, seed: int) -> list[Path]:
    """``looks`` scenes (folders of band files) of a ``side`` x ``side`` px (10 m) square."""
    rng = np.random.default_rng(seed)
    block = 50  # 500 m patches of one surface
    n = math.ceil(side / block)
    kinds = rng.choice(len(SURFACES), size=(n, n), p=(0.45, 0.15, 0.05, 0.3, 0.05))
    surface = np.kron(kinds, np.ones((block, block), np.int8))[:side, :side]
    out = []
    for k in range(looks):
        look = folder / f"look{k}"
        look.mkdir(parents=True)
        clouds = np.kron(rng.random((n, n)) < 0.33, np.ones((block, block), bool))[:side, :side]
        for b, name in enumerate(BANDS10 + BANDS20):
            refl = SURFACES[surface, b] + rng.normal(0, 0.004, surface.shape)
            refl = np.where(clouds, 0.5, refl)
            dn = np.clip(refl * 10_000, 1, 65_535).astype(np.uint16)
            if name in BANDS20:
                write_cog(look / f"{name}.tif", dn[::2, ::2], 20.0)
            else:
                write_cog(look / f"{name}.tif", dn, 10.0)
        scl = np.where(clouds, 9, np.where(surface == 4, 6, 4)).astype(np.uint8)
        write_cog(look / "SCL.tif", scl[::2, ::2], 20.0)
        out.append(look)
    return out


def build_folder(root: Path, side: int, years: int, dates: int, looks: int) -> Path:
    """The scene folder: per date, links named as the provider names them to one look's files."""
    rendered = write_looks(root / "looks", side, looks, seed=1)
    scenes = root / "scenes"
    scenes.mkdir()
    n = 0
    for year in range(2016, 2016 + years):
        start, days = date(year, 6, 5), (date(year, 11, 25) - date(year, 6, 5)).days
        for i in range(dates):
            day = start + timedelta(days=round(i * days / max(dates - 1, 1)))
            stem = f"T52SDH_{day:%Y%m%d}T020000"
            look = rendered[n % looks]
            n += 1
            for name in (*BANDS10, *BANDS20, "SCL"):
                res = "10m" if name in BANDS10 else "20m"
                os.symlink(look / f"{name}.tif", scenes / f"{stem}_{name}_{res}.tif")
    return scenes


def site_geojson(path: Path, side: int, buffer_m: float) -> None:
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    inset = buffer_m + 1000.0  # the site's UTM box is a little rotated from the scene grid
    x0, y1 = LEFT + inset, TOP - inset
    x1, y0 = LEFT + side * 10.0 - inset, TOP - side * 10.0 + inset
    ring = [
        to_lonlat.transform(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))
    ]
    ring = [(round(lon, 6), round(lat, 6)) for lon, lat in ring]
    feature = {
        "type": "Feature",
        "properties": {"id": "big-site", "name": "Big site", "kind": "other",
                       "source": "benchmarks/whole_run.py (synthetic)"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))


def measure(cmd: list[str]) -> dict[str, float]:
    """Wall time and the peak resident memory (sum over the process tree, and the largest
    single process) of ``cmd``, sampled every 0.2 s, and the kernel's high-water mark of its
    largest process (``ru_maxrss``): exact, where sampling misses a spike shorter than 0.2 s
    (the terrain pooling's is ~0.1 s on a large site)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    peak_sum, peak_one = 0, 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            rss = [p.memory_info().rss for p in tree]
        except psutil.Error:
            continue
        peak_sum, peak_one = max(peak_sum, sum(rss)), max(peak_one, max(rss))
        time.sleep(0.2)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_rss_tree_gb": round(peak_sum / 1e9, 2),
        "peak_rss_one_process_gb": round(peak_one / 1e9, 2),
        # Linux reports kilobytes; the largest of the children this process waited for.
        "peak_rss_one_process_kernel_gb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9, 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--area-km2", type=float, default=550.0)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--dates", type=int, default=12, help="acquisition dates per year")
    parser.add_argument("--looks", type=int, default=6, help="distinct looks rendered")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=YAML",
        help="extra top-level config key, e.g. --set 'grid={chunk_px: 1024}'",
    )
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = parser.parse_args()

    side = 2 * math.ceil(math.sqrt(args.area_km2 * 1e6) / 20.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        scenes = build_folder(root, side, args.years, args.dates, args.looks)
        built_s = time.perf_counter() - t0
        site_geojson(root / "sites.geojson", side, buffer_m=200.0)
        config = {
            "name": "whole-run",
            "sites": str(root / "sites.geojson"),
            "years": {"start": 2016, "end": 2015 + args.years},
            "source": {"kind": "folder", "path": str(scenes), "processing_baseline": "02.09"},
            "cache_dir": str(root / "cache"),
            "limits": {"max_grid_pixels": 1_000_000_000, "max_site_area_km2": 100_000.0},
            "adjacent_zones": {"width_m": 0},
        }
        for item in args.set:
            key, _, value = item.partition("=")
            config[key] = yaml.safe_load(value)
        (root / "run.yaml").write_text(yaml.safe_dump(config))
        cmd = [sys.executable, "-m", "pipeline.cli", "-q", "run", str(root / "run.yaml"),
               "--out", str(root / "out"), "--workers", str(args.workers)]  # fmt: skip
        result = measure(cmd)
        print(json.dumps({
            "area_km2": args.area_km2, "grid_px": side * side, "years": args.years,
            "dates_per_year": args.dates, "workers": args.workers, "set": args.set,
            "build_s": round(built_s, 1), **result,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
