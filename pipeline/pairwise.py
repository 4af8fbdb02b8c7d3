"""Two-date change detection: the change and expansion maps of ``sitewatch compare``.

Pure stage: two (band, y, x) float arrays on one grid (reflectance, NaN = no data) and plain
parameters in; a frozen :class:`PairwiseChange` out. The methods are in ``pipeline.change``.

The combination rule (``change.tif``)
-------------------------------------
1. ``valid``: every band finite in both dates.
2. IR-MAD (Nielsen 2007) over the valid pixels: the chi-square statistic ``Z`` (N degrees of
   freedom, N bands) and ``P(no change)``. Affine-invariant per date: gain, offset, haze and
   calibration differences do not count.
3. Relative normalisation: AFTER regressed on BEFORE per band (orthogonal regression) over
   IR-MAD's no-change pixels, ``P(no change) > NOCHANGE_P`` (Canty's ``radcal``).
4. CVA of normalised AFTER minus BEFORE, each band standardised by its no-change robust scale,
   floored at ``noise_floor``: a second chi-square statistic, in the images' units.
5. *Significant*: both statistics above their threshold (the chi-square quantile at ``alpha``
   by default: ``P(no change) < alpha`` and the same for CVA).
6. *Mostly changed* (the pixel-centre rule of reference maps): a significant pixel within
   ``EDGE_PX`` of an interior one (a pixel whose whole ``2 EDGE_PX + 1`` square is significant)
   must carry at least half of that pixel's change (``change.change_fraction``, linear
   unmixing); a soft edge's mixed pixels that are significant but mostly unchanged drop out.
   Thin or small changes, with no interior pixel, are kept whole.
7. *Not misregistration*: a *core* pixel keeps both statistics above threshold even against the
   best-matching pixel within ``registration_px`` in the other date, seen from either date
   (``change.tolerant_chi_square``). ``changed`` = the pixels of 6 within ``registration_px``
   of a core: the tolerance would take the rim off every real change, the core gives it back,
   and a shifted edge with no core stays out.
8. Regions smaller than the minimum mapping unit are dropped.

``expansion.tif``: post-classification comparison of the footprint (built, bare, spoil, coal:
``classify.footprint_mask`` by default, or the caller's two footprints: ``compare`` leaves out
the exposed bed of water either date shows), each date classified on its own radiometry, gains
opened by ``footprint_opening_px`` (slivers of a shifted edge are not expansion), intersected
with ``changed`` before its minimum mapping unit, then cleaned by the minimum mapping unit.
A class flicker without spectral change is not expansion, nor is spectral change that does not
add footprint.

Defaults and why
----------------
- ``ALPHA = 1e-3``: the per-pixel false-alarm rate on pure noise, for each statistic. Both
  tests must reject, so noise passes at most at that rate before the minimum mapping unit.
- ``REGISTRATION_PX = 1``: a one-pixel shift between dates is normal (DOMAIN.md: Sentinel-2
  geolocation ~12 m before the Global Reference Image).
- ``NOISE_FLOOR = 0.005`` reflectance: the absolute term of the surface-reflectance accuracy
  specification 0.005 + 0.05 rho used for Sentinel-2 L2A and Landsat (ACIX, Doxani et al. 2018,
  Remote Sens. 10:352); differences below it are not distinguishable from processing noise. The
  relative term is what the normalisation removes. With DN input (no ``--scale``) it is far
  below one DN and has no effect.
- ``NOCHANGE_P = 0.95``: Canty's invariant-pixel threshold for normalisation.
- ``EDGE_PX = 2``: the sensors' point spread function blurs an edge over about two pixels, so a
  pixel wholly inside a change lies within two pixels of any mixed edge pixel of it.
- The minimum mapping unit comes from the caller (compare: 0.25 ha, DOMAIN.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from pipeline import boundaries
from pipeline.change import (
    CVA,
    IRMAD,
    THRESHOLD_METHODS,
    Normalisation,
    RegressionMethod,
    Threshold,
    ThresholdMethod,
    change_fraction,
    change_threshold,
    cva,
    irmad,
    mask_change,
    normalise,
    tolerant_chi_square,
)
from pipeline.classify import footprint_mask

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]

__all__ = [
    "ALPHA",
    "EDGE_PX",
    "NOCHANGE_P",
    "NOISE_FLOOR",
    "REGISTRATION_PX",
    "PairwiseChange",
    "detect",
]

ALPHA = 1e-3
REGISTRATION_PX = 1
NOISE_FLOOR = 0.005
NOCHANGE_P = 0.95
EDGE_PX = 2
# Fewer IR-MAD no-change pixels than this and the normalisation uses every valid pixel.
MIN_NOCHANGE_PIXELS = 100
METHOD = "IR-MAD and CVA chi-square tests, registration-tolerant; footprint comparison"


@dataclass(frozen=True)
class PairwiseChange:
    """Change between two dates on one grid.

    Masks: ``valid`` (data in both dates), ``changed`` (the combination rule of the module
    docstring, after the minimum mapping unit), ``expansion`` (footprint gain that also changed)
    and ``footprint_loss`` (footprint lost and changed). Maps (float32, NaN outside ``valid``):
    ``chi2`` (IR-MAD Z), ``p_nochange`` (its chi-square no-change probability) and
    ``cva_chi2``. ``threshold`` and ``cva_threshold`` say which thresholds were used and how
    they were chosen; ``irmad`` and ``normalisation`` hold the fitted transforms; ``rule`` is
    the decision rule in words; ``alpha``, ``registration_px``, ``noise_floor`` and
    ``min_mapping_unit_px`` the parameters.
    """

    valid: BoolArray
    changed: BoolArray
    expansion: BoolArray
    footprint_loss: BoolArray
    chi2: FloatArray
    p_nochange: FloatArray
    cva_chi2: FloatArray
    threshold: Threshold
    cva_threshold: Threshold
    irmad: IRMAD
    normalisation: Normalisation
    rule: str
    alpha: float
    registration_px: int
    noise_floor: float
    min_mapping_unit_px: int

    @property
    def method(self) -> str:
        return METHOD

    def provenance(self) -> dict[str, object]:
        """JSON-ready description of how the maps were made (no arrays)."""
        return {
            "method": self.method,
            "rule": self.rule,
            "alpha": self.alpha,
            "registration_px": self.registration_px,
            "edge_px": EDGE_PX,
            "noise_floor": self.noise_floor,
            "min_mapping_unit_px": self.min_mapping_unit_px,
            "irmad": {
                "chi2_threshold": _finite(self.threshold.value),
                "threshold_rule": self.threshold.rule,
                "dof": self.irmad.dof,
                "canonical_correlations": [round(float(r), 4) for r in self.irmad.rho],
                "iterations": self.irmad.iterations,
                "converged": self.irmad.converged,
            },
            "cva": {
                "chi2_threshold": _finite(self.cva_threshold.value),
                "threshold_rule": self.cva_threshold.rule,
            },
            "normalisation": self.normalisation.as_dict(),
        }


def _finite(value: float) -> float | None:
    """``value`` rounded for JSON, None when not finite (no canonical pair: no threshold)."""
    return round(value, 4) if math.isfinite(value) else None


def _check(before: FloatArray, after: FloatArray, **params: float) -> None:
    if before.ndim != 3 or before.shape != after.shape:
        raise ValueError(
            f"before and after must be (band, y, x) arrays of one shape, got {before.shape} "
            f"and {after.shape}"
        )
    alpha = params["alpha"]
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha {alpha!r} not allowed: a probability in (0, 1), e.g. 0.001")
    for name in ("registration_px", "min_mapping_unit_px", "footprint_opening_px"):
        if not (params[name] >= 0 and float(params[name]).is_integer()):
            raise ValueError(f"{name} {params[name]!r} not allowed: a whole number >= 0")
    if not params["noise_floor"] >= 0:
        raise ValueError(f"noise_floor {params['noise_floor']!r} not allowed: a number >= 0")


def detect(
    before: FloatArray,
    after: FloatArray,
    *,
    alpha: float = ALPHA,
    registration_px: int = REGISTRATION_PX,
    noise_floor: float = NOISE_FLOOR,
    min_mapping_unit_px: int = 1,
    threshold: ThresholdMethod = "chi2",
    regression: RegressionMethod = "orthogonal",
    classify: Callable[[FloatArray], BoolArray] = footprint_mask,
    footprint_opening_px: int = 1,
    footprints: tuple[BoolArray, BoolArray] | None = None,
) -> PairwiseChange:
    """Change and expansion between two dates by the module's combination rule.

    ``threshold`` picks the rule for both statistics' thresholds (``"chi2"``, ``"otsu"``,
    ``"ki"``; see ``change.change_threshold``); ``regression`` the normalisation fit;
    ``classify`` the footprint rule applied to each date, or ``footprints`` the two dates'
    footprints when the caller has made them (``compare``: judged across the two dates).
    """
    if threshold not in THRESHOLD_METHODS:
        raise ValueError(
            f"threshold method {threshold!r} unknown; allowed: {', '.join(THRESHOLD_METHODS)}"
        )
    _check(
        before, after, alpha=alpha, registration_px=registration_px, noise_floor=noise_floor,
        min_mapping_unit_px=min_mapping_unit_px, footprint_opening_px=footprint_opening_px,
    )  # fmt: skip
    valid = np.asarray(np.isfinite(before).all(axis=0) & np.isfinite(after).all(axis=0), bool)

    mad = irmad(before, after, valid)
    mad_thr = change_threshold(mad.chi2[valid], mad.dof, alpha=alpha, method=threshold)

    with np.errstate(invalid="ignore"):
        nochange = np.asarray(valid & (mad.p_nochange > NOCHANGE_P), bool)
    if int(nochange.sum()) < MIN_NOCHANGE_PIXELS:
        nochange = valid
    norm = normalise(before, after, nochange, method=regression)
    after_n = norm.apply(after)
    vec: CVA = cva(
        before, after_n, nochange, alpha=alpha, threshold=threshold, noise_floor=noise_floor
    )

    with np.errstate(invalid="ignore"):
        plain = valid & (mad.chi2 > mad_thr.value) & (vec.chi2 > vec.threshold.value)
    spectral = plain
    if plain.any():
        delta = np.asarray(after_n - before, np.float32)
        delta -= vec.centre[:, None, None].astype(np.float32)
        delta /= vec.sigma[:, None, None].astype(np.float32)
        with np.errstate(invalid="ignore"):
            interior = ndimage.binary_erosion(
                plain, structure=np.ones((2 * EDGE_PX + 1,) * 2, bool)
            )
            share = change_fraction(delta, EDGE_PX, interior, plain)
            spectral = plain & (share >= 0.5)
    if registration_px > 0 and spectral.any():
        u, v = mad.variates(before, after)
        tol_mad = tolerant_chi_square(u, v, registration_px, spectral)
        del u, v  # a full-size pair each: one at a time
        u, v = vec.variates(before, after_n)
        tol_cva = tolerant_chi_square(u, v, registration_px, spectral)
        del u, v
        with np.errstate(invalid="ignore"):
            core = spectral & (tol_mad > mad_thr.value) & (tol_cva > vec.threshold.value)
        size = 2 * registration_px + 1
        spectral = spectral & ndimage.binary_dilation(core, structure=np.ones((size, size), bool))
    spectral = np.asarray(spectral, bool)
    changed = boundaries.remove_small_regions(spectral, min_mapping_unit_px)

    if footprints is None:
        footprints = (classify(before), classify(after))
    fp = mask_change(*footprints, valid, opening_px=footprint_opening_px)
    expansion = boundaries.remove_small_regions(fp.added & spectral, min_mapping_unit_px)
    loss = boundaries.remove_small_regions(fp.removed & spectral, min_mapping_unit_px)

    rule = (
        f"changed: IR-MAD chi2 > {mad_thr.value:.2f} ({mad_thr.rule}) and CVA chi2 > "
        f"{vec.threshold.value:.2f} ({vec.threshold.rule}; noise floor {noise_floor:g}, after "
        f"{regression} normalisation); mixed edge pixels only when mostly changed (within "
        f"{EDGE_PX} px of an interior change); within {registration_px} px of a pixel still "
        f"changed under a {registration_px} px misregistration; regions of "
        f"{min_mapping_unit_px} px or more. expansion: footprint gain (each date classified on "
        "its own) that also changed"
    )
    return PairwiseChange(
        valid=np.asarray(valid, bool),
        changed=changed,
        expansion=expansion,
        footprint_loss=loss,
        chi2=mad.chi2,
        p_nochange=mad.p_nochange,
        cva_chi2=vec.chi2,
        threshold=mad_thr,
        cva_threshold=vec.threshold,
        irmad=mad,
        normalisation=norm,
        rule=rule,
        alpha=alpha,
        registration_px=int(registration_px),
        noise_floor=float(noise_floor),
        min_mapping_unit_px=int(min_mapping_unit_px),
    )
