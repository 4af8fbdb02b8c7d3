"""Orchestration: wires the stages for a whole run. The only module that reads the run config.

A run is plan -> (site, year) tasks -> per-site analysis -> export:

* plan: per site, search every year's window (progress "searching"), then fix the site's grid
  on the data's own pixel lattice (``proj:transform`` of the scenes found).
* tasks: read a site-year's scenes onto the grid (``sources.read.read_scenes``: a bad scene is
  skipped and recorded) and run the recipe (``recipe.site_year``). Each finished site-year is
  kept in ``<out>/.work`` under a key of its real inputs (code version, config hash, grid, the
  scenes), so a killed run resumes where it stopped and changed inputs are recomputed.
* ``analysis.analyse_site`` per site, then ``export_run``.

With ``workers > 1`` tasks run in a process pool; results are gathered in (site, year) order, so
outputs do not depend on scheduling.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.analysis import analyse_site, analysis_area, score_against_truth
from pipeline.config import RunConfig
from pipeline.errors import SitewatchError
from pipeline.export.atomic import atomic_write_bytes
from pipeline.export.run_outputs import export_run
from pipeline.grid import Grid
from pipeline.masking import MaskRules
from pipeline.recipe import Look, RecipeParams, look_record, site_year
from pipeline.results import RunResult, SceneRecord, SiteYear
from pipeline.sites import Site, load_sites
from pipeline.sources.base import Scene, SceneSource
from pipeline.sources.chips import ChipCache
from pipeline.sources.read import ReadSettings, read_scenes
from pipeline.sources.registry import OpenedSource, SourceContext, TruthLookup, open_source
from pipeline.sources.sensors import PROFILES, lattice_origin, snap_for

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Progress callback: (task description, done, total)."""

WORK_DIR = ".work"
CHIP_DIR = "chips"


def _no_progress(_task: str, _done: int, _total: int) -> None:
    return None


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


def recipe_params(config: RunConfig) -> RecipeParams:
    """The recipe's frozen parameters from the run config."""
    fp, coal, season = config.classify.footprint, config.classify.coal, config.season
    return RecipeParams(
        season=(_month_day(season.start), _month_day(season.end)),
        fallback=(_month_day(season.fallback_start), _month_day(season.fallback_end)),
        min_clear_observations=season.min_clear_observations,
        green_from=_month_day(fp.green_from),
        green_percentile=fp.green_percentile,
        footprint_rule={
            k: float(v)
            for k, v in fp.model_dump(
                exclude={"green_percentile", "green_from", "edge_fraction", "opening_px"}
            ).items()
        },
        footprint_opening_px=fp.opening_px,
        footprint_edge_fraction=fp.edge_fraction,
        coal_rule={
            k: float(v)
            for k, v in coal.model_dump(
                exclude={"min_frequency", "min_observations", "edge_fraction", "opening_px"}
            ).items()
        },
        coal_min_frequency=coal.min_frequency,
        coal_min_observations=coal.min_observations,
        coal_opening_px=coal.opening_px,
        coal_edge_fraction=coal.edge_fraction,
        min_mapping_unit_ha=config.boundaries.min_mapping_unit_ha,
        harmonize_to=config.harmonize.to,
    )


# --------------------------------------------------------------------------------------------
# Plan: searches and grids


@dataclass(frozen=True)
class SiteYearTask:
    """Everything one worker needs for one site-year: no config, no open datasets."""

    site: Site
    year: int
    grid: Grid
    scenes: tuple[Scene, ...]
    params: RecipeParams
    rules: MaskRules
    settings: ReadSettings
    buffer_m: float
    chip_root: Path | None

    def key(self, config_hash: str) -> str:
        inputs = [
            __version__, config_hash, self.site.id, self.year, self.grid.crs,
            list(self.grid.transform)[:6], self.grid.shape,
            [(s.id, s.collection, sorted((k, a.href.split("?")[0]) for k, a in s.assets.items()))
             for s in self.scenes],
        ]  # fmt: skip
        text = json.dumps(inputs, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def observe(task: SiteYearTask) -> SiteYear:
    """Read a site-year's scenes and run the recipe on them."""
    chips = ChipCache(task.chip_root) if task.chip_root is not None else None
    observed, failed = read_scenes(task.scenes, task.grid, task.rules, task.settings, chips)
    collection = {s.id: s.collection for s in task.scenes}
    looks = [
        Look(
            o.datetime.date(),
            o.reflectance,
            o.clear,
            look_record(
                o.scene_id,
                o.datetime.isoformat(),
                collection=collection[o.scene_id],
                platform=o.platform,
                offset_dn=o.radiometry.offset_dn,
                scale=o.radiometry.scale,
                radiometry=o.radiometry.reason,
                offset_check=o.radiometry.check,
                reasons=o.reasons,
                reprojected_from=o.reprojected_from,
            ),
            o.platform,
        )
        for o in observed
    ]
    skipped = [
        (
            scene.date,
            SceneRecord(
                scene.id,
                scene.datetime.isoformat(),
                skipped=reason,
                collection=scene.collection,
                platform=scene.platform,
            ),
        )
        for scene, reason in failed
    ]
    area = analysis_area(task.site, task.grid, task.buffer_m)
    return site_year(
        task.site.id, task.year, looks, skipped, area, task.grid.pixel_area_ha, task.params
    )


def _observe_cached(work: Path, key: str, task: SiteYearTask) -> SiteYear:
    path = work / f"{task.site.id}-{task.year}-{key}.pkl"
    if path.exists():
        try:
            with path.open("rb") as fh:
                cached: SiteYear = pickle.load(fh)
            return cached
        except Exception:  # a truncated or stale pickle must never sink a run: recompute
            logger.warning("ignoring unreadable resume file %s", path)
    result = observe(task)
    atomic_write_bytes(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return result


# --------------------------------------------------------------------------------------------
# Whole run


def make_source(
    config: RunConfig, progress: Progress = _no_progress
) -> tuple[SceneSource, TruthLookup | None]:
    """The configured scene source, indexed and ready to search, and the truth lookup when the
    source has truth (the synthetic scenario is built or found in the cache here)."""
    opened: OpenedSource = open_source(
        config.source,
        SourceContext(
            cache_dir=config.cache_dir.resolve(),
            workers=config.workers,
            offline=config.offline,
            progress=lambda done, total: progress("building imagery", done, total),
        ),
    )
    return opened.source, opened.truth


def plan(
    config: RunConfig,
    sites: Sequence[Site],
    years: Sequence[int],
    source: SceneSource,
    progress: Progress = _no_progress,
) -> list[SiteYearTask]:
    """Search every site-year, then fix each site's grid on the data's lattice."""
    params = recipe_params(config)
    rules = config.masking.rules()
    settings = config.read.settings(offline=config.offline)
    chip_root = (config.cache_dir / CHIP_DIR).resolve()
    tasks: list[SiteYearTask] = []
    total, done = len(sites) * len(years), 0
    for site in sites:
        found: dict[int, tuple[Scene, ...]] = {}
        for year in years:
            start, end = params.read_window(year)
            found[year] = tuple(source.search(site, start, end))
            done += 1
            progress("searching", done, total)
        every = [s for y in years for s in found[y]]
        snap = max(snap_for(every), config.grid.resolution_m)
        origin = lattice_origin(every, site.utm_crs, snap)
        grid = site.grid(config.grid.resolution_m, config.grid.buffer_m, snap, origin)
        for year in years:
            tasks.append(
                SiteYearTask(
                    site,
                    year,
                    grid,
                    found[year],
                    params,
                    rules,
                    settings,
                    config.grid.buffer_m,
                    chip_root,
                )
            )
    return tasks


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
    site_list = load_sites(config.sites, only=sites if sites is not None else config.site_ids)
    year_list = sorted(set(years)) if years is not None else config.years.all()
    bad_years = [y for y in year_list if y not in config.years.all()]
    if bad_years:
        raise SitewatchError(
            f"years {bad_years} outside the config's years {config.years.start}..{config.years.end}"
        )
    out.mkdir(parents=True, exist_ok=True)
    work = out / WORK_DIR

    source, truth_of = make_source(config, report)
    tasks = plan(config, site_list, year_list, source, report)
    grids = {t.site.id: t.grid for t in tasks}
    observed: dict[tuple[str, int], SiteYear] = {}
    n_scenes = sum(len(t.scenes) for t in tasks)
    mb_total = sum(_pixel_mb(t) for t in tasks)
    scenes_done, mb_done = 0, 0
    for n, (task, result) in enumerate(_map_tasks(tasks, config, work), start=1):
        observed[(task.site.id, task.year)] = result
        scenes_done += len(task.scenes)
        mb_done += _pixel_mb(task)
        report("site-years", n, len(tasks))
        report("scenes read", scenes_done, n_scenes)
        report("pixels read (MB)", mb_done, mb_total)

    results = RunResult(out, config)
    scores: dict[str, Any] = {}
    for i, site in enumerate(site_list, start=1):
        site_years = [observed[(site.id, y)] for y in year_list]
        analysis = analyse_site(
            site,
            grids[site.id],
            site_years,
            buffer_m=config.grid.buffer_m,
            min_mapping_unit_ha=config.boundaries.min_mapping_unit_ha,
            change_opening_px=config.change.opening_px,
        )
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


def _pixel_mb(task: SiteYearTask) -> int:
    """Megabytes of pixels a task reads onto its grid (float32, every asset of every scene):
    what the reads deliver, not what crosses the network (compressed tiles, or nothing from the
    chip cache)."""
    assets = sum(
        len(PROFILES[s.profile].asset_keys()) for s in task.scenes if s.profile in PROFILES
    )
    return round(assets * task.grid.width * task.grid.height * 4 / 1e6)


def _map_tasks(
    tasks: Sequence[SiteYearTask], config: RunConfig, work: Path
) -> Iterator[tuple[SiteYearTask, SiteYear]]:
    config_hash = config.hash()
    keys = [t.key(config_hash) for t in tasks]
    if config.workers <= 1:
        for task, key in zip(tasks, keys, strict=True):
            yield task, _observe_cached(work, key, task)
        return
    # The platform's default start method: spawn would force every analyst's script to guard
    # its entry point with `if __name__ == "__main__"`. Workers open their own datasets.
    with ProcessPoolExecutor(max_workers=config.workers) as pool:
        futures: list[Future[SiteYear]] = [
            pool.submit(_observe_cached, work, key, task)
            for task, key in zip(tasks, keys, strict=True)
        ]
        for task, fut in zip(tasks, futures, strict=True):
            yield task, fut.result()
