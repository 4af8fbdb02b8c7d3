"""Per-site analysis: footprint and coal areas per year, change between consecutive years and
first vs last, polygons, areas with their edge uncertainty, and the score against a truth.

Pure: site-years (arrays) and plain parameters in, frozen records out.

Before anything is measured, the years are brought onto one frame (``coregister``): a year whose
imagery sits a pixel or more off the others (Landsat against Sentinel-2, Sentinel-2 before the
Global Reference Image) is moved back by whole pixels, masks and composite alike, and flagged
``COREGISTERED``. Then each year's footprint is settled with its neighbouring years
(``date_footprints``): the greenness test keeps harvested fields out of a year's footprint but
also keeps out ground cleared in mid-summer (it was green in June), which would otherwise show
up a year late; and a cloudy summer leaves fields that no clear look saw green, which would show
up as a year of false expansion. The last year with data cannot be re-dated: flagged
``MAY_LAG``. Then the new linear features (roads, tracks: ``linear``) join the footprint of the
year they appear in and of every later year that still holds them (``add_lines``): one pixel
thin and mixed with forest, no per-pixel rule maps them, and the opening would remove them.
Before that, the exposed bed of water drawn down (a reservoir's mud) leaves each
footprint (``water.drop_exposed_beds``): ground the series saw under water, now wet, is not
expansion.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon

from pipeline import accuracy, boundaries, indices, terrain, trends, water
from pipeline.change import mask_change
from pipeline.classify import (
    COAL_BRIGHTNESS_MAX,
    SHADE_MIN_LOSS,
    CoalFrequency,
    drop_thin_regions,
)
from pipeline.composite import Composite
from pipeline.coregister import DEFAULT_COREGISTRATION, CoregistrationParams, coregister_years
from pipeline.expansion import BoundaryChange, boundary_change, boundary_changes
from pipeline.grid import Grid, reproject_geometry
from pipeline.linear import LineRule, track_lines
from pipeline.results import ChangeMetrics, SeasonEvidence, SiteAnalysis, SiteYear, YearMetrics
from pipeline.sites import Site

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]

#: Flag of a year whose footprint may lag: ground cleared during its season cannot be told
#: from a field harvested early without the next year, nor ground built over a field under a
#: cloudy summer from an unseen field (the last year with data, or a year stored without its
#: season evidence).
MAY_LAG = "may-lag"
#: Flag of a year whose footprint gained ground cleared during its season, confirmed by the
#: next year (``YearMetrics.redated_ha``).
REDATED = "redated"
#: Flag of a year whose footprint lost bare ground it never saw while crops stand and that its
#: neighbouring years map as a field (``YearMetrics.unseen_fields_ha``).
UNSEEN_FIELDS = "unseen-fields"
#: Flag of a year whose footprint lost the exposed bed of water drawn down
#: (``YearMetrics.exposed_bed_ha``, ``water.drop_exposed_beds``).
EXPOSED_BED = "exposed-bed"
#: Flag of a year whose footprint or coal left out a terrain-shadowed slope
#: (``YearMetrics.terrain_shadow_ha``, ``terrain.shadowed``).
TERRAIN_SHADOW = "terrain-shadow"
#: Flag of a year whose imagery sat a whole pixel or more off the site's other years and was
#: moved back onto their common frame (``YearMetrics.shift_x_px``/``shift_y_px``, ``coregister``).
COREGISTERED = "coregistered"
#: Flag of a year whose footprint holds linear features (roads, tracks) found as lines since
#: the first year (``add_lines``, ``SiteYear.linear``).
LINEAR_FEATURES = "linear-features"
#: Flag of a year whose coal area may be missing piles: ground flagged as coal in half or more
#: of its clear looks but seen in too few looks to count (``CoalFrequency.undecided``), more of
#: it than the coal area's own half-width (``YearMetrics.coal_undecided_ha``). The year is kept:
#: dark ground (asphalt, dark roofs) under a cloud shadow in one of two looks is undecided too.
COAL_UNDECIDED = "coal-undecided"
#: Flag of a year whose footprint includes ground it never saw clear, carried from the nearest
#: year that saw it (``fill_unseen``, ``YearMetrics.gap_filled_ha``).
GAP_FILLED = "gap-filled"
#: Years a pixel must be mapped a field in before ``drop_unseen_fields`` believes it one.
MIN_FIELD_YEARS = 2
#: Other seasons that must find ground shadowed to leave it out of a season that mapped it
#: (``settle_terrain_shadow``).
MIN_SLOPE_VOTES = 2


def analysis_area(site: Site, grid: Grid, buffer_m: float) -> BoolArray:
    """Pixels whose centre lies in the buffered site: the area every number refers to."""
    geom = site.geometry_in(grid.crs).buffer(buffer_m)
    return boundaries.rasterize([geom], grid.transform, grid.shape)


def analyse_site(
    site: Site,
    grid: Grid,
    years: Sequence[SiteYear],
    *,
    buffer_m: float,
    min_mapping_unit_ha: float,
    change_opening_px: int,
    sectors: int = 16,
    coregistration: CoregistrationParams | None = DEFAULT_COREGISTRATION,
    lines: LineRule | None = None,
    coal_min_frequency: float = 0.5,
    coal_min_observations: int = 3,
    terrain_rule: Mapping[str, float] | None = None,
) -> SiteAnalysis:
    """Areas, polygons and year-to-year change for one site, with the boundary's movement
    in ``sectors`` directions, all measured on the footprints settled across years: the years
    brought onto one frame (``coregister.coregister_years`` with ``coregistration``; None: left
    as they are), each season's terrain-shadow verdict weighed against the others'
    (``settle_terrain_shadow``), exposed bed of water drawn down out
    (``water.drop_exposed_beds``, judged against dry ground that is not a field), then
    ``date_footprints``, then the new linear features added (``add_lines`` with ``lines``;
    None: none looked for), then the footprint of ground a year never saw clear carried from
    the nearest year that saw it (``fill_unseen``). The returned ``years`` are those;
    ``YearMetrics`` says what moved and flags the years, and how much ground the coal counting
    rule (``coal_min_frequency``, ``coal_min_observations``) could not settle for want of clear
    looks (:func:`undecided_coal`).

    Area uncertainties count internal edges only (``trends.edge_uncertainty_ha`` with the
    year's ``valid``). Changes (:func:`year_change`) compare consecutive years with data, and
    the first with the last when there are more than two."""
    px = grid.pixel_area_ha
    min_px = boundaries.min_pixels_for_area(min_mapping_unit_ha, px)
    if coregistration is not None:
        years = coregister_years(years, coregistration)
    years = settle_terrain_shadow(years, min_px, px, terrain_rule)
    # Farmed ground: neither dry reference for wet beds nor footprint where unseen (the beds
    # rule changes no coal, so the years' field signs stay the same through it).
    fields = field_signs(years) >= MIN_FIELD_YEARS
    beds = water.drop_exposed_beds(years, min_px, fields=fields)
    years = date_footprints(beds.years, min_px, fields)
    if lines is not None:
        years = add_lines(years, grid.resolution, lines)
    for sy, bed in zip(years, beds.removed, strict=True):
        if bed is not None and bed.any():
            logger.info(
                "%s %d: %.2f ha of exposed bed (former water, now wet ground) not counted",
                sy.site_id, sy.year, float(bed.sum()) * px,
            )  # fmt: skip
    # A slope in shadow is one every autumn: no season's undecided coal.
    slopes = np.zeros(grid.shape, bool)
    for sy in years:
        if sy.terrain_shadow is not None:
            slopes |= sy.terrain_shadow
    years = [
        replace(
            sy,
            coal_undecided=undecided_coal(
                sy, coal_min_frequency, coal_min_observations, min_px, slopes
            ),
        )
        for sy in years
    ]
    area = analysis_area(site, grid, buffer_m)
    years = fill_unseen(years, area)
    metrics = []
    for sy in years:
        redated_ha = float(sy.redated.sum()) * px if sy.redated is not None else 0.0
        unseen_ha = float(sy.unseen_fields.sum()) * px if sy.unseen_fields is not None else 0.0
        bed_ha = float(sy.exposed_bed.sum()) * px if sy.exposed_bed is not None else 0.0
        slope_ha = float(sy.terrain_shadow.sum()) * px if sy.terrain_shadow is not None else 0.0
        shift = sy.registration.shift_px if sy.registration is not None else (None, None)
        coal_pm = trends.edge_uncertainty_ha(sy.coal_mask, grid.resolution, sy.valid)
        undecided_ha = float(sy.coal_undecided.sum()) * px if sy.coal_undecided is not None else 0.0
        filled_ha = float(sy.gap_filled.sum()) * px if sy.gap_filled is not None else 0.0
        flags = tuple(
            flag
            for flag, on in (
                (MAY_LAG, sy.composite is not None and sy.redated is None),
                (REDATED, redated_ha > 0),
                (UNSEEN_FIELDS, unseen_ha > 0),
                (EXPOSED_BED, bed_ha > 0),
                (TERRAIN_SHADOW, slope_ha > 0),
                (COREGISTERED, sy.registration is not None and sy.registration.moved),
                (LINEAR_FEATURES, sy.linear is not None and bool(sy.linear.any())),
                (COAL_UNDECIDED, undecided_ha > coal_pm),
                (GAP_FILLED, filled_ha > 0),
            )
            if on
        )
        metrics.append(
            YearMetrics(
                sy.year,
                float(sy.footprint.sum()) * px,
                trends.edge_uncertainty_ha(sy.footprint, grid.resolution, sy.valid),
                float(sy.coal_mask.sum()) * px,
                coal_pm,
                tuple(boundaries.vectorize(sy.footprint, grid.transform, min_px)),
                tuple(boundaries.vectorize(sy.coal_mask, grid.transform, min_px)),
                redated_ha=redated_ha,
                unseen_fields_ha=unseen_ha,
                exposed_bed_ha=bed_ha,
                terrain_shadow_ha=slope_ha,
                coal_undecided_ha=undecided_ha,
                gap_filled_ha=filled_ha,
                shift_x_px=shift[0],
                shift_y_px=shift[1],
                flags=flags,
            )
        )
    observed = [i for i, sy in enumerate(years) if sy.composite is not None]
    pairs = list(itertools.pairwise(observed))
    if len(observed) > 2:
        pairs.append((observed[0], observed[-1]))
    changes = [
        year_change(years[i], years[j], metrics[i], grid, min_px, change_opening_px, sectors)
        for i, j in pairs
    ]
    return SiteAnalysis(
        site, grid, float(area.sum()) * px, tuple(years), tuple(metrics), tuple(changes)
    )


def fill_unseen(years: Sequence[SiteYear], area: BoolArray) -> list[SiteYear]:
    """``years`` (ascending) with the footprint of the ``area`` a year never saw clear carried
    from the nearest earlier year that saw that ground, or, before the first such year, from
    the nearest later one (``SiteYear.gap_filled``). The years that saw it are those with a
    composite, before this fill: nothing is carried twice.

    Why: a pixel under cloud in every look of a season is no data, and left out it counts as
    no footprint: a camp half under a summer-long cloud would read smaller that year and grow
    back the next, a change no ground made. Built ground and spoil persist from year to year,
    so the last state seen is the best estimate of the unseen one: the gap filling of annual
    land-cover series (MapBiomas, Souza et al. 2020, Remote Sensing 12(17):2735: "no data"
    takes the previous year's class, else the next year's).

    Coal is not carried into ``coal_mask``: a stockpile can come and go within months. The
    coal the same rule would carry joins the year's ``coal_undecided`` instead: coal the
    clouds may have hidden, which the year's coal area may be missing.

    The filled ground stays outside ``valid``: the year's change, edges and coverage count
    only what it saw, so a fill never makes a change, and ``coverage`` still tells the gap.
    Expansion into ground unseen that year shows in the next year that sees it."""
    observed = [i for i, sy in enumerate(years) if sy.composite is not None]
    out = list(years)
    for k, i in enumerate(observed):
        sy = years[i]
        unseen = area & ~sy.valid
        filled = np.zeros_like(unseen)
        hidden = np.zeros_like(unseen)
        # The years that saw the ground judge it, the nearest before first, then after.
        for j in [*observed[:k][::-1], *observed[k + 1 :]]:
            if not unseen.any():
                break
            judge = years[j]
            seen = unseen & judge.valid
            filled |= seen & judge.footprint
            hidden |= seen & judge.coal_mask
            unseen &= ~seen
        undecided = hidden if sy.coal_undecided is None else sy.coal_undecided | hidden
        out[i] = replace(
            sy, footprint=sy.footprint | filled, gap_filled=filled, coal_undecided=undecided
        )
    return out


def undecided_coal(
    sy: SiteYear,
    min_frequency: float,
    min_observations: int,
    min_pixels: int,
    slopes: BoolArray | None = None,
) -> BoolArray:
    """Ground of ``sy`` that may be coal its clear looks were too few to confirm
    (``CoalFrequency.undecided``), in regions of ``min_pixels`` or more: neither counted as
    coal nor decided otherwise (a terrain-shadowed slope, this season's or ``slopes``, those
    any season of the site left out; ground green earlier in the season; a field unseen while
    crops stand). None of it where the year has no coal frequency.

    A pile whose inner looks were shaded in one of two looks, while its mixed rim read coal in
    both, is an undecided core in a thin ring the rule counted, which the opening then took away
    as too thin to be a pile: the ring is part of the same undecided pile, and counts towards it
    (region and area) wherever it touches undecided ground."""
    if sy.coal is None:
        return np.zeros(sy.valid.shape, bool)
    # Read once: a stored or moved frequency reads or shifts its arrays on each access, and
    # both rules below read them.
    stored = sy.coal
    coal = CoalFrequency(stored.frequency, stored.flagged, stored.clear, stored.refuted)
    open_ground = sy.valid & ~sy.coal_mask
    for decided in (
        slopes,
        sy.terrain_shadow,
        sy.unseen_fields,
        sy.evidence.coal_on_green if sy.evidence is not None else None,
    ):
        if decided is not None:
            open_ground &= ~decided
    undecided = coal.undecided(min_frequency, min_observations) & open_ground
    # Counted by the rule (without the seen-once reach) but not mapped: thin or small.
    dropped = coal.mask(min_frequency, min_observations, 0) & open_ground
    eight = np.ones((3, 3), bool)
    pile = np.asarray(
        ndimage.binary_propagation(undecided, structure=eight, mask=undecided | dropped), bool
    )
    return boundaries.remove_small_regions(pile, min_pixels)


def year_change(
    a: SiteYear,
    b: SiteYear,
    metrics_a: YearMetrics,
    grid: Grid,
    min_pixels: int,
    change_opening_px: int,
    sectors: int,
) -> ChangeMetrics:
    """The change from year ``a`` to year ``b``, within the pixels seen in both.

    Rings: the change stage's added/removed footprint (opened by ``change_opening_px``, pieces
    below ``min_pixels`` dropped), each with its own edge uncertainty. The linear features
    ``b`` gained (``SiteYear.linear``) are added whole: a road is a line, not a sliver. Net
    change: the raw masks' area change with its correlated half-width (``trends.net_change``:
    the unchanged boundary's error is common to both years); significant when it exceeds that
    half-width.
    """
    res, px = grid.resolution, grid.pixel_area_ha
    valid = a.valid & b.valid
    fp = mask_change(a.footprint, b.footprint, valid, change_opening_px)
    coal = mask_change(a.coal_mask, b.coal_mask, valid, change_opening_px)
    gained = fp.added
    if b.linear is not None:
        gained = gained | (b.linear & ~a.footprint & valid)
    added = boundaries.remove_small_regions(gained, min_pixels)
    removed = boundaries.remove_small_regions(fp.removed, min_pixels)
    added_ha, removed_ha = float(added.sum()) * px, float(removed.sum()) * px
    added_pm = trends.edge_uncertainty_ha(added, res, valid)
    removed_pm = trends.edge_uncertainty_ha(removed, res, valid)
    net = trends.net_change(a.footprint, b.footprint, valid, res)
    coal_net = trends.net_change(a.coal_mask, b.coal_mask, valid, res)
    added_polygons = tuple(boundaries.vectorize(added, grid.transform, min_pixels))
    removed_polygons = tuple(boundaries.vectorize(removed, grid.transform, min_pixels))
    return ChangeMetrics(
        year_from=a.year,
        year_to=b.year,
        added_ha=added_ha,
        removed_ha=removed_ha,
        coal_added_ha=float(boundaries.remove_small_regions(coal.added, min_pixels).sum()) * px,
        coal_removed_ha=(
            float(boundaries.remove_small_regions(coal.removed, min_pixels).sum()) * px
        ),
        significant=net.net_significant,
        added_polygons=added_polygons,
        removed_polygons=removed_polygons,
        boundary=footprint_boundary(
            metrics_a.footprint_polygons,
            added_polygons,
            removed_polygons,
            a.year,
            b.year,
            sectors=sectors,
            sample_step_m=res,
        ),
        net_ha=net.net_ha,
        net_pm_ha=net.net_pm_ha,
        added_pm_ha=added_pm,
        removed_pm_ha=removed_pm,
        kind=trends.change_kind(
            net.net_ha, net.net_pm_ha, added_ha, added_pm, removed_ha, removed_pm
        ),
        coal_net_ha=coal_net.net_ha,
        coal_net_pm_ha=coal_net.net_pm_ha,
    )


def settle_terrain_shadow(
    years: Sequence[SiteYear],
    min_pixels: int,
    pixel_area_ha: float,
    terrain_rule: Mapping[str, float] | None = None,
) -> list[SiteYear]:
    """``years`` (on one frame) with each season's terrain-shadow verdict (``terrain.shadowed``)
    settled by the other seasons': a slope facing away from the sun is one every autumn, while
    ground that merely looked so in one season (a yard under cloud shadows the mask missed in
    its late looks, which a single season cannot tell from a slope) keeps its reflectance in
    the others.

    Per pixel, the votes are the seasons that could map it and could have found it following
    the sun (``terrain.judged``): shadowed (``terrain_shadow``) or flat (``terrain_flat``).
    Ground a season left out as shadowed is mapped again when the other seasons that saw it
    flat, and no darker than this season did (less than ``classify.SHADE_MIN_LOSS``, the
    default loss of a cloud shadow, darker on the composite's mean over the bands), outnumber
    those that found it shadowed: cloud shadows darken the one season they fall in, while a
    season that sees a slope flat sees it in full shadow all along, darker. It comes back as
    footprint (whether it counted as coal is the season's own count, which is not kept).

    Ground a season mapped, without judging it or judged flat, is left out as shadowed when at
    least ``MIN_SLOPE_VOTES`` other seasons found it so, more than found it flat (one season
    fooled by cloud shadows must not take ground out of the others); the footprint and coal
    pieces it leaves under ``min_pixels`` go with it (a pile's rim without the pile). A season
    that saw the ground in deep shadow all along, too dark for either rule, could not judge
    it: where a season mapped ground without judging it, another season votes shadowed where
    it neither mapped nor judged that ground and saw it darker in every band by
    ``classify.SHADE_MIN_LOSS`` or more, and darker than coal (:func:`_darker_votes`).
    A season of a few clear looks cannot judge ground alone (``terrain.min_trend_looks``:
    five at the default significance), nor can its neighbours when they have as few: ground a
    season mapped without judging it is also left out when the seasons' looks pooled follow
    the sun (:func:`pooled_terrain_shadow`, with ``terrain_rule``, the keyword settings of
    ``terrain.shadowed``), at least ``MIN_SLOPE_VOTES`` other seasons saw it darken as a slope
    does, significant or not (``terrain.follows_sun``: one season's late looks under cloud
    shadows the mask missed must not take ground out of the others through the pool), and no
    more other seasons judged it flat than shadowed.
    Otherwise the season's own verdict stands.

    Years stored before the verdicts were kept (None), or without a composite, neither vote
    nor change. ``pixel_area_ha``: for the log."""
    votes = {
        i: (sy.terrain_shadow, sy.terrain_flat, _brightness(sy.composite))
        for i, sy in enumerate(years)
        if sy.terrain_shadow is not None
        and sy.terrain_flat is not None
        and sy.composite is not None
    }
    if len(votes) < 2:
        return list(years)
    shadow_votes = np.sum([v[0] for v in votes.values()], axis=0, dtype=np.int16)
    flat_votes = np.sum([v[1] for v in votes.values()], axis=0, dtype=np.int16)
    darker = _darker_votes(years, {i: (v[0], v[1]) for i, v in votes.items()})
    reference = _terrain_reference(years)
    pooled = pooled_terrain_shadow(years, reference, terrain_rule or {})
    darkening: dict[int, BoolArray] = {}
    if pooled is not None and pooled.any():
        following = {k: v for k, v in (terrain_rule or {}).items() if k in _FOLLOWS_BY}
        for i, sy in enumerate(years):
            if sy.sun is not None:
                darkening[i] = terrain.follows_sun(sy.sun, reference, **following)
    darkened = np.sum(list(darkening.values()), axis=0, dtype=np.int16) if darkening else None
    out = list(years)
    for i, (own_shadow, own_flat, own_brightness) in votes.items():
        sy = years[i]
        shadow = shadow_votes - own_shadow
        if i in darker:
            shadow = shadow + darker[i]
        flat = flat_votes - own_flat
        # Seasons that saw the ground flat and no darker than this one did.
        lit = np.zeros(flat.shape, np.int16)
        with np.errstate(invalid="ignore"):
            for j, (_, other_flat, brightness) in votes.items():
                if j != i:
                    lit += other_flat & (brightness >= (1.0 - SHADE_MIN_LOSS) * own_brightness)
        restored = own_shadow & (lit > shadow)
        mapped = sy.footprint | sy.coal_mask
        left_out = mapped & ~own_shadow & (shadow >= MIN_SLOPE_VOTES) & (shadow > flat)
        if pooled is not None and darkened is not None:
            others = darkened - darkening[i] if i in darkening else darkened
            left_out |= (
                mapped & ~own_shadow & ~own_flat & pooled & (flat <= shadow)
                & (others >= MIN_SLOPE_VOTES)
            )  # fmt: skip
        if not (restored.any() or left_out.any()):
            continue
        coal = boundaries.remove_small_regions(sy.coal_mask & ~left_out, min_pixels)
        footprint = (
            boundaries.remove_small_regions((sy.footprint | restored) & ~left_out, min_pixels)
            | coal
        )
        left_out = mapped & ~(footprint | coal)
        logger.info(
            "%s %d: terrain shadow settled by the other years: %.2f ha mapped again, %.2f ha "
            "left out", sy.site_id, sy.year, float(restored.sum()) * pixel_area_ha,
            float(left_out.sum()) * pixel_area_ha,
        )  # fmt: skip
        out[i] = replace(
            sy,
            footprint=footprint,
            coal_mask=coal,
            terrain_shadow=(own_shadow & ~restored) | left_out,
            terrain_flat=own_flat & ~left_out,
        )
    return out


def pooled_terrain_shadow(
    years: Sequence[SiteYear], reference: BoolArray, terrain_rule: Mapping[str, float]
) -> BoolArray | None:
    """Ground of ``reference`` (what the years, on one frame, mapped or left out as shadowed
    in any season: :func:`_terrain_reference`) whose seasons' looks, pooled (``terrain.pooled``:
    the seasonal Kendall test), follow the sun (``terrain.shadowed`` with ``terrain_rule``,
    against that ground); None with fewer than two seasons' responses to the sun (years stored
    before they were kept have none)."""
    responses = [sy.sun for sy in years if sy.sun is not None]
    if len(responses) < 2:
        return None
    return reference & terrain.shadowed(terrain.pooled(responses), reference, **terrain_rule)


#: The ``terrain.shadowed`` settings ``terrain.follows_sun`` shares.
_FOLLOWS_BY = ("min_span_deg", "min_darkening_per_deg", "grow_sigmas")


def _terrain_reference(years: Sequence[SiteYear]) -> BoolArray:
    """The ground any of ``years`` mapped or left out as shadowed: what the terrain rule
    weighs a response against (``terrain.shadowed``'s ``reference``)."""
    reference = np.zeros(years[0].footprint.shape, bool)
    for sy in years:
        reference |= sy.footprint | sy.coal_mask
        if sy.terrain_shadow is not None:
            reference |= sy.terrain_shadow
    return reference


def _darker_votes(
    years: Sequence[SiteYear], verdicts: Mapping[int, tuple[BoolArray, BoolArray]]
) -> dict[int, NDArray[np.int16]]:
    """Per season of ``verdicts`` (index into ``years``, each with a composite: its terrain
    verdicts, shadowed and flat) that mapped ground without judging it: at that ground, how
    many other seasons neither mapped nor judged it and saw it darker in every band, by
    ``SHADE_MIN_LOSS`` or more, and as dark as coal or darker (the mean of the bands under
    ``classify.COAL_BRIGHTNESS_MAX``), on their composites. A slope in the ridge's shadow all
    season is lit by the sky only (a tenth to a third of the light in the visible, less in
    the SWIR), so it reads darker than coal and too dark for the footprint rule (SWIR1 under
    its floor), and that season cannot judge it, while a season of a few early looks maps it
    as bare rock. Built ground merely darker in a season's composite (cloud shadows the mask
    missed in a cloudy season's few looks) stays brighter than coal, and does not vote.

    Each composite is read once (a stored year's is read from disk on demand); the mapped
    ground's own values are kept, pixels only."""
    own: dict[int, tuple[tuple[NDArray[np.intp], ...], NDArray[np.float32]]] = {}
    for i, (shadow, flat) in verdicts.items():
        sy = years[i]
        unjudged = (sy.footprint | sy.coal_mask) & ~shadow & ~flat
        if unjudged.any():
            at = np.nonzero(unjudged)
            own[i] = (at, _composite(sy).reflectance[:, at[0], at[1]])
    if not own:
        return {}
    counts = {i: np.zeros(values.shape[1], np.int16) for i, (_, values) in own.items()}
    keep = 1.0 - SHADE_MIN_LOSS
    for j, (shadow, flat) in verdicts.items():
        if not any(i != j for i in own):
            continue
        other = years[j]
        reflectance = _composite(other).reflectance
        unmapped = other.valid & ~(other.footprint | other.coal_mask | shadow | flat)
        for i, (at, values) in own.items():
            if i == j:
                continue
            there = reflectance[:, at[0], at[1]]
            with np.errstate(invalid="ignore"):
                dark = np.all(there <= keep * values, axis=0) & (
                    np.mean(there, axis=0) < COAL_BRIGHTNESS_MAX
                )
            counts[i] += (dark & unmapped[at]).astype(np.int16)
    out = {}
    for i, (at, _) in own.items():
        votes = np.zeros(years[i].footprint.shape, np.int16)
        votes[at] = counts[i]
        out[i] = votes
    return out


def _composite(sy: SiteYear) -> Composite:
    if sy.composite is None:
        raise ValueError(f"{sy.site_id} {sy.year}: no composite")
    return sy.composite


def _brightness(composite: Composite) -> NDArray[np.float32]:
    """The mean over the bands of a season composite (NaN where unseen)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: never seen clear
        return np.asarray(np.nanmean(composite.reflectance, axis=0), np.float32)


def date_footprints(
    years: Sequence[SiteYear], min_pixels: int, fields: BoolArray | None = None
) -> list[SiteYear]:
    """``years`` (ascending) with each footprint settled by the neighbouring years with data:
    first ``drop_unseen_fields``, then ``redate_clearings`` on the result. Each year's own
    evidence (``SiteYear.evidence``) is judged against its neighbours' classification, so a
    pixel moves by one year at most and the result does not depend on the order of the work.
    A year without evidence (stored before it existed) is left as it is. ``fields``: as for
    ``drop_unseen_fields``."""
    return redate_clearings(drop_unseen_fields(years, min_pixels, fields), min_pixels)


def drop_unseen_fields(
    years: Sequence[SiteYear], min_pixels: int, fields: BoolArray | None = None
) -> list[SiteYear]:
    """``years`` without the footprint a season could not tell from a harvested field, and
    without the footprint and coal that greened again the next year.

    A pixel ``unconfirmed`` in year Y (footprint with no clear look while crops stand) is judged
    by the nearest year before Y and the nearest after Y that saw what grew there
    (``_saw_growth``: green, or footprint seen while crops stand, or ambiguous; one side is
    enough at either end of the series). A year that saw the pixel neither green nor as
    footprint (no clear look while its crop was green, under a cloudy summer, and a wet or
    stubble composite) says nothing of it and is passed over. When each judge saw vegetation
    there (``vegetated``: green, not footprint, not ambiguous) and the pixel is a field in
    ``MIN_FIELD_YEARS`` years at least (``field_signs``: green, and with low NDVI at some time
    of the season, or the unseen part of a field seen in its year), it is a field whose harvest
    came before Y's first clear look: it leaves Y's footprint, and the regions left smaller
    than ``min_pixels`` with it. Coal is kept. (A late harvest can keep a field green through a
    judging year; fields come back year after year, while one year's field signs may be a
    single look under unflagged haze, which makes forest look harvested.)

    When a later year saw vegetation there (and the earlier one too, if any), the field signs
    are not needed: built or cleared ground does not green within a season, so the pixel was
    not footprint in Y whatever it is. Under persistent cloud a series may show a field's
    signs (a clear look of it green and one of it bare in the same season) in one year only,
    and its fields would stay footprint in every year no summer look saw.

    Ground the nearest years before and after Y both saw as vegetation came and went within Y,
    whatever Y saw, and seen while crops stand or not: a burn scar's char (dark, flat to NIR,
    low NDVI: it passes for coal and bare ground, and is gone within 1-2 seasons, DOMAIN.md
    "Confusers"), or a field. It leaves Y's footprint and coal: built ground and piles do not
    green the next year. Such ground thinner than 3 pixels everywhere (a strip along an edge:
    the years' misregistration) stays. This rule overrides what Y itself saw, so its judges are
    the nearest years with any clear look there (``valid``, not ``unconfirmed``): none is
    passed over.

    Ground really built over a field in Y stays footprint in the next year that sees it, so it
    is kept in Y, except near the end of the series, where no later year saw it: it may then
    show a year late (the last year is flagged ``MAY_LAG``). ``unseen_fields`` records the loss;
    a year without evidence is neither judged nor used as a judge. ``fields``: the ground
    farmed in ``MIN_FIELD_YEARS`` years or more (``field_signs``), when the caller has it.
    """
    observed = [i for i, sy in enumerate(years) if sy.composite is not None]
    if not observed:
        return list(years)
    shape = years[observed[0]].footprint.shape

    def verdicts(order: Sequence[int], strict: bool) -> dict[int, tuple[BoolArray, BoolArray]]:
        """Per year: (pixels some earlier year of ``order`` saw, whether the nearest one saw
        vegetation there); ``strict``: every clear look is a judge, else ``_saw_growth``."""
        seen = np.zeros(shape, bool)
        field = np.zeros(shape, bool)
        out: dict[int, tuple[BoolArray, BoolArray]] = {}
        for i in order:
            out[i] = (seen.copy(), field.copy())
            evidence = years[i].evidence
            if evidence is not None:
                informative = years[i].valid & ~evidence.unconfirmed
                if not strict:
                    informative &= _saw_growth(years[i], evidence)
                field = np.where(informative, evidence.vegetated, field)
                seen |= informative
        return out

    before, after = verdicts(observed, False), verdicts(observed[::-1], False)
    burn_before, burn_after = verdicts(observed, True), verdicts(observed[::-1], True)
    recurrent = fields if fields is not None else field_signs(years) >= MIN_FIELD_YEARS
    out = list(years)
    for i in observed:
        this = years[i]
        if this.evidence is None:
            continue
        (seen_a, field_a), (seen_b, field_b) = before[i], after[i]
        judged = (seen_a | seen_b) & (field_a | ~seen_a) & (field_b | ~seen_b)
        # Green in a later year, the ground was not built or cleared in Y: footprint does not
        # green within a season. No need then for field signs a cloudy series may never show.
        greened = judged & seen_b
        candidates = this.evidence.unconfirmed & ~this.coal_mask & judged
        unseen = whole_parcels(candidates, candidates & (recurrent | greened))
        # A strip one pixel wide along an edge is the years' misregistration, not a burn.
        (seen_a, field_a), (seen_b, field_b) = burn_before[i], burn_after[i]
        regreened = drop_thin_regions(seen_a & field_a & seen_b & field_b, 1)
        coal = this.coal_mask & ~regreened
        dropped = unseen | regreened
        footprint = boundaries.remove_small_regions(this.footprint & ~dropped, min_pixels) | coal
        out[i] = replace(
            this, footprint=footprint, coal_mask=coal, unseen_fields=this.footprint & ~footprint
        )
    return out


def whole_parcels(candidates: BoolArray, fields: BoolArray) -> BoolArray:
    """The regions of ``candidates`` (8-connected) at least half ``fields``, whole: parcels are
    sown and harvested whole, so the rim of a field whose mixed pixels showed no field signs
    of their own (a field's edge against forest, a Landsat pixel across it) goes with the
    field it belongs to, and the regions mostly not a field keep only their ``fields``."""
    if not fields.any():
        return fields
    labels, n = ndimage.label(candidates, structure=np.ones((3, 3), bool))
    share = ndimage.mean(fields, labels, np.arange(1, n + 1))
    whole = np.concatenate([[False], np.asarray(share) >= 0.5])
    return np.asarray(fields | whole[labels], bool)


def _saw_growth(sy: SiteYear, evidence: SeasonEvidence) -> BoolArray:
    """Pixels whose season ``sy`` says what grew there: seen green (``vegetated``), mapped
    footprint (``drop_unseen_fields`` takes out the unconfirmed part), or ``ambiguous`` (green,
    then bare). The rest of its valid ground was never seen green nor mapped bare: water, a
    shadow, or a field with no clear look while its crop stood whose composite is neither."""
    return evidence.vegetated | evidence.ambiguous | sy.footprint


def field_signs(years: Sequence[SiteYear]) -> NDArray[np.int16]:
    """Per pixel, how many of ``years`` (at least one; those with evidence count) show it a
    field: ``field`` there (green, and with low NDVI in some look), or ``unseen_part_of_field``
    (its unconfirmed footprint in a region that touches ground the same season saw as a field)
    when some year shows it a field by its own looks. A field under a summer cloud is the same
    field as its clear part: parcels are sown and harvested whole. Its own field signs keep
    forest and ground never farmed (a compound cleared in the woods) out of it; ground built on
    part of a field under a cloudy summer, beside the rest of it seen that year, is taken for
    the field and shows a year late (``drop_unseen_fields``)."""
    count = np.zeros(years[0].footprint.shape, np.int16)
    fields = [
        (sy, sy.evidence, sy.evidence.field & sy.valid)
        for sy in years
        if sy.composite is not None and sy.evidence is not None
    ]
    farmed = np.logical_or.reduce([field for _, _, field in fields], initial=False)
    for sy, evidence, field in fields:
        unseen = evidence.unconfirmed & ~sy.coal_mask & farmed
        count += field | unseen_part_of_field(unseen, field)
    return count


def unseen_part_of_field(unseen: BoolArray, field: BoolArray) -> BoolArray:
    """The regions of ``unseen`` (8-connected) that touch ``field`` (share an edge or a corner
    with it): one season's footprint no clear look saw while crops stand, lying against ground
    the same season saw as a field."""
    eight = np.ones((3, 3), bool)
    touching = unseen & ndimage.binary_dilation(field, eight)
    return np.asarray(ndimage.binary_propagation(touching, eight, mask=unseen), dtype=bool)


def add_lines(years: Sequence[SiteYear], pixel_m: float, rule: LineRule) -> list[SiteYear]:
    """``years`` (ascending, on one frame) with the new linear features each holds added to its
    footprint and recorded in ``linear`` (``linear.track_lines`` on the NDVI of the years with
    data, unseen pixels NaN, outside each year's footprint): a line appears in a year judged by
    the years before and after it, and stays in the later years that still hold it. Years
    without a composite are skipped (a gap neither starts nor ends a line)."""
    observed = [i for i, sy in enumerate(years) if sy.composite is not None]
    out = list(years)
    if len(observed) < 3:
        return out
    ndvi = []
    for i in observed:
        composite = years[i].composite
        assert composite is not None
        ndvi.append(np.where(years[i].valid, indices.ndvi(composite.reflectance), np.nan))
    found = track_lines(ndvi, pixel_m, rule, [years[i].footprint for i in observed])
    for i, lines in zip(observed, found, strict=True):
        this = years[i]
        gained = lines & ~this.footprint
        if gained.any():
            logger.info(
                "%s %d: %.2f ha of new linear features (roads, tracks) added to the footprint",
                this.site_id, this.year, float(gained.sum()) * pixel_m**2 / 1e4,
            )  # fmt: skip
        out[i] = replace(this, footprint=this.footprint | gained, linear=gained)
    return out


def redate_clearings(years: Sequence[SiteYear], min_pixels: int) -> list[SiteYear]:
    """``years`` (ascending) with ground cleared during a season added to that season's
    footprint, on the evidence of the next year with data.

    A pixel ``ambiguous`` in year Y (footprint-like at the end of Y, green earlier in Y, seen
    bare before the harvest: ``recipe.site_year``) was either cleared in Y or harvested early.
    When the next year's footprint holds it (so it never greened there), it was cleared in Y:
    it joins Y's footprint. A field harvested early greens again and stays out. Added pieces
    smaller than ``min_pixels`` that touch nothing of Y's footprint are dropped (the minimum
    mapping unit). Each re-dated year records its gain in ``redated``; a year with data that
    could not be judged (the last one, or without evidence) keeps ``redated=None``.

    Coal the same way: ground counted as coal in Y but green earlier in Y (``coal_on_green``)
    is a pile dumped on vegetation during Y when the next year's coal holds it, and joins Y's
    coal (and footprint); a burn scar's char regreens and stays out.
    """
    out = list(years)
    observed = [i for i, sy in enumerate(years) if sy.composite is not None]
    for i, j in itertools.pairwise(observed):
        this, after = years[i], years[j]
        if this.evidence is None:
            continue
        seen = after.valid & this.valid
        confirmed = this.evidence.ambiguous & after.footprint & seen
        joined = boundaries.remove_small_regions(this.footprint | confirmed, min_pixels)
        coal = this.coal_mask
        if this.evidence.coal_on_green is not None:
            stayed = this.evidence.coal_on_green & after.coal_mask & seen
            coal = coal | (boundaries.remove_small_regions(coal | stayed, min_pixels) & stayed)
        footprint = this.footprint | (joined & confirmed) | coal
        out[i] = replace(
            this, footprint=footprint, coal_mask=coal, redated=footprint & ~this.footprint
        )
    return out


def _multipolygon(polygons: Iterable[Polygon]) -> MultiPolygon:
    return MultiPolygon(list(polygons))


def footprint_boundary(
    before: Sequence[Polygon],
    added: Sequence[Polygon],
    removed: Sequence[Polygon],
    year_from: int,
    year_to: int,
    *,
    sectors: int,
    sample_step_m: float,
) -> BoundaryChange:
    """The boundary change between the earlier footprint and the same with ``added`` and
    without ``removed`` (the change stage's rings), so that displacement and rings agree;
    boundaries sampled every ``sample_step_m`` (a pixel: distances exact to half a pixel)."""
    earlier = _multipolygon(before)
    later = shapely.difference(
        shapely.union_all([earlier, *added]), shapely.union_all(list(removed))
    )
    return boundary_change(
        earlier, later, year_from, year_to, sectors=sectors, sample_step_m=sample_step_m
    )


def perimeter_changes(
    by_year: dict[int, Polygon | MultiPolygon], crs: str, *, sectors: int
) -> tuple[tuple[str, BoundaryChange], ...]:
    """Boundary change between analyst-drawn perimeters (WGS84, a geometry per year), measured
    in ``crs`` (the site's UTM zone)."""
    projected: dict[int, Polygon | MultiPolygon | None] = {}
    for year, geom in by_year.items():
        moved = reproject_geometry(geom, "EPSG:4326", crs)
        assert isinstance(moved, Polygon | MultiPolygon)
        projected[year] = moved
    return tuple(boundary_changes(projected, sectors=sectors))


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
    expansion = {
        f"{c.year_from}-{c.year_to}": _score_boundary(c.boundary, truth, grid.crs)
        for c in analysis.changes
        if c.year_from in truth_masks and c.year_to in truth_masks
    }
    sufficient = [y for y in per_year.values() if y["sufficient_data"]]
    first_last = (
        expansion.get(f"{analysis.changes[-1].year_from}-{analysis.changes[-1].year_to}")
        if analysis.changes
        else None
    )
    summary = {
        "years_scored": len(sufficient),
        "years_with_too_few_clear_observations": [
            int(k) for k, y in per_year.items() if not y["sufficient_data"]
        ],
        "min_footprint_iou": min((y["footprint_iou"] for y in sufficient), default=None),
        "max_abs_footprint_area_error": _max_abs(y["footprint_area_error"] for y in sufficient),
        "max_abs_coal_area_error": _max_abs(y["coal_area_error"] for y in sufficient),
        "max_false_expansion_share": max(false_expansion.values(), default=None),
        "first_last_expansion": first_last,
    }
    return {
        "summary": summary,
        "years": per_year,
        "false_expansion_share": false_expansion,
        "expansion": expansion,
    }


def _score_boundary(found: BoundaryChange, truth: dict[int, Any], crs: str) -> dict[str, Any]:
    """The boundary change found against the one between the true footprints: added area,
    reach, main direction, and the per-sector error of the maximum outward displacement."""
    before, after = (
        reproject_geometry(truth[y].footprint, "EPSG:4326", crs)
        for y in (found.year_from, found.year_to)
    )
    assert isinstance(before, Polygon | MultiPolygon)
    assert isinstance(after, Polygon | MultiPolygon)
    true = boundary_change(
        before,
        after,
        found.year_from,
        found.year_to,
        sectors=len(found.sectors) or 16,
    )
    errors = [
        abs(a.max_m - b.max_m)
        for a, b in zip(found.sectors, true.sectors, strict=False)
        if a.max_m is not None and b.max_m is not None
    ]
    return {
        "added_ha": round(found.added_ha, 4),
        "true_added_ha": round(true.added_ha, 4),
        "max_outward_m": _round(found.max_outward_m or 0.0, 1),
        "true_max_outward_m": _round(true.max_outward_m or 0.0, 1),
        "main_direction": found.main_direction,
        "true_main_direction": true.main_direction,
        "median_sector_max_error_m": _round(float(np.median(errors)), 1) if errors else None,
        "summary": found.summary,
        "true_summary": true.summary,
    }


def _max_abs(values: Iterable[float | None]) -> float | None:
    present = [abs(v) for v in values if v is not None]
    return max(present) if present else None


def _round(value: float, digits: int = 4) -> float | None:
    return None if not np.isfinite(value) else round(float(value), digits)
