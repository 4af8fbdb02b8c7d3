"""Building a scenario on disk: render every site-year (optionally in a process pool), write one
COG per asset, then the STAC catalog, the truth files and ``scenario.json``.

Layout of a build: ``catalog.json`` -> ``sentinel-2-l2a/collection.json`` -> one folder per item
with its JSON and one COG per asset (and ``landsat-c2-l2/`` alike in the ``landsat_until`` hard
case); ``truth/<site_id>.geojson``; ``scenario.json``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS

from pipeline.errors import SourceError
from pipeline.executors import open_executor, run_unordered
from pipeline.export.rasters import GDAL_WRITE_ERRORS, gdal_write_error
from pipeline.sources.synthetic.params import GENERATOR_VERSION, ScenarioParams
from pipeline.sources.synthetic.render import asset_grid, render_scenes
from pipeline.sources.synthetic.schedule import acquisition_dates
from pipeline.sources.synthetic.stac import (
    COLLECTION_ID,
    LANDSAT_COLLECTION_ID,
    item_dict,
    item_id,
    write_catalog,
)
from pipeline.sources.synthetic.truth import truth_text

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Build progress callback: (scenes written, scenes in total)."""


def _write_cog(
    path: Path, array: NDArray[Any], transform: Affine, crs: CRS, nodata: int = 0
) -> None:
    try:
        _write_cog_file(path, array, transform, crs, nodata)
    except GDAL_WRITE_ERRORS as exc:  # a full or failing cache disk: an OSError naming the file
        raise gdal_write_error(exc, path, array.nbytes) from None


def _write_cog_file(
    path: Path, array: NDArray[Any], transform: Affine, crs: CRS, nodata: int
) -> None:
    h, w = array.shape
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=w,
        height=h,
        count=1,
        dtype=array.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
        compress="deflate",
        predictor=2,
        # One tile for these small chips: the default 512 tile costs time for nothing.
        blocksize=256 if max(h, w) <= 256 else 512,
    ) as dst:
        dst.write(array, 1)


@dataclass(frozen=True)
class _Unit:
    """One (site, calendar year) of work: its scenes are rendered and written together."""

    params: ScenarioParams
    site_id: str
    year: int
    dates: tuple[date, ...]
    collection_dir: str


def _build_unit(unit: _Unit) -> list[dict[str, Any]]:
    """Render and write every scene of one site-year; return the item dicts (main process saves)."""
    items = []
    with rasterio.Env():
        for assets, meta in render_scenes(unit.params, unit.site_id, unit.dates):
            collection_dir = Path(unit.collection_dir)
            if meta.landsat:  # the landsat_until hard case: items of their own collection
                collection_dir = collection_dir.with_name(LANDSAT_COLLECTION_ID)
            folder = collection_dir / item_id(unit.site_id, meta.day, meta.platform)
            folder.mkdir(parents=True)
            crs = CRS.from_string(meta.grid.crs)
            grids = {}
            for key, array in assets.items():
                grid = asset_grid(meta.grid, key, meta.landsat)
                if array.shape != grid.shape:  # the item would describe another lattice
                    raise SourceError(f"{folder.name} {key}: {array.shape} != grid {grid.shape}")
                # Landsat QA_PIXEL marks fill with 1 (bit 0), as USGS declares it.
                nodata = 1 if key == "qa_pixel" else 0
                _write_cog(folder / f"{key}.tif", array, grid.transform, crs, nodata)
                grids[key] = grid
            items.append(item_dict(meta, grids))
    return items


def build_scenario(
    params: ScenarioParams,
    root: Path,
    progress: Progress | None = None,
    *,
    workers: int | None = None,
) -> Path:
    """Write the scenario into ``root`` (which must be empty or absent); return catalog.json.

    Layout: ``catalog.json`` -> ``sentinel-2-l2a/collection.json`` -> one folder per item with its
    JSON and one COG per asset; ``truth/<site_id>.geojson``; ``scenario.json`` (the parameters).
    ``workers`` > 1 renders site-years in that many processes (None: up to 2 for a large build);
    the bytes written do not depend on it.
    """
    # Absolute: pystac's normalize_hrefs resolves a relative root against the wrong folder.
    root = Path(root).resolve()
    if root.exists() and any(root.iterdir()):
        raise SourceError(f"{root}: scenario folder is not empty; give a new or empty folder")
    collection_dir = root / COLLECTION_ID
    collection_dir.mkdir(parents=True, exist_ok=True)
    units = [
        _Unit(params, s, y, tuple(acquisition_dates(params, s, y)), str(collection_dir))
        for s in params.sites
        for y in params.years
    ]
    total = sum(len(u.dates) for u in units)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if total >= 100 else 1
    logger.info("building synthetic scenario: %d scenes into %s (%d workers)", total, root, workers)
    results: dict[int, list[dict[str, Any]]] = {}
    done = 0
    if progress:
        progress(0, total)
    # The run's executor seam, so that a Ctrl-C during the build stops it with the run's one line.
    with open_executor(workers, start_method="spawn") as pool:
        built = (
            enumerate(map(_build_unit, units))
            if pool is None
            else run_unordered(pool, _build_unit, [(unit,) for unit in units])
        )
        for i, unit_items in built:
            results[i] = unit_items
            done += len(units[i].dates)
            if progress:
                progress(done, total)
    items = [item for i in range(len(units)) for item in results[i]]
    items.sort(key=lambda d: (d["properties"]["datetime"], d["id"]))
    catalog_path = write_catalog(params, root, items)
    truth_dir = root / "truth"
    truth_dir.mkdir()
    for site_id in params.sites:
        text = truth_text(site_id, params.years, params)
        (truth_dir / f"{site_id}.geojson").write_text(text, encoding="utf-8")
    summary = {
        "generator_version": GENERATOR_VERSION,
        "params": params.model_dump(mode="json"),
        "scenes": total,
        "truth": {s: f"truth/{s}.geojson" for s in params.sites},
    }
    (root / "scenario.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return catalog_path
