"""Sub-pixel registration of a season's looks onto their consensus, before they are composited.

Owns: where each look lies against the per-pixel median of the season's looks (its sub-pixel
shift, kept only when reliable), and resampling a look (reflectance and clear mask) by such a
shift. Pure: arrays and plain parameters in, arrays and frozen records out.

Why: every look sits a little off the others (Sentinel-2's multi-temporal registration is
specified to 0.3 px at 2 sigma, and was ~1 px before the Global Reference Image; DOMAIN.md), and
the per-pixel median of looks each a fraction of a pixel off is blurred across every edge and
can sit that fraction off the ground: the footprint of a small site loses or gains a rim of
pixels. ``coregister`` moves a finished year by whole pixels after classification; this module
acts before the composite, on each look, at sub-pixel precision.

Method (as AROSICS, Scheffler et al. 2017, Remote Sensing 9(7):676, with the season's own
median as the reference image instead of an external one):

1. The reference is the per-pixel median of the reference looks (the season window's) over
   their clear pixels, in ``params.band``; each image matched is the standardised gradient
   magnitude of that band (``coregister.registration_image``: edges persist where a band's level
   follows phenology and haze).
2. Each look is matched to the reference by phase correlation under a Hann window, upsampled to
   ``1/upsample_factor`` px (Guizar-Sicairos et al. 2008, ``skimage``'s
   ``phase_cross_correlation``). The shift counts only when the look has ``min_overlap_px``
   clear pixels on the reference, stays within ``max_shift_px``, and the look's gradient image,
   moved by it, correlates with the reference's at ``min_correlation`` at least and no worse
   than unmoved (AROSICS's reliability tests: noise, a flat field or a cloudy look is not
   moved).
3. A look moves only when it lies ``min_shift_px`` or more off (along either axis) the frame of
   step 4: below that the bilinear resampling smooths the look about as much as the
   misregistration does.
4. The shifts are taken onto the mean position of the season's looks placed, not the median
   image's: the median sits where the middle looks do, which is not where the looks are on
   average when some of them cluster on one side; "most looks are right on average" is what
   a season's looks give (a mean of n uniform errors of +/-1 px is off by 0.58 / sqrt(n) px).
5. The reference is made again from the looks so moved, and the looks matched to it once more
   (``rounds``): the first reference is itself blurred by the looks it registers.

The looks then agree with each other and sit where they do on average. A year whose looks all
sit off the ground together is left to ``coregister``.

A look moved by (dy, dx) is resampled bilinearly from its four whole-pixel neighbours
(``coregister.resample``); every look is resampled on its own lattice with the same weights
wherever it is cut, so a window read with a halo of ``RecipeParams.reach_px`` gives, inside,
the whole grid's values (``chunks``). Pixels not clear (cloud, snow, nodata) are NaN before
resampling so that they do not bleed into their clear neighbours; the clear mask moves by the
nearest whole pixel and is kept only where every resampled band is finite.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft
from skimage.filters import window
from skimage.registration import phase_cross_correlation
from threadpoolctl import threadpool_limits

from pipeline.bands import BAND_INDEX
from pipeline.composite import median_only
from pipeline.coregister import image_correlation, registration_image, resample, shift_array

logger = logging.getLogger(__name__)

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float32]
Shift = tuple[float, float]

#: Defaults of :class:`LookRegistrationParams` (and of ``config.LookRegistrationConfig``).
#: Looks of one sensor over one season are within a pixel or so of each other (DOMAIN.md); a
#: larger "shift" within a season is a false match.
MAX_SHIFT_PX = 2.0
MIN_CORRELATION = 0.2
#: Clear pixels of a look on the reference (a 500 m square at 10 m), as ``coregister``.
MIN_OVERLAP_PX = 2500
UPSAMPLE_FACTOR = 20
#: Bilinear resampling by s px keeps |1 - 2s| of the finest detail (the Nyquist frequency): at
#: 0.25 px it halves it, as much as the misregistration it removes costs the median.
MIN_SHIFT_PX = 0.25
ROUNDS = 2
#: A shift "improves" the match when the correlation it gives is no more than this below the
#: unmoved look's (float and interpolation rounding of a look that is where it belongs).
CORRELATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class LookRegistrationParams:
    """How a season's looks are brought onto their consensus (module docstring, steps 1-5).

    ``band``: index of the band whose gradient is matched (``bands.BAND_INDEX``)."""

    band: int = BAND_INDEX["red"]
    max_shift_px: float = MAX_SHIFT_PX
    min_correlation: float = MIN_CORRELATION
    min_overlap_px: int = MIN_OVERLAP_PX
    upsample_factor: int = UPSAMPLE_FACTOR
    min_shift_px: float = MIN_SHIFT_PX
    rounds: int = ROUNDS


@dataclass(frozen=True)
class LookShift:
    """Where one look lay against the season's consensus: ``shift`` (rows, cols) the move that
    registers it (None: no reliable estimate), ``correlation`` its gradient image's with the
    reference's once moved (NaN: not estimated), and whether it was ``moved``."""

    shift: Shift | None
    correlation: float
    moved: bool

    @property
    def applied(self) -> Shift | None:
        """The shift applied to the look, or None when it is left as it is."""
        return self.shift if self.moved else None

    def east_north(self) -> tuple[float, float] | None:
        """Where the look lay before it was moved, in pixels east and north of the consensus
        (None: not moved), as the manifest records it."""
        if not self.moved or self.shift is None:
            return None
        dy, dx = self.shift
        return (round(-dx, 3) + 0.0, round(dy, 3) + 0.0)


NOT_ESTIMATED = LookShift(None, float("nan"), False)


def with_year_shift(shift: LookShift, year: Shift | None) -> LookShift:
    """``shift`` with the year's own sub-pixel shift onto its site's frame added
    (``coregister.subpixel_shifts``): a look not moved, or not estimated, moves by the year's
    alone. None: ``shift`` as it is."""
    if year is None:
        return shift
    own = shift.applied or (0.0, 0.0)
    total = (round(own[0] + year[0], 3) + 0.0, round(own[1] + year[1], 3) + 0.0)
    return LookShift(total, shift.correlation, total != (0.0, 0.0))


def resample_look(
    reflectance: FloatArray, clear: BoolArray, shift: Shift
) -> tuple[FloatArray, BoolArray]:
    """A look (``reflectance`` (band, y, x) and its ``clear`` mask (y, x)) moved by ``shift``
    (module docstring): pixels not clear are left out of the interpolation, the mask moves by
    the nearest whole pixel and stays clear only where every band came out finite."""
    masked = np.where(clear[None], reflectance, np.float32(np.nan))
    moved = resample(masked, shift)
    return moved, resample_mask(clear, shift) & np.isfinite(moved).all(axis=0)


def resample_mask(mask: BoolArray, shift: Shift) -> BoolArray:
    """A look's mask (y, x) moved by ``shift`` as ``resample_look`` moves its clear mask: by the
    nearest whole pixel, False where nothing moved in."""
    nearest = (int(np.round(shift[0])), int(np.round(shift[1])))
    return np.asarray(shift_array(mask, nearest, False), bool)


def register_looks(
    band: FloatArray,
    clear: BoolArray,
    reference_looks: Sequence[int],
    params: LookRegistrationParams,
) -> list[LookShift]:
    """Where each look of ``band`` (time, y, x; the matched band of every look) with its
    ``clear`` masks (time, y, x) lies against the consensus of the looks ``reference_looks``
    (module docstring): one :class:`LookShift` per look. A season with fewer than two
    reference looks has no consensus: nothing is estimated."""
    n = band.shape[0]
    shifts = [NOT_ESTIMATED] * n
    if len(reference_looks) < 2:
        return shifts
    taper = window("hann", band.shape[1:])  # type: ignore[no-untyped-call]
    # The sub-pixel refinement's matrix products are small (1.5 x upsample_factor rows): BLAS
    # threads cost more than they save (measured: 4x the CPU on 2 busy cores).
    with threadpool_limits(limits=1, user_api="blas"):
        return _rounds(band, clear, reference_looks, taper, params)


def _rounds(
    band: FloatArray,
    clear: BoolArray,
    reference_looks: Sequence[int],
    taper: NDArray[np.float64],
    params: LookRegistrationParams,
) -> list[LookShift]:
    """``register_looks``' matching rounds (module docstring, steps 2-5).

    A look's gradient image is made again in each round, when it is matched, rather than
    kept: a season's looks' images in double precision were the task's largest arrays. The
    reference's spectrum is taken once per round; phase correlation would take it per look."""
    n = band.shape[0]
    shifts = [NOT_ESTIMATED] * n
    for _ in range(max(params.rounds, 1)):
        reference, seen = _reference(band, clear, reference_looks, shifts)
        reference_image = registration_image(reference, seen)
        if reference_image is None:
            return [NOT_ESTIMATED] * n
        spectrum = fft.fftn(reference_image * taper)
        found = [
            _match(reference_image, spectrum, seen, band[t], clear[t], taper, params)
            for t in range(n)
        ]
        shifts = _centred(found, reference_looks, params)
    return shifts


def _centred(
    found: Sequence[LookShift], reference_looks: Sequence[int], params: LookRegistrationParams
) -> list[LookShift]:
    """``found`` (shifts onto the reference image) as shifts onto the mean position of the
    reference looks placed (step 4): the median image sits where the middle looks do, which
    is not where they are on average when they cluster."""
    placed = [s for s in (found[t].shift for t in reference_looks) if s is not None]
    if len(placed) < 2:  # one look is no consensus
        return [NOT_ESTIMATED] * len(found)
    cy, cx = (float(v) for v in np.mean(placed, axis=0))
    out = []
    for f in found:
        if f.shift is None:
            out.append(f)
            continue
        shift = (round(f.shift[0] - cy, 3) + 0.0, round(f.shift[1] - cx, 3) + 0.0)
        moved = max(abs(shift[0]), abs(shift[1])) >= params.min_shift_px
        out.append(LookShift(shift, f.correlation, moved))
    return out


def _reference(
    band: FloatArray, clear: BoolArray, looks: Sequence[int], shifts: Sequence[LookShift]
) -> tuple[FloatArray, BoolArray]:
    """The per-pixel median of ``band`` over the clear pixels of ``looks``, each moved by its
    applied shift, and where it is seen."""
    stack = np.empty((len(looks), 1, *band.shape[1:]), np.float32)
    seen = np.empty((len(looks), *band.shape[1:]), bool)
    for k, t in enumerate(looks):
        applied = shifts[t].applied
        if applied is None:
            stack[k, 0], seen[k] = band[t], clear[t]
        else:
            moved, seen[k] = resample_look(band[t][None], clear[t], applied)
            stack[k, 0] = moved[0]
    median = median_only(stack, seen)[0]
    return median, np.isfinite(median)


def _match(
    reference: NDArray[np.float64],
    spectrum: NDArray[np.complex128],
    seen: BoolArray,
    look: FloatArray,
    clear: BoolArray,
    taper: NDArray[np.float64],
    params: LookRegistrationParams,
) -> LookShift:
    """The reliable shift of one ``look``'s gradient image onto the ``reference``'s (whose
    tapered ``spectrum`` is given), or ``NOT_ESTIMATED`` (module docstring, steps 2-3)."""
    if int((clear & seen).sum()) < params.min_overlap_px:
        return NOT_ESTIMATED
    image = registration_image(look, clear)
    if image is None:
        return NOT_ESTIMATED
    found, _, _ = phase_cross_correlation(  # type: ignore[no-untyped-call]
        spectrum, fft.fftn(image * taper), upsample_factor=params.upsample_factor,
        space="fourier",
    )  # fmt: skip
    shift = (float(found[0]) + 0.0, float(found[1]) + 0.0)
    if max(abs(shift[0]), abs(shift[1])) > params.max_shift_px:
        return NOT_ESTIMATED
    before = image_correlation(reference, image)
    after = image_correlation(reference, resample(np.where(image != 0, image, np.nan), shift))
    # No worse than unmoved (to the precision of the resampling: a look where it belongs
    # correlates as well either way).
    if not (after >= params.min_correlation and after >= before - CORRELATION_TOLERANCE):
        return NOT_ESTIMATED
    return LookShift(shift, round(after, 4), False)
