"""What a worker runs: a site-year task, its resume files, and the steps of a site-year read
by chunks.

A ``SiteYearTask`` holds everything a worker needs (no config, no open datasets). Its result is
kept in the run's work folder ``<out>.work/`` as ``<site>-<year>-<key>.npz`` (the arrays,
loaded without pickle) and ``.json`` (everything else; written last, it marks the pair
complete), so a killed run resumes where it stopped; the task hands the driver a small
``TaskRecord``. The key (``SiteYearTask.key``) covers what decides the site-year.

A site-year read by chunks can also run as steps, each a task of its own on the executor, so
that one large site spreads over a pool's or a cluster's workers (``run_step``; the driver runs
them in this order, each step once every step it needs is done):

1. ``survey`` per chunk: pass 1 (``chunks.survey``), kept as ``<stem>.survey-<c>.pkl``;
2. ``settle``: the decisions from every chunk's survey (``chunks.settle``), kept as
   ``<stem>.plan.pkl`` (or, when the season has no look, the site-year itself);
3. ``part`` per chunk: pass 2 (``chunks.season_part``), kept as ``<stem>.part-<c>.pkl``;
4. ``finish``: the products pasted together, the whole-site stage (``chunks.finish``), the
   site-year stored as above and the step files removed.

Steps hand over through the work folder (pickle: files this run wrote for itself, under its
key, atomically), so on a cluster the workers must share it, as for whole site-years. A killed
run reuses every step file of its key (a survey that met a failed read is read again: the
fault may be transient; a part is reused only for the plan it was made for). A scene whose
read fails in pass 2 after succeeding in pass 1 makes ``finish`` settle again without it and
compute the parts in its own task (``chunks.complete``), as the one-task path does.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pipeline import __version__, chunks, task_progress
from pipeline.analysis import analysis_area
from pipeline.bands import BANDS
from pipeline.errors import OutputError
from pipeline.export.atomic import atomic_write_bytes, atomic_write_text
from pipeline.export.transaction import output_error
from pipeline.grid import Grid
from pipeline.masking import MaskRules
from pipeline.radiometry import Radiometry
from pipeline.recipe import Look, RecipeParams, SeasonProducts, look_record, mask_counts, site_year
from pipeline.results import (
    SceneRecord,
    SiteYear,
    StoredArrays,
    site_year_arrays,
    site_year_from_stored,
    site_year_record,
)
from pipeline.sites import Site
from pipeline.sources.base import Scene
from pipeline.sources.chips import ChipCache
from pipeline.sources.read import ReadSettings, is_remote, read_scenes
from pipeline.sources.sensors import PROFILES

logger = logging.getLogger(__name__)

#: Bump when the recipe's numbers change for the same inputs and config (a rule, a default
#: inside a stage): every stored site-year is then recomputed.
RECIPE_VERSION = "20"
#: Layout of the resume files (``<site>-<year>-<key>.npz`` and ``.json``).
RESUME_FORMAT = 1
#: Layout of the chunk step files (``<stem>.survey-<c>.pkl``, ``.plan.pkl``, ``.part-<c>.pkl``).
STEP_FORMAT = 6


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
    # Read and composite by chunks of this many pixels a side, or (rows, cols), when the grid
    # is larger (None: whole grid). Not in the key: chunking never changes a result (``chunks``).
    chunk_px: int | tuple[int, int] | None = None

    def key(self) -> str:
        """The resume key: every input that decides this site-year and nothing else: the
        recipe's parameters and mask rules (not the whole config: a change to trends, change
        detection or export reuses every finished site-year), the site's geometry, the grid,
        and per asset a cheap content identity (``asset_identity``)."""
        inputs = [
            RECIPE_VERSION, __version__, repr(self.params), repr(self.rules), self.buffer_m,
            self.site.id, self.site.geometry.wkb_hex, self.year, self.grid.crs,
            list(self.grid.transform)[:6], self.grid.shape,
            [(s.id, s.collection, s.profile,
              sorted((k, a.href.split("?")[0], asset_identity(s, k, self.grid))
                     for k, a in s.assets.items()))
             for s in self.scenes],
        ]  # fmt: skip
        text = json.dumps(inputs, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def asset_identity(scene: Scene, asset_key: str, grid: Grid) -> list[Any]:
    """What identifies the content of one asset cheaply: a local file's size and mtime (ns), a
    remote asset's chip-cache key (chips are immutable once read), or ``missing``."""
    href = scene.assets[asset_key].href
    if is_remote(href):
        profile = PROFILES.get(scene.profile)
        version = profile.version if profile is not None else "none"
        return ["chip", ChipCache.key(scene, asset_key, grid, version)]
    try:
        st = os.stat(href)
    except (OSError, ValueError):
        return ["missing"]
    return ["file", st.st_size, st.st_mtime_ns]


def baseline_of(scene: Scene) -> str:
    """The scene's Sentinel-2 processing baseline (``s2:processing_baseline``), or ""."""
    return str(scene.properties.get("s2:processing_baseline") or "")


def scene_record(
    scene: Scene, radiometry: Radiometry, counts: NDArray[np.int64], moved: str | None
) -> SceneRecord:
    """A read scene's record: its radiometry as settled, mask reason counts and the CRS it was
    reprojected from (``chunks.Describe``)."""
    return look_record(
        scene.id,
        scene.datetime.isoformat(),
        collection=scene.collection,
        platform=scene.platform,
        offset_dn=radiometry.offset_dn,
        scale=radiometry.scale,
        radiometry=radiometry.reason,
        offset_check=radiometry.check,
        reason_counts=counts,
        reprojected_from=moved,
        processing_baseline=baseline_of(scene),
    )


def skipped_record(scene: Scene, reason: str) -> SceneRecord:
    """A skipped scene's record, with the reason."""
    return SceneRecord(
        scene.id,
        scene.datetime.isoformat(),
        skipped=reason,
        collection=scene.collection,
        platform=scene.platform,
        processing_baseline=baseline_of(scene),
    )


def by_chunks(task: SiteYearTask) -> bool:
    """Whether ``task`` reads its grid by chunks (``grid.chunk_px``)."""
    return task.chunk_px is not None and chunks.needs_chunks(task.grid, task.chunk_px)


def observe(task: SiteYearTask) -> SiteYear:
    """Read a site-year's scenes and run the recipe on them: on the whole grid, or chunk by
    chunk when the grid is wider or taller than ``task.chunk_px`` (``chunks``: the same
    site-year in memory bounded by the chunk)."""
    chips = _chips(task)
    area = analysis_area(task.site, task.grid, task.buffer_m)
    if by_chunks(task):
        assert task.chunk_px is not None
        return chunks.chunked_site_year(
            task.site.id, task.year, task.scenes, task.grid, area, task.params, task.rules,
            task.settings, chips, task.chunk_px, scene_record, skipped_record=skipped_record,
        )  # fmt: skip
    observed, failed = read_scenes(task.scenes, task.grid, task.rules, task.settings, chips)
    by_id = {s.id: s for s in task.scenes}
    looks = [
        Look(
            o.datetime.date(),
            o.reflectance,
            o.clear,
            scene_record(
                by_id[o.scene_id], o.radiometry, mask_counts(o.reasons), o.reprojected_from
            ),
            o.platform,
            o.shaded if o.shaded.any() else None,
        )
        for o in observed
    ]
    skipped = [(scene.date, skipped_record(scene, reason)) for scene, reason in failed]
    return site_year(
        task.site.id, task.year, looks, skipped, area, task.grid.pixel_area_ha, task.params
    )


def _chips(task: SiteYearTask) -> ChipCache | None:
    return ChipCache(task.chip_root) if task.chip_root is not None else None


def _resume_stem(work: Path, key: str, task: SiteYearTask) -> Path:
    return work / f"{task.site.id}-{task.year}-{key}"


def load_stored(
    work: Path, key: str, task: SiteYearTask, *, on_demand: bool = False
) -> SiteYear | None:
    """The stored site-year of ``key``, or None when there is none or it is unreadable. With
    ``on_demand`` its composite and coal frequency are read from the file when used
    (``results.StoredArrays``) instead of loaded."""
    stem = _resume_stem(work, key, task)
    record_path, arrays_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("format") != RESUME_FORMAT or record.get("key") != key:
            return None
        if on_demand:
            stored = StoredArrays(arrays_path)
            return site_year_from_stored(record["site_year"], stored, stored)
        # Our own handle: np.load leaks its file when the archive is damaged.
        with arrays_path.open("rb") as fh, np.load(fh, allow_pickle=False) as arrays:
            return site_year_from_stored(record["site_year"], arrays)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
        logger.warning("ignoring unreadable resume file %s (%s); recomputing", record_path, exc)
        return None


def load_resumed(
    work: Path, key: str, task: SiteYearTask, *, on_demand: bool = False
) -> SiteYear | None:
    """The stored site-year of ``key`` if a resumed run may reuse it: None when there is none,
    it is unreadable, or it skipped scenes (skips may be transient: it is recomputed).
    ``on_demand`` as for ``load_stored``."""
    result = load_stored(work, key, task, on_demand=on_demand)
    if result is not None and result.n_skipped:
        logger.info(
            "%s %d: %d scene(s) were skipped last time; reading again",
            task.site.id, task.year, result.n_skipped,
        )  # fmt: skip
        return None
    return result


def store_resumed(work: Path, key: str, task: SiteYearTask, result: SiteYear) -> None:
    """Store ``result`` as ``.npz`` then ``.json`` (the commit marker), each atomically."""
    stem = _resume_stem(work, key, task)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **site_year_arrays(result))
    record = {"format": RESUME_FORMAT, "key": key, "site_year": site_year_record(result)}
    try:
        atomic_write_bytes(stem.with_suffix(".npz"), buffer.getvalue())
        atomic_write_text(stem.with_suffix(".json"), json.dumps(record, separators=(",", ":")))
    except OSError as exc:
        raise output_error(work, "writing resume files to", exc) from None


@dataclass(frozen=True)
class TaskRecord:
    """What a site-year task hands back to the driver: a small record, not the arrays (those
    are in the work folder, so the driver's memory does not grow with the site-years run)."""

    site_id: str
    year: int
    reused: bool  # found complete in the work folder (a resumed run)
    host: str  # the machine that ran it


def run_site_year(work: Path, key: str, task: SiteYearTask) -> TaskRecord:
    """The task a worker runs: reuse the stored site-year of ``key`` or compute and store it.
    Its progress goes to the listener of the driver's process, or elsewhere to a progress file
    beside the resume files, which the driver reads (``task_progress``)."""
    reused = reused_record(work, key, task)
    if reused is not None:
        return reused
    if task_progress.listening():
        result = observe(task)
    else:
        progress = task_progress.ProgressFile(progress_path(work, key, task))
        with task_progress.reporting_to(progress):
            result = observe(task)
    store_resumed(work, key, task, result)
    progress_path(work, key, task).unlink(missing_ok=True)
    return TaskRecord(task.site.id, task.year, False, socket.gethostname())


def reused_record(work: Path, key: str, task: SiteYearTask) -> TaskRecord | None:
    """The record of ``task``'s site-year when a resumed run may reuse the stored one
    (``load_resumed``), else None. The record and the archive's table of contents tell; the
    composites are left for the driver."""
    if load_resumed(work, key, task, on_demand=True) is None:
        return None
    return TaskRecord(task.site.id, task.year, True, socket.gethostname())


def progress_path(work: Path, key: str, task: SiteYearTask) -> Path:
    return _resume_stem(work, key, task).with_suffix(".progress")


# --------------------------------------------------------------------------------------------
# A site-year read by chunks, as steps

StepKind = Literal["site-year", "survey", "settle", "part", "finish"]


@dataclass(frozen=True)
class Step:
    """One task of a site-year: the whole ``site-year`` (``run_site_year``), or a step of one
    read by chunks (the module's docstring), ``chunk`` its chunk's index for ``survey`` and
    ``part``."""

    kind: StepKind
    chunk: int = -1


def chunk_count(task: SiteYearTask) -> int:
    """The chunks of a task read by chunks."""
    return len(_chunks(task))


def run_step(work: Path, key: str, task: SiteYearTask, step: Step) -> TaskRecord | None:
    """Run ``step`` of ``task``: the site-year's ``TaskRecord`` when the step finished it
    (``site-year``, ``finish``, a ``settle`` whose season has no look), else None."""
    if step.kind == "site-year":
        return run_site_year(work, key, task)
    if step.kind == "survey":
        _survey_step(work, key, task, step.chunk)
        return None
    if step.kind == "settle":
        return _settle_step(work, key, task)
    if step.kind == "part":
        _part_step(work, key, task, step.chunk)
        return None
    return _finish_step(work, key, task)


def _chunks(task: SiteYearTask) -> list[chunks.Chunk]:
    assert task.chunk_px is not None
    halo = chunks.halo_px(task.rules, task.grid, task.params)
    return chunks.plan_chunks(task.grid.shape, task.chunk_px, halo)


def _step_path(work: Path, key: str, task: SiteYearTask, name: str) -> Path:
    stem = _resume_stem(work, key, task)
    return stem.with_name(f"{stem.name}.{name}.pkl")


def _write_step(path: Path, value: Any) -> None:
    try:
        atomic_write_bytes(path, pickle.dumps((STEP_FORMAT, value), protocol=5))
    except OSError as exc:
        raise output_error(path.parent, "writing chunk step files to", exc) from None


def _read_step(path: Path) -> Any | None:
    """A step file's value, or None when there is none or it is unreadable (recomputed)."""
    try:
        with path.open("rb") as fh:
            version, value = pickle.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError) as exc:  # fmt: skip
        logger.warning("ignoring unreadable chunk step file %s (%s); recomputing", path, exc)
        return None
    return value if version == STEP_FORMAT else None


def _survey_step(work: Path, key: str, task: SiteYearTask, c: int) -> None:
    path = _step_path(work, key, task, f"survey-{c}")
    kept = _read_step(path)
    if isinstance(kept, chunks.ChunkSurvey) and not kept.failed and not kept.missing:
        logger.info("%s %d: reused the survey of chunk %d", task.site.id, task.year, c)
        return
    survey = chunks.survey(task.scenes, task.grid, _chunks(task)[c], task.rules, task.settings,
                           _chips(task), bands=chunks.survey_bands(task.params))  # fmt: skip
    _write_step(path, survey)


def _surveys(work: Path, key: str, task: SiteYearTask) -> list[chunks.ChunkSurvey]:
    out = []
    for c in range(chunk_count(task)):
        survey = _read_step(_step_path(work, key, task, f"survey-{c}"))
        if not isinstance(survey, chunks.ChunkSurvey):
            raise _missing_step(work, f"survey {c} of {key}")
        out.append(survey)
    return out


def _settle_step(work: Path, key: str, task: SiteYearTask) -> TaskRecord | None:
    plan = chunks.settle(
        task.site.id, task.year, task.scenes, (), task.grid, _area(task), task.params,
        _chunks(task), _surveys(work, key, task), scene_record, skipped_record,
    )  # fmt: skip
    if isinstance(plan, SiteYear):  # no look in the season: done
        return _stored(work, key, task, plan)
    _write_step(_step_path(work, key, task, "plan"), plan)
    return None


def _plan_digest(plan: chunks.SeasonPlan) -> str:
    return hashlib.sha256(pickle.dumps(plan, protocol=5)).hexdigest()


def _part_step(work: Path, key: str, task: SiteYearTask, c: int) -> None:
    plan = _read_step(_step_path(work, key, task, "plan"))
    if not isinstance(plan, chunks.SeasonPlan):
        raise _missing_step(work, f"the plan of {key}")
    path = _step_path(work, key, task, f"part-{c}")
    digest = _plan_digest(plan)
    kept = _read_step(path)
    if isinstance(kept, tuple) and kept[0] == digest and isinstance(kept[1], SeasonProducts):
        logger.info("%s %d: reused the part of chunk %d", task.site.id, task.year, c)
        return
    try:
        part: SeasonProducts | tuple[int, str] = chunks.season_part(
            task.scenes, plan, task.grid, _chunks(task)[c], task.year, task.params, task.rules,
            task.settings, _chips(task),
        )  # fmt: skip
    except chunks.LateFailure as exc:
        logger.warning("skipping %s", exc.error)
        part = (exc.scene, exc.error.reason)
    _write_step(path, (digest, part))


def _finish_step(work: Path, key: str, task: SiteYearTask) -> TaskRecord:
    plan = _read_step(_step_path(work, key, task, "plan"))
    if not isinstance(plan, chunks.SeasonPlan):
        raise _missing_step(work, f"the plan of {key}")
    grid, pieces = task.grid, _chunks(task)
    products = SeasonProducts.empty(len(BANDS), grid.shape)
    late: dict[int, str] = {}
    for c, chunk in enumerate(pieces):
        kept = _read_step(_step_path(work, key, task, f"part-{c}"))
        if kept is None:
            raise _missing_step(work, f"part {c} of {key}")
        part = kept[1]
        if isinstance(part, SeasonProducts):
            products.paste(chunk.rows, chunk.cols, part)
        else:
            late.setdefault(part[0], part[1])
        del part, kept
    if late:  # read in pass 1, failed in pass 2: settle again without them, here
        del products
        result = chunks.complete(
            task.site.id, task.year, task.scenes, (), grid, _area(task), task.params,
            task.rules, task.settings, _chips(task), pieces, _surveys(work, key, task),
            scene_record, skipped_record, late,
        )  # fmt: skip
    else:
        result = chunks.finish(task.site.id, task.year, plan, products, _area(task), grid,
                               task.params)  # fmt: skip
    return _stored(work, key, task, result)


def _stored(work: Path, key: str, task: SiteYearTask, result: SiteYear) -> TaskRecord:
    """Store a chunked site-year's result and remove its step files."""
    store_resumed(work, key, task, result)
    stem = _resume_stem(work, key, task)
    for path in work.glob(f"{stem.name}.*.pkl"):
        path.unlink(missing_ok=True)
    return TaskRecord(task.site.id, task.year, False, socket.gethostname())


def _missing_step(work: Path, what: str) -> OutputError:
    return OutputError(
        f"the chunk step file of {what} is missing or unreadable in {work}: on a dask cluster "
        "the run's work folder must be on storage that every worker and this machine share "
        "(give --out on a shared file system); run again to recompute it"
    )


def _area(task: SiteYearTask) -> NDArray[np.bool_]:
    return analysis_area(task.site, task.grid, task.buffer_m)
