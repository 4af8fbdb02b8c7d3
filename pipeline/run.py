"""Orchestration: wires the stages for a whole run. The only module that reads the run config.

A run is plan -> (site, year) tasks -> per-site analysis -> export, as one transaction on its
output folder ``<out>`` (``export.transaction``):

* lock: ``<out>.lock`` (created with ``O_EXCL``, holding the PID) refuses a second run into the
  same folder (``RunLockedError`` naming the PID); the lock of a dead run is taken over. Under
  the lock, a swap interrupted by a kill is undone, staging folders of dead runs are removed and
  unfinished temporaries (``atomic.TEMP_GLOB``) in ``<out>`` and the work folder are swept.
* plan: per site, search every year's window (progress "searching"), then fix the site's grid
  on the data's own pixel lattice (``proj:transform`` of the scenes found).
* tasks: read a site-year's scenes onto the grid (``sources.read.read_scenes``: a bad scene is
  skipped and recorded) and run the recipe (``recipe.site_year``), or read it by chunks
  (``chunks``) when the grid is larger than ``grid.chunk_px``. ``pipeline.tasks`` owns what a
  worker runs and its resume files in the work folder ``<out>.work/`` (beside ``<out>``, never
  inside the published tree): each finished site-year is kept there, keyed by what decides it
  (``SiteYearTask.key``: the recipe's parameters and mask rules, not the whole config, so a
  trend-only change reuses every site-year; the site, year, grid and each asset's content
  identity), so a killed run resumes where it stopped. A site-year whose record lists skipped
  scenes is always recomputed on resume: skips may be transient (a repaired file, a network
  back). ``force=True`` ignores and clears the work folder. On an executor, a site-year read
  by chunks runs as steps (each chunk's survey and part are tasks of their own), so one large
  site spreads over the workers.
* second pass (``resampled_tasks``): each site's finished years are placed against each other
  (``coregister.year_shifts``), and a year that whole-pixel moves would move, or would leave a
  fraction of a pixel or more off the others, is a task again, its looks resampled onto them
  (``RecipeParams.year_shift``, so in its key: a killed run reuses both passes' site-years).
* ``analysis.analyse_site`` per site, then ``export_run`` into ``<out>.staging-<pid>/``; the
  manifest is verified against the staged files (every file listed with its SHA-256, nothing
  else), then the staging folder is swapped in as ``<out>`` (an atomic exchange where Linux
  offers it, else two renames via ``<out>.old-<pid>``) and the previous run deleted. So ``<out>``
  always holds one complete, manifest-consistent run. After success the work folder is pruned.

With ``workers > 1`` tasks run in a process pool, with ``scheduler`` on a dask.distributed
cluster (``executors``); results are gathered in (site, year) order, so outputs do not depend
on scheduling. Workers ignore SIGINT and die with the driver (Linux
``PR_SET_PDEATHSIG``, elsewhere a watchdog thread); Ctrl-C in the driver cancels pending tasks,
terminates the workers and re-raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyogrio.errors
from rasterio.errors import RasterioError
from shapely.geometry import MultiPolygon, Polygon

from pipeline import __version__, chunks, task_progress
from pipeline.analysis import analyse_site, perimeter_changes, score_against_truth
from pipeline.bands import BAND_INDEX
from pipeline.config import HazeConfig, RunConfig
from pipeline.coregister import CoregistrationParams, year_shifts
from pipeline.errors import OutputError, SiteError, SitewatchError
from pipeline.executors import open_executor, run_unordered
from pipeline.export.run_outputs import export_options, export_run
from pipeline.export.transaction import (
    LOG_NAME,
    check_output_folder,
    output_error,
    publish,
    recover,
    run_lock,
    staging_path,
    sweep_temporaries,
    verify_run_folder,
)
from pipeline.haze import HazeRule
from pipeline.linear import LineRule
from pipeline.look_registration import LookRegistrationParams
from pipeline.model import shorten
from pipeline.perimeters import load_perimeters, perimeters_by_site
from pipeline.recipe import RecipeParams
from pipeline.results import (
    Registration,
    RunResult,
    SiteYear,
)
from pipeline.sampling import sample_based_areas
from pipeline.sites import (
    ADJACENT_SUFFIX,
    Site,
    adjacent_zones,
    check_site_limits,
    load_sites,
    select_sites,
)
from pipeline.sources.base import RedactSecrets, Scene, SceneSource
from pipeline.sources.registry import OpenedSource, SourceContext, TruthLookup, open_source
from pipeline.sources.sensors import PROFILES, lattice_origin, snap_for
from pipeline.tasks import (
    SiteYearTask,
    Step,
    TaskRecord,
    by_chunks,
    chunk_count,
    load_stored,
    progress_path,
    reused_record,
    run_site_year,
    run_step,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Progress callback: (task description, done, total)."""

WORK_SUFFIX = ".work"
CHIP_DIR = "chips"
#: Site grids larger than this (pixels) keep their site-years' composites and coal frequencies
#: on disk after the tasks (read when used: ~58 of a site-year's ~64 bytes per pixel), so a
#: 550 km2 site's ten years do not all sit in memory at once.
ON_DEMAND_PIXELS = 2_000_000


def work_dir(out: Path) -> Path:
    """The resume folder of the run into ``out``: ``<out>.work`` beside it."""
    return out.with_name(out.name + WORK_SUFFIX)


def _no_progress(_task: str, _done: int, _total: int) -> None:
    return None


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


def coregistration_params(config: RunConfig) -> CoregistrationParams | None:
    """The co-registration's frozen parameters from the run config; None when it is off."""
    c = config.coregistration
    if not c.enabled:
        return None
    return CoregistrationParams(
        band=BAND_INDEX[c.band],
        max_shift_px=float(c.max_shift_px),
        min_correlation=float(c.min_correlation),
        min_overlap_px=c.min_overlap_px,
        max_residual_px=float(c.max_residual_px),
        upsample_factor=c.upsample_factor,
        min_shift_px=float(c.min_shift_px),
        min_resample_px=None if c.min_resample_px is None else float(c.min_resample_px),
    )


def line_rule(config: RunConfig) -> LineRule | None:
    """The line detection's frozen rule from the run config; None when it is off."""
    c = config.lines
    if not c.enabled:
        return None
    return LineRule(
        min_depth=float(c.min_depth),
        min_loss=float(c.min_loss),
        min_length_m=float(c.min_length_m),
        max_width_m=float(c.max_width_m),
        span_px=c.span_px,
        max_gap_m=None if c.max_gap_m is None else float(c.max_gap_m),
    )


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
                exclude={
                    "min_frequency",
                    "min_observations",
                    "seen_once_reach_m",
                    "veil_min_rise",
                    "shade_min_loss",
                    "edge_rule",
                    "edge_fraction",
                    "opening_px",
                }
            ).items()
        },
        coal_min_frequency=coal.min_frequency,
        coal_min_observations=coal.min_observations,
        coal_seen_once_reach_m=coal.seen_once_reach_m,
        coal_veil_min_rise=coal.veil_min_rise,
        coal_shade_min_loss=coal.shade_min_loss,
        coal_opening_px=coal.opening_px,
        coal_edge_rule=coal.edge_rule,
        coal_edge_fraction=coal.edge_fraction,
        min_mapping_unit_ha=config.boundaries.min_mapping_unit_ha,
        harmonize_to=config.harmonize.to,
        terrain_rule={k: float(v) for k, v in config.classify.terrain.model_dump().items()},
        haze=_haze_rule(config.haze),
        registration=look_registration_params(config),
    )


def look_registration_params(config: RunConfig) -> LookRegistrationParams | None:
    """The look registration's frozen parameters from the run config; None when it is off."""
    c = config.look_registration
    if not c.enabled:
        return None
    return LookRegistrationParams(
        band=BAND_INDEX[c.band],
        max_shift_px=float(c.max_shift_px),
        min_correlation=float(c.min_correlation),
        min_overlap_px=c.min_overlap_px,
        upsample_factor=c.upsample_factor,
        min_shift_px=float(c.min_shift_px),
    )


def _haze_rule(haze: HazeConfig) -> HazeRule | None:
    if not haze.enabled:
        return None
    return HazeRule(
        block_m=float(haze.block_m), vegetation_swir_ratio=float(haze.vegetation_swir_ratio),
        percentile=float(haze.percentile),
        min_pixels=haze.min_pixels, min_haze=float(haze.min_haze),
        angstrom=float(haze.angstrom), floor=float(haze.floor),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Plan: searches and grids


def _run_tasks(
    executor: Executor | None,
    tasks: Sequence[SiteYearTask],
    work: Path,
    report: Progress,
    again: bool = False,
) -> dict[tuple[str, int], TaskRecord]:
    """Run every site-year task on ``executor`` (None: here) and show progress: site-years
    done, and across all tasks scenes read, chunks read (when sites are read by chunks) and
    pixels delivered (MB), counting the running tasks' own reports (``task_progress``) as they
    come; the bars' ETA comes from these counts.

    Here a site-year is one task. On an executor a site-year read by chunks runs as steps
    (``tasks.Step``), in four waves over every such site-year: each chunk's survey (beside the
    whole site-years), the decisions, each chunk's part, the finish; so a large site's chunks
    spread over the workers.

    ``again``: the run's second pass (``resampled_tasks``), whose bars are its own."""
    name = {
        "site-years": "site-years resampled" if again else "site-years",
        "scenes read": "scenes read again" if again else "scenes read",
        "chunks": "chunks read again" if again else "chunks",
        "pixels read (MB)": "pixels read again (MB)" if again else "pixels read (MB)",
    }
    totals = {
        "scenes read": [len(t.scenes) for t in tasks],
        "chunks": [chunks.chunk_steps(t.grid, t.chunk_px) for t in tasks],
        "pixels read (MB)": [_pixel_mb(t) for t in tasks],
    }
    if not any(totals["chunks"]):
        del totals["chunks"]  # no site is read by chunks: no bar for them
    live: dict[int, dict[str, tuple[int, int]]] = {}  # running task -> counter -> (done, total)
    finished: dict[int, TaskRecord] = {}

    def show() -> None:
        report(name["site-years"], len(finished), len(tasks))
        for counter, per_task in totals.items():
            done = sum(per_task[i] for i in finished)
            done += sum(state[counter][0] for i, state in live.items() if counter in state)
            report(name[counter], done, sum(per_task))

    def finish(i: int, record: TaskRecord) -> None:
        finished[i] = record
        live.pop(i, None)
        show()

    args = [(work, t.key(), t) for t in tasks]
    if executor is None:
        for i, task_args in enumerate(args):

            def listener(counter: str, done: int, total: int, i: int = i) -> None:
                live.setdefault(i, {})[counter] = (done, total)
                show()

            with task_progress.reporting_to(listener):
                finish(i, run_site_year(*task_args))
        return {(t.site.id, t.year): finished[i] for i, t in enumerate(tasks)}

    stepped: list[int] = []  # site-years read by chunks, as steps
    for i, (task_args, task) in enumerate(zip(args, tasks, strict=True)):
        if by_chunks(task):
            reused = reused_record(*task_args)
            if reused is not None:
                finish(i, reused)
            else:
                stepped.append(i)
    chunk_counts = {i: chunk_count(tasks[i]) for i in stepped}
    steps_done = dict.fromkeys(stepped, 0)

    def poll() -> None:
        for i, task_args in enumerate(args):
            if i not in finished and i not in steps_done:
                state = task_progress.read_progress(progress_path(*task_args))
                if state:
                    live[i] = state
        show()

    def run_wave(wave: list[tuple[int, Step]]) -> None:
        calls = [(*args[i], step) for i, step in wave]
        for n, record in run_unordered(executor, run_step, calls, poll):
            i, step = wave[n]
            if step.kind in ("survey", "part"):
                steps_done[i] += 1
                total = 2 * chunk_counts[i]
                surveyed = min(steps_done[i], chunk_counts[i]) / chunk_counts[i]
                live[i] = {
                    "chunks": (steps_done[i], total),
                    "pixels read (MB)": (round(totals["pixels read (MB)"][i] * surveyed), 0),
                }
            if record is not None:
                finish(i, record)
        show()

    whole = [(i, Step("site-year")) for i, task in enumerate(tasks) if not by_chunks(task)]
    run_wave(whole + [(i, Step("survey", c)) for i in stepped for c in range(chunk_counts[i])])
    run_wave([(i, Step("settle")) for i in stepped])
    parts = [i for i in stepped if i not in finished]
    run_wave([(i, Step("part", c)) for i in parts for c in range(chunk_counts[i])])
    run_wave([(i, Step("finish")) for i in parts])
    return {(t.site.id, t.year): finished[i] for i, t in enumerate(tasks)}


def resampled_tasks(
    tasks: Sequence[SiteYearTask],
    records: Mapping[tuple[str, int], TaskRecord],
    work: Path,
    params: CoregistrationParams,
) -> list[SiteYearTask]:
    """The run's second pass: the tasks of the site-years that whole-pixel moves would move,
    or would leave a fraction of a pixel or more off their site's other years
    (``coregister.year_shifts`` on the finished site-years), each to be made again with every
    look resampled onto the years that stay (``RecipeParams.year_shift``). Classified a
    fraction of a pixel off, a small site's footprint gains a rim on one side and loses one on
    the other; moving the finished maps by whole pixels (``coregister_years``) cannot mend
    less than a pixel."""
    by_site: dict[str, list[SiteYearTask]] = {}
    for task in tasks:
        by_site.setdefault(task.site.id, []).append(task)
    again = []
    for site_tasks in by_site.values():
        years = [loaded_site_year(work, t, records[(t.site.id, t.year)]) for t in site_tasks]
        for task, shift in zip(site_tasks, year_shifts(years, params), strict=True):
            if shift is not None:
                again.append(replace(task, params=replace(task.params, year_shift=shift)))
        del years
    return again


def loaded_site_year(work: Path, task: SiteYearTask, record: TaskRecord) -> SiteYear:
    """A finished task's site-year for the analysis and export: a large grid's composites are
    read on demand (``ON_DEMAND_PIXELS``), so the driver holds one year's at a time. A year
    resampled onto its site's frame (``RecipeParams.year_shift``) says so in its
    ``registration``."""
    on_demand = task.grid.width * task.grid.height > ON_DEMAND_PIXELS
    key = task.key()
    result = load_stored(work, key, task, on_demand=on_demand)
    if result is None:
        raise OutputError(
            f"site-year {task.site.id} {task.year} was computed on {record.host} but its files "
            f"are not readable in {work} here: on a dask cluster the run's work folder must be "
            "on storage that every worker and this machine share (give --out on a shared file "
            "system)"
        )
    if task.params.year_shift is not None:
        rows, cols = task.params.year_shift
        # The looks were moved by the shift: the imagery lay that far the other way.
        lay = (round(-cols, 3) + 0.0, round(rows, 3) + 0.0)
        result = replace(result, registration=Registration(lay, (0, 0), 0, resampled_px=lay))
    return result


# --------------------------------------------------------------------------------------------
# Whole run


def resolve_sites(config: RunConfig, only: Sequence[str] | None = None) -> list[Site]:
    """The config's sites with their adjacent zones (each right after its parent), or the ones
    ``only`` names."""
    sites = load_sites(config.sites)
    zones = config.adjacent_zones
    if zones.width_m > 0:
        ring_of = {z.parent: z for z in adjacent_zones(sites, zones.width_m, zones.kinds)}
        sites = [x for s in sites for x in (s, ring_of.get(s.id)) if x is not None]
    elif only is not None and any(w.endswith(ADJACENT_SUFFIX) for w in only):
        raise SiteError(
            f"{config.sites}: {shorten([w for w in only if w.endswith(ADJACENT_SUFFIX)])}: "
            "adjacent zones are off in this config; set adjacent_zones.width_m (e.g. 1000)"
        )
    return sites if only is None else select_sites(sites, only, where=str(config.sites))


def load_config_perimeters(
    config: RunConfig, sites: Sequence[Site]
) -> dict[str, dict[int, Polygon | MultiPolygon]]:
    """The analyst-drawn perimeters of the run's sites (``expansion.perimeters``), by site and
    year; a perimeter of a site the site file does not have is an error, one of a site not
    selected for this run is left out."""
    spec = config.expansion.perimeters
    if spec is None:
        return {}
    drawn = perimeters_by_site(
        load_perimeters(
            spec.path,
            layer=spec.layer,
            site_field=spec.site_field,
            year_field=spec.year_field,
            date_field=spec.date_field,
        )
    )
    known = {s.id for s in resolve_sites(config)}
    unknown = sorted(set(drawn) - known)
    if unknown:
        raise SiteError(
            f"{spec.path}: perimeters of site id(s) {shorten(unknown)} that {config.sites} does "
            f"not have; allowed: {shorten(sorted(known), 1000)}"
        )
    selected = {s.id for s in sites}
    return {k: v for k, v in drawn.items() if k in selected}


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
                    config.grid.chunk_px,
                )
            )
    return tasks


def run(
    config: RunConfig,
    out_dir: str | Path | None = None,
    progress: Progress | None = None,
    sites: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    *,
    force: bool = False,
) -> RunResult:
    """Run the whole pipeline for ``config``; outputs go to ``out_dir`` (default from config).

    The run is a transaction on ``out_dir`` (see the module docstring): the folder holds the
    previous complete run until the new one is complete and verified. ``force`` recomputes every
    site-year, ignoring resume files. Raises ``RunLockedError`` when another run holds the
    folder, ``OutputError`` when the folder cannot be written.
    """
    report = progress or _no_progress
    out = (Path(out_dir) if out_dir is not None else config.output_dir / config.name).resolve()
    site_list = resolve_sites(config, sites if sites is not None else config.site_ids)
    perimeters = load_config_perimeters(config, site_list)
    year_list = sorted(set(years)) if years is not None else config.years.all()
    bad_years = [y for y in year_list if y not in config.years.all()]
    if bad_years:
        raise SitewatchError(
            f"years {bad_years} outside the config's years {config.years.start}..{config.years.end}"
        )
    # Sizes and UTM range before any search or read (the final grid snaps to the data's lattice,
    # at most one snap step larger).
    check_site_limits(
        site_list,
        {s.id: s.grid(config.grid.resolution_m, config.grid.buffer_m) for s in site_list},
        config.limits,
        chunked=config.grid.chunk_px is not None,
    )
    # An input inside the output folder (the demo writes its sites file there) is carried into
    # each new run, so that the swap does not delete it.
    sites_file = config.sites.resolve()
    carried = [sites_file] if out in sites_file.parents else []
    allowed = {p.relative_to(out).parts[0] for p in carried}
    check_output_folder(out, allowed)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out, "creating the parent folder of", exc) from None
    with run_lock(out):
        return _run_locked(config, out, report, site_list, year_list, force, carried, perimeters)


def _run_locked(
    config: RunConfig,
    out: Path,
    report: Progress,
    site_list: Sequence[Site],
    year_list: Sequence[int],
    force: bool,
    carried: Sequence[Path],
    perimeters: Mapping[str, dict[int, Polygon | MultiPolygon]],
) -> RunResult:
    work = work_dir(out)
    try:
        recover(out)
        check_output_folder(out, {p.relative_to(out).parts[0] for p in carried})
        if force and work.exists():
            shutil.rmtree(work)
        sweep_temporaries(out)
        sweep_temporaries(work)
        work.mkdir(exist_ok=True)
    except OSError as exc:
        raise output_error(work, "preparing", exc) from None
    with run_log(work / LOG_NAME):
        logger.info(
            "sitewatch %s: run %r (config %s) into %s; %d site(s), years %s",
            __version__, config.name, config.hash()[:12], out, len(site_list),
            ",".join(map(str, year_list)),
        )  # fmt: skip
        return _run_logged(config, out, work, report, site_list, year_list, carried, perimeters)


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Log the ``pipeline`` loggers at INFO and above to ``path`` (appended: a resumed run's log
    follows the stopped one's) for the duration of the block."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    handler.setLevel(logging.INFO)
    handler.addFilter(RedactSecrets())
    package = logging.getLogger("pipeline")
    level = package.level
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)
    package.addHandler(handler)
    try:
        yield
    except BaseException as exc:
        package.error("run stopped: %s", exc.__class__.__name__ if not str(exc) else exc)
        raise
    finally:
        package.removeHandler(handler)
        package.setLevel(level)
        handler.close()


def _run_logged(
    config: RunConfig,
    out: Path,
    work: Path,
    report: Progress,
    site_list: Sequence[Site],
    year_list: Sequence[int],
    carried: Sequence[Path],
    perimeters: Mapping[str, dict[int, Polygon | MultiPolygon]],
) -> RunResult:
    # Read before any scene, so a bad sample file fails at once.
    sample_areas = (
        None
        if config.trends.reference_samples is None
        else sample_based_areas(config.trends.reference_samples)
    )
    training = None
    if config.classify.mode == "supervised" and config.classify.training is not None:
        from pipeline import supervised  # scikit-learn: imported only when a run needs it

        training = supervised.read_training_polygons(
            config.classify.training, layer=config.classify.training_layer
        )
    source, truth_of = make_source(config, report)
    if truth_of is not None:
        for site in site_list:  # a site the source has no truth for fails now, not after reads
            truth_of(site.id)
    tasks = plan(config, site_list, year_list, source, report)
    grids = {t.site.id: t.grid for t in tasks}
    coregistration = coregistration_params(config)
    with open_executor(config.workers, config.scheduler) as executor:
        records = _run_tasks(executor, tasks, work, report)
        reused = sum(r.reused for r in records.values())
        if reused:
            logger.info("reused %d of %d site-years from %s", reused, len(tasks), work)
        if coregistration is not None and coregistration.min_resample_px is not None:
            again = resampled_tasks(tasks, records, work, coregistration)
            if again:
                logger.info(
                    "%d of %d site-years would be moved by whole pixels, or sit %.2f px or more "
                    "off their site's other years once moved: made again with every look "
                    "resampled onto the years that stay",
                    len(again), len(tasks), coregistration.min_resample_px,
                )  # fmt: skip
                records |= _run_tasks(executor, again, work, report, again=True)
                remade = {(t.site.id, t.year): t for t in again}
                tasks = [remade.get((t.site.id, t.year), t) for t in tasks]

    results = RunResult(out, config)
    terrain_rule = recipe_params(config).terrain_rule
    scores: dict[str, Any] = {}
    task_of = {(t.site.id, t.year): t for t in tasks}

    def finished(site_id: str, year: int) -> SiteYear:
        return loaded_site_year(work, task_of[(site_id, year)], records[(site_id, year)])

    model = None
    if training is not None:
        # One model for the run, from the season composites the polygons were drawn on.
        from pipeline import supervised

        model = supervised.train_on_site_years(
            (finished(s.id, y) for s in site_list for y in year_list),
            training, grids, seed=config.classify.seed,
        )  # fmt: skip
        results.classification = dict(model.provenance)
    for i, site in enumerate(site_list, start=1):
        site_years = [finished(site.id, y) for y in year_list]
        if model is not None:
            site_years = supervised.reclassify_site_years(
                site_years, model, grids[site.id].pixel_area_ha, recipe_params(config)
            )
        analysis = analyse_site(
            site,
            grids[site.id],
            site_years,
            buffer_m=config.grid.buffer_m,
            min_mapping_unit_ha=config.boundaries.min_mapping_unit_ha,
            change_opening_px=config.change.opening_px,
            sectors=config.expansion.sectors,
            coregistration=coregistration_params(config),
            lines=line_rule(config),
            coal_min_frequency=config.classify.coal.min_frequency,
            coal_min_observations=config.classify.coal.min_observations,
            terrain_rule=terrain_rule,
        )
        if site.id in perimeters:
            drawn = perimeter_changes(
                perimeters[site.id], grids[site.id].crs, sectors=config.expansion.sectors
            )
            analysis = replace(analysis, perimeter_changes=drawn)
        if truth_of is not None:
            acc = score_against_truth(
                analysis, truth_of(site.id), config.season.min_clear_observations
            )
            analysis = replace(analysis, accuracy=acc)
            scores[site.id] = acc
        results.sites.append(analysis)
        report("analysing sites", i, len(site_list))
    results.accuracy = scores or None

    staging = staging_path(out)
    try:
        staging.mkdir()
        kept = []
        for path in carried:
            target = staging / path.relative_to(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            kept.append(target)
        export_run(
            results, source, export_options(config, sample_areas), progress=report,
            folder=staging, carried=kept,
        )  # fmt: skip
        shutil.copyfile(work / LOG_NAME, staging / LOG_NAME)
        verify_run_folder(staging)
        publish(staging, out)
    except SitewatchError:
        raise
    except OSError as exc:
        raise output_error(out, "writing the run to", exc) from None
    except (RasterioError, pyogrio.errors.DataLayerError, pyogrio.errors.DataSourceError) as exc:
        # GDAL's own writers (GeoTIFF, GeoPackage) say what failed, not always why: a full
        # disk can read as "no such table" inside a GeoPackage.
        raise OutputError(
            f"writing the run to {out} failed: {exc}; check that {out.parent} is writable and "
            f"has free space (the previous run in {out} is untouched)"
        ) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)  # resume files are only for an unfinished run
    return results


def _pixel_mb(task: SiteYearTask) -> int:
    """Megabytes of pixels a task reads onto its grid (float32, every asset of every scene):
    what the reads deliver, not what crosses the network (compressed tiles, or nothing from the
    chip cache)."""
    assets = sum(
        len(PROFILES[s.profile].asset_keys()) for s in task.scenes if s.profile in PROFILES
    )
    return round(assets * task.grid.width * task.grid.height * 4 / 1e6)
