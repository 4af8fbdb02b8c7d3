"""Orchestration: wires the stages for a whole run. The only module that reads the run config.

A run is (site, year) tasks -> per-site analysis -> export:

* ``observe_site_year``: search the season window, read every scene onto the site grid (a bad
  scene is skipped and recorded), mask, composite, classify. Widens the window when the median
  pixel has too few clear observations, and says so.
* ``analyse_site``: footprint and coal per year, change between consecutive years and first vs
  last, polygons, areas with their edge uncertainty.
* ``export_run``: GeoJSON, CSV, COGs, accuracy and the manifest, all written atomically.

Site-year tasks are independent: with ``workers > 1`` they run in a process pool, and results are
gathered in (site, year) order so outputs do not depend on scheduling. Each finished site-year is
kept in ``<out>/.work`` so a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline import __version__, accuracy, boundaries, trends
from pipeline.bands import BANDS
from pipeline.change import mask_change
from pipeline.classify import (
    coal_frequency,
    drop_thin_regions,
    footprint_mask,
    greenness,
    grow_mixed_edges,
)
from pipeline.composite import median_composite
from pipeline.config import RunConfig
from pipeline.errors import SceneReadError, SitewatchError
from pipeline.export.atomic import atomic_write_bytes
from pipeline.export.run_outputs import export_run
from pipeline.grid import Grid, reproject_geometry
from pipeline.masking import clear_from_scl
from pipeline.results import (
    ChangeMetrics,
    RunResult,
    SceneRecord,
    SiteAnalysis,
    SiteYear,
    YearMetrics,
)
from pipeline.sites import Site, load_sites
from pipeline.sources.base import SceneSource
from pipeline.sources.catalog import StaticCatalogSource
from pipeline.sources.read import read_scene
from pipeline.sources.synthetic import SyntheticSource

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
Progress = Callable[[str, int, int], None]
"""Progress callback: (task description, done, total)."""

WORK_DIR = ".work"


def _no_progress(_task: str, _done: int, _total: int) -> None:
    return None


# --------------------------------------------------------------------------------------------
# Per (site, year)


def analysis_area(site: Site, grid: Grid, buffer_m: float) -> BoolArray:
    """Pixels whose centre lies in the buffered site: the area every number refers to."""
    geom = site.geometry_in(grid.crs).buffer(buffer_m)
    return boundaries.rasterize([geom], grid.transform, grid.shape)


def observe_site_year(
    site: Site, grid: Grid, year: int, source: SceneSource, config: RunConfig
) -> SiteYear:
    """Search, read, mask, composite and classify one site-year.

    Scenes are read once, from the start of the greenness period to the end of the widened
    window; the season window selects the composite's observations and is widened in memory
    when the median pixel has too few clear ones.
    """
    area = analysis_area(site, grid, config.grid.buffer_m)
    dilation_px = round(config.masking.cloud_dilation_m / grid.resolution)
    fp_rule = config.classify.footprint
    green_start = config.season.day(year, fp_rule.green_from)
    wide_start, wide_end = config.season.window(year, widened=True)
    observed, skipped = _read_scenes(
        site, grid, source, min(green_start, wide_start), wide_end, config, dilation_px
    )
    for widened in (False, True):
        start, end = config.season.window(year, widened)
        in_season = [o for o in observed if start <= o.day <= end]
        clear_count = sum((o.clear for o in in_season), np.zeros(grid.shape, int))
        if np.median(clear_count[area]) >= config.season.min_clear_observations or widened:
            break
        logger.info(
            "%s %d: median clear observations %s < %d in %s..%s; widening the window",
            site.id, year, np.median(clear_count[area]), config.season.min_clear_observations,
            start, end,
        )  # fmt: skip
    window = (start.isoformat(), end.isoformat())
    green_obs = [o for o in observed if green_start <= o.day <= end]
    records = tuple(
        sorted(
            [replace(o.record, role="season" if start <= o.day else "greenness") for o in green_obs]
            + [
                replace(r, role="season" if start <= d else "greenness")
                for d, r in skipped
                if d <= end
            ],
            key=lambda r: (r.datetime, r.scene_id),
        )
    )
    if not in_season:
        empty = np.zeros(grid.shape, bool)
        return SiteYear(
            site.id, year, window, widened, records, None, None, empty, empty, empty, 0.0, 0.0
        )

    stack = np.stack([o.reflectance for o in in_season])
    clear = np.stack([o.clear for o in in_season])
    green = greenness(
        np.stack([o.reflectance for o in green_obs]),
        np.stack([o.clear for o in green_obs]),
        fp_rule.green_percentile,
    )

    composite = median_composite(stack, clear)
    coal_rule = config.classify.coal
    coal = coal_frequency(stack, clear, **_coal_thresholds(config))
    valid = area & (composite.clear_count > 0)
    min_px = boundaries.min_pixels_for_area(
        config.boundaries.min_mapping_unit_ha, grid.pixel_area_ha
    )
    coal_core = drop_thin_regions(
        coal.mask(coal_rule.min_frequency, coal_rule.min_observations) & valid,
        coal_rule.opening_px,
    )
    coal_mask = boundaries.remove_small_regions(
        grow_mixed_edges(coal_core, composite.reflectance, min_fraction=coal_rule.edge_fraction)
        & valid,
        min_px,
    )
    footprint = footprint_mask(
        composite.reflectance,
        green,
        **fp_rule.model_dump(exclude={"green_percentile", "green_from", "edge_fraction"}),
    )
    footprint = grow_mixed_edges(
        footprint, composite.reflectance, min_fraction=fp_rule.edge_fraction
    )
    footprint = boundaries.remove_small_regions((footprint | coal_mask) & valid, min_px)
    return SiteYear(
        site.id, year, window, widened, records, composite, coal, footprint, coal_mask, valid,
        median_clear=float(np.median(composite.clear_count[area])),
        coverage=round(float(valid.sum()) / max(int(area.sum()), 1), 4),
    )  # fmt: skip


def _coal_thresholds(config: RunConfig) -> dict[str, float]:
    rule = config.classify.coal.model_dump(
        exclude={"min_frequency", "min_observations", "edge_fraction", "opening_px"}
    )
    return {k: float(v) for k, v in rule.items()}


@dataclass(frozen=True)
class _Observed:
    """A scene read for a site-year: its provenance record, pixels and clear mask."""

    day: date
    record: SceneRecord
    reflectance: NDArray[np.float32]
    clear: BoolArray


def _read_scenes(
    site: Site,
    grid: Grid,
    source: SceneSource,
    start: date,
    end: date,
    config: RunConfig,
    dilation_px: int,
) -> tuple[list[_Observed], list[tuple[date, SceneRecord]]]:
    """Every scene over ``site`` in [start, end] on ``grid`` with its clear mask, and the scenes
    that could not be read with the reason (one bad scene never sinks a run)."""
    observed: list[_Observed] = []
    skipped: list[tuple[date, SceneRecord]] = []
    for scene in source.search(site, start, end):
        when = scene.datetime.isoformat()
        try:
            obs = read_scene(scene, grid, BANDS)
        except SceneReadError as exc:
            logger.warning("skipping %s", exc)
            skipped.append((scene.date, SceneRecord(scene.id, when, skipped=exc.reason)))
            continue
        clear = clear_from_scl(
            obs.scl, config.masking.scl_masked, config.masking.scl_dilated, dilation_px
        ) & np.isfinite(obs.reflectance).all(axis=0)
        record = SceneRecord(
            scene.id,
            when,
            offset_dn=obs.radiometry.offset_dn,
            radiometry=obs.radiometry.reason,
            clear_fraction=round(float(clear.mean()), 4),
        )
        observed.append(_Observed(scene.date, record, obs.reflectance, clear))
    return observed, skipped


# --------------------------------------------------------------------------------------------
# Per site


def analyse_site(
    site: Site, grid: Grid, years: Sequence[SiteYear], config: RunConfig
) -> SiteAnalysis:
    """Areas, polygons and year-to-year change for one site."""
    px = grid.pixel_area_ha
    min_px = boundaries.min_pixels_for_area(config.boundaries.min_mapping_unit_ha, px)
    metrics = []
    for sy in years:
        metrics.append(
            YearMetrics(
                sy.year,
                float(sy.footprint.sum()) * px,
                trends.edge_uncertainty_ha(sy.footprint, grid.resolution),
                float(sy.coal_mask.sum()) * px,
                trends.edge_uncertainty_ha(sy.coal_mask, grid.resolution),
                tuple(boundaries.vectorize(sy.footprint, grid.transform, min_px)),
                tuple(boundaries.vectorize(sy.coal_mask, grid.transform, min_px)),
            )
        )
    observed = [i for i, sy in enumerate(years) if sy.composite is not None]
    pairs = list(itertools.pairwise(observed))
    if len(observed) > 2:
        pairs.append((observed[0], observed[-1]))
    changes = []
    for i, j in pairs:
        a, b = years[i], years[j]
        valid = a.valid & b.valid
        fp = mask_change(a.footprint, b.footprint, valid, config.change.opening_px)
        coal = mask_change(a.coal_mask, b.coal_mask, valid, config.change.opening_px)
        added = boundaries.remove_small_regions(fp.added, min_px)
        removed = boundaries.remove_small_regions(fp.removed, min_px)
        ma, mb = metrics[i], metrics[j]
        changes.append(
            ChangeMetrics(
                a.year,
                b.year,
                float(added.sum()) * px,
                float(removed.sum()) * px,
                float(boundaries.remove_small_regions(coal.added, min_px).sum()) * px,
                float(boundaries.remove_small_regions(coal.removed, min_px).sum()) * px,
                trends.significant_change(
                    ma.footprint_ha,
                    trends.se_from_half_width(ma.footprint_pm_ha),
                    mb.footprint_ha,
                    trends.se_from_half_width(mb.footprint_pm_ha),
                ),
                tuple(boundaries.vectorize(added, grid.transform, min_px)),
                tuple(boundaries.vectorize(removed, grid.transform, min_px)),
            )
        )
    area = analysis_area(site, grid, config.grid.buffer_m)
    return SiteAnalysis(
        site, grid, float(area.sum()) * px, tuple(years), tuple(metrics), tuple(changes)
    )


def score_against_truth(
    analysis: SiteAnalysis, truth: dict[int, Any], min_clear: int
) -> dict[str, Any]:
    """Footprint IoU and area errors per year, false expansion where truth is unchanged, and a
    summary over the years with enough clear observations (the others are listed, not hidden:
    a year seen once or twice is flagged in every output, and its coal area is a lower bound)."""
    grid = analysis.grid
    per_year: dict[str, Any] = {}
    truth_masks: dict[int, tuple[BoolArray, BoolArray]] = {}
    for sy, m in zip(analysis.years, analysis.metrics, strict=True):
        t = truth.get(sy.year)
        if t is None or sy.composite is None:
            continue
        fp_true, coal_true = (
            boundaries.rasterize(
                [reproject_geometry(g, "EPSG:4326", grid.crs)], grid.transform, grid.shape
            )
            for g in (t.footprint, t.coal)
        )
        truth_masks[sy.year] = (fp_true, coal_true)
        scores = accuracy.binary_scores(sy.footprint, fp_true & sy.valid, sy.valid)
        per_year[str(sy.year)] = {
            "median_clear_obs": sy.median_clear,
            "sufficient_data": sy.median_clear >= min_clear,
            "footprint_iou": round(scores.iou, 4),
            "footprint_f1": round(scores.f1, 4),
            "footprint_area_ha": round(m.footprint_ha, 4),
            "footprint_true_area_ha": round(t.footprint_area_ha, 4),
            "footprint_area_error": _round(
                accuracy.area_error(m.footprint_ha, t.footprint_area_ha)
            ),
            "coal_area_ha": round(m.coal_ha, 4),
            "coal_true_area_ha": round(t.coal_area_ha, 4),
            "coal_area_error": _round(accuracy.area_error(m.coal_ha, t.coal_area_ha)),
        }
    false_expansion: dict[str, float] = {}
    for c in analysis.changes:
        # Where truth did not change between the two years, every added hectare is false.
        if (
            c.year_from in truth_masks
            and c.year_to in truth_masks
            and np.array_equal(truth_masks[c.year_from][0], truth_masks[c.year_to][0])
        ):
            false_expansion[f"{c.year_from}-{c.year_to}"] = round(c.added_ha / analysis.area_ha, 5)
    sufficient = [y for y in per_year.values() if y["sufficient_data"]]
    summary = {
        "years_scored": len(sufficient),
        "years_with_too_few_clear_observations": [
            int(k) for k, y in per_year.items() if not y["sufficient_data"]
        ],
        "min_footprint_iou": min((y["footprint_iou"] for y in sufficient), default=None),
        "max_abs_footprint_area_error": _max_abs(y["footprint_area_error"] for y in sufficient),
        "max_abs_coal_area_error": _max_abs(y["coal_area_error"] for y in sufficient),
        "max_false_expansion_share": max(false_expansion.values(), default=None),
    }
    return {"summary": summary, "years": per_year, "false_expansion_share": false_expansion}


def _max_abs(values: Iterable[float | None]) -> float | None:
    present = [abs(v) for v in values if v is not None]
    return max(present) if present else None


def _round(value: float, digits: int = 4) -> float | None:
    return None if not np.isfinite(value) else round(float(value), digits)


# --------------------------------------------------------------------------------------------
# Whole run


TruthLookup = Callable[[str], dict[int, Any]]


def make_source(
    config: RunConfig, progress: Progress = _no_progress
) -> tuple[SceneSource, TruthLookup | None]:
    """The configured scene source, indexed and ready to search, and the truth lookup when the
    source has truth. A synthetic scenario is built (or found in the cache) here, with progress,
    and searched through its static catalog, which is what worker processes receive."""
    if config.source.kind == "synthetic":
        scenario = SyntheticSource(
            config.source.scenario,
            config.cache_dir,
            workers=config.workers,
            progress=lambda done, total: progress("building imagery", done, total),
        )
        return StaticCatalogSource(scenario.catalog_path), scenario.truth
    return StaticCatalogSource(config.source.catalog), None


def _task_key(config: RunConfig, site: Site, year: int) -> str:
    text = f"{__version__}|{config.hash()}|{site.id}|{year}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _observe_cached(
    work: Path, key: str, site: Site, grid: Grid, year: int, source: SceneSource, config: RunConfig
) -> SiteYear:
    path = work / f"{site.id}-{year}-{key}.pkl"
    if path.exists():
        try:
            with path.open("rb") as fh:
                cached: SiteYear = pickle.load(fh)
            return cached
        except Exception:  # a truncated or stale pickle must never sink a run: recompute
            logger.warning("ignoring unreadable resume file %s", path)
    result = observe_site_year(site, grid, year, source, config)
    atomic_write_bytes(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return result


def run(
    config: RunConfig,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    sites: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
) -> RunResult:
    """Run the whole pipeline for ``config``; outputs go to ``out_dir`` (default from config)."""
    report = progress or _no_progress
    out = (Path(out_dir) if out_dir is not None else config.output_dir / config.name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / WORK_DIR
    site_list = load_sites(config.sites, only=sites if sites is not None else config.site_ids)
    year_list = sorted(set(years)) if years is not None else config.years.all()
    bad_years = [y for y in year_list if y not in config.years.all()]
    if bad_years:
        raise SitewatchError(
            f"years {bad_years} outside the config's years {config.years.start}..{config.years.end}"
        )

    source, truth_of = make_source(config, report)

    grids = {s.id: s.grid(config.grid.resolution_m, config.grid.buffer_m) for s in site_list}
    tasks = [(s, y) for s in site_list for y in year_list]
    observed: dict[tuple[str, int], SiteYear] = {}
    for n, ((site, year), result) in enumerate(
        _map_tasks(tasks, grids, source, config, work), start=1
    ):
        observed[(site.id, year)] = result
        report("site-years", n, len(tasks))

    results = RunResult(out, config)
    scores: dict[str, Any] = {}
    for i, site in enumerate(site_list, start=1):
        site_years = [observed[(site.id, y)] for y in year_list]
        analysis = analyse_site(site, grids[site.id], site_years, config)
        if truth_of is not None:
            acc = score_against_truth(
                analysis, truth_of(site.id), config.season.min_clear_observations
            )
            analysis = replace(analysis, accuracy=acc)
            scores[site.id] = acc
        results.sites.append(analysis)
        report("analysing sites", i, len(site_list))
    results.accuracy = scores or None
    export_run(results, source, progress=report)
    return results


def _map_tasks(
    tasks: Sequence[tuple[Site, int]],
    grids: dict[str, Grid],
    source: SceneSource,
    config: RunConfig,
    work: Path,
) -> Iterator[tuple[tuple[Site, int], SiteYear]]:
    keys = [_task_key(config, s, y) for s, y in tasks]
    if config.workers <= 1:
        for (site, year), key in zip(tasks, keys, strict=True):
            yield (
                (site, year),
                _observe_cached(work, key, site, grids[site.id], year, source, config),
            )
        return
    # The platform's default start method: spawn would force every analyst's script to guard
    # its entry point with `if __name__ == "__main__"`. Workers open their own datasets.
    with ProcessPoolExecutor(max_workers=config.workers) as pool:
        futures: list[Future[SiteYear]] = [
            pool.submit(_observe_cached, work, key, site, grids[site.id], year, source, config)
            for (site, year), key in zip(tasks, keys, strict=True)
        ]
        for task, fut in zip(tasks, futures, strict=True):
            yield task, fut.result()
