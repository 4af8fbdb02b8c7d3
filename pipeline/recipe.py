"""The per-site-year recipe: observations in, a classified site-year out.

Pure: arrays and a frozen ``RecipeParams`` in, a ``SiteYear`` out; no files, no network, no
config objects. ``run`` reads the scenes (``sources.read.read_scenes``) and calls ``site_year``.
One classification serves every caller: ``classify`` turns a composite (with its greenness and
coal frequency) or a single image into footprint and coal masks; ``site_year`` calls it on the
season composite and ``compare`` on each date's image (``classify_single_image``).

Scenes are read once, from the start of the greenness period to the end of the widened window;
the season window selects the composite's observations and is widened in memory when the median
pixel of the analysis area has too few clear ones.

``site_year`` is four steps that ``chunks`` also runs over a site read window by window, with
the same results: the season's decisions (``correct_offset_outliers``, ``choose_window``,
``season_records``), the per-pixel products of the time stack (``season_products``, any window
of the grid with a one-pixel halo), and the whole-site stage on those 2D products
(``finish_site_year``: classification, connected regions, minimum mapping unit, dilations).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pipeline import bands, boundaries, harmonize, haze, terrain
from pipeline.classify import (
    COAL_BRIGHTNESS_MAX,
    SHADE_MIN_LOSS,
    CoalFrequency,
    coal_frequency,
    crop_signs,
    drop_thin_regions,
    footprint_mask,
    greenness,
    grow_mixed_edges,
    grow_to_unmixed_area,
    is_green,
    obscured_looks,
    relit,
    valid_pixels,
)
from pipeline.composite import Composite, median_composite
from pipeline.look_registration import (
    NOT_ESTIMATED,
    LookRegistrationParams,
    LookShift,
    register_looks,
    resample_look,
    resample_mask,
    with_year_shift,
)
from pipeline.masking import CLEAR_REASONS, MaskReason
from pipeline.radiometry import (
    S2_BOA_OFFSET_DN,
    S2_SCALE,
    SERIES_BAND_INDEX,
    OffsetOutlier,
    offset_outliers,
)
from pipeline.results import SceneRecord, SeasonEvidence, SiteYear
from pipeline.terrain import SunResponse, sun_response

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float32]
MonthDay = tuple[int, int]


@dataclass(frozen=True)
class RecipeParams:
    """Everything the recipe decides with, as plain values (``run`` builds it from the config;
    the defaults are the config's defaults, so ``RecipeParams()`` is what a default run uses).

    Month-days are ``(month, day)``; ``footprint_rule`` and ``coal_rule`` are the keyword
    thresholds of ``classify.footprint_mask`` and ``classify.coal_observation``, and
    ``terrain_rule`` those of ``terrain.shadowed`` (empty: their defaults). Crops are not
    harvested before ``harvest_from``: ground seen bare before it after its last green look
    was cleared this season (or harvested early). Every crop stands green
    between the two days of ``crops_green`` (judgement: rice and maize peak from mid-July to
    mid-August in the DPRK, an early harvest comes after): a season without a clear look then
    cannot tell a field harvested before its first clear look from bare ground
    (``site_year``'s ``SeasonEvidence``). ``haze``: how each look's residual haze is estimated
    and removed (``haze``, ``dehazed``); None leaves the looks as read. ``registration``: how
    the looks the season uses are registered onto their consensus before they are composited
    (``look_registration``, ``registered``); None leaves them where they were read.
    ``year_shift``: the sub-pixel shift (rows down, cols right) every look the season uses is
    resampled by on top of its own, onto the frame of the site's other years
    (``coregister.subpixel_shifts``: the run's second pass for a year that lay off it); None:
    none.
    """

    season: tuple[MonthDay, MonthDay] = ((9, 1), (11, 15))
    fallback: tuple[MonthDay, MonthDay] = ((8, 15), (11, 30))
    min_clear_observations: int = 3
    green_from: MonthDay = (6, 1)
    green_percentile: float = 100.0
    footprint_rule: Mapping[str, float] = field(default_factory=dict)
    footprint_opening_px: int = 1
    footprint_edge_fraction: float = 0.5
    coal_rule: Mapping[str, float] = field(default_factory=dict)
    coal_min_frequency: float = 0.5
    coal_min_observations: int = 3
    coal_seen_once_reach_m: float = 30.0
    coal_veil_min_rise: float = 0.015
    coal_shade_min_loss: float = SHADE_MIN_LOSS
    coal_opening_px: int = 1
    coal_edge_rule: Literal["auto", "area", "majority"] = "auto"
    coal_edge_fraction: float = 0.5
    min_mapping_unit_ha: float = 0.25
    harmonize_to: str = "none"
    crops_green: tuple[MonthDay, MonthDay] = ((7, 15), (8, 15))
    harvest_from: MonthDay = (9, 1)
    terrain_rule: Mapping[str, float] = field(default_factory=dict)
    haze: haze.HazeRule | None = field(default_factory=haze.HazeRule)
    registration: LookRegistrationParams | None = field(default_factory=LookRegistrationParams)
    year_shift: tuple[float, float] | None = None

    @property
    def reach_px(self) -> int:
        """How far (pixels) a look resampled by its own shift and ``year_shift`` reaches for
        its values: the halo a chunk needs for them (0: no look is resampled)."""
        own = self.registration.max_shift_px if self.registration is not None else 0.0
        year = max(abs(v) for v in self.year_shift) if self.year_shift is not None else 0.0
        return math.floor(own + year) + 1 if own + year > 0 else 0

    def window(self, year: int, widened: bool = False) -> tuple[date, date]:
        a, b = self.fallback if widened else self.season
        return date(year, *a), date(year, *b)

    def read_window(self, year: int) -> tuple[date, date]:
        """The dates whose scenes a site-year reads: greenness period through widened window."""
        start, end = self.window(year, widened=True)
        return min(date(year, *self.green_from), start), end


@dataclass(frozen=True)
class Look:
    """One observation as the recipe sees it: when, reflectance (band, y, x), clear mask, and
    its provenance record; ``shaded``: the clear pixels in the shadow a cloud of the scene
    casts (``masking.MaskReason.CAST_SHADOW``), not clear looks for coal (None: none)."""

    day: date
    reflectance: NDArray[np.float32]
    clear: BoolArray
    record: SceneRecord
    platform: str = ""
    shaded: BoolArray | None = None


def look_record(
    scene_id: str,
    when: str,
    *,
    collection: str = "",
    platform: str = "",
    offset_dn: float | None = None,
    scale: float | None = None,
    radiometry: str = "",
    offset_check: str = "",
    reasons: NDArray[np.uint8] | None = None,
    reprojected_from: str | None = None,
    processing_baseline: str = "",
    reason_counts: NDArray[np.int64] | None = None,
) -> SceneRecord:
    """The provenance record of one observation read for a site-year. Its mask shares come
    from the per-pixel ``reasons`` or, for a scene read in parts, their summed
    ``reason_counts`` (``mask_counts``): the same numbers."""
    counts = mask_counts(reasons) if reasons is not None else reason_counts
    return SceneRecord(
        scene_id,
        when,
        offset_dn=offset_dn,
        radiometry=radiometry,
        clear_fraction=None if counts is None else _share(counts, *CLEAR_REASONS),
        collection=collection,
        platform=platform,
        scale=scale,
        offset_check=offset_check,
        mask={} if counts is None else _shares(counts),
        reprojected_from=reprojected_from,
        processing_baseline=processing_baseline,
    )


def mask_counts(reasons: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Pixels per ``MaskReason`` (index = reason): what a scene's record is made of, summable
    over the parts of a scene read in chunks."""
    return np.bincount(reasons.ravel(), minlength=len(MaskReason)).astype(np.int64)


def _share(counts: NDArray[np.int64], *reasons: int) -> float:
    """Share of the pixels with any of ``reasons``."""
    return round(sum(int(counts[r]) for r in reasons) / max(int(counts.sum()), 1), 4)


def _shares(counts: NDArray[np.int64]) -> dict[str, float]:
    """``masking.reason_shares`` from counts."""
    return {MaskReason(i).name.lower(): _share(counts, i) for i, c in enumerate(counts) if c}


def site_year(
    site_id: str,
    year: int,
    looks: Sequence[Look],
    skipped: Sequence[tuple[date, SceneRecord]],
    area: BoolArray,
    pixel_area_ha: float,
    params: RecipeParams,
) -> SiteYear:
    """Composite and classify one site-year from its looks (``skipped``: scenes that could not
    be read, with their records, kept for the manifest).

    Besides footprint and coal, the site-year keeps its ``SeasonEvidence`` for the cross-year
    step (``analysis.date_footprints``):

    * ``vegetated``: not footprint, not ambiguous, green at some point of the year.
    * ``field``: the part of ``vegetated`` with low NDVI in some clear look (sown, flooded or
      harvested: ``classify.crop_signs``).
    * ``ambiguous``: footprint-like on the season composite but green earlier in the year, and
      seen bare in a look before ``params.harvest_from`` after its last green look (or next to
      such a pixel: the rim). Ground cleared during the season, or a field harvested early; a
      crop harvested on time is green until its harvest and is never ambiguous. The next year
      tells: cleared ground stays bare and never greens.
    * ``unconfirmed``: footprint with no clear look while crops stand green
      (``params.crops_green``): under a cloudy summer, a field seen only before it greened and
      after (or right at) its harvest is as bare as built ground and never looked green. The
      neighbouring years tell.
    """
    shape = area.shape
    corrected = correct_offset_outliers(looks)
    looks = harmonized(dehazed(corrected, pixel_area_ha, params), params)

    def clear_count(widened: bool) -> NDArray[np.int64]:
        start, end = params.window(year, widened)
        count = np.zeros(shape, np.int64)
        for o in looks:
            if start <= o.day <= end:
                count += o.clear
        return count

    start, end, widened = choose_window(site_id, year, clear_count, area, params)
    days = [o.day for o in looks]
    in_season, green_obs = season_looks(days, year, (start, end), params)
    used = sorted(set(in_season) | set(green_obs))
    if in_season and (params.registration is not None or params.year_shift is not None):
        found = [NOT_ESTIMATED] * len(used)
        if params.registration is not None:
            # Matched as read (offsets corrected): the values a site read by chunks has in hand.
            found = look_shifts(
                [corrected[i].reflectance[params.registration.band] for i in used],
                [corrected[i].clear for i in used],
                [used.index(i) for i in in_season],
                params.registration,
            )
        looks = list(looks)
        for i, shift in zip(used, found, strict=True):
            looks[i] = registered(looks[i], with_year_shift(shift, params.year_shift))
    records = season_records(
        [(o.day, o.record) for o in looks], skipped, year, (start, end), params
    )
    if not in_season:
        return finish_site_year(
            site_id, year, (start, end), widened, records, None, area, pixel_area_ha, params
        )
    products = season_products(
        np.stack([looks[i].reflectance for i in used]),
        np.stack([looks[i].clear for i in used]),
        [days[i] for i in used],
        [used.index(i) for i in in_season],
        [used.index(i) for i in green_obs],
        year,
        params,
        shaded_stack([looks[i] for i in used]),
    )
    return finish_site_year(
        site_id, year, (start, end), widened, records, products, area, pixel_area_ha, params
    )


def look_shifts(
    bands: Sequence[FloatArray],
    clear: Sequence[BoolArray],
    reference: Sequence[int],
    params: LookRegistrationParams,
) -> list[LookShift]:
    """Where each look lies against the consensus of the looks ``reference`` (indices into
    ``bands``; ``look_registration.register_looks``), from each look's matched band (y, x)
    and clear mask."""
    return register_looks(np.stack(bands), np.stack(clear), reference, params)


def registered(look: Look, shift: LookShift) -> Look:
    """``look`` moved onto its season's consensus by ``shift`` when it is to move
    (``look_registration.resample_look``), its record saying by how much
    (``with_registration``)."""
    applied = shift.applied
    if applied is None:
        return look
    reflectance, clear = resample_look(look.reflectance, look.clear, applied)
    shaded = None if look.shaded is None else resample_mask(look.shaded, applied) & clear
    return replace(
        look, reflectance=reflectance, clear=clear, record=with_registration(look.record, shift),
        shaded=shaded,
    )  # fmt: skip


def with_registration(record: SceneRecord, shift: LookShift) -> SceneRecord:
    """``record`` with where its look lay against its season's consensus (pixels east, north)
    before it was moved back; unchanged when the look was not moved."""
    offset = shift.east_north()
    return record if offset is None else replace(record, registered_px=offset)


def harmonized(looks: Sequence[Look], params: RecipeParams) -> list[Look]:
    """``looks`` onto the sensor ``params.harmonize_to`` names (per look, per pixel)."""
    if params.harmonize_to != "landsat-oli":
        return list(looks)
    return [replace(o, reflectance=harmonize.to_oli(o.reflectance, o.platform)) for o in looks]


def dehazed(looks: Sequence[Look], pixel_area_ha: float, params: RecipeParams) -> list[Look]:
    """``looks`` without their residual haze (``haze.estimate`` on each look's clear pixels,
    ``haze.remove``), each record saying how much was removed (``with_haze``)."""
    if params.haze is None:
        return list(looks)
    pixel_m = pixel_size_m(pixel_area_ha)
    out = []
    for o in looks:
        found = haze.estimate(*haze.ddv_bands(o.reflectance), o.clear, pixel_m, params.haze)
        whole = (slice(0, o.clear.shape[0]), slice(0, o.clear.shape[1]))
        reflectance = dehaze(o.reflectance, found, whole, params)
        out.append(replace(o, reflectance=reflectance, record=with_haze(o.record, found)))
    return out


def dehaze(
    reflectance: FloatArray,
    found: haze.HazeField,
    window: tuple[slice, slice],
    params: RecipeParams,
) -> FloatArray:
    """``reflectance`` of the grid's pixels ``window`` without the haze ``found`` (unchanged
    when none was found)."""
    if params.haze is None or found.max <= 0.0:
        return reflectance
    return haze.remove(reflectance, found.at(*window), params.haze)


def with_haze(record: SceneRecord, found: haze.HazeField) -> SceneRecord:
    """``record`` with the blue haze removed from its look: mean and largest over the grid's
    blocks (reflectance, 4 decimals)."""
    return replace(record, haze_blue=round(found.mean, 4), haze_blue_max=round(found.max, 4))


def pixel_size_m(pixel_area_ha: float) -> float:
    """The side (metres) of a square pixel of ``pixel_area_ha``."""
    return float(np.sqrt(pixel_area_ha * 1e4))


def choose_window(
    site_id: str,
    year: int,
    clear_count: Callable[[bool], NDArray[np.int64]],
    area: BoolArray,
    params: RecipeParams,
) -> tuple[date, date, bool]:
    """The season window and whether it was widened: the fallback window when the median
    pixel of ``area`` has fewer than ``params.min_clear_observations`` clear looks in the
    season window. ``clear_count(widened)``: clear looks per pixel in that window."""
    for widened in (False, True):
        start, end = params.window(year, widened)
        counts = clear_count(widened)[area]
        enough = np.median(counts) >= params.min_clear_observations
        if enough or widened:
            break
        logger.info(
            "%s %d: median clear observations %s < %d in %s..%s; widening the window",
            site_id, year, np.median(counts), params.min_clear_observations, start, end,
        )  # fmt: skip
    return start, end, widened


def season_looks(
    days: Sequence[date], year: int, window: tuple[date, date], params: RecipeParams
) -> tuple[list[int], list[int]]:
    """Indices (into ``days``, in their order) of the looks in the season ``window`` and of
    those of the greenness period (from ``params.green_from`` to the window's end)."""
    start, end = window
    green_start = date(year, *params.green_from)
    in_season = [i for i, d in enumerate(days) if start <= d <= end]
    green_obs = [i for i, d in enumerate(days) if green_start <= d <= end]
    return in_season, green_obs


def season_records(
    looks: Sequence[tuple[date, SceneRecord]],
    skipped: Sequence[tuple[date, SceneRecord]],
    year: int,
    window: tuple[date, date],
    params: RecipeParams,
) -> tuple[SceneRecord, ...]:
    """The records a site-year keeps, in time order, each with its role: the looks of the
    greenness period and the skipped scenes up to the window's end."""
    start, end = window
    green_start = date(year, *params.green_from)

    def role(day: date) -> str:
        return "season" if start <= day else "greenness"

    return tuple(
        sorted(
            [_with_role(r, role(d)) for d, r in looks if green_start <= d <= end]
            + [_with_role(r, role(d)) for d, r in skipped if d <= end],
            key=lambda r: (r.datetime, r.scene_id),
        )
    )


@dataclass(frozen=True)
class SeasonProducts:
    """The per-pixel products of a site-year's looks, 2D (y, x) or (band, y, x): everything
    ``finish_site_year`` needs from the time stack (``sun``: how the season's looks followed
    the sun, ``terrain.sun_response``). Each pixel depends on its own time series only, except
    ``green`` (a 3 x 3 minimum, ``classify.greenness``), so the products of a window read with
    a one-pixel halo are, inside it, those of the whole grid."""

    composite: Composite
    coal: CoalFrequency
    green: FloatArray
    cropped: BoolArray
    cleared: BoolArray
    seen_standing: BoolArray  # seen clear while crops stand, before the 3 x 3 erosion
    sun: SunResponse

    def window(self, rows: slice, cols: slice) -> SeasonProducts:
        """The products of the pixels ``rows`` x ``cols`` (views)."""
        c, k = self.composite, self.coal
        return SeasonProducts(
            Composite(c.reflectance[:, rows, cols], c.clear_count[rows, cols],
                      c.mad[:, rows, cols]),
            CoalFrequency(k.frequency[rows, cols], k.flagged[rows, cols], k.clear[rows, cols],
                          None if k.refuted is None else k.refuted[rows, cols]),
            self.green[rows, cols], self.cropped[rows, cols], self.cleared[rows, cols],
            self.seen_standing[rows, cols], self.sun.window(rows, cols),
        )  # fmt: skip

    @classmethod
    def empty(cls, bands: int, shape: tuple[int, int]) -> SeasonProducts:
        """Products of ``shape`` to fill window by window (``paste``)."""
        return cls(
            Composite(np.empty((bands, *shape), np.float32), np.empty(shape, np.int16),
                      np.empty((bands, *shape), np.float32)),
            CoalFrequency(np.empty(shape, np.float32), np.empty(shape, np.int16),
                          np.empty(shape, np.int16), np.empty(shape, np.int16)),
            np.empty(shape, np.float32), np.empty(shape, bool), np.empty(shape, bool),
            np.empty(shape, bool), SunResponse.empty(bands, shape),
        )  # fmt: skip

    def paste(self, rows: slice, cols: slice, part: SeasonProducts) -> None:
        """Copy ``part`` into the pixels ``rows`` x ``cols``."""
        into = self.window(rows, cols)
        for mine, theirs in zip(_arrays(into), _arrays(part), strict=True):
            mine[...] = theirs


def _arrays(p: SeasonProducts) -> tuple[NDArray[Any], ...]:
    c, k = p.composite, p.coal
    assert k.refuted is not None  # ``coal_frequency`` counts it
    return (c.reflectance, c.clear_count, c.mad, k.frequency, k.flagged, k.clear, k.refuted,
            p.green, p.cropped, p.cleared, p.seen_standing, *p.sun.arrays())  # fmt: skip


def season_products(
    stack: FloatArray,
    clear: BoolArray,
    days: Sequence[date],
    in_season: Sequence[int],
    green_obs: Sequence[int],
    year: int,
    params: RecipeParams,
    shaded: BoolArray | None = None,
) -> SeasonProducts:
    """The products of the looks ``stack`` (time, band, y, x) with their ``clear`` masks and
    ``days``: ``in_season`` (indices, at least one) are the season window's looks, composited
    and counted for coal, and whose brightness is set against the sun (``sun_response``);
    ``green_obs`` those of the greenness period (``season_looks``). ``shaded`` (time, y, x):
    clear pixels in the shadow a cloud of their scene casts (a yard in a cloud's shadow reads
    as coal, a pile in one is too dark for it), which the coal count takes relit by the light
    measured under the shadow (``classify.relit``) and leaves out where it cannot be measured;
    everything else counts them as they are."""
    season, season_clear = _take(stack, in_season), _take(clear, in_season)
    composite = median_composite(season, season_clear)
    coal_looks, coal_clear = season, season_clear
    if shaded is not None:
        in_shade = _take(shaded, in_season)
        coal_looks, relit_px = relit(season, season_clear, in_shade)
        coal_clear = season_clear & (~in_shade | relit_px)
    obscured = obscured_looks(
        coal_looks, season_clear, composite.reflectance,
        veil_min_rise=params.coal_veil_min_rise, shade_min_loss=params.coal_shade_min_loss,
    )  # fmt: skip
    coal = coal_frequency(coal_looks, coal_clear, params.coal_rule, obscured=obscured)
    del coal_looks
    # Only ground the footprint or coal rule may accept can be a shadowed slope left out of them
    # (``classify``'s candidates lie within: greenness and the opening only take away). Ground
    # as dark as coal or darker is related too: a slope deep in the ridge's shadow all season
    # is too dark for either rule, and the years' responses are pooled where another season's
    # earlier looks map it (``analysis.settle_terrain_shadow``).
    ceiling = params.coal_rule.get("brightness_max", COAL_BRIGHTNESS_MAX)
    with np.errstate(invalid="ignore"):
        dark = np.mean(composite.reflectance, axis=0) < ceiling
    may_map = (
        (coal.flagged > 0)
        | dark
        | footprint_mask(composite.reflectance, None, opening_px=0, **params.footprint_rule)
    )
    sun = sun_response(season, season_clear, [days[i] for i in in_season], where=may_map)
    del season, season_clear
    greens, greens_clear = _take(stack, green_obs), _take(clear, green_obs)
    green_days = [days[i] for i in green_obs]
    green = greenness(greens, greens_clear, params.green_percentile)
    harvest = date(year, *params.harvest_from)
    signs = crop_signs(
        greens, greens_clear, green, [d < harvest for d in green_days], **params.footprint_rule
    )
    green_from, green_until = (date(year, *d) for d in params.crops_green)
    seen_standing = np.zeros(stack.shape[2:], bool)
    for look, ok, day in zip(greens, greens_clear, green_days, strict=True):
        if green_from <= day <= green_until:
            seen_standing |= ok & valid_pixels(look)
    return SeasonProducts(composite, coal, green, signs.cropped, signs.cleared, seen_standing, sun)


def shaded_stack(looks: Sequence[Look]) -> BoolArray | None:
    """(time, y, x) of the looks' ``shaded`` masks, or None when no look has one."""
    if all(o.shaded is None for o in looks):
        return None
    return np.stack(
        [o.shaded if o.shaded is not None else np.zeros(o.clear.shape, bool) for o in looks]
    )


def _take(stack: NDArray[Any], index: Sequence[int]) -> NDArray[Any]:
    """``stack[index]``, without a copy when ``index`` is every look in order."""
    if list(index) == list(range(stack.shape[0])):
        return stack
    return stack[list(index)]


def finish_site_year(
    site_id: str,
    year: int,
    window: tuple[date, date],
    widened: bool,
    records: tuple[SceneRecord, ...],
    products: SeasonProducts | None,
    area: BoolArray,
    pixel_area_ha: float,
    params: RecipeParams,
) -> SiteYear:
    """The site-year from its season products (None: no look in the window): the whole-grid
    stage, whose neighbourhoods (connected regions, minimum mapping unit, rim unmixing,
    dilations) see the whole site."""
    shape = area.shape
    text_window = (window[0].isoformat(), window[1].isoformat())
    if products is None:
        empty = np.zeros(shape, bool)
        return SiteYear(
            site_id, year, text_window, widened, records, None, None, empty, empty, empty, 0.0, 0.0
        )
    composite = products.composite
    valid = area & (composite.clear_count > 0)
    classified = classify(
        composite.reflectance,
        valid=valid,
        pixel_area_ha=pixel_area_ha,
        params=params,
        green_ndvi=products.green,
        coal=products.coal,
        sun=products.sun,
        rims=_rims(records, pixel_area_ha),
    )
    if classified.terrain_shadow is not None and classified.terrain_shadow.any():
        logger.info(
            "%s %d: %.2f ha of footprint-like ground follows the sun (terrain shadow): not mapped",
            site_id, year, float(classified.terrain_shadow.sum()) * pixel_area_ha,
        )  # fmt: skip
    assert classified.green_excluded is not None  # greenness was given
    # The rim of a clearing is too mixed to look bare in a single look: one pixel of slack.
    near_cleared = ndimage.binary_dilation(
        products.cleared & classified.green_excluded, structure=np.ones((3, 3), bool)
    )
    # Greenness is a minimum over a 3 x 3 square: a pixel is seen green only if its square is.
    seen_standing = ndimage.binary_erosion(
        products.seen_standing, np.ones((3, 3), bool), border_value=1
    )
    ambiguous = classified.green_excluded & near_cleared
    # Ambiguous ground is no evidence of vegetation: it may be this season's clearing.
    vegetated = (
        valid
        & ~classified.footprint
        & ~ambiguous
        & is_green(products.green, **params.footprint_rule)
    )
    evidence = SeasonEvidence(
        vegetated=vegetated,
        field=vegetated & products.cropped,
        ambiguous=ambiguous,
        unconfirmed=classified.footprint & ~seen_standing,
        coal_on_green=classified.coal_on_green,
    )
    return SiteYear(
        site_id, year, text_window, widened, records, composite, classified.coal,
        classified.footprint, classified.coal_mask, valid,
        median_clear=float(np.median(composite.clear_count[area])),
        coverage=round(float(valid.sum()) / max(int(area.sum()), 1), 4),
        evidence=evidence, terrain_shadow=classified.terrain_shadow,
        terrain_flat=classified.terrain_flat, sun=products.sun,
    )  # fmt: skip


Rims = tuple[int, int]


def _rims(records: Sequence[SceneRecord], pixel_area_ha: float) -> Rims:
    """(footprint, coal) rim widths in pixels for the platforms of the season's looks: the
    footprint's rim is where NDVI (red, NIR) turns, the coal's where its darkness, judged on
    every band, does, so it spans Sentinel-2's 20 m SWIR pixel (two 10 m pixels: a rim pixel of
    pure coal reads the yard's SWIR) and Landsat's 30 m (three)."""
    platforms = [r.platform for r in records if r.role == "season" and r.skipped is None]
    grid_m = pixel_size_m(pixel_area_ha)
    return bands.rim_px(platforms, grid_m, ("red", "nir")), bands.rim_px(platforms, grid_m)


@dataclass(frozen=True)
class Classified:
    """What ``classify`` maps. ``coal``: the coal frequency the coal mask was counted from (the
    one given, or the single look's). ``green_excluded``: ground the footprint rule accepts at the
    end of the season but the greenness test rejects (a harvested field, or ground cleared
    during the season); None when no greenness was given. ``terrain_shadow``: footprint-like or
    coal-counted ground left unmapped because its brightness followed the sun
    (``terrain.shadowed``); None when no sun response was given. ``coal_on_green``: ground the
    coal count accepts but the greenness test calls green earlier in the season, left out of the
    coal (char of a burn, or a pile dumped on vegetation: the next year tells); None when no
    greenness was given. ``terrain_flat``: footprint-like or coal-counted ground whose season
    had looks enough to tell (``terrain.judged``) and did not follow the sun; None when no sun
    response was given. A slope is one every autumn: the years settle a season's verdict
    (``analysis.settle_terrain_shadow``)."""

    footprint: BoolArray
    coal_mask: BoolArray
    coal: CoalFrequency
    green_excluded: BoolArray | None
    terrain_shadow: BoolArray | None = None
    coal_on_green: BoolArray | None = None
    terrain_flat: BoolArray | None = None


def classify(
    reflectance: FloatArray,
    *,
    valid: BoolArray,
    pixel_area_ha: float,
    params: RecipeParams | None = None,
    green_ndvi: FloatArray | None = None,
    coal: CoalFrequency | None = None,
    sun: SunResponse | None = None,
    rims: Rims = (1, 1),
) -> Classified:
    """Footprint and coal masks of one image or composite (band, y, x): the one classification
    recipe of ``run`` and ``compare``. Only ``valid`` pixels (and finite ones) can be mapped.

    Coal: the frequency rule on ``coal`` (``CoalFrequency`` over the season's clear looks), its
    regions thinner than ``coal_opening_px`` dropped, rim pixels restored by unmixing on
    ``reflectance``, then the minimum mapping unit. Without ``coal``, the coal rule runs on
    ``reflectance`` itself as one clear look that counts (frequency 1 of 1): a single image has
    no persistence test, so a residual shadow there can read as coal. With ``green_ndvi``,
    ground green earlier in the season is not coal this year (``Classified.coal_on_green``).

    Footprint: ``footprint_mask`` on ``reflectance`` (with the greenness test when
    ``green_ndvi`` is given), rim unmixing, union with the coal mask, minimum mapping unit.
    Without ``green_ndvi`` a harvested field is bare ground, hence footprint: compare two
    images of the same season, or expect fields to flicker.

    Terrain shadow: with ``sun`` (``terrain.sun_response`` over the season's looks), ground the
    footprint or coal rule accepts but whose brightness followed the sinking sun
    (``terrain.shadowed``, against the site's other such ground) is a slope facing away from
    the sun, neither footprint nor coal, and is left out of both.

    ``rims``: how many pixels wide the mixed rims of (footprint, coal) are on this grid
    (``_rims``); rim unmixing reaches that far.
    """
    params = params if params is not None else RecipeParams()
    valid = valid & valid_pixels(reflectance)
    min_px = boundaries.min_pixels_for_area(params.min_mapping_unit_ha, pixel_area_ha)
    if coal is None:
        coal = coal_frequency(reflectance[None], valid[None], params.coal_rule)
        counted = coal.mask(params.coal_min_frequency, 1)
    else:
        reach_px = round(params.coal_seen_once_reach_m / pixel_size_m(pixel_area_ha))
        counted = coal.mask(params.coal_min_frequency, params.coal_min_observations, reach_px)
    coal_on_green = None
    if green_ndvi is not None:
        # A pile does not grow out of vegetation within weeks; a burn scar's char does
        # (DOMAIN.md "Confusers": burn scars are told apart by persistence).
        coal_on_green = counted & valid & is_green(green_ndvi, **params.footprint_rule)
        counted = counted & ~coal_on_green
    shadow = flat = None
    if sun is not None:
        candidates = valid & (
            counted | footprint_mask(reflectance, green_ndvi, opening_px=0, **params.footprint_rule)
        )
        shadow = candidates & terrain.shadowed(sun, candidates, **params.terrain_rule)
        judging = {k: v for k, v in params.terrain_rule.items() if k in _JUDGED_BY}
        flat = candidates & terrain.judged(sun, **judging) & ~shadow
        valid = valid & ~shadow
    coal_core = drop_thin_regions(counted & valid, params.coal_opening_px, pin_holes=True)
    coal_mask = boundaries.remove_small_regions(
        coal_with_rim(coal_core, reflectance, params, rims[1]) & valid, min_px
    )

    def footprint_with(green: FloatArray | None) -> BoolArray:
        core = footprint_mask(
            reflectance, green, opening_px=params.footprint_opening_px, **params.footprint_rule
        )
        grown = grow_mixed_edges(
            core, reflectance, min_fraction=params.footprint_edge_fraction, ring_px=rims[0]
        )
        return boundaries.remove_small_regions((grown | coal_mask) & valid, min_px)

    footprint = footprint_with(green_ndvi)
    excluded = None if green_ndvi is None else footprint_with(None) & ~footprint
    return Classified(footprint, coal_mask, coal, excluded, shadow, coal_on_green, flat)


#: The narrowest mixed rim, in grid pixels, on which the ``auto`` coal edge rule keeps each
#: pile's unmixed area (``grow_to_unmixed_area``): Landsat's 30 m on a 10 m grid pulls the
#: half-coal outline of a small pile in by about a tenth of its area; Sentinel-2's 20 m SWIR
#: by a few percent, less than the area rule's own scatter (on the accuracy suite's
#: Sentinel-2 years the pixel-centre rule's coal area was off by 1.3 % on average, the area
#: rule's by 2.3 %).
AREA_RULE_MIN_RIM_PX = 3


def coal_with_rim(
    core: BoolArray, reflectance: FloatArray, params: RecipeParams, rim_px: int = 1
) -> BoolArray:
    """``core`` coal and its mixed rim, ``rim_px`` grid pixels wide (``_rims``), by the
    recipe's ``coal_edge_rule``: ``area`` (``grow_to_unmixed_area``: each pile keeps its
    unmixed area, which a blur does not change), ``majority`` (``grow_mixed_edges``: a rim
    pixel at least ``coal_edge_fraction`` coal), or ``auto``: area on a rim of
    ``AREA_RULE_MIN_RIM_PX`` or more, majority on a narrower one."""
    rule = params.coal_edge_rule
    if rule == "auto":
        rule = "area" if rim_px >= AREA_RULE_MIN_RIM_PX else "majority"
    if rule == "area":
        return grow_to_unmixed_area(core, reflectance, rim_px=rim_px)
    return grow_mixed_edges(
        core, reflectance, min_fraction=params.coal_edge_fraction, ring_px=rim_px
    )


#: The ``terrain_rule`` settings that say which pixels a season can judge (``terrain.judged``).
_JUDGED_BY = ("min_looks", "min_span_deg", "significance")


def classify_single_image(
    reflectance: FloatArray,
    valid: BoolArray,
    pixel_area_ha: float,
    params: RecipeParams | None = None,
) -> tuple[BoolArray, BoolArray]:
    """(footprint, coal_mask) of one image (band, y, x) by the recipe a run applies to a season
    composite (``classify``, default ``RecipeParams()``), without the greenness test (one date
    cannot tell a harvested field from cleared ground) and with the coal rule counted on the
    single look."""
    out = classify(reflectance, valid=valid, pixel_area_ha=pixel_area_ha, params=params)
    return out.footprint, out.coal_mask


def correct_offset_outliers(looks: Sequence[Look]) -> list[Look]:
    """Sentinel-2 looks whose reflectance sits a uniform 0.1 off the season's in blue and SWIR2
    alike (a wrong BOA offset the per-scene check could not see, ``radiometry.offset_outliers``)
    are shifted back when the other offset is the valid alternative, and the record says so."""
    looks = list(looks)
    s2 = offset_checked([o.record for o in looks])
    bands = [looks[i].reflectance[list(SERIES_BAND_INDEX)] for i in s2]
    outliers = offset_outliers(bands, [looks[i].clear for i in s2])
    fixes = offset_corrections([o.record for o in looks], s2, outliers)
    for i, (record, shift) in fixes.items():
        look = looks[i]
        looks[i] = replace(look, reflectance=shifted(look.reflectance, shift), record=record)
    return looks


def offset_checked(records: Sequence[SceneRecord]) -> list[int]:
    """Indices of the looks the season's offset check compares: Sentinel-2 at its DN scale."""
    return [
        i
        for i, r in enumerate(records)
        if r.collection.startswith("sentinel-2") and r.scale == S2_SCALE
    ]


def offset_corrections(
    records: Sequence[SceneRecord], checked: Sequence[int], outliers: Sequence[OffsetOutlier]
) -> dict[int, tuple[SceneRecord, float]]:
    """Per look to correct (index into ``records``), its corrected record and the reflectance
    shift, from the ``outliers`` found among the ``checked`` looks (``offset_checked``): only
    where the corrected offset is one this check knows (0 or the BOA offset)."""
    fixes: dict[int, tuple[SceneRecord, float]] = {}
    for outlier in outliers:
        index = checked[outlier.index]
        old = records[index]
        new_offset = (old.offset_dn or 0.0) + outlier.shift / S2_SCALE
        if round(new_offset) not in (0, round(S2_BOA_OFFSET_DN)):
            continue  # not the offset error this check knows how to fix
        record = replace(
            old,
            offset_dn=float(round(new_offset)),
            radiometry=f"{old.radiometry}; overridden by the season's series",
            offset_check=f"contradicted: {outlier.evidence}; applied DN {round(new_offset):+d}",
        )
        fixes[index] = (record, outlier.shift)
        logger.warning(
            "%s: BOA offset corrected from the series (%s)", record.scene_id, outlier.evidence
        )
    return fixes


def shifted(reflectance: FloatArray, shift: float) -> FloatArray:
    """``reflectance`` moved by a uniform ``shift`` (an offset correction), float32."""
    return (reflectance + np.float32(shift)).astype(np.float32)


def _with_role(record: SceneRecord, role: str) -> SceneRecord:
    return replace(record, role=role)
