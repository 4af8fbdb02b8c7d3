"""Terrain-shadowed slopes, told from flat ground by brightness that follows the sun.

Surface reflectance (Sentinel-2 L2A, Landsat Collection 2 L2) is retrieved as for flat ground:
the direct irradiance is taken as proportional to cos(z), z the solar zenith angle. On a slope
of angle s and aspect a it goes with the local incidence angle instead,
cos(i) = cos(z) cos(s) + sin(z) sin(s) cos(phi - a), phi the solar azimuth (Teillet, Guindon and
Goodenough 1982, "On the slope-aspect correction of multispectral scanner data", Canadian
Journal of Remote Sensing 8(2): 84-106, the cosine and C corrections), and it vanishes where the
slope faces away from the sun by more than its elevation or a ridge casts its shadow (Richter
1998, "Correction of satellite imagery over mountainous terrain", Applied Optics 37(18):
4004-4015, the ATCOR terrain model that Sen2Cor inherits; its ATBD, S2PAD-ATBD-0001, maps such
cast shadow as SCL class 2, "dark area", a class that also holds coal). Without a DEM the flat
retrieval leaves a slope facing away from the sun with a factor of about cos(i) / cos(z) in
every band, and that factor falls as the autumn sun sinks: such a slope darkens steadily over
the season's clear looks, in every band and in step with the sun, while flat ground (built,
bare, spoil, coal) keeps its reflectance, up to weather and changes not tied to the sun.

``sun_response`` (a per-pixel product of the season's looks: each pixel depends on its own time
series only) relates each band's log reflectance to the noon sun elevation of the look, by
robust slopes and a rank trend; ``shadowed`` (whole-site: it compares with the site's own flat
ground) calls a pixel a terrain-shadowed slope when its brightness falls with the sun in every
band, deepest toward SWIR, far more steeply than the site's footprint-like ground, with a
significant trend somewhere in its region. Such a pixel is neither footprint nor coal
(``recipe.classify``), and the area so left out is recorded (``recipe.Classified``).

Limits: with one season, a change that darkens ground steadily through the autumn (a coal pile
growing over bare ground look by look) follows the sun as well; the magnitude, the spectral
shape and the significance bars keep that rare, and the next season, where the slope darkens
again and the pile does not, is the evidence a later step could use. Sen2Cor's SCL class 2
would be supporting evidence only (it flags coal too); the recipe does not receive it.

The sun enters as its noon elevation, which north of the Tropic of Cancer is
``90 - latitude + declination``: slopes against the declination of the look's day
(``solar_declination``) are the same at every such latitude, so no site coordinate is
needed. At 10:30 local solar time (the Sentinel-2 and Landsat overpass) the elevation moves
with the declination at 0.85 to 0.96 degrees per degree from 30 to 50 N: the thresholds
below hold to that precision.
South of the equator the autumn of the northern calendar is spring: this test is for sites north
of the Tropic of Cancer, as every site of the project is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numba  # type: ignore[import-untyped,unused-ignore]
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, stats

from pipeline.bands import BAND_INDEX
from pipeline.classify import drop_thin_regions
from pipeline.composite import _over_rows, _sort_columns, sorting_network

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]

#: Reflectance floor before the logarithm: deep shade reads ~0.01 in SWIR, noise can read 0.
_LOG_FLOOR = 0.005
_SWIR = [BAND_INDEX["swir16"], BAND_INDEX["swir22"]]
#: Pairwise slopes held at once (pairs x pixels): ~32 MB of float32, whatever the site's size.
_BLOCK_VALUES = 8_000_000


def solar_declination(day: date) -> float:
    """The sun's declination on ``day`` at noon, in degrees: Spencer's Fourier series (Spencer
    1971, "Fourier series representation of the position of the Sun", Search 2(5): 172),
    within 0.04 degrees of the ephemeris."""
    g = 2.0 * math.pi * (day.timetuple().tm_yday - 1) / 365.0
    radians = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    return math.degrees(radians)


@dataclass(frozen=True)
class SunResponse:
    """How each pixel's brightness followed the sun over its clear looks (``sun_response``).

    ``slope`` (band, y, x): Theil-Sen slope (the median of the slopes between every two looks)
    of ln(reflectance) on the noon sun elevation, per degree (positive: darker as the sun
    sinks); ``trend`` (y, x): Kendall's S between the sun and the mean log reflectance over the
    bands, as a standard normal score (positive: darker as the sun sinks; Mann-Kendall's
    continuity-corrected z); ``span`` (y, x): degrees of sun elevation between the pixel's
    first and last clear look; ``looks`` (y, x): clear looks counted; ``score`` and
    ``variance`` (y, x): Kendall's S itself and its variance without a trend (ties of one day
    taken out), which ``pooled`` sums over seasons. NaN where fewer than two looks or no span.
    """

    slope: FloatArray
    trend: FloatArray
    span: FloatArray
    looks: NDArray[np.int16]
    score: FloatArray
    variance: FloatArray

    def window(self, rows: slice, cols: slice) -> SunResponse:
        """The response of the pixels ``rows`` x ``cols`` (views)."""
        return SunResponse(
            self.slope[:, rows, cols], self.trend[rows, cols], self.span[rows, cols],
            self.looks[rows, cols], self.score[rows, cols], self.variance[rows, cols],
        )  # fmt: skip

    @classmethod
    def empty(cls, bands: int, shape: tuple[int, int]) -> SunResponse:
        """A response of ``shape`` to fill window by window."""
        return cls(
            np.empty((bands, *shape), np.float32), np.empty(shape, np.float32),
            np.empty(shape, np.float32), np.empty(shape, np.int16),
            np.empty(shape, np.float32), np.empty(shape, np.float32),
        )  # fmt: skip

    def arrays(self) -> tuple[NDArray[np.float32] | NDArray[np.int16], ...]:
        """Every array, in a fixed order (``SUN_ARRAYS``: for pasting windows and storing)."""
        return (self.slope, self.trend, self.span, self.looks, self.score, self.variance)


#: The names of ``SunResponse.arrays``, in their order.
SUN_ARRAYS = ("slope", "trend", "span", "looks", "score", "variance")


def sun_response(
    stack: FloatArray,
    clear: BoolArray,
    days: Sequence[date],
    where: BoolArray | None = None,
) -> SunResponse:
    """Relate, per pixel, ln(reflectance) of the clear looks of ``stack`` (time, band, y, x) to
    the sun elevation of their ``days`` (``solar_declination``: the noon elevation up to a
    constant). A look counts at a pixel when ``clear`` (time, y, x) and every band is finite;
    reflectance is floored at 0.005 before the logarithm.

    ``where`` (y, x): only these pixels are related (the others get no look: NaN, 0 looks),
    each exactly as without it; the pairs of looks make this the costly product of a season
    (about 2.4 s per million pixels for 12 looks, 10 s for 24), and only ground the footprint
    or coal rule may accept needs it.

    Robust by construction: one look darkened by a cloud shadow the mask missed moves neither
    the Theil-Sen slope (Sen 1968, JASA 63: 1379-1389) nor Kendall's S much, where it would
    swing a least-squares fit; and a cast shadow that deepens by steps rather than linearly is
    still a monotone trend."""
    if len(days) != stack.shape[0] or clear.shape != (stack.shape[0], *stack.shape[2:]):
        raise ValueError(
            f"stack {stack.shape}, clear {clear.shape} and {len(days)} days do not describe "
            "the same looks"
        )
    if where is not None:
        return _sun_response_where(stack, clear, days, where)
    sun = np.array([solar_declination(d) for d in days], np.float64)
    out = SunResponse.empty(stack.shape[1], stack.shape[2:])
    pairs = len(days) * (len(days) - 1) // 2
    step = max(1, _BLOCK_VALUES // max(pairs * stack.shape[3], 1))
    for r in range(0, stack.shape[2], step):
        rows = slice(r, r + step)
        part = _response(stack[:, :, rows], clear[:, rows], sun)
        for into, value in zip(out.window(rows, slice(None)).arrays(), part, strict=True):
            into[...] = value
    return out


#: Pixels a row of the packed ``where`` pixels holds (``_sun_response_where``).
_PACKED_WIDTH = 1024


def _sun_response_where(
    stack: FloatArray, clear: BoolArray, days: Sequence[date], where: BoolArray
) -> SunResponse:
    """``sun_response`` of the pixels ``where``, packed into rows of ``_PACKED_WIDTH`` (the
    kernel works per pixel, so packing changes no value), scattered back."""
    bands, shape = stack.shape[1], stack.shape[2:]
    out = SunResponse.empty(bands, shape)
    out.slope[...] = np.nan
    out.trend[...] = np.nan
    out.span[...] = np.nan
    out.looks[...] = 0
    out.score[...] = np.nan
    out.variance[...] = np.nan
    flat = np.flatnonzero(where)
    if flat.size == 0:
        return out
    rows = -(-flat.size // _PACKED_WIDTH)
    padded = rows * _PACKED_WIDTH
    packed = np.full((stack.shape[0], bands, padded), np.nan, np.float32)
    packed[:, :, : flat.size] = stack.reshape(stack.shape[0], bands, -1)[:, :, flat]
    packed_clear = np.zeros((stack.shape[0], padded), bool)
    packed_clear[:, : flat.size] = clear.reshape(clear.shape[0], -1)[:, flat]
    part = sun_response(
        packed.reshape(stack.shape[0], bands, rows, _PACKED_WIDTH),
        packed_clear.reshape(clear.shape[0], rows, _PACKED_WIDTH),
        days,
    )
    del packed, packed_clear
    for into, value in zip(out.arrays(), part.arrays(), strict=True):
        lead = into.shape[:-2]
        into.reshape(*lead, -1)[..., flat] = value.reshape(*lead, -1)[..., : flat.size]
    return out


def _response(
    stack: FloatArray, clear: BoolArray, sun: NDArray[np.float64]
) -> tuple[NDArray[Any], ...]:
    """``sun_response``'s arrays for the pixels of ``stack`` (a band of rows).

    The statistics run in ``_response_kernel`` over bands of rows on threads; the logarithm
    stays numpy's (its float32 ``log`` is vectorised, and its last bit is part of the
    definition the tests hold the kernel to)."""
    ok = np.ascontiguousarray(clear & np.isfinite(stack).all(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log(np.maximum(stack, _LOG_FLOOR)).astype(np.float32, copy=False)
    first, second = np.triu_indices(len(sun), k=1)
    apart = sun[second] != sun[first]  # two looks of one day tell nothing of the sun
    first, second = first[apart], second[apart]
    run = (sun[second] - sun[first]).astype(np.float32)
    days, group = np.unique(sun, return_inverse=True)  # the looks of one day: ties in the sun
    bands, height, width = stack.shape[1:]
    slope = np.empty((bands, height, width), np.float32)
    trend = np.empty((height, width), np.float32)
    span = np.empty((height, width), np.float32)
    looks = np.empty((height, width), np.int16)
    score = np.empty((height, width), np.float32)
    variance = np.empty((height, width), np.float32)
    sun = np.ascontiguousarray(sun, np.float64)
    network = sorting_network(len(run))
    group = group.astype(np.intp).reshape(-1)

    def rows(y0: int, y1: int) -> None:
        _response_kernel(
            logs, ok, sun, first, second, run, network, group, len(days),
            y0, y1, slope, trend, span, looks, score, variance,
        )  # fmt: skip

    _over_rows(rows, height, None)
    return slope, trend, span, looks, score, variance


# The kernel: plain Python over plain arrays, compiled at the end of the module, over the rows
# [y0, y1) of its outputs. The definition it keeps bit for bit is the numpy one it replaced
# (tests/test_terrain_shadow.py holds a copy): slopes (log_j - log_i) / run in float32 over the
# pairs of looks of distinct days; their median as np.nanmedian's, the two middle values
# summed in float32 and halved in float32 (and, below 600 pairs, where numpy takes its masked
# median, the middle value of an odd count summed with itself and halved); Kendall's S between
# the sun and the band-mean log, that mean a float32 sum over the bands divided in float64. Slopes are sorted a row at a time with
# ``composite``'s sorting network, each compare-exchange a vectorised min/max over the row;
# pairs that do not count are +inf and sort last. A sort may order -0.0 and 0.0 either way, in
# numpy as here: the sign of a zero slope is the one bit this does not hold fixed.


def _sign(value: np.float32) -> np.float32:
    """``np.sign`` of a float32 that is not NaN (+0 for either zero)."""
    if value > 0:
        return np.float32(1.0)
    if value < 0:
        return np.float32(-1.0)
    return np.float32(0.0)


def _normal_score(s_stat: np.float32, variance: np.float64) -> np.float32:
    """Kendall's S as a standard normal score, continuity-corrected (Mann-Kendall's z)."""
    excess = max(abs(s_stat) - np.float32(1.0), np.float32(0.0))
    return np.float32(np.float64(_sign(s_stat) * excess) / np.sqrt(variance))


def _response_kernel(
    logs: FloatArray,
    ok: BoolArray,
    sun: NDArray[np.float64],
    first: NDArray[np.intp],
    second: NDArray[np.intp],
    run: FloatArray,
    network: NDArray[np.intp],
    group: NDArray[np.intp],
    groups: int,
    y0: int,
    y1: int,
    slope: FloatArray,
    trend: FloatArray,
    span: FloatArray,
    looks: NDArray[np.int16],
    score: FloatArray,
    variance: FloatArray,
) -> None:
    n_time, n_band, _, width = logs.shape
    n_pair = run.size
    halve_odd = n_pair < 600
    work = np.empty((n_pair, width), np.float32)
    counted = np.empty(width, np.intp)
    mean = np.empty((n_time, width), np.float32)
    s_stat = np.empty(width, np.float32)
    tied = np.empty((groups, width), np.float64)
    usable = np.empty(width, np.bool_)
    for y in range(y0, y1):
        for x in range(width):
            n = 0
            low = np.inf
            high = -np.inf
            for t in range(n_time):
                if ok[t, y, x]:
                    n += 1
                    low = min(low, sun[t])
                    high = max(high, sun[t])
            looks[y, x] = n
            usable[x] = n >= 2 and high > low
            span[y, x] = np.float32(high - low) if usable[x] else np.nan
        for b in range(n_band):
            counted[:] = 0
            for p in range(n_pair):
                i = first[p]
                j = second[p]
                for x in range(width):
                    s = (logs[j, b, y, x] - logs[i, b, y, x]) / run[p]
                    keep = ok[i, y, x] and ok[j, y, x] and not np.isnan(s)
                    work[p, x] = s if keep else np.inf
                    counted[x] += keep
            _sort_columns(work, network)
            for x in range(width):
                k = counted[x]
                if not usable[x] or k == 0:
                    slope[b, y, x] = np.nan
                elif k % 2 == 1:
                    middle = work[k // 2, x]
                    slope[b, y, x] = (middle + middle) / np.float32(2.0) if halve_odd else middle
                else:
                    slope[b, y, x] = (work[k // 2 - 1, x] + work[k // 2, x]) / np.float32(2.0)
        for t in range(n_time):
            for x in range(width):
                total = logs[t, 0, y, x]
                for b in range(1, n_band):
                    total += logs[t, b, y, x]
                mean[t, x] = np.float32(np.float64(total) / n_band)
        s_stat[:] = 0.0
        for p in range(n_pair):
            i = first[p]
            j = second[p]
            direction = _sign(run[p])
            for x in range(width):
                if ok[i, y, x] and ok[j, y, x]:
                    s_stat[x] += direction * _sign(mean[j, x] - mean[i, x])
        tied[:] = 0.0
        for t in range(n_time):
            for x in range(width):
                tied[group[t], x] += ok[t, y, x]
        for x in range(width):
            if not usable[x]:
                trend[y, x] = np.nan
                score[y, x] = np.nan
                variance[y, x] = np.nan
                continue
            m = np.float64(looks[y, x])
            var_s = m * (m - 1.0) * (2.0 * m + 5.0)
            for g in range(groups):
                var_s -= tied[g, x] * (tied[g, x] - 1.0) * (2.0 * tied[g, x] + 5.0)
            score[y, x] = s_stat[x]
            variance[y, x] = np.float32(var_s / 18.0)
            trend[y, x] = _normal_score(s_stat[x], var_s / 18.0)


def pooled(responses: Sequence[SunResponse]) -> SunResponse:
    """One response from the seasons' ``responses`` of the same ground (one frame), so that
    seasons of a few clear looks each, none enough for a significant trend alone, can be
    judged together: the seasonal Kendall test (Hirsch, Slack and Smith 1982, "Techniques of
    trend analysis for monthly water quality data", Water Resources Research 18(1): 107-121).
    Looks are related only within their season, so what changed between seasons (a pile built
    or carted off, a field harvested) is no trend; each season's S and its variance add up, and
    ``trend`` is their sum as a continuity-corrected normal score.

    ``slope``: per band, the mean of the seasons' slopes weighted by their pairs of looks (the
    seasonal Kendall slope is the median of every within-season pair's slope; each season's
    slope is already the median of its pairs, and a mean can be summed one season at a time,
    so a large site's seasons are never all in memory). ``looks``: summed; ``span``: the
    widest season's (the sun range one slope was measured over). Seasons without a trend at a
    pixel (fewer than two looks) add nothing there."""
    if not responses:
        raise ValueError("no seasons to pool")
    bands_shape = responses[0].slope.shape
    shape = bands_shape[1:]
    total_score = np.zeros(shape, np.float64)
    total_variance = np.zeros(shape, np.float64)
    total_looks = np.zeros(shape, np.int32)
    widest = np.full(shape, np.nan, np.float32)
    weighted = np.zeros(bands_shape, np.float64)
    weights = np.zeros(bands_shape, np.float64)
    for response in responses:  # each array read once: a stored season's from disk
        score, variance, looks = response.score, response.variance, response.looks
        usable = np.isfinite(score) & np.isfinite(variance)
        total_score += np.where(usable, score, 0.0)
        total_variance += np.where(usable, variance, 0.0)
        total_looks += np.where(usable, looks, 0)
        widest = np.fmax(widest, np.where(usable, response.span, np.nan))
        n = looks.astype(np.float64)
        season_pairs = n * (n - 1.0) / 2.0
        slope = response.slope
        # Band by band: float64 temporaries of every band at once were the analysis' peak
        # memory on a large site (~100 bytes a pixel).
        for band, pairs_sum, weighted_sum in zip(slope, weights, weighted, strict=True):
            pairs = np.where(usable & np.isfinite(band), season_pairs, 0.0)
            weighted_sum += np.where(pairs > 0, band, 0.0) * pairs
            pairs_sum += pairs
    usable = total_variance > 0
    pooled_slope = np.empty(bands_shape, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.maximum(np.abs(total_score) - 1.0, 0.0)
        trend = np.sign(total_score) * excess / np.sqrt(total_variance)
        for out, pairs_sum, weighted_sum in zip(pooled_slope, weights, weighted, strict=True):
            mean = np.where(pairs_sum > 0, weighted_sum / pairs_sum, np.nan)
            out[...] = np.where(usable, mean, np.nan)
    return SunResponse(
        slope=pooled_slope,
        trend=np.where(usable, trend, np.nan).astype(np.float32),
        span=widest,
        looks=np.minimum(total_looks, np.iinfo(np.int16).max).astype(np.int16),
        score=np.where(usable, total_score, np.nan).astype(np.float32),
        variance=np.where(usable, total_variance, np.nan).astype(np.float32),
    )


def judged(
    response: SunResponse,
    *,
    min_looks: float = 4,
    min_span_deg: float = 8.0,
    significance: float = 0.025,
) -> BoolArray:
    """Pixels whose season could have found them following the sun (``shadowed``): clear looks
    enough, at least ``min_looks`` spanning ``min_span_deg`` degrees of sun elevation, and
    enough for a significant trend at level ``significance`` at all (``min_trend_looks``): a
    season that finds such ground flat has seen it flat."""
    enough = max(min_looks, min_trend_looks(significance))
    with np.errstate(invalid="ignore"):
        return np.asarray((response.looks >= enough) & (response.span >= min_span_deg), bool)


def min_trend_looks(significance: float) -> int:
    """The fewest looks (of distinct days) whose mean brightness, falling at every look,
    makes Kendall's trend significant at one-sided level ``significance`` (5 at 0.025): with
    fewer, no series can seed a slope (``shadowed``)."""
    bar = stats.norm.isf(significance)
    n = 2
    while (n * (n - 1) / 2 - 1) / math.sqrt(n * (n - 1) * (2 * n + 5) / 18) < bar:
        n += 1
    return n


def shadowed(
    response: SunResponse,
    reference: BoolArray,
    *,
    min_looks: float = 4,
    min_span_deg: float = 8.0,
    min_darkening_per_deg: float = 0.006,
    seed_sigmas: float = 3.0,
    grow_sigmas: float = 2.0,
    significance: float = 0.025,
    min_width_px: float = 3,
) -> BoolArray:
    """Pixels of a terrain-shadowed slope: brightness that falls with the sinking sun, by
    itself and against the site's own flat ground, the pixels of ``reference`` (footprint-like
    ground: built, bare, coal). Their typical slope per band (``shorth``, which a slope's own
    pixels among them do not drag) is what every look shares (the residual sun dependence of
    the flat retrieval, a hazier late look); the spread of their mean slope over the bands is
    what the site's looks let flat ground do by chance.

    Only pixels with at least ``min_looks`` clear looks spanning ``min_span_deg`` of sun
    elevation are decided (fewer: not shadowed). A pixel follows the sun when every band
    darkens as the sun sinks, both by itself and faster than the reference, both SWIR bands at
    least as fast as blue (losing the direct beam leaves skylight, which is bluest, so shade
    deepens toward SWIR; haze, which adds most in blue, cannot mimic it), and its mean log
    brightness by at least ``min_darkening_per_deg`` per degree by itself and by at least
    ``grow_sigmas`` spreads against the reference. At that floor a season spanning 25 degrees
    of sun darkens a pixel by 14 %: the direct beam on a slope of about 10 degrees facing away
    from the sun at mid latitudes (d ln cos(i) / dz = tan z - tan(z + s), in radians).

    A slope is a region: pixels that follow the sun by ``seed_sigmas`` spreads, with a
    significant trend (one-sided Mann-Kendall test of the mean log brightness against the sun at
    level ``significance``), seed it, and the connected pixels that follow the sun join them
    (hysteresis), since a few looks leave single pixels short of the seed's bar. A slope is
    also wide: regions that hold no ``min_width_px`` square anywhere (the strip a tall building
    shades more as the sun sinks, a north-facing roof) are not terrain and stay mapped.
    """
    darker, mean_excess, spread = _darkening(
        response, reference, min_looks, min_span_deg, min_darkening_per_deg
    )
    with np.errstate(invalid="ignore"):
        follows = darker & (mean_excess >= grow_sigmas * spread)
        trend = response.trend >= stats.norm.isf(significance)
        seeds = darker & (mean_excess >= seed_sigmas * spread) & trend
    grown = ndimage.binary_propagation(seeds, structure=np.ones((3, 3), bool), mask=follows)
    return drop_thin_regions(np.asarray(grown, dtype=bool), int(min_width_px) // 2)


def follows_sun(
    response: SunResponse,
    reference: BoolArray,
    *,
    min_span_deg: float = 8.0,
    min_darkening_per_deg: float = 0.006,
    grow_sigmas: float = 2.0,
) -> BoolArray:
    """Pixels whose looks darkened with the sinking sun as a shadowed slope's do, by the
    tests of ``shadowed`` that need no significance: every band darker as the sun sinks, by
    itself and against ``reference``, SWIR at least as fast as blue, by ``min_darkening_per_deg``
    and ``grow_sigmas`` spreads; from two looks spanning ``min_span_deg`` of sun on (a season
    too short of looks to judge ground may still have seen it darken, or not)."""
    darker, mean_excess, spread = _darkening(
        response, reference, 2, min_span_deg, min_darkening_per_deg
    )
    with np.errstate(invalid="ignore"):
        return np.asarray(darker & (mean_excess >= grow_sigmas * spread), bool)


def _darkening(
    response: SunResponse,
    reference: BoolArray,
    min_looks: float,
    min_span_deg: float,
    min_darkening_per_deg: float,
) -> tuple[BoolArray, FloatArray, float]:
    """(darker, mean excess, spread) of ``shadowed``: the pixels decided and darker in every
    band, by themselves and against the ``reference`` level, SWIR at least as fast as blue,
    their mean log brightness by ``min_darkening_per_deg`` both ways; the mean excess over the
    reference per degree; the spread of the reference's mean slope."""
    decided = (response.looks >= min_looks) & (response.span >= min_span_deg)
    slope = response.slope
    usable = reference & np.isfinite(slope).all(axis=0)
    level = np.zeros(slope.shape[0], np.float64)
    spread = 0.0
    if usable.any():
        level = np.array([shorth(band[usable])[0] for band in slope])
        spread = shorth(slope[:, usable].mean(axis=0))[1]
    excess = slope - level[:, None, None]
    mean_excess = excess.mean(axis=0)
    blue, swir = slope[BAND_INDEX["blue"]], slope[_SWIR, ...]
    with np.errstate(invalid="ignore"):
        darker = (
            decided
            & (slope > 0).all(axis=0)
            & (excess > 0).all(axis=0)
            & (swir >= blue).all(axis=0)
            & (slope.mean(axis=0) >= min_darkening_per_deg)
            & (mean_excess >= min_darkening_per_deg)
        )
    return np.asarray(darker, bool), mean_excess.astype(np.float32), spread


def shorth(values: NDArray[np.floating[Any]]) -> tuple[float, float]:
    """(location, scale) of ``values`` that stay on the majority when up to half of them sit
    above it, as a slope's pixels do among a small site's flat ground. Location: the midpoint
    of the shortest interval holding half of the values (the shorth, Rousseeuw and Leroy 1988,
    "A robust scale estimator based on the shortest half", Statistica Neerlandica 42:
    103-116). Scale: 1.4826 times the median distance below it (the lower half's MAD, which
    values above cannot inflate). NaN values are ignored; (0, 0) when none is left."""
    v = np.sort(values[np.isfinite(values)].astype(np.float64))
    if v.size == 0:
        return 0.0, 0.0
    h = v.size // 2 + 1
    widths = v[h - 1 :] - v[: v.size - h + 1]
    i = int(np.argmin(widths))
    location = float(v[i] + v[i + h - 1]) / 2.0
    below = location - v[v <= location]
    return location, 1.4826 * float(np.median(below)) if below.size else 0.0


# numpy's error model: a float division by zero is IEEE's, not a raised ZeroDivisionError, and
# divisions need no check for it.
_sign = numba.njit(cache=True, nogil=True, error_model="numpy")(_sign)
_normal_score = numba.njit(cache=True, nogil=True, error_model="numpy")(_normal_score)
_response_kernel = numba.njit(cache=True, nogil=True, error_model="numpy")(_response_kernel)
