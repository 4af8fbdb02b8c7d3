"""The per-site-year recipe: observations in, a classified site-year out.

Pure: arrays and a frozen ``RecipeParams`` in, a ``SiteYear`` out; no files, no network, no
config objects. ``run`` reads the scenes (``sources.read.read_scenes``) and calls ``site_year``.
One classification serves every caller: ``classify`` turns a composite (with its greenness and
coal frequency) or a single image into footprint and coal masks; ``site_year`` calls it on the
season composite and ``compare`` on each date's image (``classify_single_image``).

Scenes are read once, from the start of the greenness period to the end of the widened window;
the season window selects the composite's observations and is widened in memory when the median
pixel of the analysis area has too few clear ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pipeline import boundaries, harmonize
from pipeline.bands import BAND_INDEX
from pipeline.classify import (
    CoalFrequency,
    coal_frequency,
    crop_signs,
    drop_thin_regions,
    footprint_mask,
    greenness,
    grow_mixed_edges,
    is_green,
    valid_pixels,
)
from pipeline.composite import median_composite
from pipeline.masking import MaskReason, reason_shares
from pipeline.radiometry import S2_BOA_OFFSET_DN, S2_SCALE, offset_outliers
from pipeline.results import SceneRecord, SeasonEvidence, SiteYear

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float32]
MonthDay = tuple[int, int]


@dataclass(frozen=True)
class RecipeParams:
    """Everything the recipe decides with, as plain values (``run`` builds it from the config;
    the defaults are the config's defaults, so ``RecipeParams()`` is what a default run uses).

    Month-days are ``(month, day)``; ``footprint_rule`` and ``coal_rule`` are the keyword
    thresholds of ``classify.footprint_mask`` and ``classify.coal_observation`` (empty: their
    defaults). Crops are not harvested before ``harvest_from``: ground seen bare before it after
    its last green look was cleared this season (or harvested early). Every crop stands green
    between the two days of ``crops_green`` (judgement: rice and maize peak from mid-July to
    mid-August in the DPRK, an early harvest comes after): a season without a clear look then
    cannot tell a field harvested before its first clear look from bare ground
    (``site_year``'s ``SeasonEvidence``).
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
    coal_opening_px: int = 1
    coal_edge_fraction: float = 0.5
    min_mapping_unit_ha: float = 0.25
    harmonize_to: str = "none"
    crops_green: tuple[MonthDay, MonthDay] = ((7, 15), (8, 15))
    harvest_from: MonthDay = (9, 1)

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
    its provenance record."""

    day: date
    reflectance: NDArray[np.float32]
    clear: BoolArray
    record: SceneRecord
    platform: str = ""


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
) -> SceneRecord:
    """The provenance record of one observation read for a site-year."""
    clear = None if reasons is None else round(float((reasons == MaskReason.CLEAR).mean()), 4)
    return SceneRecord(
        scene_id,
        when,
        offset_dn=offset_dn,
        radiometry=radiometry,
        clear_fraction=clear,
        collection=collection,
        platform=platform,
        scale=scale,
        offset_check=offset_check,
        mask=reason_shares(reasons) if reasons is not None else {},
        reprojected_from=reprojected_from,
        processing_baseline=processing_baseline,
    )


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
    looks = correct_offset_outliers(looks)
    if params.harmonize_to == "landsat-oli":
        looks = [
            Look(o.day, harmonize.to_oli(o.reflectance, o.platform), o.clear, o.record, o.platform)
            for o in looks
        ]
    green_start = date(year, *params.green_from)
    for widened in (False, True):
        start, end = params.window(year, widened)
        in_season = [o for o in looks if start <= o.day <= end]
        clear_count = sum((o.clear for o in in_season), np.zeros(shape, int))
        enough = np.median(clear_count[area]) >= params.min_clear_observations
        if enough or widened:
            break
        logger.info(
            "%s %d: median clear observations %s < %d in %s..%s; widening the window",
            site_id, year, np.median(clear_count[area]), params.min_clear_observations,
            start, end,
        )  # fmt: skip
    window = (start.isoformat(), end.isoformat())
    green_obs = [o for o in looks if green_start <= o.day <= end]

    def role(day: date) -> str:
        return "season" if start <= day else "greenness"

    records = tuple(
        sorted(
            [_with_role(o.record, role(o.day)) for o in green_obs]
            + [_with_role(r, role(d)) for d, r in skipped if d <= end],
            key=lambda r: (r.datetime, r.scene_id),
        )
    )
    if not in_season:
        empty = np.zeros(shape, bool)
        return SiteYear(
            site_id, year, window, widened, records, None, None, empty, empty, empty, 0.0, 0.0
        )

    stack = np.stack([o.reflectance for o in in_season])
    clear = np.stack([o.clear for o in in_season])
    green_stack = np.stack([o.reflectance for o in green_obs])
    green_clear = np.stack([o.clear for o in green_obs])
    green = greenness(green_stack, green_clear, params.green_percentile)
    composite = median_composite(stack, clear)
    valid = area & (composite.clear_count > 0)
    classified = classify(
        composite.reflectance,
        valid=valid,
        pixel_area_ha=pixel_area_ha,
        params=params,
        green_ndvi=green,
        coal=coal_frequency(stack, clear, **params.coal_rule),
    )
    assert classified.green_excluded is not None  # greenness was given
    harvest = date(year, *params.harvest_from)
    signs = crop_signs(
        green_stack,
        green_clear,
        green,
        [o.day < harvest for o in green_obs],
        **params.footprint_rule,
    )
    # The rim of a clearing is too mixed to look bare in a single look: one pixel of slack.
    near_cleared = ndimage.binary_dilation(
        signs.cleared & classified.green_excluded, structure=np.ones((3, 3), bool)
    )
    green_from, green_until = (date(year, *d) for d in params.crops_green)
    standing = [o for o in green_obs if green_from <= o.day <= green_until]
    seen_standing = np.zeros(shape, bool)
    for o in standing:
        seen_standing |= o.clear & valid_pixels(o.reflectance)
    # Greenness is a minimum over a 3 x 3 square: a pixel is seen green only if its square is.
    seen_standing = ndimage.binary_erosion(seen_standing, np.ones((3, 3), bool), border_value=1)
    ambiguous = classified.green_excluded & near_cleared
    # Ambiguous ground is no evidence of vegetation: it may be this season's clearing.
    vegetated = (
        valid & ~classified.footprint & ~ambiguous & is_green(green, **params.footprint_rule)
    )
    evidence = SeasonEvidence(
        vegetated=vegetated,
        field=vegetated & signs.cropped,
        ambiguous=ambiguous,
        unconfirmed=classified.footprint & ~seen_standing,
    )
    return SiteYear(
        site_id, year, window, widened, records, composite, classified.coal,
        classified.footprint, classified.coal_mask, valid,
        median_clear=float(np.median(composite.clear_count[area])),
        coverage=round(float(valid.sum()) / max(int(area.sum()), 1), 4),
        evidence=evidence,
    )  # fmt: skip


@dataclass(frozen=True)
class Classified:
    """What ``classify`` maps. ``coal``: the coal frequency the coal mask was counted from (the
    one given, or the single look's). ``green_excluded``: ground the footprint rule accepts at the
    end of the season but the greenness test rejects (a harvested field, or ground cleared
    during the season); None when no greenness was given."""

    footprint: BoolArray
    coal_mask: BoolArray
    coal: CoalFrequency
    green_excluded: BoolArray | None


def classify(
    reflectance: FloatArray,
    *,
    valid: BoolArray,
    pixel_area_ha: float,
    params: RecipeParams | None = None,
    green_ndvi: FloatArray | None = None,
    coal: CoalFrequency | None = None,
) -> Classified:
    """Footprint and coal masks of one image or composite (band, y, x): the one classification
    recipe of ``run`` and ``compare``. Only ``valid`` pixels (and finite ones) can be mapped.

    Coal: the frequency rule on ``coal`` (``CoalFrequency`` over the season's clear looks), its
    regions thinner than ``coal_opening_px`` dropped, rim pixels restored by unmixing on
    ``reflectance``, then the minimum mapping unit. Without ``coal``, the coal rule runs on
    ``reflectance`` itself as one clear look that counts (frequency 1 of 1): a single image has
    no persistence test, so a residual shadow there can read as coal.

    Footprint: ``footprint_mask`` on ``reflectance`` (with the greenness test when
    ``green_ndvi`` is given), rim unmixing, union with the coal mask, minimum mapping unit.
    Without ``green_ndvi`` a harvested field is bare ground, hence footprint: compare two
    images of the same season, or expect fields to flicker.
    """
    params = params if params is not None else RecipeParams()
    valid = valid & valid_pixels(reflectance)
    min_px = boundaries.min_pixels_for_area(params.min_mapping_unit_ha, pixel_area_ha)
    if coal is None:
        coal = coal_frequency(reflectance[None], valid[None], **params.coal_rule)
        counted = coal.mask(params.coal_min_frequency, 1)
    else:
        counted = coal.mask(params.coal_min_frequency, params.coal_min_observations)
    coal_core = drop_thin_regions(counted & valid, params.coal_opening_px)
    coal_mask = boundaries.remove_small_regions(
        grow_mixed_edges(coal_core, reflectance, min_fraction=params.coal_edge_fraction) & valid,
        min_px,
    )

    def footprint_with(green: FloatArray | None) -> BoolArray:
        core = footprint_mask(
            reflectance, green, opening_px=params.footprint_opening_px, **params.footprint_rule
        )
        grown = grow_mixed_edges(core, reflectance, min_fraction=params.footprint_edge_fraction)
        return boundaries.remove_small_regions((grown | coal_mask) & valid, min_px)

    footprint = footprint_with(green_ndvi)
    excluded = None if green_ndvi is None else footprint_with(None) & ~footprint
    return Classified(footprint, coal_mask, coal, excluded)


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
    """Sentinel-2 looks whose reflectance sits a uniform 0.1 off the season's (a wrong BOA
    offset the per-scene check could not see, ``radiometry.offset_outliers``) are shifted back
    when the other offset is the valid alternative, and the record says so."""
    looks = list(looks)
    s2 = [
        i
        for i, o in enumerate(looks)
        if o.record.collection.startswith("sentinel-2") and o.record.scale == S2_SCALE
    ]
    swir22 = [looks[i].reflectance[BAND_INDEX["swir22"]] for i in s2]
    for outlier in offset_outliers(swir22, [looks[i].clear for i in s2]):
        look = looks[s2[outlier.index]]
        offset_dn = look.record.offset_dn or 0.0
        new_offset = offset_dn + outlier.shift / S2_SCALE
        if round(new_offset) not in (0, round(S2_BOA_OFFSET_DN)):
            continue  # not the offset error this check knows how to fix
        record = replace(
            look.record,
            offset_dn=float(round(new_offset)),
            radiometry=f"{look.record.radiometry}; overridden by the season's series",
            offset_check=f"contradicted: {outlier.evidence}; applied DN {round(new_offset):+d}",
        )
        shifted = (look.reflectance + np.float32(outlier.shift)).astype(np.float32)
        looks[s2[outlier.index]] = Look(look.day, shifted, look.clear, record, look.platform)
        logger.warning(
            "%s: BOA offset corrected from the series (%s)", record.scene_id, outlier.evidence
        )
    return looks


def _with_role(record: SceneRecord, role: str) -> SceneRecord:
    return replace(record, role=role)
