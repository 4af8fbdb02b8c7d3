"""Rule-based classification: footprint on a composite, coal per clear observation.

Thresholds arrive as plain keyword parameters (``run`` unpacks them from the config), so these
functions can be called from a notebook with nothing but arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage import morphology

from pipeline import indices
from pipeline.bands import BAND_INDEX
from pipeline.composite import median_composite, median_only, nan_percentile
from pipeline.masking import open_mask

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]


def valid_pixels(reflectance: FloatArray) -> BoolArray:
    """Pixels where every band is finite (has data)."""
    return np.asarray(np.isfinite(reflectance).all(axis=0))


def drop_thin_regions(mask: BoolArray, radius_px: int, *, pin_holes: bool = False) -> BoolArray:
    """Keep the whole of every region that holds at least one ``2 * radius_px + 1`` square;
    drop regions thinner than that everywhere (ships at a quay, roads). Unlike an opening, the
    kept regions lose nothing at their edges.

    ``pin_holes``: a hole smaller than the square does not break it (``remove_small_holes``;
    a notch as small where a region meets the grid's edge counts as one, the ground beyond
    being unseen). The coal count asks for it: a pile whose count missed one pixel to noise is
    as wide as it was (a 30 m Landsat look on a 10 m grid leaves a pile of 60-100 pixels few
    3 x 3 squares to begin with); a road or a ship is thin with or without holes."""
    if radius_px <= 0:
        return mask
    solid = mask
    if pin_holes:
        side = 2 * radius_px + 1
        solid = morphology.remove_small_holes(np.asarray(mask, bool), max_size=side * side - 1)
    seeds = open_mask(np.asarray(solid, bool), radius_px) & mask
    return np.asarray(ndimage.binary_propagation(seeds, mask=mask), dtype=bool)


def footprint_mask(
    reflectance: FloatArray,
    green_ndvi: FloatArray | None = None,
    *,
    ndvi_max: float = 0.30,
    green_ndvi_max: float = 0.50,
    mndwi_max: float = 0.0,
    swir16_min: float = 0.03,
    opening_px: int = 1,
) -> BoolArray:
    """Disturbed or built surface (built, bare soil, spoil, coal, asphalt) on one image.

    Low NDVI excludes vegetation, low MNDWI excludes water, a SWIR1 floor excludes water and
    deep shadow. ``green_ndvi`` (see ``greenness``), when given, excludes pixels that were green
    at some point of the season: harvested fields are bare in a late-season composite but were
    crops weeks before, while built ground and spoil never green. NaN pixels are never footprint.
    """
    with np.errstate(invalid="ignore"):
        mask = (
            valid_pixels(reflectance)
            & (indices.ndvi(reflectance) < ndvi_max)
            & (indices.mndwi(reflectance) < mndwi_max)
            & (indices.band(reflectance, "swir16") > swir16_min)
        )
        if green_ndvi is not None:
            mask &= ~(green_ndvi >= green_ndvi_max)
    return open_mask(np.asarray(mask), opening_px)


def greenness(
    stack: FloatArray, clear: BoolArray, percentile: float = 100.0, footprint_px: int = 3
) -> FloatArray:
    """Per pixel, how green it got during the season: a high percentile of NDVI over the clear
    observations of ``stack`` (time, band, y, x), then the minimum over a ``footprint_px``
    square. NaN with no observation.

    The minimum filter keeps misregistration from reading as greenness: a one-pixel shift in a
    few scenes puts the neighbouring crops on a built edge pixel, and the high percentile would
    pick exactly those scenes. Interior field pixels stay green under the filter.
    """
    ndvi = np.stack([indices.ndvi(obs) for obs in stack])
    ndvi[~clear] = np.nan
    high = nan_percentile(ndvi, percentile)
    if footprint_px <= 1:
        return high
    low = ndimage.minimum_filter(np.where(np.isnan(high), np.inf, high), size=footprint_px)
    return np.where(np.isnan(high) | np.isinf(low), high, low).astype(np.float32)


@dataclass(frozen=True)
class CropSigns:
    """What a season's looks say of crops, per pixel (``crop_signs``)."""

    cropped: BoolArray  # green (the season's greenness) and seen with low NDVI in a clear look
    cleared: BoolArray  # seen bare before the harvest, after its last green look


def crop_signs(
    stack: FloatArray,
    clear: BoolArray,
    green_ndvi: FloatArray,
    before_harvest: Sequence[bool],
    *,
    ndvi_max: float = 0.30,
    green_ndvi_max: float = 0.50,
    mndwi_max: float = 0.0,
    swir16_min: float = 0.03,
) -> CropSigns:
    """Signs of crops in a season's looks ``stack`` (time, band, y, x, in date order) with their
    ``clear`` masks and the season's ``green_ndvi`` (``greenness``); ``before_harvest`` flags the
    looks taken before crops are harvested. Bare: the footprint rule on one look.

    ``cropped``: green at some point and, in some look, NDVI below ``ndvi_max``: sown, flooded
    (paddies) or harvested during the season, a field. Forest stays above it to its dormancy
    (a conifer or grass too), built ground never looks green.
    ``cleared``: bare in a look before the harvest that comes after the pixel's last green look
    (NDVI >= ``green_ndvi_max``). A crop is green until its harvest; ground seen bare while crops
    still stand, and never green again, was cleared (or harvested early: the next year tells).
    A pixel never seen green is ``cleared`` when seen bare before the harvest.
    """
    if len(before_harvest) != stack.shape[0] or clear.shape != (stack.shape[0], *stack.shape[2:]):
        raise ValueError(
            f"stack {stack.shape}, clear {clear.shape} and {len(before_harvest)} harvest flags "
            "do not describe the same looks"
        )
    seen_low = np.zeros(stack.shape[2:], bool)
    cleared = np.zeros(stack.shape[2:], bool)
    for obs, ok, early in zip(stack, clear, before_harvest, strict=True):
        ok = ok & valid_pixels(obs)
        ndvi = indices.ndvi(obs)
        with np.errstate(invalid="ignore"):
            green = ok & (ndvi >= green_ndvi_max)
            seen_low |= ok & (ndvi < ndvi_max)
        cleared &= ~green
        if early:
            cleared |= ok & footprint_mask(
                obs, ndvi_max=ndvi_max, mndwi_max=mndwi_max, swir16_min=swir16_min, opening_px=0
            )
    cropped = seen_low & is_green(green_ndvi, green_ndvi_max=green_ndvi_max)
    return CropSigns(cropped, cleared)


def is_green(
    green_ndvi: FloatArray, *, green_ndvi_max: float = 0.50, **_footprint_rule: float
) -> BoolArray:
    """Pixels the greenness test calls green (``green_ndvi`` from ``greenness``); takes the
    footprint rule's keywords, of which it uses ``green_ndvi_max``."""
    with np.errstate(invalid="ignore"):
        return np.asarray(green_ndvi >= green_ndvi_max)


def _rim_fractions(
    core: BoolArray,
    reflectance: FloatArray,
    *,
    ring_px: int,
    guard_px: int = 0,
    window_px: int = 7,
    nearest_background: bool = False,
) -> tuple[BoolArray, NDArray[np.float64]]:
    """The ``ring_px``-wide ring around ``core`` (finite pixels only) and, per pixel, its
    core share by two-endmember linear unmixing of ``reflectance`` (band, y, x) between the
    local mean of the core and the local mean of the background: the pixels more than
    ``ring_px + guard_px`` from the core, each taken over a square of
    ``window_px + 2 * (ring_px - 1 + guard_px)`` pixels; where that square holds no background
    (between close piles), with ``nearest_background`` the nearest square's that does. NaN
    where the two means are alike or missing. The least-squares share is
    ``f = <x - bg, core - bg> / |core - bg|^2``."""
    square = np.ones((3, 3), bool)
    finite = np.isfinite(reflectance).all(axis=0)
    ring_px = max(ring_px, 1)
    near = ndimage.binary_dilation(core, structure=square, iterations=ring_px)
    far = ~near
    if guard_px > 0:
        far = ~ndimage.binary_dilation(near, structure=square, iterations=guard_px)
    ring = near & ~core & finite
    window = window_px + 2 * (ring_px - 1 + guard_px)

    if not ring.any():
        return ring, np.full(core.shape, np.nan)
    inside, outside = core & finite, far & finite
    inside_weight = ndimage.uniform_filter(inside.astype(np.float64), window)
    outside_weight = ndimage.uniform_filter(outside.astype(np.float64), window)
    nearest = None
    missing = ~(outside_weight > 1e-9)  # as _local_mean leaves NaN: the same in every band
    if nearest_background and missing.any() and not missing.all():
        nearest = ndimage.distance_transform_edt(
            missing, return_distances=False, return_indices=True
        )

    # Band by band, summed in band order as np.sum over the band axis does: a whole-grid
    # (band, y, x) array in double precision for each term was the task's peak on large sites.
    def terms(band: FloatArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(core minus background, pixel minus background) of one band."""
        background = _local_mean(band, outside, outside_weight, window)
        if nearest is not None:
            background = background[nearest[0], nearest[1]]
        return _local_mean(band, inside, inside_weight, window) - background, band - background

    contrast, offset = terms(reflectance[0])
    norm, projection = contrast * contrast, offset * contrast
    for band in reflectance[1:]:
        contrast, offset = terms(band)
        norm += contrast * contrast
        projection += offset * contrast
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = projection / norm
    return ring, np.where(norm > 1e-6, fraction, np.nan)


def _local_mean(
    band: FloatArray, mask: BoolArray, weight: NDArray[np.float64], window: int
) -> NDArray[np.float64]:
    """Mean of ``band`` over the pixels of ``mask`` in the ``window``-pixel square around each
    pixel (``weight``: the square's share of ``mask``), NaN where the square holds none."""
    total = ndimage.uniform_filter(np.where(mask, band, 0.0).astype(np.float64), window)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 1e-9, total / np.maximum(weight, 1e-12), np.nan)


def grow_mixed_edges(
    core: BoolArray,
    reflectance: FloatArray,
    *,
    min_fraction: float = 0.5,
    window_px: int = 7,
    ring_px: int = 1,
) -> BoolArray:
    """Add to ``core`` the pixels of its ``ring_px``-wide ring that are at least
    ``min_fraction`` core surface and connect to it through such pixels, by two-endmember
    linear unmixing of ``reflectance`` (band, y, x) between the local mean of the core and the
    local mean of the background (pixels beyond the ring), each taken over a square of
    ``window_px + 2 * (ring_px - 1)`` pixels.

    Strict spectral rules map a surface minus its rim: a rim pixel half coal and half yard is not
    dark enough for the coal rule, half roof and half crops is too green for the footprint rule.
    Reference maps count a pixel when most of it is the surface (the pixel-centre rule); the
    least-squares fraction ``f = <x - bg, core - bg> / |core - bg|^2`` restores that. The caller
    sets ``ring_px`` to the native pixel of the bands the rule reads (``bands.rim_px``: on a
    10 m grid, 1 for Sentinel-2's 10 m bands, 2 for its 20 m SWIR, 3 for Landsat's 30 m).
    """
    ring, fraction = _rim_fractions(core, reflectance, ring_px=ring_px, window_px=window_px)
    if not ring.any():
        return core
    with np.errstate(invalid="ignore"):
        add = ring & (fraction >= min_fraction)
    if ring_px <= 1:
        return np.asarray(core | add, dtype=bool)
    square = np.ones((3, 3), bool)
    return np.asarray(ndimage.binary_propagation(core, structure=square, mask=core | add))


def grow_to_unmixed_area(
    core: BoolArray, reflectance: FloatArray, *, rim_px: int = 1, window_px: int = 7
) -> BoolArray:
    """Add to each region of ``core`` the pixels of its ring, the most mixed-in first, until the
    region holds its unmixed area: its core pixels plus the sum of its ring pixels' core
    shares (``_rim_fractions``, clipped to 0-1).

    A blurred surface keeps its area, not its outline. Any unit-gain blur (the sensor's point
    spread, a block mean at a coarser pixel, a bilinear read onto this grid) moves a surface's
    share between pixels and keeps the sum; but on a convex surface, a pile, it pulls the
    half-share contour inward, by about sigma^2 / 2R (blur spread sigma, radius R). A Landsat
    pixel read bilinearly onto a 10 m grid spreads an edge with sigma about 15 m, so the
    pixel-centre rule (``grow_mixed_edges``) loses a pile of 0.25-0.5 ha about a tenth of its
    area, and the loss is the same every Landsat year, a bias no trend test can see. Taking
    the most mixed pixels until the shares are used up keeps the area (the class-proportion
    constraint of sub-pixel mapping, Atkinson 2005) and puts the outline where the blur left
    the most surface. Core pixels count whole, and the core's mean is not quite pure coal, so
    on a clean blurred pile the area comes out a few percent high.

    ``rim_px``: the native pixel of the bands the rule reads, in grid pixels (``bands.rim_px``).
    The ring reaches ``rim_px + 1`` pixels, since the core's rule passes only well inside the
    edge; the background lies a further ``rim_px`` beyond, clear of the blur's tail, which
    would otherwise pass for background and shrink every share.
    """
    ring, fraction = _rim_fractions(
        core,
        reflectance,
        ring_px=rim_px + 1,
        guard_px=rim_px,
        window_px=window_px,
        nearest_background=True,
    )
    if not ring.any():
        return core
    square = np.ones((3, 3), bool)
    labels, _ = ndimage.label(core | ring, structure=square)
    share = np.clip(np.nan_to_num(fraction, nan=0.0), 0.0, 1.0)
    index = np.arange(labels.max() + 1)
    target = np.round(ndimage.sum_labels(np.where(ring, share, 0.0), labels, index=index))
    candidates = np.flatnonzero(ring & (share > 0))
    region = labels.ravel()[candidates]
    order = np.lexsort((-share.ravel()[candidates], region))
    candidates, region = candidates[order], region[order]
    first = np.searchsorted(region, region, side="left")
    rank = np.arange(region.size) - first
    add = np.zeros(core.size, bool)
    add[candidates[rank < target[region]]] = True
    grown = core | add.reshape(core.shape)
    return np.asarray(ndimage.binary_propagation(core, structure=square, mask=grown), dtype=bool)


#: The coal rule's ceiling on every band of a look (``coal_observation``'s ``reflectance_max``)
#: and on the mean of its bands (``brightness_max``).
COAL_REFLECTANCE_MAX = 0.12
COAL_BRIGHTNESS_MAX = 0.075


#: The shadow test's margin (``coal_observation``'s ``swir_minus_blue_min``): the absolute
#: accuracy of surface reflectance, as ``pairwise.NOISE_FLOOR``.
SWIR_MINUS_BLUE_MIN = -0.005


def coal_observation(
    reflectance: FloatArray,
    *,
    swir_minus_blue_min: float = SWIR_MINUS_BLUE_MIN,
    **rule: float,
) -> BoolArray:
    """Coal-like pixels in one clear observation (``coal_like``) that pass the shadow test in
    it: SWIR1 >= blue + ``swir_minus_blue_min``. Shadows fall toward SWIR while coal does not
    (DOMAIN.md, "Confusers"). The margin, -0.005, is the absolute accuracy of surface
    reflectance (as ``pairwise.NOISE_FLOOR``): coal as flat as it comes (SWIR1 = blue) sits on
    the test's edge, and at a zero margin noise would drop half its looks; a shadow falls by
    more. ``coal_frequency`` also takes the test on a pixel's season (``season_rise``), where
    noise averages out."""
    with np.errstate(invalid="ignore"):
        flat = swir_rise(reflectance) >= swir_minus_blue_min
    return np.asarray(coal_like(reflectance, **rule) & flat)


def swir_rise(reflectance: FloatArray) -> FloatArray:
    """SWIR1 - blue of ``reflectance`` (band, ...): how a target rises toward the SWIR; a
    shadow, lit by the blue skylight alone, falls."""
    out: FloatArray = indices.band(reflectance, "swir16") - indices.band(reflectance, "blue")
    return out


def coal_like(
    reflectance: FloatArray,
    *,
    brightness_max: float = COAL_BRIGHTNESS_MAX,
    reflectance_max: float = COAL_REFLECTANCE_MAX,
    ndvi_max: float = 0.2,
    swir16_min: float = 0.025,
    swir22_min: float = 0.02,
    mndwi_max: float = 0.1,
    nir_minus_red_max: float = 0.025,
    flat_range_max: float = 0.04,
) -> BoolArray:
    """Pixels of one clear observation dark and flat across the spectrum as coal is, before
    the shadow test (``coal_observation``).

    Darkness is judged on the mean of the bands (coal ~0.05, asphalt ~0.09: DOMAIN.md), which
    sensor noise barely moves, with a looser ceiling on every single band. The SWIR floors and
    MNDWI ceiling reject water.

    Not vegetation: NDVI below ``ndvi_max``, or, for a pixel flat across the spectrum (every
    band within ``flat_range_max`` of the others: coal is flat from blue to SWIR2, 0.03-0.07,
    DOMAIN.md; char and lignite rise toward SWIR), NIR - red below ``nir_minus_red_max``. On a
    target this dark NDVI is mostly noise: coal's NIR - red is ~0.005 (NDVI ~0.05), and sensor
    noise of 0.006 reflectance per band (the no-change tests' level) gives the difference a
    spread of 0.0085, which over NIR + red ~0.09 spreads NDVI by ~0.09, so a coal pixel in one
    look of twenty fails NDVI < 0.2 (more on darker piles); the difference's own 3-sigma bound
    (0.025) does not move with darkness. Vegetation, shaded too, keeps NIR - red well above it
    (a forest canopy in deep shade ~0.04 with NDVI ~0.8).
    """
    nir_minus_red = indices.band(reflectance, "nir") - indices.band(reflectance, "red")
    spread = np.max(reflectance, axis=0) - np.min(reflectance, axis=0)
    with np.errstate(invalid="ignore"):
        mask = (
            (np.mean(reflectance, axis=0) < brightness_max)
            & (np.max(reflectance, axis=0) < reflectance_max)
            & (
                (indices.ndvi(reflectance) < ndvi_max)
                | ((nir_minus_red < nir_minus_red_max) & (spread < flat_range_max))
            )
            & (indices.band(reflectance, "swir16") > swir16_min)
            & (indices.band(reflectance, "swir22") > swir22_min)
            & (indices.mndwi(reflectance) < mndwi_max)
        )
    return np.asarray(mask)


@dataclass(frozen=True)
class CoalFrequency:
    """Per pixel: share of clear observations flagged as coal, the flag count and clear count;
    ``refuted``, the clear looks not flagged that saw ground bright in the SWIR, so not coal
    (``coal_frequency``; None: not counted)."""

    frequency: FloatArray
    flagged: NDArray[np.int16]
    clear: NDArray[np.int16]
    refuted: NDArray[np.int16] | None = None

    def mask(
        self, min_frequency: float = 0.5, min_observations: int = 3, seen_once_reach_px: int = 3
    ) -> BoolArray:
        """DOMAIN.md counting rule: coal for the year if flagged in >= 50% of the clear
        observations and in at least 3.

        Where clouds leave fewer than 3 clear looks (the caller flags such years), a pixel
        flagged in both of 2 looks counts, and a pixel flagged in its only look counts when it
        is connected to such confirmed coal within ``seen_once_reach_px`` of it (hysteresis):
        one look alone is never enough, since one residual shadow looks like coal, but the
        part of a confirmed pile seen once, where a cloud's edge crosses the pile, is still
        that pile. The reach bounds it: an unflagged cloud shadow is kilometres wide and turns
        asphalt and dark roofs coal-dark in its one look, and without a bound the whole
        shadowed yard beside a pile would join it.
        """
        # Read once: a stored or moved frequency reads or shifts its arrays on each access.
        flagged, clear = self.flagged, self.clear
        needed = _flags_needed(clear, min_observations)
        with np.errstate(invalid="ignore"):
            often = self.frequency >= min_frequency
            strong = often & (flagged >= needed) & (clear > 0)
            weak = often & (clear > 0) & (flagged == clear)
        if seen_once_reach_px > 0 and strong.any():
            size = 2 * seen_once_reach_px + 1
            weak &= ndimage.binary_dilation(strong, structure=np.ones((size, size), bool))
        else:
            weak &= strong
        return np.asarray(ndimage.binary_propagation(strong, mask=strong | weak), dtype=bool)

    def undecided(self, min_frequency: float = 0.5, min_observations: int = 3) -> BoolArray:
        """Pixels the counting rule cannot settle for want of looks: flagged as coal in at
        least ``min_frequency`` of their clear looks, with fewer clear looks than
        ``min_observations``, and not confirmed by them (one flag of two looks, or one look
        alone, which :meth:`mask` counts only next to confirmed coal). Coal the clouds may
        have hidden: what the year's coal area may be missing, not evidence of coal.

        A pixel whose unflagged look saw it bright in the SWIR (``refuted``) is settled: that
        look saw ground that is not coal, and its flag was a cloud shadow the mask missed
        over a yard. A look veiled by a cloud's edge or haze (``obscured_looks``) refutes
        nothing (``coal_frequency``), so a pile veiled in its other look stays undecided."""
        flagged, clear, refuted = self.flagged, self.clear, self.refuted
        needed = _flags_needed(clear, min_observations)
        with np.errstate(invalid="ignore"):
            short = (
                (flagged > 0)
                & (flagged < needed)
                & (clear < min_observations)
                & (self.frequency >= min_frequency)
            )
        if refuted is not None:
            short &= refuted == 0
        return np.asarray(short, dtype=bool)


def _flags_needed(clear: NDArray[np.int16], min_observations: int) -> NDArray[np.int16]:
    """Flags that confirm a pixel of ``clear`` looks: ``min_observations``, or all its looks
    where it has fewer, and never fewer than two (one look alone is never enough)."""
    return np.maximum(np.minimum(clear, min_observations), min(2, min_observations))


#: Band indices of the visible and the SWIR bands (``obscured_looks``, ``coal_frequency``).
_VISIBLE = np.array([BAND_INDEX[b] for b in ("blue", "green", "red")])
_SWIR = np.array([BAND_INDEX[b] for b in ("swir16", "swir22")])

#: How much darker than the season's median a look must be, in every band and by this share
#: on the mean, to be a cloud shadow the mask missed (``obscured_looks``).
SHADE_MIN_LOSS = 0.2


def obscured_looks(
    stack: FloatArray,
    clear: BoolArray,
    reference: FloatArray,
    *,
    veil_min_rise: float = 0.015,
    shade_min_loss: float = SHADE_MIN_LOSS,
) -> BoolArray:
    """(time, y, x): where a clear look of ``stack`` (time, band, y, x) is veiled or shaded by a
    cloud its mask missed, judged against ``reference`` (band, y, x; the season's median).
    Each test is off at 0.

    Veiled: blue, green and red brighter, by ``veil_min_rise`` at least on their mean, and
    neither SWIR band risen more than that mean (within ``veil_min_rise``). A cloud edge below
    the mask's opacity threshold (Sen2Cor leaves edges below 0.3 opacity unflagged; Fmask's
    dilation stops at a fixed distance), thin cirrus or residual haze lies in front of the
    ground and is brighter in the visible than in the SWIR, where water and ice absorb (clouds)
    and scattering fades with wavelength (haze).
    This is the multi-temporal cloud test of MAJA (Hagolle et al. 2010, Remote Sens. Environ.
    114:1747: a look much brighter in blue than the pixel's clear reference is cloud), with a
    spectral condition that keeps real change out: ground uncovered where coal was carted off
    (yard, soil, concrete) rises more in the SWIR than in the visible (concrete uncovered from
    coal: 0.09 in the visible, 0.17 in SWIR1; a cloud edge of 8% opacity: 0.04 and 0.03). The
    default ``veil_min_rise`` is 2.5 times the sensor noise of one band (0.006, DOMAIN.md), over
    four times that of the mean of three.

    Shaded: darker in every band, and the mean of the bands at least ``shade_min_loss`` (a
    share) darker. A cloud shadow the mask missed (Sen2Cor's SCL 3 and Fmask's shadow are kept,
    DOMAIN.md "Masks") takes 55-75% of the light; coal under it falls below the coal rule's
    SWIR floors or into its shadow test. On coal (mean 0.047) a 20% loss is 3.7 times the noise
    of the mean of six bands (0.006 / sqrt(6)), and noise darkens all six at once in one look of
    64 at most.

    A pile under a veil is too bright for the coal rule, and under a shade too dark: either
    look would count as a clear look without the flag, and a pile seen in three looks is lost
    for one of them (``coal_frequency`` does not count them).
    """
    obscured = np.zeros(clear.shape, bool)
    with np.errstate(invalid="ignore"):
        shade_level = (1.0 - shade_min_loss) * np.mean(reference, axis=0)
        # Look by look: the season's differences from its median at once would be another
        # season stack (a large site's peak memory).
        for look, hidden in zip(stack, obscured, strict=True):
            if veil_min_rise > 0:
                rise = look - reference
                visible, swir = rise[_VISIBLE], rise[_SWIR]
                lift = np.mean(visible, axis=0)
                hidden |= (
                    (lift >= veil_min_rise)
                    & np.all(visible > 0, axis=0)
                    & (np.max(swir, axis=0) <= lift + veil_min_rise)
                )
            if shade_min_loss > 0:
                level = np.mean(look, axis=0) <= shade_level
                hidden |= level & np.all(look < reference, axis=0)
    return np.asarray(clear & obscured, dtype=bool)


#: Reach of the light estimate under a cast shadow (``relit``): the Gaussian's sigma, in pixels,
#: and how many sigmas it reaches; ``RELIGHT_REACH_PX``, how far a relit pixel depends on others
#: (``chunks.halo_px``).
RELIGHT_SIGMA_PX = 8.0
RELIGHT_TRUNCATE = 3.0
RELIGHT_REACH_PX = int(RELIGHT_TRUNCATE * RELIGHT_SIGMA_PX + 0.5) + 1  # and the 3 x 3 mean
#: Least share of the Gaussian's weight that must fall on shaded pixels with a lit reference
#: for a pixel's light to be estimated, and the range the estimate must fall in (a cloud's
#: shadow keeps the diffuse skylight, a tenth of the light or more; 1 is no shadow at all).
RELIGHT_MIN_WEIGHT = 0.02
RELIGHT_TRANSMISSION = (0.1, 1.0)


def relit(stack: FloatArray, clear: BoolArray, shaded: BoolArray) -> tuple[FloatArray, BoolArray]:
    """``stack`` (time, band, y, x) with the clear pixels a cloud of their look shades
    (``shaded``, time, y, x) brought back to full light, and where that was done (time, y, x);
    ``stack`` itself when no clear pixel is shaded.

    A cast shadow takes a share of the light that varies per band (skylight is bluer than the
    direct beam) and smoothly across the shadow (the cloud's thickness, the penumbra): band by
    band, the look's shaded pixels are set against the same pixels' median in the looks of the
    season no shadow falls on (their lit reference), and the light left there is the ratio of
    their sums, Gaussian-weighted around each pixel (``RELIGHT_SIGMA_PX``). A pile shaded in
    every look of the season has no lit reference of its own, and takes the light measured on
    the yard and fields around it. Pixels too far from any shaded pixel with a lit reference,
    or whose estimate is not a shadow's (``RELIGHT_TRANSMISSION``), are not relit. This is the
    multitemporal shadow compensation of cloud-removal work (the shaded signal over a clear
    reference, as MAJA sets a look against its clear composite); written here because the
    reference is the season's own looks, which no library holds."""
    done = np.zeros(shaded.shape, bool)
    lit = clear & ~shaded
    if not (shaded & clear).any() or not lit.any():
        return stack, done
    out = stack.copy()
    reference = median_composite(stack, lit).reflectance
    has_reference = np.all(np.isfinite(reference), axis=0)

    def smooth(a: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(
            ndimage.gaussian_filter(a, RELIGHT_SIGMA_PX, mode="constant", truncate=RELIGHT_TRUNCATE)
        )

    for t in range(stack.shape[0]):
        under = shaded[t] & clear[t] & valid_pixels(stack[t])
        if not under.any():
            continue
        known = under & has_reference
        weight = smooth(known.astype(np.float64))
        light = np.empty(stack.shape[1:], np.float64)
        for b in range(stack.shape[1]):
            seen = smooth(np.where(known, stack[t, b], 0.0))
            full = smooth(np.where(known, reference[b], 0.0))
            with np.errstate(invalid="ignore", divide="ignore"):
                light[b] = seen / full
        low, high = RELIGHT_TRANSMISSION
        with np.errstate(invalid="ignore"):
            ok = (
                under
                & (weight >= RELIGHT_MIN_WEIGHT)
                & np.all((light > low) & (light <= high), axis=0)
            )
        # Dividing by the light divides the sensor's noise up too: a relit pixel is the mean of
        # the relit pixels of its 3 x 3 square (summed pixel by pixel, so a chunk sums as the
        # whole grid does, where a running sum would not).
        square = np.ones((1, 3, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            brought = np.where(ok, stack[t] / light, 0.0)
            n = ndimage.correlate(ok[None].astype(np.float64), square, mode="constant")
            mean = ndimage.correlate(brought, square, mode="constant") / n
        out[t][:, ok] = mean[:, ok].astype(stack.dtype)
        done[t] = ok
    return out, done


def coal_frequency(
    stack: FloatArray,
    clear: BoolArray,
    rule: Mapping[str, float] | None = None,
    *,
    obscured: BoolArray | None = None,
) -> CoalFrequency:
    """Classify each clear observation of ``stack`` (time, band, y, x) by the coal rule with
    the thresholds ``rule`` (None: its defaults) and count coal flags, and the unflagged clear
    looks in which SWIR1 or SWIR2 reaches the rule's ceiling on every band
    (``reflectance_max``): ground bright in the SWIR, which haze over coal does not make it
    (``CoalFrequency.refuted``).

    A look is flagged where it is coal-like (``coal_like``) and passes the shadow test
    (``coal_observation``) in itself or on the pixel's season: the median of SWIR1 - blue
    over the pixel's clear looks darker than the rule's ``brightness_max`` (``season_rise``).
    Noise of 0.006 per band spreads one look's SWIR1 - blue by 0.0085, more than the test's
    margin, so coal as flat as it comes fails it in more than a quarter of its looks; the
    median of eight looks spreads it by under half of that. The looks are chosen by darkness
    alone: the water tests, on SWIR1 too, would keep the looks of a shadow that noise lifts.
    A shadow is not let in: ground coal-dark only in shadow falls toward SWIR in all its dark
    looks, and a cloud's shadow passing over coal leaves the pile's other looks flat.

    A look ``obscured`` (time, y, x; ``obscured_looks``) where it is not flagged is not counted:
    the veil or shade may hide coal. Nor does it refute: a cloud's edge, which water droplets
    make bright in the SWIR as in the visible, lifts coal over the ceiling there too. A look
    flagged through it still counts, and the looks of a pixel left with fewer than two all
    count: one look is never evidence enough of coal (``CoalFrequency.mask``), and a slope's
    terrain shadow, deepening as the sun sinks through the season, would leave its one early
    look alone to speak for it."""
    like_rule = dict(rule or {})
    margin = like_rule.pop("swir_minus_blue_min", SWIR_MINUS_BLUE_MIN)
    ceiling = like_rule.get("reflectance_max", COAL_REFLECTANCE_MAX)
    darkest = like_rule.get("brightness_max", COAL_BRIGHTNESS_MAX)
    dark = np.empty((stack.shape[0], *stack.shape[2:]), bool)
    for t, (obs, ok) in enumerate(zip(stack, clear, strict=True)):
        with np.errstate(invalid="ignore"):
            dark[t] = ok & (np.mean(obs, axis=0) < darkest)  # NaN: no data, not dark
    with np.errstate(invalid="ignore"):
        season_flat = season_rise(stack, dark) >= margin
    del dark
    flagged = np.zeros(stack.shape[2:], np.int16)
    count = np.zeros(stack.shape[2:], np.int16)
    hidden = np.zeros(stack.shape[2:], np.int16)
    refuted = np.zeros(stack.shape[2:], np.int16)
    for t, (obs, ok) in enumerate(zip(stack, clear, strict=True)):
        ok = ok & valid_pixels(obs)
        with np.errstate(invalid="ignore"):
            flat = season_flat | (swir_rise(obs) >= margin)
        flag = coal_like(obs, **like_rule) & flat & ok
        unflagged = ok & ~flag
        if obscured is not None:
            hidden += (unflagged & obscured[t]).astype(np.int16)
            unflagged &= ~obscured[t]
        flagged += flag.astype(np.int16)
        count += ok.astype(np.int16)
        with np.errstate(invalid="ignore"):
            refuted += (unflagged & (np.max(obs[_SWIR], axis=0) >= ceiling)).astype(np.int16)
    count = np.where(count - hidden >= 2, count - hidden, count).astype(np.int16)
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = np.where(count > 0, flagged / np.maximum(count, 1), np.nan).astype(np.float32)
    return CoalFrequency(freq, flagged, count, refuted)


def season_rise(stack: FloatArray, looks: BoolArray) -> FloatArray:
    """Per pixel, the median SWIR1 - blue (``swir_rise``) of ``stack`` (time, band, y, x)
    over its ``looks`` (time, y, x); NaN where it has none."""
    rise = np.empty((stack.shape[0], 1, *stack.shape[2:]), np.float32)
    for t, obs in enumerate(stack):
        rise[t, 0] = swir_rise(obs)
    out: FloatArray = median_only(rise, looks)[0]
    return out
