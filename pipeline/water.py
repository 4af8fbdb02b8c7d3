"""Surface-water history of a site's years, and the exposed bed of water drawn down.

Owns the cross-year rule that keeps the mud of a drawn-down reservoir (or a river's or the
sea's exposed bed) out of the footprint, while land reclaimed from the water stays expansion.
``analysis.analyse_site`` runs it (``drop_exposed_beds``) before it dates the footprints, and
``compare`` on its two dates (``pair_without_beds``). Pure: site-years (or two images) in,
site-years (or masks) out; each year's composite is read once and only 2D masks (and the two
moisture signs at the footprint's pixels) are kept.

The rule, for an analyst:

1. **Former water.** Ground the season composite of some *other* year with data shows as open
   water (MNDWI > 0, Xu 2006, the footprint rule's own water test; water bodies below the
   minimum mapping unit left out: a shadow or a puddle is no reservoir) is former water: the
   site's own surface-water history, in the spirit of the JRC Global Surface Water occurrence
   layer (Pekel et al. 2016, Nature 540:418), which counts water in the share of clear looks;
   here a year counts as water when its composite does.
2. **Wet.** Moisture darkens bare ground in the SWIR, and more at 2.2 um than at 1.6 um, where
   water absorbs more strongly (Lobell & Asner 2002, SSSAJ 66:722; Haubrock et al. 2008, IJRS
   29:3, whose NSMI = (R1800 - R2119) / (R1800 + R2119) tracks surface soil moisture). With
   Sentinel-2 and Landsat bands the index is (SWIR1 - SWIR2) / (SWIR1 + SWIR2)
   (``moisture_index``). A pixel is wet when both signs hold against the same year's dry ground
   (``dry_reference``: footprint more than ``SHORE_PX`` pixels from all water of the series, not
   coal, not ground the series shows farmed, whose bare soil is moist, interior pixels): its
   moisture index lies above the dry ground's upper Tukey fence (Q3 + 1.5 IQR, Tukey 1977: an
   outlier of the scene's own dry surfaces, whatever their minerals and the year's
   atmosphere), and its SWIR1 lies below the dry ground's median (a clay's 2.2 um absorption
   raises the index too, but leaves SWIR1 bright). Each side is read
   as the 3 x 3 median over its own ground (``local_median``): wetness belongs to the ground,
   not to a pixel's noise, and a median keeps two grounds apart up to their edge.
3. **Exposed bed.** Footprint on former water that is not water this year (in regions at least
   3 x 3 pixels wide somewhere: a one-pixel sliver along a shore is its mixed pixels
   flickering, or a year misregistered by a pixel), or on its one-pixel rim (shore pixels
   mixed with mud), and wet, is exposed bed: it leaves the footprint (with the pieces left
   below the minimum mapping unit). Coal is never removed.

The counter-case a sanctions analyst cares about stays expansion: land reclaimed from the sea
or a river, filled and built or stocked, is dry (its moisture index is that of the scene's
built ground) and bright in SWIR, or it is coal. Freshly pumped hydraulic fill is wet: it counts
from the first year it has dried. Limits: a bed that has dried out is bare ground to this rule
(it counts as footprint until water or vegetation returns), and without enough dry ground in
the scene (``MIN_REFERENCE_PX``) nothing is judged. A bed never seen under water in the series
(drawn down in every year) is not former water.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pipeline import boundaries, indices
from pipeline.classify import drop_thin_regions
from pipeline.results import SiteYear

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float32]

#: MNDWI above which a composite pixel is open water (Xu 2006; the footprint rule's
#: ``mndwi_max`` default, so water and footprint never overlap).
WATER_MNDWI_MIN = 0.0
#: Dry-ground pixels a year needs for its quartiles to describe the scene (judgement: fewer
#: and the year is not judged, its footprint kept as it is).
MIN_REFERENCE_PX = 30
#: Dry-ground pixels the quartiles are read from at most: a large site's dry ground is sampled
#: (seeded, so a rerun is identical); a quarter million pixels put the quartiles far closer
#: than the sensor's noise.
REFERENCE_SAMPLE_PX = 250_000
#: Tukey's fence multiplier (Tukey 1977): beyond Q3 + 1.5 IQR a value is an outlier.
TUKEY_K = 1.5
#: Distance (pixels) from any water of the series within which ground is not dry reference:
#: shore pixels mix water, mud and land.
SHORE_PX = 2

_SQUARE = np.ones((3, 3), bool)


def open_water(
    reflectance: FloatArray, valid: BoolArray, mndwi_min: float = WATER_MNDWI_MIN
) -> BoolArray:
    """Open water on one composite (band, y, x): MNDWI above ``mndwi_min``, within ``valid``."""
    with np.errstate(invalid="ignore"):
        return np.asarray(valid & (indices.mndwi(reflectance) > mndwi_min), dtype=bool)


def moisture_index(reflectance: FloatArray) -> FloatArray:
    """(SWIR1 - SWIR2) / (SWIR1 + SWIR2): the Sentinel-2 / Landsat form of Haubrock et al.'s
    (2008) normalised soil moisture index; higher is wetter for the same ground. NaN where
    undefined."""
    return indices.normalized_difference(
        indices.band(reflectance, "swir16"), indices.band(reflectance, "swir22")
    )


@dataclass(frozen=True)
class DryReference:
    """A year's dry ground, as the wet test uses it: the upper Tukey fence of its moisture
    index, its median SWIR1, and how many pixels they come from."""

    moisture_fence: float
    swir16_median: float
    pixels: int


def dry_reference(
    moisture: FloatArray, swir16: FloatArray, reference: BoolArray
) -> DryReference | None:
    """The ``DryReference`` of the ``reference`` pixels (finite values only); None when fewer
    than ``MIN_REFERENCE_PX`` remain."""
    keep = reference & np.isfinite(moisture) & np.isfinite(swir16)
    n = int(keep.sum())
    if n < MIN_REFERENCE_PX:
        return None
    q1, q3 = np.percentile(moisture[keep], [25, 75])
    return DryReference(
        moisture_fence=float(q3 + TUKEY_K * (q3 - q1)),
        swir16_median=float(np.median(swir16[keep])),
        pixels=n,
    )


def wet(moisture: FloatArray, swir16: FloatArray, dry: DryReference) -> BoolArray:
    """Pixels wetter than the scene's dry ground: moisture index above its fence and SWIR1
    below its median (NaN is never wet)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(
            (moisture > dry.moisture_fence) & (swir16 < dry.swir16_median), dtype=bool
        )


def exposed_bed(
    footprint: BoolArray,
    coal_mask: BoolArray,
    valid: BoolArray,
    water: BoolArray,
    former_water: BoolArray,
    moisture: FloatArray,
    swir16: FloatArray,
    fields: BoolArray | None = None,
) -> BoolArray:
    """The part of one year's ``footprint`` that is exposed bed (module docstring, rules 2-3):
    not ``coal_mask``, ``valid``, on ``former_water`` that is not ``water`` this year (regions
    holding a 3 x 3 square) or on its one-pixel rim, and ``wet`` against the year's dry ground
    (footprint and not coal nor ``fields``, more than ``SHORE_PX`` pixels from water of any
    year, eroded by one pixel). ``moisture`` and ``swir16`` need to be finite only on the
    footprint. Empty when the dry ground is too small to judge by.

    Both sides are judged on ``local_median`` (3 x 3, each within its own ground): wetness is a
    property of the ground, which a pixel's noise should not decide."""
    ground = footprint & ~coal_mask & valid
    # A drawdown bares a band of bed; a sliver along a shore is its mixed pixels flickering, or
    # a year misregistered by a pixel (DOMAIN.md): only regions holding a 3 x 3 square count.
    exposed = drop_thin_regions(former_water & ~water, 1)
    candidates = ground & ~water & ndimage.binary_dilation(exposed, _SQUARE)
    if not candidates.any():
        return np.zeros(footprint.shape, bool)
    shore = ndimage.binary_dilation(water | former_water, _SQUARE, iterations=SHORE_PX)
    reference = ndimage.binary_erosion(ground, _SQUARE) & ~shore
    if fields is not None:
        reference &= ~fields
    sample = _sample(reference, REFERENCE_SAMPLE_PX)
    dry = dry_reference(
        local_median(moisture, reference, sample), local_median(swir16, reference, sample), sample
    )
    if dry is None:
        logger.info(
            "%d px of footprint on former water not judged: %d px of dry ground, %d needed",
            int(candidates.sum()), int(reference.sum()), MIN_REFERENCE_PX,
        )  # fmt: skip
        return np.zeros(footprint.shape, bool)
    judged = wet(local_median(moisture, candidates), local_median(swir16, candidates), dry)
    return np.asarray(candidates & judged, dtype=bool)


def local_median(values: FloatArray, where: BoolArray, at: BoolArray | None = None) -> FloatArray:
    """Per pixel of ``at`` (default: ``where``), the median of the finite ``values`` of
    ``where`` in its 3 x 3 square (NaN elsewhere). Within its own ground only, and a median:
    noise goes, while ground beside other ground keeps its own value up to its edge (six of an
    edge pixel's nine neighbours are its own). Gathered at the pixels of ``at`` only."""
    rows, cols = np.nonzero(where if at is None else at)
    padded = np.pad(np.where(where, values, np.nan).astype(np.float32), 1, constant_values=np.nan)
    square = np.empty((9, rows.size), np.float32)
    for k, (dy, dx) in enumerate(itertools.product((0, 1, 2), repeat=2)):
        square[k] = padded[rows + dy, cols + dx]
    out = np.full(where.shape, np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN squares stay NaN
        out[rows, cols] = np.nanmedian(square, axis=0)
    return out


def _sample(where: BoolArray, at_most: int) -> BoolArray:
    """``where``, or a seeded random ``at_most`` of its pixels when it holds more."""
    index = np.flatnonzero(where)
    if index.size <= at_most:
        return where
    picked = np.random.default_rng(0).choice(index, at_most, replace=False)
    out = np.zeros(where.shape, bool)
    out.flat[picked] = True
    return out


@dataclass(frozen=True)
class YearSigns:
    """What one year's composite says for the water rule, read once: its open ``water`` (2D)
    and, at the pixels of ``ground`` (footprint, not coal, valid), in C order, the moisture
    index and SWIR1 (1D: a fraction of the composite's bytes)."""

    water: BoolArray
    ground: BoolArray
    moisture: FloatArray
    swir16: FloatArray

    def spread(self) -> tuple[FloatArray, FloatArray]:
        """Moisture index and SWIR1 as 2D arrays, NaN off ``ground``."""
        out = []
        for values in (self.moisture, self.swir16):
            grid = np.full(self.ground.shape, np.nan, np.float32)
            grid[self.ground] = values
            out.append(grid)
        return out[0], out[1]


def year_signs(sy: SiteYear, mndwi_min: float = WATER_MNDWI_MIN) -> YearSigns | None:
    """The ``YearSigns`` of ``sy`` (None without a composite), reading its reflectance once
    (a stored composite is read from its file on each access)."""
    if sy.composite is None:
        return None
    reflectance = sy.composite.reflectance
    ground = sy.footprint & ~sy.coal_mask & sy.valid
    return YearSigns(
        water=open_water(reflectance, sy.valid, mndwi_min),
        ground=ground,
        moisture=moisture_index(reflectance)[ground],
        swir16=indices.band(reflectance, "swir16")[ground].astype(np.float32),
    )


@dataclass(frozen=True)
class ExposedBeds:
    """``drop_exposed_beds``' result: the site-years with exposed bed out of their footprint,
    and per year the ground removed (None for a year without a composite)."""

    years: tuple[SiteYear, ...]
    removed: tuple[BoolArray | None, ...]


def drop_exposed_beds(
    years: Sequence[SiteYear],
    min_pixels: int,
    *,
    mndwi_min: float = WATER_MNDWI_MIN,
    fields: BoolArray | None = None,
) -> ExposedBeds:
    """``years`` with the exposed bed of water drawn down out of each footprint (module
    docstring): the water history of every year with a composite, then per year
    ``exposed_bed`` against the water of the others; footprint regions left smaller than
    ``min_pixels`` go with it, coal stays. A year sees former water only when another year
    saw water there, so a series of one year is returned as it is. ``fields``: ground the
    series shows farmed (``analysis.field_signs``), never dry reference: a field bare under a
    cloudy summer is in a year's footprint until the fields rule takes it out, and its soil
    is moist."""
    signs = [year_signs(sy, mndwi_min) for sy in years]
    # A water body smaller than the minimum mapping unit is no reservoir (a shadow, a puddle).
    bodies = [
        None if s is None else boundaries.remove_small_regions(s.water, min_pixels) for s in signs
    ]
    waters = [b for b in bodies if b is not None]
    if len(waters) < 2:
        return ExposedBeds(tuple(years), tuple(None if s is None else _nothing(s) for s in signs))
    times_water = np.sum(waters, axis=0, dtype=np.int16)
    out: list[SiteYear] = []
    removed: list[BoolArray | None] = []
    for sy, s, body in zip(years, signs, bodies, strict=True):
        if s is None or body is None:
            out.append(sy)
            removed.append(None)
            continue
        former = (times_water - body) > 0
        moisture, swir16 = s.spread()
        footprint, taken = without_bed(
            sy.footprint, sy.coal_mask, sy.valid, s.water, former, moisture, swir16,
            min_pixels, fields,
        )  # fmt: skip
        out.append(replace(sy, footprint=footprint, exposed_bed=taken) if taken.any() else sy)
        removed.append(taken)
    return ExposedBeds(tuple(out), tuple(removed))


def without_bed(
    footprint: BoolArray,
    coal_mask: BoolArray,
    valid: BoolArray,
    water: BoolArray,
    former_water: BoolArray,
    moisture: FloatArray,
    swir16: FloatArray,
    min_pixels: int,
    fields: BoolArray | None = None,
) -> tuple[BoolArray, BoolArray]:
    """(``footprint`` without its ``exposed_bed`` and the pieces that leaves smaller than
    ``min_pixels``, coal kept; the ground taken out)."""
    bed = exposed_bed(footprint, coal_mask, valid, water, former_water, moisture, swir16, fields)
    if not bed.any():
        return footprint, bed
    kept = boundaries.remove_small_regions(footprint & ~bed, min_pixels) | coal_mask
    return kept, footprint & ~kept


def pair_without_beds(
    images: tuple[FloatArray, FloatArray],
    footprints: tuple[BoolArray, BoolArray],
    coal_masks: tuple[BoolArray, BoolArray],
    min_pixels: int,
    *,
    mndwi_min: float = WATER_MNDWI_MIN,
) -> tuple[tuple[BoolArray, BoolArray], tuple[BoolArray, BoolArray]]:
    """``drop_exposed_beds`` for two images of one place (``sitewatch compare``): each
    image's footprint (``footprints``, with its ``coal_masks``) without the exposed bed of the
    water the other image shows, and the ground taken out of each. A reservoir drawn down
    between the dates is not expansion; land reclaimed from it, dry, still is. Valid pixels:
    every band finite."""
    valid = [np.asarray(np.isfinite(image).all(axis=0), bool) for image in images]
    water = [open_water(image, ok, mndwi_min) for image, ok in zip(images, valid, strict=True)]
    bodies = [boundaries.remove_small_regions(w, min_pixels) for w in water]
    kept: list[BoolArray] = []
    taken: list[BoolArray] = []
    for k, image in enumerate(images):
        ground = footprints[k] & ~coal_masks[k] & valid[k]
        with np.errstate(invalid="ignore"):
            moisture = np.where(ground, moisture_index(image), np.nan).astype(np.float32)
            swir16 = np.where(ground, indices.band(image, "swir16"), np.nan).astype(np.float32)
        footprint, removed = without_bed(
            footprints[k], coal_masks[k], valid[k], water[k], bodies[1 - k], moisture, swir16,
            min_pixels,
        )  # fmt: skip
        kept.append(footprint)
        taken.append(removed)
    return (kept[0], kept[1]), (taken[0], taken[1])


def _nothing(s: YearSigns) -> BoolArray:
    return np.zeros(s.water.shape, bool)
