"""A site-year read and composited chunk by chunk, with results identical to the whole grid.

Memory of a whole-grid site-year grows with scenes x bands x pixels (every scene on the site
grid at once); here it grows with scenes x bands x chunk pixels plus bands x site pixels.

A chunk is a window of the site grid (``plan_chunks``) read with a halo: the pixels around it,
within the grid, that the neighbourhood operations before the whole-site stage reach. A pixel's
mask reason depends on the mask within the cloud dilation radius (``cloud_dilation_px``), and
on where the scene's clouds cast their shadows, matched over the whole site on a coarse grid read
for it (``read.shadow_grid``, ``masking.match_cloud_shadows``), whatever the chunk; its
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
  windows (the widening), and the clear blue, green, SWIR1 and SWIR2 of the looks
  (``SURVEY_BANDS``: the season's offset check, ``radiometry.series_evidence`` per chunk once
  the offsets are settled, and each look's residual haze, ``haze.estimate`` on the whole grid
  once settled), with the band the looks are registered on (``survey_bands``).
* the decisions: offsets, skips, records, window, offset corrections, haze, and where each
  look lies against the season's consensus (``look_registration``, on the whole grid).
* pass 2, every chunk, the scenes the season uses: the per-pixel products
  (``recipe.SeasonProducts``: composite, clear count, spread, coal counts, greenness, crop
  signs, seen while crops stand, the sun response) of the chunk, whose interiors are pasted
  into the site's.

Then the whole-site stage (``recipe.finish_site_year``: classification with its connected
regions, minimum mapping unit, rim unmixing and dilations) runs on those 2D products, O(bands x
pixels): a region's size and its thin parts are properties of the whole region, which may cross
any number of chunks, so that stage stays whole-site.

Cost: every asset of every scene is read twice (the scenes outside the season's windows once),
about 2x the bytes of a whole-grid read, plus the halos; remote chips come from the chip cache
the second time. Pass 1 keeps, per scene and chunk, its clear pixels (1 bit each) and their
blue, green, SWIR1 and SWIR2 (``SURVEY_BANDS``, 16 bytes each) and the registration band (4
more) until the offsets, haze and registration are settled (``ChunkSurvey``).

The steps (``survey`` per chunk, ``settle``, ``season_part`` per chunk, ``finish``) run one
after another in one task (``chunked_site_year``) or, on an executor, each as a task of its own
(``pipeline.tasks``), with the same results.

A scene whose read fails in a later chunk, or in pass 2 after succeeding in pass 1 (a
transient fault), is skipped with its reason: its parts leave the surveys and the decisions
are made again without it (pass 2 again), as the whole-grid read would have.
Where several assets of one scene are broken, the reason names the first met chunk by chunk,
which can be another asset than the whole-grid read names; a remote asset's fetch limit
(``read.max_fetch_mb``) applies to each chunk's read.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from itertools import islice

import numpy as np
from affine import Affine
from numpy.typing import NDArray

from pipeline import haze, task_progress
from pipeline.bands import BAND_INDEX, BANDS
from pipeline.classify import RELIGHT_REACH_PX
from pipeline.errors import SceneReadError, SourceError
from pipeline.grid import Grid
from pipeline.look_registration import (
    NOT_ESTIMATED,
    LookShift,
    register_looks,
    with_year_shift,
)
from pipeline.masking import MaskRules, clear_reasons
from pipeline.radiometry import (
    SERIES_BANDS,
    BoaEvidence,
    Radiometry,
    SeriesEvidence,
    outliers_from_evidence,
    series_evidence,
    settle_boa_offset,
)
from pipeline.recipe import (
    Look,
    RecipeParams,
    SeasonProducts,
    choose_window,
    dehaze,
    finish_site_year,
    harmonized,
    mask_counts,
    offset_checked,
    offset_corrections,
    pixel_size_m,
    registered,
    season_looks,
    season_products,
    season_records,
    shifted,
    with_haze,
    with_registration,
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


def halo_px(rules: MaskRules, grid: Grid, params: RecipeParams | None = None) -> int:
    """The halo a chunk needs on ``grid`` for its interior to match the whole grid's: the
    cloud dilation, then how far a resampled look reaches for its values (``params.reach_px``:
    its own shift and its year's; none without ``params``), then the farthest of greenness's
    3 x 3 minimum and, when cloud shadows are matched, the light measured under them
    (``classify.relit``)."""
    reach = 0 if params is None else params.reach_px
    around = GREENNESS_REACH_PX
    if rules.cloud_heights_m is not None:
        around = max(around, RELIGHT_REACH_PX)
    return max(cloud_dilation_px(rules, grid) + reach + around, MIN_HALO_PX)


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


#: The bands pass 1 keeps of each clear pixel: the season's offset check's
#: (``radiometry.SERIES_BANDS``) and the haze estimate's (``haze.DDV_BANDS``), in band order.
SURVEY_BANDS: tuple[str, ...] = tuple(b for b in BANDS if b in SERIES_BANDS or b in haze.DDV_BANDS)


def survey_bands(params: RecipeParams) -> tuple[str, ...]:
    """The bands pass 1 keeps for ``params``: ``SURVEY_BANDS`` and the band the looks are
    registered on (``params.registration``), in band order."""
    names = set(SURVEY_BANDS)
    if params.registration is not None:
        names.add(BANDS[params.registration.band])
    return tuple(b for b in BANDS if b in names)


@dataclass(frozen=True)
class ScenePart:
    """What pass 1 learns of one scene from one chunk's interior: its radiometry as the
    metadata decide, whether its offset is to be checked, the CRS it was reprojected from,
    whether it has data here, its mask reason counts, its offset evidence (when checked), the
    clear pixels (``np.packbits`` of the interior, row by row) and their DN in ``bands`` (band x
    clear pixels)."""

    radiometry: Radiometry
    verify_offset: bool
    reprojected_from: str | None
    has_data: bool
    counts: NDArray[np.int64]
    evidence: BoaEvidence | None
    clear_bits: NDArray[np.uint8]
    clear_dn: NDArray[np.float32]
    bands: tuple[str, ...] = SURVEY_BANDS

    def clear(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """The clear pixels of the interior of ``shape``."""
        n = shape[0] * shape[1]
        return np.unpackbits(self.clear_bits, count=n).astype(bool).reshape(shape)


@dataclass(frozen=True)
class ChunkSurvey:
    """Pass 1 over one chunk: the part of each scene read there (by index into the
    site-year's scenes), the scenes whose read failed there with the reason, and the chips an
    offline cache lacks (``ChipMissingError``'s key, href and count of more). Picklable: a
    chunk task hands it over through the run's work folder."""

    parts: dict[int, ScenePart]
    failed: dict[int, str]
    missing: tuple[tuple[str, str, int], ...] = ()


@dataclass(frozen=True)
class PlannedLook:
    """A look the decisions keep: its scene (index into the site-year's scenes), day, record
    and settled radiometry."""

    scene: int
    day: date
    record: SceneRecord
    radiometry: Radiometry


@dataclass(frozen=True)
class SeasonPlan:
    """The decisions of a chunked site-year (``settle``), all that pass 2 and the finish need:
    the season window and whether it was widened, the records the site-year keeps, the looks,
    the offset shifts by look, the haze found by look (``haze.estimate``; none when the recipe
    removes no haze), and which looks pass 2 reads (``used``: indices into ``looks``) with their
    roles (``season``, ``greens``: indices into ``used``) and where each lay against the
    season's consensus (``registration``, by index into ``looks``; none when the recipe
    registers no look)."""

    window: tuple[date, date]
    widened: bool
    records: tuple[SceneRecord, ...]
    looks: tuple[PlannedLook, ...]
    shifts: dict[int, float]
    hazes: dict[int, haze.HazeField]
    used: tuple[int, ...]
    season: tuple[int, ...]
    greens: tuple[int, ...]
    registration: dict[int, LookShift]


class LateFailure(Exception):
    """A scene read in pass 1 whose read failed in pass 2 (a transient fault): the site-year
    is settled again without it (``settle``'s ``late``)."""

    def __init__(self, scene: int, error: SceneReadError) -> None:
        super().__init__(str(error))
        self.scene = scene
        self.error = error


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
    """The site-year of ``scenes`` on ``grid`` read by chunks of ``chunk_px``, one chunk after
    another: equal to ``recipe.site_year`` on the whole grid's observations (see the module's
    docstring). ``describe`` makes a read scene's record, ``skipped_record`` a skipped one's
    (with the reason); ``skipped``: scenes already known unreadable.

    The same steps run as tasks of their own on an executor (``pipeline.tasks``): ``survey``
    per chunk, ``settle``, ``season_part`` per chunk, ``finish``."""
    halo = halo_px(rules, grid, params)
    chunks = plan_chunks(grid.shape, chunk_px, halo)
    logger.info(
        "%s %d: %d x %d px in %d chunks of %s px (halo %d)",
        site_id, year, grid.height, grid.width, len(chunks), chunk_px, halo,
    )  # fmt: skip
    known = {id(f[0]) for f in skipped}
    todo = [s for s in scenes if id(s) not in known]
    surveys: list[ChunkSurvey] = []
    dead: set[int] = set()  # failed in an earlier chunk: not read again
    for c, chunk in enumerate(chunks):
        surveys.append(
            survey(todo, grid, chunk, rules, settings, chips, skip=dead, bands=survey_bands(params))
        )
        dead |= set(surveys[-1].failed) | _missing_scenes(surveys[-1], todo)
        task_progress.report("chunks", c + 1, 2 * len(chunks))
    return complete(site_id, year, todo, skipped, grid, area, params, rules, settings, chips,
                    chunks, surveys, describe, skipped_record)  # fmt: skip


def complete(
    site_id: str,
    year: int,
    scenes: Sequence[Scene],
    skipped: Sequence[tuple[Scene, str]],
    grid: Grid,
    area: NDArray[np.bool_],
    params: RecipeParams,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None,
    chunks: Sequence[Chunk],
    surveys: Sequence[ChunkSurvey],
    describe: Describe,
    skipped_record: Callable[[Scene, str], SceneRecord] | None = None,
    late: Mapping[int, str] | None = None,
) -> SiteYear:
    """The site-year from every chunk's survey: ``settle``, then pass 2 chunk by chunk and
    ``finish``. A scene whose read fails in pass 2 (or in ``late``) is skipped and the
    decisions made again without it."""
    failed_late = dict(late or {})
    while True:
        plan = settle(site_id, year, scenes, skipped, grid, area, params, chunks, surveys,
                      describe, skipped_record, failed_late)  # fmt: skip
        if isinstance(plan, SiteYear):
            return plan
        products = SeasonProducts.empty(len(BANDS), grid.shape)
        try:
            for c, chunk in enumerate(chunks):
                part = season_part(scenes, plan, grid, chunk, year, params, rules, settings, chips)
                products.paste(chunk.rows, chunk.cols, part)
                del part
                task_progress.report("chunks", len(chunks) + c + 1, 2 * len(chunks))
        except LateFailure as exc:  # read in pass 1, failed now: settle again without it
            logger.warning("skipping %s", exc.error)
            failed_late[exc.scene] = exc.error.reason
            continue
        return finish(site_id, year, plan, products, area, grid, params)


def survey(
    scenes: Sequence[Scene],
    grid: Grid,
    chunk: Chunk,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None,
    skip: Collection[int] = (),
    bands: tuple[str, ...] = SURVEY_BANDS,
) -> ChunkSurvey:
    """Pass 1 over ``chunk``: read each scene (but those in ``skip``) on the chunk's window
    and keep what the decisions use of its interior (the clear pixels' ``bands``:
    ``survey_bands`` of the recipe's parameters)."""
    read_grid = chunk.read_grid(grid)
    rows, cols = chunk.inner
    live = [i for i in range(len(scenes)) if i not in skip]
    parts: dict[int, ScenePart] = {}
    failed: dict[int, str] = {}
    missing: list[tuple[str, str, int]] = []
    reads = _read_many([scenes[i] for i in live], read_grid, grid, rules, settings, chips)
    for i, read in zip(live, reads, strict=True):
        try:
            pixels = read()
        except ChipMissingError as exc:
            missing.append((exc.key, exc.href, exc.more))
            continue
        except SceneReadError as exc:
            failed[i] = exc.reason
            continue
        reasons = pixels.reasons(rows, cols)
        clear = clear_reasons(reasons)
        parts[i] = ScenePart(
            pixels.radiometry,
            pixels.verify_offset,
            pixels.reprojected_from,
            pixels.has_data(rows, cols),
            mask_counts(reasons),
            pixels.boa_evidence(rows, cols) if pixels.verify_offset else None,
            np.packbits(clear, axis=None),
            pixels.dn[[BAND_INDEX[b] for b in bands], rows, cols][:, clear],
            bands,
        )
    return ChunkSurvey(parts, failed, tuple(missing))


def settle(
    site_id: str,
    year: int,
    scenes: Sequence[Scene],
    skipped: Sequence[tuple[Scene, str]],
    grid: Grid,
    area: NDArray[np.bool_],
    params: RecipeParams,
    chunks: Sequence[Chunk],
    surveys: Sequence[ChunkSurvey],
    describe: Describe,
    skipped_record: Callable[[Scene, str], SceneRecord] | None = None,
    late: Mapping[int, str] | None = None,
) -> SeasonPlan | SiteYear:
    """The decisions, as the whole grid makes them, from every chunk's survey: offsets,
    skips, records, window, offset corrections. A scene whose read failed in any chunk is
    skipped with the reason of the first such chunk; ``late``: scenes whose pass-2 read failed,
    with the reason. Returns the site-year itself when the season has no look."""
    missing = [ChipMissingError(*m) for s in surveys for m in s.missing]
    if missing:
        raise ChipMissingError.combined(missing)
    reasons: dict[int, str] = {}
    for s in surveys:
        for i, reason in s.failed.items():
            reasons.setdefault(i, reason)
    for i, reason in (late or {}).items():
        reasons.setdefault(i, reason)
    failed = list(skipped)
    for i in sorted(reasons):
        if i not in (late or {}):
            logger.warning("skipping %s", SceneReadError(scenes[i].id, reasons[i]))
        failed.append((scenes[i], reasons[i]))

    windows = [params.window(year, widened) for widened in (False, True)]
    clear_counts = [np.zeros(grid.shape, np.int64) for _ in windows]
    looks: list[PlannedLook] = []
    for i, scene in enumerate(scenes):
        if i in reasons:
            continue
        parts = [s.parts[i] for s in surveys]
        if not any(p.has_data for p in parts):
            logger.warning("skipping %s", SceneReadError(scene.id, NO_DATA))
            failed.append((scene, NO_DATA))
            continue
        for chunk, part in zip(chunks, parts, strict=True):
            clear = part.clear(_shape(chunk))
            for (start, end), count in zip(windows, clear_counts, strict=True):
                if start <= scene.date <= end:
                    count[chunk.rows, chunk.cols] += clear
        radiometry = parts[0].radiometry
        if parts[0].verify_offset:
            evidence = [p.evidence for p in parts if p.evidence is not None]
            radiometry = settle_boa_offset(radiometry, BoaEvidence.combined(evidence))
        counts = np.sum([p.counts for p in parts], axis=0)
        record = describe(scene, radiometry, counts, parts[0].reprojected_from)
        looks.append(PlannedLook(i, scene.date, record, radiometry))
    records = [look.record for look in looks]
    checked = offset_checked(records)
    outliers = []
    if len(checked) >= _MIN_CHECKED:
        series: list[list[SeriesEvidence]] = [[] for _ in checked]
        for chunk, s in zip(chunks, surveys, strict=True):
            bands = [
                looks[k].radiometry.apply(
                    _clear_bands(s.parts[looks[k].scene], _shape(chunk), SERIES_BANDS)
                )
                for k in checked
            ]
            seen = [np.logical_and.reduce(np.isfinite(b), axis=0) for b in bands]
            for k, piece in enumerate(series_evidence(bands, seen)):
                series[k].append(piece)
        outliers = outliers_from_evidence([SeriesEvidence.combined(e) for e in series])
    fixes = offset_corrections(records, checked, outliers)
    looks = [replace(look, record=fixes[k][0]) if k in fixes else look
             for k, look in enumerate(looks)]  # fmt: skip
    shifts = {k: fixes[k][1] for k in fixes}
    hazes: dict[int, haze.HazeField] = {}
    if params.haze is not None:
        for k, look in enumerate(looks):
            found = _haze_of(look, shifts.get(k), chunks, surveys, grid, params.haze)
            hazes[k] = found
            looks[k] = replace(look, record=with_haze(look.record, found))

    start, end, widened = choose_window(site_id, year, lambda w: clear_counts[int(w)], area, params)
    clear_counts.clear()
    skipped_records = [
        (scene.date, skipped_record(scene, reason) if skipped_record else _skipped(scene, reason))
        for scene, reason in failed
    ]
    days = [look.day for look in looks]
    in_season, green_obs = season_looks(days, year, (start, end), params)
    used = sorted(set(in_season) | set(green_obs))
    registration: dict[int, LookShift] = {}
    if in_season and (params.registration is not None or params.year_shift is not None):
        placed = [NOT_ESTIMATED] * len(used)
        if params.registration is not None:
            band = BANDS[params.registration.band]
            # Filled look by look: whole-grid arrays listed, then stacked, were held twice (the
            # task's peak memory on a large site).
            matched = np.empty((len(used), *grid.shape), np.float32)
            matched_clear = np.empty((len(used), *grid.shape), bool)
            for j, k in enumerate(used):
                matched[j], matched_clear[j] = _survey_band(
                    looks[k], shifts.get(k), chunks, surveys, grid, band
                )
            placed = register_looks(
                matched, matched_clear, [used.index(k) for k in in_season], params.registration
            )
            del matched, matched_clear
        for k, shift in zip(used, placed, strict=True):
            registration[k] = with_year_shift(shift, params.year_shift)
            looks[k] = replace(looks[k], record=with_registration(looks[k].record, registration[k]))
    site_records = season_records(
        [(look.day, look.record) for look in looks], skipped_records, year, (start, end), params
    )
    if not in_season:
        return finish_site_year(
            site_id, year, (start, end), widened, tuple(site_records), None, area,
            grid.pixel_area_ha, params,
        )  # fmt: skip
    return SeasonPlan(
        (start, end), widened, tuple(site_records), tuple(looks), shifts, hazes, tuple(used),
        tuple(used.index(k) for k in in_season), tuple(used.index(k) for k in green_obs),
        registration,
    )  # fmt: skip


def season_part(
    scenes: Sequence[Scene],
    plan: SeasonPlan,
    grid: Grid,
    chunk: Chunk,
    year: int,
    params: RecipeParams,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None,
) -> SeasonProducts:
    """Pass 2 over ``chunk``: the per-pixel products of its interior from the looks ``plan``
    uses. Raises ``LateFailure`` when a scene's read fails now."""
    read_grid = chunk.read_grid(grid)
    used = [plan.looks[k] for k in plan.used]
    stack = np.empty((len(used), len(BANDS), *read_grid.shape), np.float32)
    clear = np.empty((len(used), *read_grid.shape), bool)
    shaded = np.zeros((len(used), *read_grid.shape), bool)
    reads = _read_many(
        [scenes[look.scene] for look in used], read_grid, grid, rules, settings, chips
    )
    for n, (k, look, read) in enumerate(zip(plan.used, used, reads, strict=True)):
        try:
            pixels = read()
        except SceneReadError as exc:
            raise LateFailure(look.scene, exc) from None
        observation = pixels.observation(look.radiometry)
        reflectance = observation.reflectance
        if k in plan.shifts:
            reflectance = shifted(reflectance, plan.shifts[k])
        if k in plan.hazes:
            reflectance = dehaze(reflectance, plan.hazes[k], (chunk.read_rows, chunk.read_cols),
                                 params)  # fmt: skip
        (seen,) = harmonized(
            [Look(look.day, reflectance, observation.clear, look.record, observation.platform,
                  observation.shaded)],
            params,
        )  # fmt: skip
        if k in plan.registration:
            seen = registered(seen, plan.registration[k])
        stack[n], clear[n] = seen.reflectance, seen.clear
        if seen.shaded is not None:
            shaded[n] = seen.shaded
        del pixels, observation, reflectance, seen
    part = season_products(stack, clear, [look.day for look in used], list(plan.season),
                           list(plan.greens), year, params, shaded)  # fmt: skip
    del stack, clear, shaded
    return part.window(*chunk.inner)


def finish(
    site_id: str,
    year: int,
    plan: SeasonPlan,
    products: SeasonProducts,
    area: NDArray[np.bool_],
    grid: Grid,
    params: RecipeParams,
) -> SiteYear:
    """The site-year from its stitched products (``recipe.finish_site_year``)."""
    return finish_site_year(
        site_id, year, plan.window, plan.widened, plan.records, products, area,
        grid.pixel_area_ha, params,
    )  # fmt: skip


def _shape(chunk: Chunk) -> tuple[int, int]:
    return (chunk.rows.stop - chunk.rows.start, chunk.cols.stop - chunk.cols.start)


def _clear_bands(
    part: ScenePart, shape: tuple[int, int], names: Sequence[str]
) -> NDArray[np.float32]:
    """The part's DN in the bands ``names`` (of its ``bands``) on the interior of ``shape``
    (band, y, x), NaN where not clear."""
    out = np.full((len(names), *shape), np.nan, np.float32)
    out[:, part.clear(shape)] = part.clear_dn[[part.bands.index(b) for b in names]]
    return out


def _haze_of(
    look: PlannedLook,
    shift: float | None,
    chunks: Sequence[Chunk],
    surveys: Sequence[ChunkSurvey],
    grid: Grid,
    rule: haze.HazeRule,
) -> haze.HazeField:
    """A look's haze (``haze.estimate``) from the clear pixels' bands its surveys kept, in
    reflectance as pass 2 reads it (settled radiometry, then the offset ``shift``): the values
    the whole grid's estimate sees."""
    bands, clear = _survey_bands(look, shift, chunks, surveys, grid, haze.DDV_BANDS)
    blue, green, swir16, swir22 = bands
    pixel_m = pixel_size_m(grid.pixel_area_ha)
    return haze.estimate(blue, green, swir16, swir22, clear, pixel_m, rule)


def _survey_band(
    look: PlannedLook,
    shift: float | None,
    chunks: Sequence[Chunk],
    surveys: Sequence[ChunkSurvey],
    grid: Grid,
    name: str,
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """One band the surveys kept of a look on the whole grid, as ``_survey_bands``."""
    bands, clear = _survey_bands(look, shift, chunks, surveys, grid, (name,))
    return bands[0], clear


def _survey_bands(
    look: PlannedLook,
    shift: float | None,
    chunks: Sequence[Chunk],
    surveys: Sequence[ChunkSurvey],
    grid: Grid,
    names: Sequence[str],
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """A look's bands ``names`` (of those its surveys kept; band, y, x) on the whole grid, NaN where
    not clear, and its clear mask, from the clear pixels its surveys kept, in reflectance as
    pass 2 reads it (settled radiometry, then the offset ``shift``): on the clear pixels, the
    values of the whole grid's look with its offset corrected."""
    bands = np.full((len(names), *grid.shape), np.nan, np.float32)
    clear = np.zeros(grid.shape, bool)
    for chunk, s in zip(chunks, surveys, strict=True):
        part = s.parts[look.scene]
        values = look.radiometry.apply(_clear_bands(part, _shape(chunk), names))
        bands[:, chunk.rows, chunk.cols] = values if shift is None else shifted(values, shift)
        clear[chunk.rows, chunk.cols] = part.clear(_shape(chunk))
    return bands, clear


def _missing_scenes(survey: ChunkSurvey, scenes: Sequence[Scene]) -> set[int]:
    """The scenes of ``survey`` that are neither read nor failed (their chips missing)."""
    return set(range(len(scenes))) - set(survey.parts) - set(survey.failed)


def _read_many(
    scenes: Sequence[Scene],
    grid: Grid,
    site_grid: Grid,
    rules: MaskRules,
    settings: ReadSettings,
    chips: ChipCache | None,
) -> Iterator[Callable[[], ScenePixels]]:
    """``read_pixels`` of each scene on ``grid`` (a window of ``site_grid``), up to
    ``settings.threads`` at once, yielded in order as a call that returns the pixels or raises
    the read's error (so the caller meets each failure where the one-at-a-time loop would)."""

    def one(scene: Scene) -> Callable[[], ScenePixels]:
        try:
            pixels = read_pixels(scene, grid, rules, settings, chips, site_grid)
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


def _skipped(scene: Scene, reason: str) -> SceneRecord:
    return SceneRecord(scene.id, scene.datetime.isoformat(), skipped=reason)
