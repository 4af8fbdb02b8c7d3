"""A site-year read and composited chunk by chunk, with results identical to the whole grid.

Memory of a whole-grid site-year grows with scenes x bands x pixels (every scene on the site
grid at once); here it grows with scenes x bands x chunk pixels plus bands x site pixels.

A chunk is a window of the site grid (``plan_chunks``) read with a halo: the pixels around it,
within the grid, that the neighbourhood operations before the whole-site stage reach. A pixel's
mask reason depends on the mask within the cloud dilation radius (``cloud_dilation_px``), its
greenness on the NDVI of its 3 x 3 square (``classify.greenness``): the halo is the sum. Pixels
beyond the grid's edge are never read, as in the whole-grid read, so edge chunks see the edge
exactly as the whole grid does. Reading a window of the grid gives the whole-grid read's pixels
in that window (``window_grid`` keeps the grid's lattice, and the warp is per output pixel):
``read._warp_scale`` fixes GDAL's resampling scale per read (warp options ``XSCALE``/``YSCALE``)
and, for a scene in another CRS, makes the transformer exact, which GDAL otherwise estimates
per request. A source in a geographic CRS has no such fix (no pixel size in metres); a whole
run's scenes come in UTM.

The per-scene and per-site-year decisions are global; each is made from what it uses, gathered
over the chunk interiors (which tile the grid, so counts add up and value vectors concatenate
to the whole grid's, in another order that no percentile or median depends on):

* pass 1, every scene, every chunk, every asset: whether the scene has data over the grid (a
  scene without is skipped), the evidence of its BOA offset check (``BoaEvidence``), its mask
  reason counts (its record), the clear-look counts per pixel of the season and the fallback
  windows (the widening), and the clear SWIR2 of the Sentinel-2 looks (the season's offset
  check, ``radiometry.stable_differences`` per chunk once the offsets are settled).
* the decisions: offsets, skips, records, window, offset corrections.
* pass 2, every chunk, the scenes the season uses: the per-pixel products
  (``recipe.SeasonProducts``: composite, clear count, spread, coal counts, greenness, crop
  signs, seen while crops stand) of the chunk, whose interiors are pasted into the site's.

Then the whole-site stage (``recipe.finish_site_year``: classification with its connected
regions, minimum mapping unit, rim unmixing and dilations) runs on those 2D products, O(bands x
pixels): a region's size and its thin parts are properties of the whole region, which may cross
any number of chunks, so that stage stays whole-site.

Cost: every asset of every scene is read twice (the scenes outside the season's windows once),
about 2x the bytes of a whole-grid read, plus the halos; remote chips come from the chip cache
the second time. Pass 1 keeps the clear SWIR2 of the Sentinel-2 looks (4 bytes x looks x pixels)
until the offsets are settled.

A scene whose read fails in pass 2 after succeeding in pass 1 (a transient fault) is skipped
with its reason and the site-year recomputed without it, as the whole-grid read would have.
Where several assets of one scene are broken, the reason names the first met chunk by chunk,
which can be another asset than the whole-grid read names; a remote asset's fetch limit
(``read.max_fetch_mb``) applies to each chunk's read.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from itertools import islice

import numpy as np
from affine import Affine
from numpy.typing import NDArray

from pipeline import task_progress
from pipeline.bands import BAND_INDEX, BANDS
from pipeline.errors import SceneReadError, SourceError
from pipeline.grid import Grid
from pipeline.masking import MaskReason, MaskRules
from pipeline.radiometry import (
    BoaEvidence,
    Radiometry,
    outliers_from_differences,
    settle_boa_offset,
    stable_differences,
)
from pipeline.recipe import (
    Look,
    RecipeParams,
    SeasonProducts,
    choose_window,
    finish_site_year,
    harmonized,
    mask_counts,
    offset_checked,
    offset_corrections,
    season_looks,
    season_products,
    season_records,
    shifted,
)
from pipeline.results import SceneRecord, SiteYear
from pipeline.sources.base import Scene
from pipeline.sources.chips import ChipCache, ChipMissingError
from pipeline.sources.read import (
    NO_DATA,
    ReadSettings,
    ScenePixels,
    cloud_dilation_px,
    read_pixels,
)

logger = logging.getLogger(__name__)

#: Reach of the neighbourhood stages on the time stack after the mask: greenness's 3 x 3 minimum.
GREENNESS_REACH_PX = 1
#: The least halo: GDAL's warper estimates its resampling scale from each request's source
#: window, and for reads under 5 px across that estimate (hence the bilinear kernel) differs from
#: the whole grid's (measured: 20 m bands onto 10 m windows of 1-4 px).
MIN_HALO_PX = 4
#: The offset check's minimum number of looks (``radiometry.offset_outliers``).
_MIN_CHECKED = 3

Describe = Callable[[Scene, Radiometry, NDArray[np.int64], str | None], SceneRecord]
"""Builds a read scene's record: (scene, settled radiometry, mask reason counts, CRS it was
reprojected from)."""


@dataclass(frozen=True)
class Chunk:
    """A window of the site grid: ``rows`` x ``cols`` (its interior, which the chunks of a
    plan tile without overlap) and ``read_rows`` x ``read_cols`` (the interior and its halo,
    clipped to the grid), in site-grid pixels."""

    rows: slice
    cols: slice
    read_rows: slice
    read_cols: slice

    @property
    def inner(self) -> tuple[slice, slice]:
        """The interior within the read window."""
        r0 = self.rows.start - self.read_rows.start
        c0 = self.cols.start - self.read_cols.start
        return (
            slice(r0, r0 + self.rows.stop - self.rows.start),
            slice(c0, c0 + self.cols.stop - self.cols.start),
        )

    def read_grid(self, grid: Grid) -> Grid:
        """The grid of the read window."""
        return window_grid(grid, self.read_rows, self.read_cols)


def window_grid(grid: Grid, rows: slice, cols: slice) -> Grid:
    """The pixels ``rows`` x ``cols`` of ``grid`` as a grid of their own, on its lattice."""
    t = grid.transform
    origin = Affine(t.a, t.b, t.c + t.a * cols.start, t.d, t.e, t.f + t.e * rows.start)
    return Grid(grid.crs, origin, cols.stop - cols.start, rows.stop - rows.start)


def plan_chunks(shape: tuple[int, int], size: int | tuple[int, int], halo: int) -> list[Chunk]:
    """Chunks of at most ``size`` (rows, cols; one number: square) pixels tiling a grid of
    ``shape`` row by row (the last ones ragged), each read with ``halo`` pixels around it."""
    height, width = shape
    rows_px, cols_px = (size, size) if isinstance(size, int) else size
    if rows_px < 1 or cols_px < 1 or halo < 0:
        raise ValueError(f"chunk size {size} must be positive and halo {halo} not negative")
    out = []
    for r0 in range(0, height, rows_px):
        r1 = min(r0 + rows_px, height)
        for c0 in range(0, width, cols_px):
            c1 = min(c0 + cols_px, width)
            out.append(
                Chunk(
                    slice(r0, r1),
                    slice(c0, c1),
                    slice(max(r0 - halo, 0), min(r1 + halo, height)),
                    slice(max(c0 - halo, 0), min(c1 + halo, width)),
                )
            )
    return out


def halo_px(rules: MaskRules, grid: Grid) -> int:
    """The halo a chunk needs on ``grid`` for its interior to match the whole grid's."""
    return max(cloud_dilation_px(rules, grid) + GREENNESS_REACH_PX, MIN_HALO_PX)


def chunk_steps(grid: Grid, chunk_px: int | tuple[int, int] | None) -> int:
    """The chunk reads a site-year on ``grid`` makes (its progress total): each chunk once per
    pass, 0 when it is read whole."""
    if not needs_chunks(grid, chunk_px):
        return 0
    assert chunk_px is not None
    rows, cols = (chunk_px, chunk_px) if isinstance(chunk_px, int) else chunk_px
    return 2 * (-(-grid.height // rows)) * (-(-grid.width // cols))


def needs_chunks(grid: Grid, chunk_px: int | tuple[int, int] | None) -> bool:
    """Whether a site-year on ``grid`` runs by chunks: when ``chunk_px`` (a side, or rows and
    cols) is set and the grid does not fit one chunk."""
    if chunk_px is None:
        return False
    rows, cols = (chunk_px, chunk_px) if isinstance(chunk_px, int) else chunk_px
    return grid.height > rows or grid.width > cols


@dataclass
class _Survey:
    """What pass 1 gathers of one scene."""

    scene: Scene
    radiometry: Radiometry
    verify_offset: bool
    reprojected_from: str | None
    has_data: bool = False
    counts: NDArray[np.int64] | None = None
    evidence: list[BoaEvidence] | None = None


def chunked_site_year(
    site_id: str,
    year: int,
    scenes: Sequence[Scene],
    grid: Grid,
    area: NDArray[np.bool_],
    params: RecipeParams,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None,
    chunk_px: int | tuple[int, int],
    describe: Describe,
    skipped: Sequence[tuple[Scene, str]] = (),
    skipped_record: Callable[[Scene, str], SceneRecord] | None = None,
) -> SiteYear:
    """The site-year of ``scenes`` on ``grid`` read by chunks of ``chunk_px``: equal to
    ``recipe.site_year`` on the whole grid's observations (see the module's docstring).
    ``describe`` makes a read scene's record, ``skipped_record`` a skipped one's (with the
    reason); ``skipped``: scenes already known unreadable."""
    chunks = plan_chunks(grid.shape, chunk_px, halo_px(rules, grid))
    logger.info(
        "%s %d: %d x %d px in %d chunks of %s px (halo %d)",
        site_id, year, grid.height, grid.width, len(chunks), chunk_px, halo_px(rules, grid),
    )  # fmt: skip
    failed = list(skipped)
    known = {id(f[0]) for f in failed}
    todo = [s for s in scenes if id(s) not in known]
    while True:
        try:
            return _site_year(site_id, year, todo, failed, grid, area, params, rules, settings,
                              chips, chunks, describe, skipped_record)  # fmt: skip
        except _LateFailure as exc:  # read in some chunks, failed in another: skip it, again
            logger.warning("skipping %s", exc.error)
            failed.append((exc.scene, exc.error.reason))
            todo = [s for s in todo if s is not exc.scene]


class _LateFailure(Exception):
    def __init__(self, scene: Scene, error: SceneReadError) -> None:
        super().__init__(str(error))
        self.scene = scene
        self.error = error


def _site_year(
    site_id: str,
    year: int,
    scenes: Sequence[Scene],
    failed: list[tuple[Scene, str]],
    grid: Grid,
    area: NDArray[np.bool_],
    params: RecipeParams,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None,
    chunks: Sequence[Chunk],
    describe: Describe,
    skipped_record: Callable[[Scene, str], SceneRecord] | None,
) -> SiteYear:
    failed = list(failed)
    windows = [params.window(year, widened) for widened in (False, True)]
    clear_counts = [np.zeros(grid.shape, np.int64) for _ in windows]
    surveys: dict[int, _Survey] = {}
    dead: set[int] = set()
    missing: list[ChipMissingError] = []
    swir: list[dict[int, NDArray[np.float32]]] = [{} for _ in chunks]
    # Pass 1: the decisions' evidence.
    for c, chunk in enumerate(chunks):
        read_grid = chunk.read_grid(grid)
        rows, cols = chunk.inner
        live = [i for i in range(len(scenes)) if i not in dead]
        reads = _read_many([scenes[i] for i in live], read_grid, rules, settings, chips)
        for i, read in zip(live, reads, strict=True):
            scene = scenes[i]
            try:
                pixels = read()
            except ChipMissingError as exc:
                missing.append(exc)
                dead.add(i)
                continue
            except SceneReadError as exc:
                if c > 0:  # its earlier chunks are counted: start again without it
                    raise _LateFailure(scene, exc) from None
                logger.warning("skipping %s", exc)
                failed.append((scene, exc.reason))
                dead.add(i)
                continue
            survey = surveys.setdefault(
                i,
                _Survey(scene, pixels.radiometry, pixels.verify_offset, pixels.reprojected_from),
            )
            _gather(survey, pixels, rows, cols)
            reasons = pixels.reasons(rows, cols)
            clear = reasons == MaskReason.CLEAR
            for (start, end), count in zip(windows, clear_counts, strict=True):
                if start <= scene.date <= end:
                    count[chunk.rows, chunk.cols] += clear
            swir[c][i] = np.where(clear, pixels.dn[BAND_INDEX["swir22"], rows, cols], np.nan)
        task_progress.report("chunks", c + 1, 2 * len(chunks))
    if missing:
        raise ChipMissingError.combined(missing)

    # The decisions, as the whole grid makes them.
    looks: list[tuple[int, date, SceneRecord, Radiometry]] = []
    for i, scene in enumerate(scenes):
        if i in dead:
            continue
        survey = surveys[i]
        if not survey.has_data:
            logger.warning("skipping %s", SceneReadError(scene.id, NO_DATA))
            failed.append((scene, NO_DATA))
            continue
        radiometry = survey.radiometry
        if survey.verify_offset:
            assert survey.evidence is not None
            radiometry = settle_boa_offset(radiometry, BoaEvidence.combined(survey.evidence))
        assert survey.counts is not None
        record = describe(scene, radiometry, survey.counts, survey.reprojected_from)
        looks.append((i, scene.date, record, radiometry))
    records = [r for _, _, r, _ in looks]
    checked = offset_checked(records)
    outliers = []
    if len(checked) >= _MIN_CHECKED:
        differences: list[list[NDArray[np.float32]]] = [[] for _ in checked]
        for c in range(len(chunks)):
            parts = [looks[k][3].apply(swir[c].pop(looks[k][0])) for k in checked]
            for k, diff in enumerate(stable_differences(parts, [np.isfinite(p) for p in parts])):
                differences[k].append(diff)
            swir[c].clear()
        outliers = outliers_from_differences([np.concatenate(d) for d in differences])
    del swir
    fixes = offset_corrections(records, checked, outliers)
    records = [fixes[k][0] if k in fixes else r for k, r in enumerate(records)]
    shifts = {k: fixes[k][1] for k in fixes}

    start, end, widened = choose_window(site_id, year, lambda w: clear_counts[int(w)], area, params)
    clear_counts.clear()
    skipped = [
        (scene.date, skipped_record(scene, reason) if skipped_record else _skipped(scene, reason))
        for scene, reason in failed
    ]
    days = [d for _, d, _, _ in looks]
    site_records = season_records(
        list(zip(days, records, strict=True)), skipped, year, (start, end), params
    )
    in_season, green_obs = season_looks(days, year, (start, end), params)
    if not in_season:
        return finish_site_year(
            site_id, year, (start, end), widened, tuple(site_records), None, area,
            grid.pixel_area_ha, params,
        )  # fmt: skip

    # Pass 2: the per-pixel products, chunk by chunk.
    used = sorted(set(in_season) | set(green_obs))
    season = [used.index(k) for k in in_season]
    greens = [used.index(k) for k in green_obs]
    products = SeasonProducts.empty(len(BANDS), grid.shape)
    for c, chunk in enumerate(chunks):
        read_grid = chunk.read_grid(grid)
        stack = np.empty((len(used), len(BANDS), *read_grid.shape), np.float32)
        clear = np.empty((len(used), *read_grid.shape), bool)
        reads = _read_many([scenes[looks[k][0]] for k in used], read_grid, rules, settings, chips)
        for n, (k, read) in enumerate(zip(used, reads, strict=True)):
            i, day, record, radiometry = looks[k]
            try:
                pixels = read()
            except SceneReadError as exc:
                raise _LateFailure(scenes[i], exc) from None
            observation = pixels.observation(radiometry)
            reflectance = observation.reflectance
            if k in shifts:
                reflectance = shifted(reflectance, shifts[k])
            look = Look(day, reflectance, observation.clear, record, observation.platform)
            (look,) = harmonized([look], params)
            stack[n], clear[n] = look.reflectance, look.clear
            del pixels, observation, reflectance, look
        part = season_products(stack, clear, [days[k] for k in used], season, greens, year,
                               params)  # fmt: skip
        del stack, clear
        products.paste(chunk.rows, chunk.cols, part.window(*chunk.inner))
        del part
        task_progress.report("chunks", len(chunks) + c + 1, 2 * len(chunks))
    return finish_site_year(
        site_id, year, (start, end), widened, tuple(site_records), products, area,
        grid.pixel_area_ha, params,
    )  # fmt: skip


def _read_many(
    scenes: Sequence[Scene],
    grid: Grid,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None,
) -> Iterator[Callable[[], ScenePixels]]:
    """``read_pixels`` of each scene on ``grid``, up to ``settings.threads`` at once, yielded
    in order as a call that returns the pixels or raises the read's error (so the caller meets
    each failure where the one-at-a-time loop would)."""

    def one(scene: Scene) -> Callable[[], ScenePixels]:
        try:
            pixels = read_pixels(scene, grid, rules, settings, chips)
        except SourceError as exc:
            error = exc

            def fail() -> ScenePixels:
                raise error

            return fail
        return lambda: pixels

    threads = max(1, min(settings.threads, len(scenes)))
    if threads == 1:
        yield from map(one, scenes)
        return
    # At most ``threads`` reads ahead of the caller: a chunk's scenes are not all held at once.
    with ThreadPoolExecutor(threads) as pool:
        ahead: deque[Future[Callable[[], ScenePixels]]] = deque()
        pending = iter(scenes)
        for scene in islice(pending, threads):
            ahead.append(pool.submit(one, scene))
        while ahead:
            done = ahead.popleft().result()
            for scene in islice(pending, 1):
                ahead.append(pool.submit(one, scene))
            yield done


def _gather(survey: _Survey, pixels: ScenePixels, rows: slice, cols: slice) -> None:
    """Add what one chunk's interior says of a scene to its survey."""
    survey.has_data |= pixels.has_data(rows, cols)
    counts = mask_counts(pixels.reasons(rows, cols))
    survey.counts = counts if survey.counts is None else survey.counts + counts
    if survey.verify_offset:
        survey.evidence = (survey.evidence or []) + [pixels.boa_evidence(rows, cols)]


def _skipped(scene: Scene, reason: str) -> SceneRecord:
    return SceneRecord(scene.id, scene.datetime.isoformat(), skipped=reason)
