"""Clear-sky masks with the reason per pixel, from Sentinel-2 SCL or Landsat QA_PIXEL, cloud
shadows matched to the clouds that cast them, and mask morphology.

A decoder turns a sensor's mask band into one ``MaskReason`` per pixel (``CLEAR`` or why not), so
every later stage sees one clear mask whatever the sensor, and the manifest can say how much of a
scene each reason took.

Cloud dilation is a binary dilation by the exact digital disk (``disk``) with nothing outside the
array, as ``scipy.ndimage.binary_dilation(mask, disk(r))`` computes it; a numba kernel computes
the same set by rows (``_disk_dilation``): 0.014 s against scipy's 0.54 s for the 150 m buffer
(r = 15) on a 1000 x 1000 mask of 500 m cloud blocks (tests/test_read_fast.py holds them equal).

Cloud shadows (``match_cloud_shadows``)
---------------------------------------
The mask's own cloud-shadow class (SCL 3, QA_PIXEL bit 4) is not masked by default: Sen2Cor and
Fmask put dark ground (coal, asphalt, wet soil) in it too, and masking the class erases the
piles being measured (DOMAIN.md "Masks"). A cloud shadow, though, lies where the scene's own
clouds cast it: displaced from each cloud away from the sun by the cloud's height over the
tangent of the sun's elevation. As Fmask does (Zhu & Woodcock 2012, Remote Sens. Environ.
118:83, section 2.2.3; its cloud base heights of 200 m to 12 km and similarity threshold 0.30
are Fmask 3.3's), the clouds are projected along the sun's azimuth for every height in
``CLOUD_HEIGHTS_M`` and the height whose projection agrees best with the flagged pixels is
taken, when ``SHADOW_MATCH_MIN`` of it falls on them; the flagged pixels under the projection
at that height (grown by ``SHADOW_GUARD_PX`` for the height's step and the penumbra) become
``CAST_SHADOW``. They stay clear looks for the composite, the greenness and the field tests (a
shaded field is still green, and a heavy-cloud season has few looks to spare), but not as they
are for coal: a yard in a cloud's shadow reads as coal, and a pile in one falls out of the coal
rule, so the coal count takes those looks relit by the light measured under the shadow
(``classify.relit``), or leaves them out where it cannot be measured
(``recipe.season_products``). Flagged ground with no
cloud up-sun of it at the matched height (a coal pile in a clear scene, or in a cloudy one away
from the shadows) stays clear. One height per scene and site, where Fmask matches each cloud
object on its own: a site is a few kilometres, and its clouds mostly one layer. The match runs
on a ``SHADOW_GRID_M`` grid over the site and ``SHADOW_MARGIN_M`` past it toward the sun: the
clouds that cast shadows into a site often lie beyond it (a 2 km cloud base casts its shadow
3.5 km away under a 30 degree sun), and the mask asset covers the whole tile. Pixels the mask
has no data for (past the tile's or the swath's edge) are neither cloud nor landing ground.
Shadows of clouds further out stay clear (``obscured_looks`` in ``classify`` catches the darkest
of them against the season's median). A run read by chunks (``pipeline.chunks``) matches the
whole site at once on that grid, so chunks give the whole grid's result. Its pixel is SCL's own
20 m, coarser where the site and its margin are more than ``SHADOW_GRID_MAX_PX`` of them across.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import IntEnum

import numba  # type: ignore[import-untyped,unused-ignore]
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal

BoolArray = NDArray[np.bool_]

# DOMAIN.md: no data, defective, clouds, cirrus and snow are not clear. Dark area (2), cloud
# shadow (3) and water (6) are kept: Sen2Cor labels coal piles so.
SCL_NOT_CLEAR: tuple[int, ...] = (0, 1, 8, 9, 10, 11)
SCL_CLOUDS: tuple[int, ...] = (8, 9, 10)
# Landsat QA_PIXEL: fill, dilated cloud, cirrus, cloud, snow. Cloud shadow (bit 4) is kept, as
# SCL 3 is: Fmask flags dark surfaces as shadow (FORCE#368). USGS already dilates clouds (bit 1).
QA_PIXEL_NOT_CLEAR: tuple[int, ...] = (0, 1, 2, 3, 5)
QA_PIXEL_CLOUDS: tuple[int, ...] = ()
CLOUD_DILATION_M = 150.0
#: SCL classes and QA_PIXEL bits of thick cloud that cast shadows (cirrus casts none to speak of),
#: and the class or bit of the mask's own cloud shadow (``match_cloud_shadows``).
SCL_SHADOW_CASTERS: tuple[int, ...] = (8, 9)
SCL_CLOUD_SHADOW = 3
QA_PIXEL_SHADOW_CASTERS: tuple[int, ...] = (3,)
QA_PIXEL_CLOUD_SHADOW = 4
#: Cloud heights searched for the match (m): Fmask's cloud base range.
CLOUD_HEIGHTS_M = (200.0, 12_000.0)
#: Least share of the projected clouds (on ground the clouds do not cover) that must fall on
#: flagged shadow at the matched height: Fmask's similarity threshold.
SHADOW_MATCH_MIN = 0.3
#: Least number of projected cloud pixels (on the match grid) a height is judged on, and least
#: share of the clouds' pixels: a projection mostly beyond the grid or onto other clouds says
#: too little about its height.
SHADOW_MATCH_MIN_PX = 4
SHADOW_MATCH_MIN_LANDING = 0.25
#: How far the projection at the matched height is grown before it takes flagged pixels (match
#: grid pixels): a height step moves it by up to one, and the penumbra widens the shadow.
SHADOW_GUARD_PX = 1
#: Pixel size of the grid the match runs on (m): SCL's own, finer than Landsat's QA_PIXEL; coarser
#: on sites over ``SHADOW_GRID_MAX_PX`` of it a side (the match's FFTs grow with its pixels).
SHADOW_GRID_M = 20.0
SHADOW_GRID_MAX_PX = 1024
#: How far past the site, toward the sun, the match sees clouds and their shadows (m): the
#: shadow of a cloud base at 3 km under a sun 27 degrees high (late autumn at 40 N) reaches that
#: far, or of one at 6 km under a 45 degree sun.
SHADOW_MARGIN_M = 6000.0


class MaskReason(IntEnum):
    """Why a pixel of one observation is not clear (``CLEAR`` when it is)."""

    CLEAR = 0
    NODATA = 1
    SATURATED = 2
    CLOUD = 3
    CLOUD_BUFFER = 4
    CIRRUS = 5
    SHADOW = 6
    SNOW = 7
    WATER = 8
    OTHER = 9
    #: Clear, but in the shadow a cloud of the scene casts (``match_cloud_shadows``): a clear
    #: look for everything but coal, whose piles it would darken into or out of the coal rule.
    CAST_SHADOW = 10


#: Reasons a pixel counts as a clear look with.
CLEAR_REASONS: tuple[MaskReason, ...] = (MaskReason.CLEAR, MaskReason.CAST_SHADOW)


def clear_reasons(reasons: NDArray[np.uint8]) -> BoolArray:
    """Where ``reasons`` (per pixel ``MaskReason``) make a clear look (``CLEAR_REASONS``)."""
    return np.asarray(np.isin(reasons, CLEAR_REASONS))


SCL_REASON: Mapping[int, MaskReason] = {
    0: MaskReason.NODATA, 1: MaskReason.SATURATED, 2: MaskReason.SHADOW, 3: MaskReason.SHADOW,
    4: MaskReason.OTHER, 5: MaskReason.OTHER, 6: MaskReason.WATER, 7: MaskReason.OTHER,
    8: MaskReason.CLOUD, 9: MaskReason.CLOUD, 10: MaskReason.CIRRUS, 11: MaskReason.SNOW,
}  # fmt: skip
QA_PIXEL_REASON: Mapping[int, MaskReason] = {
    0: MaskReason.NODATA, 1: MaskReason.CLOUD_BUFFER, 2: MaskReason.CIRRUS, 3: MaskReason.CLOUD,
    4: MaskReason.SHADOW, 5: MaskReason.SNOW, 6: MaskReason.OTHER, 7: MaskReason.WATER,
}  # fmt: skip
# QA_RADSAT bits 0-6: a reflective band saturated (TM/ETM+/OLI band 1-7); bit 11 terrain occlusion.
RADSAT_BITS: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 11)


@dataclass(frozen=True)
class MaskRules:
    """Which mask classes and bits are not clear, and which are dilated (clouds)."""

    scl_masked: tuple[int, ...] = SCL_NOT_CLEAR
    scl_dilated: tuple[int, ...] = SCL_CLOUDS
    qa_pixel_masked: tuple[int, ...] = QA_PIXEL_NOT_CLEAR
    qa_pixel_dilated: tuple[int, ...] = QA_PIXEL_CLOUDS
    qa_radsat: bool = True
    cloud_dilation_m: float = CLOUD_DILATION_M
    #: Cloud heights (m) searched to match the mask's cloud-shadow class to the scene's clouds
    #: (``match_cloud_shadows``); None: the class stays clear wherever it is.
    cloud_heights_m: tuple[float, float] | None = CLOUD_HEIGHTS_M


def disk(radius_px: int) -> BoolArray:
    """A disk-shaped structuring element of the given pixel radius."""
    y, x = np.ogrid[-radius_px : radius_px + 1, -radius_px : radius_px + 1]
    return np.asarray(x * x + y * y <= radius_px * radius_px)


def _dilate(mask: BoolArray, radius_px: int) -> BoolArray:
    """``mask`` dilated by ``disk(radius_px)``, pixels outside the array counting as False:
    identical to ``ndimage.binary_dilation(mask, structure=disk(radius_px))``."""
    if radius_px <= 0 or not mask.any():
        return mask
    if mask.ndim != 2:
        return np.asarray(ndimage.binary_dilation(mask, structure=disk(radius_px)))
    return _disk_dilation(np.ascontiguousarray(mask, dtype=np.bool_), radius_px)


def _half_widths(radius_px: int) -> NDArray[np.int64]:
    """Row ``d`` of ``disk(radius_px)`` spans columns ``-w[d]..w[d]``: ``w[d]`` is the largest
    integer with ``w*w + d*d <= r*r`` (exact integer square roots, no float rounding)."""
    r2 = radius_px * radius_px
    return np.array([math.isqrt(r2 - d * d) for d in range(radius_px + 1)], np.int64)


def _disk_dilation(mask: BoolArray, radius_px: int) -> BoolArray:
    """The disk dilation by rows: ``gap[y, x]``, the distance along row ``y`` from ``x`` to the
    nearest True (capped at ``radius_px + 1``), then ``x`` is in the dilation iff some row
    ``y + d`` within the array has ``gap <= w[|d|]``, the disk's half width at that row. That is
    the definition (some True pixel at offset (d, e) with ``d*d + e*e <= r*r``) rewritten, so
    the set is the same, with O(r) work per pixel instead of O(r*r)."""
    return _disk_dilation_kernel(mask, _half_widths(radius_px))


def _disk_dilation_kernel(mask: BoolArray, widths: NDArray[np.int64]) -> BoolArray:
    height, width = mask.shape
    radius = widths.shape[0] - 1
    far = radius + 1
    gap = np.empty((height, width), np.int64)
    for y in range(height):
        last = -(2 * far)  # column of the last True seen, far enough to read as "none"
        for x in range(width):
            if mask[y, x]:
                last = x
            gap[y, x] = min(x - last, far)
        last = width + 2 * far
        for x in range(width - 1, -1, -1):
            if mask[y, x]:
                last = x
            gap[y, x] = min(gap[y, x], last - x)
    out = np.zeros((height, width), np.bool_)
    for y in range(height):
        lo = max(0, y - radius)
        hi = min(height - 1, y + radius)
        for yy in range(lo, hi + 1):  # whole rows at a time: contiguous, vectorised
            reach = widths[abs(yy - y)]
            for x in range(width):
                out[y, x] |= gap[yy, x] <= reach
    return out


def reasons_from_scl(
    scl: NDArray[np.integer],
    masked: Collection[int] = SCL_NOT_CLEAR,
    dilated: Collection[int] = SCL_CLOUDS,
    dilation_px: int = 0,
) -> NDArray[np.uint8]:
    """Per pixel ``MaskReason`` from Sentinel-2 SCL: masked classes by their reason, clear
    pixels within ``dilation_px`` of a dilated class (clouds) as ``CLOUD_BUFFER``."""
    reasons = np.full(scl.shape, MaskReason.CLEAR, np.uint8)
    for cls in sorted(set(masked)):
        reasons[scl == cls] = SCL_REASON.get(cls, MaskReason.OTHER)
    buffer = _dilate(np.isin(scl, list(dilated)), dilation_px) if dilated else None
    if buffer is not None:
        reasons[buffer & (reasons == MaskReason.CLEAR)] = MaskReason.CLOUD_BUFFER
    return reasons


def reasons_from_qa_pixel(
    qa: NDArray[np.integer],
    masked_bits: Collection[int] = QA_PIXEL_NOT_CLEAR,
    dilated_bits: Collection[int] = QA_PIXEL_CLOUDS,
    dilation_px: int = 0,
    radsat: NDArray[np.integer] | None = None,
) -> NDArray[np.uint8]:
    """Per pixel ``MaskReason`` from Landsat C2 QA_PIXEL bits (and QA_RADSAT saturation).

    Bits are tested from the least to the most specific, so a cloud pixel that is also in the
    dilated-cloud band reads ``CLOUD``; fill wins over everything.
    """
    qa = qa.astype(np.uint32)
    reasons = np.full(qa.shape, MaskReason.CLEAR, np.uint8)
    for bit in (1, 7, 4, 5, 2, 3, 6):  # buffer first, so the specific reason overwrites it
        if bit in masked_bits:
            reasons[(qa >> bit) & 1 == 1] = QA_PIXEL_REASON[bit]
    if radsat is not None:
        sat = np.zeros(qa.shape, bool)
        for bit in RADSAT_BITS:
            sat |= (radsat.astype(np.uint32) >> bit) & 1 == 1
        reasons[sat & (reasons == MaskReason.CLEAR)] = MaskReason.SATURATED
    if dilated_bits:
        clouds = np.zeros(qa.shape, bool)
        for bit in dilated_bits:
            clouds |= (qa >> bit) & 1 == 1
        reasons[_dilate(clouds, dilation_px) & (reasons == MaskReason.CLEAR)] = (
            MaskReason.CLOUD_BUFFER
        )
    if 0 in masked_bits:
        reasons[qa & 1 == 1] = MaskReason.NODATA
    return reasons


def reason_shares(reasons: NDArray[np.uint8]) -> dict[str, float]:
    """Share of the pixels per reason (4 decimals), reasons that occur only, by name."""
    counts = np.bincount(reasons.ravel(), minlength=len(MaskReason))
    total = max(int(reasons.size), 1)
    return {MaskReason(i).name.lower(): round(int(c) / total, 4) for i, c in enumerate(counts) if c}


def clear_from_scl(
    scl: NDArray[np.integer],
    masked: Collection[int],
    dilated: Collection[int] = (),
    dilation_px: int = 0,
) -> BoolArray:
    """True where a pixel is clear: its SCL class is not masked and it is not near a cloud.

    Classes in ``dilated`` (clouds) are grown by ``dilation_px`` before masking, since cloud edges
    are under-detected; SCL 2, 3 and 6 are not masked by default callers (coal looks like them).
    """
    return np.asarray(reasons_from_scl(scl, masked, dilated, dilation_px) == MaskReason.CLEAR)


def open_mask(mask: BoolArray, radius_px: int) -> BoolArray:
    """Morphological opening with a square: drops features thinner than ``2 * radius_px + 1``
    pixels and keeps rectangular corners (a disk would nibble them)."""
    if radius_px <= 0:
        return mask
    square = np.ones((2 * radius_px + 1,) * 2, bool)
    return np.asarray(ndimage.binary_opening(mask, structure=square))


_disk_dilation_kernel = numba.njit(cache=True, nogil=True)(_disk_dilation_kernel)


@dataclass(frozen=True)
class ShadowEvidence:
    """What a mask band says for the shadow match (y, x): ``clouds`` that cast shadows, the
    pixels it flags as cloud ``shadow``, and those it has data for (``seen``)."""

    clouds: BoolArray
    shadow: BoolArray
    seen: BoolArray


def shadow_evidence(mask: NDArray[np.integer], kind: str) -> ShadowEvidence:
    """The ``ShadowEvidence`` of a decoded mask band (``kind``: ``"scl"`` or ``"qa_pixel"``;
    0, the reader's value outside the raster, is no data in both, as SCL 0 and QA fill are)."""
    if kind == "scl":
        return ShadowEvidence(
            np.isin(mask, SCL_SHADOW_CASTERS), np.asarray(mask == SCL_CLOUD_SHADOW), mask != 0
        )
    qa = mask.astype(np.uint32)
    clouds = np.zeros(mask.shape, bool)
    for bit in QA_PIXEL_SHADOW_CASTERS:
        clouds |= (qa >> bit) & 1 == 1
    seen = (qa != 0) & ((qa & 1) == 0)
    return ShadowEvidence(clouds, np.asarray((qa >> QA_PIXEL_CLOUD_SHADOW) & 1 == 1), seen)


@dataclass(frozen=True)
class ShadowMatch:
    """Where a scene's clouds cast their shadows: ``zone`` (y, x) is the clouds projected at the
    matched ``height_m`` and grown by the guard; ``share`` is the share of the projection on
    flagged shadow. No zone (None) when no height matched."""

    zone: BoolArray | None
    height_m: float | None = None
    share: float = 0.0


def shadow_step(sun_elevation: float, sun_azimuth: float, pixel_m: float) -> tuple[float, float]:
    """(rows, cols) a shadow lies from its cloud per metre of cloud height, on a north-up grid of
    ``pixel_m`` pixels: away from the sun, ``1 / tan(elevation)`` metres per metre."""
    reach = 1.0 / math.tan(math.radians(sun_elevation)) / pixel_m
    azimuth = math.radians(sun_azimuth)
    return reach * math.cos(azimuth), -reach * math.sin(azimuth)


def match_cloud_shadows(
    clouds: BoolArray,
    flagged: BoolArray,
    sun_elevation: float,
    sun_azimuth: float,
    pixel_m: float,
    heights_m: tuple[float, float] = CLOUD_HEIGHTS_M,
    *,
    seen: BoolArray | None = None,
    min_share: float = SHADOW_MATCH_MIN,
    min_px: int = SHADOW_MATCH_MIN_PX,
    guard_px: int = SHADOW_GUARD_PX,
) -> ShadowMatch:
    """The height at which ``clouds`` (y, x) cast their shadows onto ``flagged`` (the mask's own
    shadow class), and where those shadows lie (module docstring): every whole-pixel offset
    along the shadow direction between the two heights is tried on the projected cloud pixels
    that land inside the grid, off the clouds (a shadow under another cloud is not seen) and
    where the mask has data (``seen``; None: everywhere),
    at least ``min_px`` of them and ``SHADOW_MATCH_MIN_LANDING`` of the clouds' pixels. The
    offset whose landing pixels fall on flagged ones more often than not by the widest margin
    wins (a projection wholly on a few flagged pixels is not a better match than one mostly on
    many), when its share of landing pixels on flagged ones reaches ``min_share``. The counts
    at every offset come from one FFT cross-correlation per count. A sun at or below 5 degrees
    (shadows longer than the grid) matches nothing."""
    if sun_elevation <= 5.0 or not clouds.any() or not flagged.any():
        return ShadowMatch(None)
    dy, dx = shadow_step(sun_elevation, sun_azimuth, pixel_m)
    per_m = math.hypot(dy, dx)
    lo, hi = heights_m[0] * per_m, heights_m[1] * per_m
    height, width = clouds.shape
    hi = min(hi, math.hypot(height, width))
    if hi < max(lo, 1.0):
        return ShadowMatch(None)
    steps = np.arange(max(math.ceil(lo), 1), math.floor(hi) + 1)
    offsets = sorted({(round(s * dy / per_m), round(s * dx / per_m)) for s in steps})
    if not offsets:
        return ShadowMatch(None)
    # landing[d] = #{p : clouds[p] and ground[p + d]}, hits[d] the same on flagged ground; in
    # float64, whose rounding error stays far below one count on any grid the match runs on.
    source = clouds.astype(np.float64)
    ground = ~clouds if seen is None else seen & ~clouds
    landing = signal.correlate(ground.astype(np.float64), source, mode="full", method="fft")
    hits = signal.correlate(
        (ground & flagged).astype(np.float64), source, mode="full", method="fft"
    )
    least = max(min_px, SHADOW_MATCH_MIN_LANDING * int(clouds.sum()))
    best: tuple[int, float, tuple[int, int]] | None = None  # (margin, share, offset)
    for dr, dc in offsets:
        i, j = dr + height - 1, dc + width - 1
        if not (0 <= i < landing.shape[0] and 0 <= j < landing.shape[1]):
            continue
        n = round(float(landing[i, j]))
        if n < least:
            continue
        on = round(float(hits[i, j]))
        if best is None or 2 * on - n > best[0]:
            best = (2 * on - n, on / n, (dr, dc))
    if best is None or best[1] < min_share:
        return ShadowMatch(None, share=0.0 if best is None else best[1])
    _, share, (dr, dc) = best
    from pipeline.coregister import shift_array  # coregister imports this module's users

    zone = shift_array(clouds, (dr, dc), False)
    if guard_px > 0:
        zone = ndimage.binary_dilation(zone, structure=np.ones((2 * guard_px + 1,) * 2, bool))
    return ShadowMatch(np.asarray(zone, bool), math.hypot(dr, dc) / per_m, share)
