"""The per-site-year recipe: observations in, a classified site-year out.

Pure: arrays and a frozen ``RecipeParams`` in, a ``SiteYear`` out; no files, no network, no
config objects. ``run`` reads the scenes (``sources.read.read_scenes``) and calls ``site_year``;
``compare`` and notebooks can call the same stages.

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

from pipeline import boundaries, harmonize
from pipeline.bands import BAND_INDEX
from pipeline.classify import (
    coal_frequency,
    drop_thin_regions,
    footprint_mask,
    greenness,
    grow_mixed_edges,
)
from pipeline.composite import median_composite
from pipeline.masking import MaskReason, reason_shares
from pipeline.radiometry import S2_BOA_OFFSET_DN, S2_SCALE, offset_outliers
from pipeline.results import SceneRecord, SiteYear

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class RecipeParams:
    """Everything the recipe decides with, as plain values (``run`` builds it from the config).

    Month-days are ``(month, day)``; ``footprint_rule`` and ``coal_rule`` are the keyword
    thresholds of ``classify.footprint_mask`` and ``classify.coal_observation``.
    """

    season: tuple[tuple[int, int], tuple[int, int]]
    fallback: tuple[tuple[int, int], tuple[int, int]]
    min_clear_observations: int
    green_from: tuple[int, int]
    green_percentile: float
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
    be read, with their records, kept for the manifest)."""
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
    green = greenness(
        np.stack([o.reflectance for o in green_obs]),
        np.stack([o.clear for o in green_obs]),
        params.green_percentile,
    )
    composite = median_composite(stack, clear)
    coal = coal_frequency(stack, clear, **params.coal_rule)
    valid = area & (composite.clear_count > 0)
    min_px = boundaries.min_pixels_for_area(params.min_mapping_unit_ha, pixel_area_ha)
    coal_core = drop_thin_regions(
        coal.mask(params.coal_min_frequency, params.coal_min_observations) & valid,
        params.coal_opening_px,
    )
    coal_mask = boundaries.remove_small_regions(
        grow_mixed_edges(coal_core, composite.reflectance, min_fraction=params.coal_edge_fraction)
        & valid,
        min_px,
    )
    footprint = footprint_mask(
        composite.reflectance,
        green,
        opening_px=params.footprint_opening_px,
        **params.footprint_rule,
    )
    footprint = grow_mixed_edges(
        footprint, composite.reflectance, min_fraction=params.footprint_edge_fraction
    )
    footprint = boundaries.remove_small_regions((footprint | coal_mask) & valid, min_px)
    return SiteYear(
        site_id, year, window, widened, records, composite, coal, footprint, coal_mask, valid,
        median_clear=float(np.median(composite.clear_count[area])),
        coverage=round(float(valid.sum()) / max(int(area.sum()), 1), 4),
    )  # fmt: skip


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
