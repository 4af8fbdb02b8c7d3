"""Change between two dates: the methods, each pure (arrays and plain parameters in, frozen
dataclasses out). ``pipeline.pairwise`` combines them into the change and expansion maps.

Conventions: images are (band, y, x) float arrays on one grid, reflectance (or DN: every method
here is unit-free except the absolute noise floor, which is in the images' units); NaN is no data
and a pixel is valid only where every band of both dates is finite. Statistics are float32 maps
with NaN outside the valid pixels. Every unsupervised method here assumes that most valid pixels
did not change.

Methods
-------
- **IR-MAD** (:func:`irmad`): iteratively reweighted multivariate alteration detection (Nielsen,
  2007, IEEE TIP 16(2):463; implementation after Canty, *Image Analysis, Classification and
  Change Detection in Remote Sensing*, 4th ed. 2019, ch. 9). Canonical correlation analysis of
  the two dates gives pairs of canonical variates ``U_i = a_i'X``, ``V_i = b_i'Y``, ordered by
  increasing correlation ``rho_i``; their differences ``MAD_i = U_i - V_i`` are uncorrelated and,
  on unchanged pixels with Gaussian noise, normal. ``Z = sum_i (MAD_i / sigma_i)^2`` then
  follows chi-square with N degrees of freedom (N bands) and ``P(no change) = 1 - F_chi2(Z; N)``.
  The CCA is re-estimated with that probability as each pixel's weight until the canonical
  correlations change by less than ``tol``. IR-MAD is invariant to any affine transformation of
  either date, so a gain and offset (a hazier day, another calibration) cannot read as change.
  Written by hand (scikit-learn is not a dependency and its ``CCA`` is an unweighted PLS
  algorithm); the generalised symmetric eigenproblem is ``scipy.linalg.eigh``.

  One departure from Nielsen: ``sigma_i`` is the robust scale (1.4826 x median absolute
  deviation over all valid pixels) of ``MAD_i``, not ``sqrt(2 (1 - rho_i))`` from the weighted
  correlations. With weights equal to the no-change probability, the weighted variance
  underestimates the noise (the tails are down-weighted), the iteration converges to a too
  small variance, and on pure Gaussian noise 27-29 % of the pixels get ``P(no change) < 0.01``
  (measured on 6-band noise scenes; ``irmad(..., scale="canonical")`` reproduces it); with the
  robust scale the share is the nominal 1 % (``tests/test_change_methods.py``).
- **CVA** (:func:`cva`): change vector analysis of ``AFTER - BEFORE`` (after normalisation),
  each band standardised by the robust scale of its no-change differences, floored at a noise
  floor. The SQUARED standardised length follows chi-square with N degrees of freedom on
  unchanged pixels, so its threshold is a chi-square quantile; a plain length floored at 3 (the
  old rule) passes 17 % of pure-noise pixels of 6 bands.
- **Thresholds** (:func:`change_threshold`): the chi-square quantile ``chi2.isf(alpha, N)``, or
  an automatic threshold on the standardised length: Otsu (1979) or Kittler & Illingworth
  (1986, Pattern Recognition 19(1):41, minimum error thresholding, written by hand: no
  dependency has it). Both split any histogram in two, even one with no change at all, and
  Otsu splits the no-change mode itself when change is rare. The automatic threshold is
  therefore used only when the histogram has a valley there (see :data:`VALLEY_RATIO`) and
  never below the chi-square quantile; otherwise the chi-square quantile decides, and the rule
  says so.
- **Relative radiometric normalisation** (:func:`normalise`): per band, AFTER regressed on
  BEFORE over no-change pixels (IR-MAD's, as in Canty's ``radcal``), by orthogonal (total least
  squares, closed form: ``scipy.odr`` is deprecated) or ordinary regression. A gain is fitted
  only where the data determine it (see :data:`GAIN_TOLERANCE`); otherwise only the offset.
- **Registration tolerance** (:func:`tolerant_chi_square`): the chi-square statistic of each
  pixel against every pixel of the other date within ``radius`` pixels, the minimum taken, in
  both directions (after Bruzzone & Cossu 2003, IEEE TGRS 41(11):2455, on registration noise):
  a difference that a shift of up to ``radius`` pixels explains is not change.
- **Mixed pixels** (:func:`change_fraction`): the share of a neighbouring full change that a
  pixel's change vector carries (two-endmember linear unmixing), for the pixel-centre rule.
- **Post-classification comparison** (:func:`mask_change`, :func:`post_classification`): each
  date classified on its own radiometry, then compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import linalg, special, stats
from skimage.filters import threshold_otsu

from pipeline.masking import open_mask

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
Float64Array = NDArray[np.float64]

ThresholdMethod = Literal["chi2", "otsu", "ki"]
THRESHOLD_METHODS: tuple[str, ...] = ("chi2", "otsu", "ki")
RegressionMethod = Literal["orthogonal", "ols"]
REGRESSION_METHODS: tuple[str, ...] = ("orthogonal", "ols")
MadScale = Literal["robust", "canonical"]
MAD_SCALES: tuple[str, ...] = ("robust", "canonical")

# 1.4826 x MAD is the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826
# Smallest robust scale of a MAD variate, in canonical units (the canonical variates have unit
# variance): an image compared with an exact copy or an exact affine transform of itself has MAD
# variates of rounding size, which must give chi-square 0, not noise blown up to any size.
# Real pairs sit far above it (12-bit quantisation alone is ~3e-4 of a scene's spread).
MIN_MAD_SIGMA = 1e-6
# IR-MAD statistics are estimated on at most this many valid pixels (a regular stride): ample for
# a 6 x 6 covariance, and the memory of a full Sentinel-2 tile stays bounded. Maps cover all.
IRMAD_SAMPLE = 200_000
# A fitted gain is used only when the regressions of AFTER on BEFORE and of BEFORE on AFTER, which
# bracket the true slope when both carry noise, differ by less than this fraction (r^2 >= 1/1.1,
# r >= 0.953). Gains worth correcting (haze, calibration) are 5-10 %: a slope known to no better
# than that corrects nothing and may distort; the offset alone is fitted then.
GAIN_TOLERANCE = 0.10
# An automatic (Otsu, KI) threshold is used only when the histogram of the standardised length
# has a valley there: the count in the threshold's bin is at most 1/VALLEY_RATIO of the highest
# bin on each side (peak-to-valley ratio; judgement). A unimodal histogram (no change, or change
# too rare to form a mode) has no valley, and the chi-square quantile decides.
VALLEY_RATIO = 2.0
VALLEY_BINS = 64


# --------------------------------------------------------------------------------------------
# Post-classification comparison
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskChange:
    """Pixels that became True (``added``) and stopped being True (``removed``)."""

    added: BoolArray
    removed: BoolArray


def mask_change(
    before: BoolArray,
    after: BoolArray,
    valid: BoolArray | None = None,
    opening_px: int = 1,
) -> MaskChange:
    """Gain and loss of a class mask, only where both dates have data.

    The opening drops slivers a pixel wide along stable edges: a one-pixel shift between years is
    normal for Sentinel-2 geolocation and must not read as expansion (DOMAIN.md).
    """
    if before.shape != after.shape:
        raise ValueError(f"masks differ in shape: {before.shape} vs {after.shape}")
    ok = np.ones(before.shape, bool) if valid is None else valid
    added = open_mask(after & ~before & ok, opening_px)
    removed = open_mask(before & ~after & ok, opening_px)
    return MaskChange(added, removed)


@dataclass(frozen=True)
class ClassTransitions:
    """Post-classification comparison of two class maps: ``matrix[i, j]`` counts the valid
    pixels of class ``i`` before and ``j`` after; ``changed`` marks valid pixels whose class
    differs."""

    matrix: NDArray[np.int64]
    changed: BoolArray


def post_classification(
    before: NDArray[np.integer], after: NDArray[np.integer], valid: BoolArray | None = None
) -> ClassTransitions:
    """Transitions between two class maps of labels ``0..K-1`` (K from the largest label).

    Each date is classified on its own radiometry, so no normalisation is needed; the price is
    that the errors of both classifications add up (every misclassified pixel is a transition).
    """
    if before.shape != after.shape:
        raise ValueError(f"class maps differ in shape: {before.shape} vs {after.shape}")
    ok = np.ones(before.shape, bool) if valid is None else np.asarray(valid, bool)
    b = np.asarray(before)[ok].astype(np.int64)
    a = np.asarray(after)[ok].astype(np.int64)
    if b.size and (b.min() < 0 or a.min() < 0):
        raise ValueError("class labels must be >= 0")
    k = int(max(b.max(initial=-1), a.max(initial=-1))) + 1
    matrix = np.bincount(b * k + a, minlength=k * k).reshape(k, k)
    changed = ok & (np.asarray(before) != np.asarray(after))
    return ClassTransitions(matrix, np.asarray(changed))


# --------------------------------------------------------------------------------------------
# Thresholds
# --------------------------------------------------------------------------------------------


def chi_square_threshold(dof: int, alpha: float) -> float:
    """The value of a chi-square statistic with ``dof`` degrees of freedom that pure noise
    exceeds with probability ``alpha`` (the per-pixel false-alarm rate)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if dof < 1:
        return math.inf
    return float(stats.chi2.isf(alpha, dof))


def otsu_threshold(values: NDArray[np.floating]) -> float:
    """Otsu's threshold (maximum between-class variance; scikit-image), NaN ignored."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or float(v.max()) <= float(v.min()):
        return math.nan
    return float(threshold_otsu(v))  # type: ignore[no-untyped-call]


def kittler_illingworth_threshold(values: NDArray[np.floating], bins: int = 256) -> float:
    """Kittler & Illingworth's minimum error threshold, NaN ignored.

    Models the histogram as two Gaussian classes and picks the bin edge minimising
    ``J(t) = 1 + 2 [P1 ln s1 + P2 ln s2] - 2 [P1 ln P1 + P2 ln P2]`` (Kittler & Illingworth 1986,
    eq. 15), the classification error of the fitted mixture. Unlike Otsu it allows classes of
    unequal spread and size. Returns the upper edge of the last bin of the lower class.
    """
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or float(v.max()) <= float(v.min()):
        return math.nan
    counts, edges = np.histogram(v, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    h = counts / counts.sum()
    p1 = np.cumsum(h)
    m1 = np.cumsum(h * centres)
    q1 = np.cumsum(h * centres * centres)
    p2 = 1.0 - p1
    m2 = m1[-1] - m1
    q2 = q1[-1] - q1
    with np.errstate(divide="ignore", invalid="ignore"):
        mu1, mu2 = m1 / p1, m2 / p2
        var1, var2 = q1 / p1 - mu1 * mu1, q2 / p2 - mu2 * mu2
        j = 1.0 + p1 * np.log(var1) + p2 * np.log(var2) - 2.0 * (p1 * np.log(p1) + p2 * np.log(p2))
    # A class of one bin has no spread: its Gaussian is degenerate, not a better fit.
    bad = (p1 <= 0) | (p2 <= 1e-12) | ~(var1 > 0) | ~(var2 > 0) | ~np.isfinite(j)
    if bad.all():
        return math.nan
    j = np.where(bad, np.inf, j)
    return float(edges[int(np.argmin(j)) + 1])


def has_valley(values: NDArray[np.floating], threshold: float, *, top: float) -> bool:
    """Whether the histogram of ``values`` (``VALLEY_BINS`` bins over ``[min, top]``) has a
    valley at ``threshold``: the highest bin on each side holds at least ``VALLEY_RATIO`` times
    the count of the threshold's bin."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    lo = float(v.min()) if v.size else 0.0
    if not (v.size and math.isfinite(threshold) and top > lo and lo < threshold < top):
        return False
    counts, edges = np.histogram(np.minimum(v, top), bins=VALLEY_BINS, range=(lo, top))
    i = int(np.clip(np.searchsorted(edges, threshold, side="right") - 1, 0, VALLEY_BINS - 1))
    if i == 0 or i == VALLEY_BINS - 1:
        return False
    valley = float(counts[i])
    return (
        float(counts[:i].max()) >= VALLEY_RATIO * valley
        and float(counts[i + 1 :].max()) >= VALLEY_RATIO * valley
    )


@dataclass(frozen=True)
class Threshold:
    """A threshold on a chi-square statistic and how it was chosen.

    ``value`` applies to the statistic (squared standardised length); ``chi2_quantile`` is the
    noise quantile at ``alpha``; ``automatic`` the Otsu/KI threshold on the statistic when one
    was computed (NaN otherwise); ``rule`` names what decided, in words.
    """

    value: float
    chi2_quantile: float
    automatic: float
    method: str
    rule: str

    @property
    def sigma(self) -> float:
        """The threshold as a standardised length (square root of ``value``)."""
        return math.sqrt(self.value) if self.value >= 0 else math.nan


def change_threshold(
    statistic: NDArray[np.floating],
    dof: int,
    *,
    alpha: float,
    method: ThresholdMethod = "chi2",
) -> Threshold:
    """Threshold for a chi-square change statistic (valid pixels; NaN ignored).

    ``"chi2"``: the chi-square quantile at ``alpha``. ``"otsu"`` and ``"ki"``: the automatic
    threshold on the standardised length ``sqrt(statistic)`` (its histogram up to the 99.9th
    percentile, so a few clouds cannot stretch it), used when the histogram has a valley there
    and it is above the chi-square quantile; the chi-square quantile otherwise (Otsu fails when
    change is rare: it splits the no-change mode).
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(
            f"threshold method {method!r} unknown; allowed: {', '.join(THRESHOLD_METHODS)}"
        )
    q = chi_square_threshold(dof, alpha)
    if method == "chi2":
        return Threshold(q, q, math.nan, method, f"chi2: chi-square quantile at alpha={alpha:g}")
    s = np.asarray(statistic, np.float64)
    length = np.sqrt(s[np.isfinite(s)])
    if length.size < 2:
        return Threshold(q, q, math.nan, method, f"chi2: too few pixels for {method}")
    top = float(np.quantile(length, 0.999))
    clipped = np.minimum(length, top)
    t = otsu_threshold(clipped) if method == "otsu" else kittler_illingworth_threshold(clipped)
    auto = t * t if math.isfinite(t) else math.nan
    if not has_valley(clipped, t, top=top):
        return Threshold(q, q, auto, method, f"chi2: {method} threshold not at a valley")
    if not auto > q:
        return Threshold(q, q, auto, method, f"chi2: {method} threshold below the quantile")
    return Threshold(auto, q, auto, method, f"{method}: histogram valley above the quantile")


# --------------------------------------------------------------------------------------------
# IR-MAD
# --------------------------------------------------------------------------------------------


def _robust_centre_scale(x: Float64Array, floor: float) -> tuple[Float64Array, Float64Array]:
    """Per row median and ``max(1.4826 MAD, floor)`` of a (k, n) array."""
    centre = np.median(x, axis=1)
    scale = MAD_TO_SIGMA * np.median(np.abs(x - centre[:, None]), axis=1)
    return centre, np.maximum(scale, floor)


def _sample(valid: BoolArray, limit: int) -> NDArray[np.intp]:
    """Flat indices of the valid pixels, every k-th so that at most ``limit`` remain."""
    idx = np.flatnonzero(valid)
    step = max(1, math.ceil(idx.size / limit))
    return idx[::step]


@dataclass(frozen=True)
class IRMAD:
    """Result of :func:`irmad`.

    ``bands`` are the band indices used (a band constant in either date carries no information
    and is left out). ``rho`` the canonical correlations, ascending (MAD 1 is the least
    correlated pair). ``a`` and ``b`` (bands x variates) turn ``before - mean_before`` and
    ``after - mean_after`` into the canonical variates; ``centre`` and ``sigma`` are each MAD
    variate's median and robust scale. ``chi2`` is Z and ``p_nochange`` its chi-square survival
    probability (NaN outside valid). ``iterations`` counts CCA estimations; ``converged`` is
    whether the canonical correlations settled within ``tol``.
    """

    bands: tuple[int, ...]
    rho: Float64Array
    a: Float64Array
    b: Float64Array
    mean_before: Float64Array
    mean_after: Float64Array
    centre: Float64Array
    sigma: Float64Array
    chi2: FloatArray
    p_nochange: FloatArray
    iterations: int
    converged: bool
    sample_pixels: int

    @property
    def dof(self) -> int:
        """Degrees of freedom of ``chi2``: the number of MAD variates."""
        return len(self.bands)

    def variates(self, before: FloatArray, after: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Standardised canonical variates ``(U - centre) / sigma`` and ``V / sigma`` (variate,
        y, x), so that the squared length of their difference is ``chi2`` (float32)."""
        u = np.empty((self.dof, *before.shape[1:]), np.float32)
        v = np.empty_like(u)
        for rows, ub, vb in self._blocks(before, after):
            u[:, rows], v[:, rows] = ub, vb
        return u, v

    def _blocks(
        self, before: FloatArray, after: FloatArray, rows: int = 256
    ) -> Iterator[tuple[slice, FloatArray, FloatArray]]:
        """The standardised variates by blocks of rows, so temporaries stay small."""
        sel = list(self.bands)
        ua = (self.a / self.sigma).T.astype(np.float32)
        vb = (self.b / self.sigma).T.astype(np.float32)
        shift = (self.centre / self.sigma).astype(np.float32)[:, None, None]
        mx = self.mean_before.astype(np.float32)[:, None, None]
        my = self.mean_after.astype(np.float32)[:, None, None]
        for r0 in range(0, before.shape[1], rows):
            block = slice(r0, min(r0 + rows, before.shape[1]))
            x = before[sel, block] - mx
            y = after[sel, block] - my
            yield (
                block,
                np.einsum("kj,jyx->kyx", ua, x) - shift,
                np.einsum("kj,jyx->kyx", vb, y),
            )


def _cca(
    x: Float64Array, y: Float64Array, w: Float64Array
) -> tuple[Float64Array, Float64Array, Float64Array, Float64Array, Float64Array]:
    """Weighted canonical correlation analysis of standardised (N, n) ``x`` and ``y``:
    (rho ascending, a, b, mean_x, mean_y); ``a`` and ``b`` are (N bands, N variates), each
    variate of unit weighted variance. (Pixels along the last axis: an (n, 6) @ (6, 6) product
    is ten times slower with a threaded BLAS.)"""
    n_bands = x.shape[0]
    sw = float(w.sum())
    mx = x @ w / sw
    my = y @ w / sw
    xc = x - mx[:, None]
    yc = y - my[:, None]
    ridge = 1e-9 * np.eye(n_bands)  # keeps identical or collinear bands solvable
    s11 = (xc * w) @ xc.T / sw + ridge
    s22 = (yc * w) @ yc.T / sw + ridge
    s12 = (xc * w) @ yc.T / sw
    m = s12 @ linalg.solve(s22, s12.T, assume_a="pos")
    m = (m + m.T) / 2
    r2, a = linalg.eigh(m, s11)  # ascending; a' s11 a = I
    rho = np.sqrt(np.clip(r2, 0.0, 1.0))
    b = linalg.solve(s22, s12.T @ a, assume_a="pos")
    norm = np.sqrt(np.einsum("ij,ij->j", b, s22 @ b))
    b = np.where(norm > 1e-12, b / np.where(norm > 1e-12, norm, 1.0), 0.0)
    sign = np.sign(np.sum(s11 @ a, axis=0))  # Canty: positive correlation with the bands
    sign[sign == 0] = 1.0
    return rho, a * sign, b * sign, mx, my


def irmad(
    before: FloatArray,
    after: FloatArray,
    valid: BoolArray | None = None,
    *,
    max_iter: int = 50,
    tol: float = 1e-3,
    sample: int = IRMAD_SAMPLE,
    scale: MadScale = "robust",
) -> IRMAD:
    """Iteratively reweighted MAD (Nielsen 2007) with robust MAD scales; see the module notes.

    Weights start at 1; each iteration estimates the weighted CCA, the MAD variates, their
    robust scales, Z and ``P(no change)``, which become the next weights, until no canonical
    correlation moves by ``tol`` or more (Canty's stopping rule) or after ``max_iter``. The
    statistics are estimated on at most ``sample`` valid pixels; the maps cover every pixel.
    ``scale="canonical"`` standardises by Nielsen's ``sqrt(2 (1 - rho_i))`` instead of the
    robust scale (for comparison: its p-values are too small, see the module notes).

    Limits, inherent to the method: a change that is an affine function of BEFORE's spectrum
    over the whole scene (in a two-class scene, every built pixel brightened alike) is
    indistinguishable from a calibration difference and is not found; CVA is. Bands that are
    exact linear combinations of others (a band given twice) leave canonical pairs of pure
    rounding noise, whose Z is meaningless; real bands always carry independent noise.
    Canonical pairs of nearly equal correlation are determined only up to a rotation, which
    moves Z by a few per cent between runs on affinely transformed inputs.
    """
    if before.shape != after.shape:
        raise ValueError(f"images differ in shape: {before.shape} vs {after.shape}")
    if scale not in MAD_SCALES:
        raise ValueError(f"MAD scale {scale!r} unknown; allowed: {', '.join(MAD_SCALES)}")
    ok = np.asarray(np.isfinite(before).all(axis=0) & np.isfinite(after).all(axis=0), bool)
    if valid is not None:
        ok &= valid
    n_bands = before.shape[0]
    idx = _sample(ok, sample)
    x_all = before.reshape(n_bands, -1)[:, idx].astype(np.float64)
    y_all = after.reshape(n_bands, -1)[:, idx].astype(np.float64)
    sd_x = x_all.std(axis=1) if idx.size else np.zeros(n_bands)
    sd_y = y_all.std(axis=1) if idx.size else np.zeros(n_bands)
    magnitude = np.maximum(np.abs(x_all).max(axis=1, initial=0.0), 1.0)
    used = tuple(
        int(i) for i in np.flatnonzero((sd_x > 1e-12 * magnitude) & (sd_y > 1e-12 * magnitude))
    )
    sel = list(used)
    n_var = len(used)
    if n_var == 0 or idx.size <= n_var:
        zero = np.zeros((n_var, n_var))
        chi2_map = np.where(ok, 0.0, np.nan).astype(np.float32)
        p_map = np.where(ok, 1.0, np.nan).astype(np.float32)
        vec = np.zeros(n_var)
        return IRMAD(used, vec, zero, zero, vec, vec, vec, np.ones(n_var), chi2_map, p_map,
                     0, True, int(idx.size))  # fmt: skip
    x = x_all[sel] / sd_x[sel][:, None]
    y = y_all[sel] / sd_y[sel][:, None]
    w = np.ones(idx.size)
    previous: Float64Array | None = None
    converged = False
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        rho, a, b, mx, my = _cca(x, y, w)
        mad = a.T @ (x - mx[:, None]) - b.T @ (y - my[:, None])
        centre, sigma = _robust_centre_scale(mad, MIN_MAD_SIGMA)
        if scale == "canonical":
            centre = np.zeros(n_var)
            sigma = np.maximum(np.sqrt(2.0 * (1.0 - rho)), MIN_MAD_SIGMA)
        z = np.sum(((mad - centre[:, None]) / sigma[:, None]) ** 2, axis=0)
        w = special.chdtrc(n_var, z)
        if previous is not None and float(np.max(np.abs(rho - previous))) < tol:
            converged = True
            break
        previous = rho
    # Back to the bands' own units: variate = a_raw' (band - mean) per pixel.
    a_raw = a / sd_x[sel][:, None]
    b_raw = b / sd_y[sel][:, None]
    mean_before, mean_after = mx * sd_x[sel], my * sd_y[sel]
    empty = np.full(before.shape[1:], np.nan, np.float32)
    result = IRMAD(
        used, rho, a_raw, b_raw, mean_before, mean_after, centre, sigma,
        empty, empty, iterations, converged, int(idx.size),
    )  # fmt: skip
    chi2_map = np.empty(before.shape[1:], np.float32)
    for block, ub, vb in result._blocks(before, after):
        ub -= vb
        chi2_map[block] = np.einsum("kyx,kyx->yx", ub, ub)
    chi2_map[~ok] = np.nan
    p_map = special.chdtrc(n_var, chi2_map).astype(np.float32)
    return IRMAD(
        used, rho, a_raw, b_raw, mean_before, mean_after, centre, sigma,
        chi2_map, p_map, iterations, converged, int(idx.size),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Relative radiometric normalisation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Normalisation:
    """Per band ``after = intercept + slope * before`` on no-change pixels.

    ``gain_fitted[i]`` is False where the gain was not determined (see :data:`GAIN_TOLERANCE`)
    and ``slope`` is 1 with ``intercept`` the median difference (an offset-only correction).
    ``correlation`` is the no-change pixels' correlation of the two dates per band; ``pixels``
    how many no-change pixels were used.
    """

    method: str
    slope: Float64Array
    intercept: Float64Array
    correlation: Float64Array
    gain_fitted: NDArray[np.bool_]
    pixels: int

    def apply(self, after: FloatArray) -> FloatArray:
        """AFTER in BEFORE's radiometry: ``(after - intercept) / slope`` per band (float32)."""
        out = np.asarray(after, np.float32) - self.intercept.astype(np.float32)[:, None, None]
        out /= self.slope.astype(np.float32)[:, None, None]
        return out

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (rounded)."""
        return {
            "method": self.method,
            "slope": [round(float(s), 5) for s in self.slope],
            "intercept": [round(float(c), 6) for c in self.intercept],
            "correlation": [round(float(r), 4) for r in self.correlation],
            "gain_fitted": [bool(g) for g in self.gain_fitted],
            "pixels": self.pixels,
        }


def _regress(x: Float64Array, y: Float64Array, method: str) -> tuple[float, float, float, bool]:
    """(slope, intercept, r, gain_fitted) of y on x; offset only when the gain is undetermined."""
    mx, my = float(x.mean()), float(y.mean())
    sxx = float(np.mean((x - mx) ** 2))
    syy = float(np.mean((y - my) ** 2))
    sxy = float(np.mean((x - mx) * (y - my)))
    r = sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0
    determined = r > 0 and r * r * (1.0 + GAIN_TOLERANCE) >= 1.0
    if determined:
        if method == "ols":
            slope = sxy / sxx
        else:  # major axis of the scatter: the orthogonal (total least squares) line
            slope = (syy - sxx + math.sqrt((syy - sxx) ** 2 + 4 * sxy * sxy)) / (2 * sxy)
        if slope > 0 and math.isfinite(slope):
            return slope, my - slope * mx, r, True
    return 1.0, float(np.median(y - x)), r, False


def normalise(
    before: FloatArray,
    after: FloatArray,
    nochange: BoolArray,
    *,
    method: RegressionMethod = "orthogonal",
) -> Normalisation:
    """Fit AFTER on BEFORE per band over the ``nochange`` pixels (finite in both dates).

    ``"orthogonal"`` (default) minimises perpendicular distances, right when both dates carry
    noise of similar size; ``"ols"`` minimises the vertical ones and flattens the slope by
    BEFORE's noise. With fewer than 3 pixels every band gets slope 1 and offset 0.
    """
    if method not in REGRESSION_METHODS:
        raise ValueError(
            f"regression method {method!r} unknown; allowed: {', '.join(REGRESSION_METHODS)}"
        )
    if before.shape != after.shape:
        raise ValueError(f"images differ in shape: {before.shape} vs {after.shape}")
    ok = nochange & np.isfinite(before).all(axis=0) & np.isfinite(after).all(axis=0)
    n_bands = before.shape[0]
    slope, intercept = np.ones(n_bands), np.zeros(n_bands)
    corr, fitted = np.zeros(n_bands), np.zeros(n_bands, bool)
    n = int(ok.sum())
    if n >= 3:
        for i in range(n_bands):
            x = before[i][ok].astype(np.float64)
            y = after[i][ok].astype(np.float64)
            slope[i], intercept[i], corr[i], fitted[i] = _regress(x, y, method)
    return Normalisation(method, slope, intercept, corr, fitted, n)


# --------------------------------------------------------------------------------------------
# CVA and registration tolerance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CVA:
    """Change vector analysis of ``after - before``: per band the no-change ``centre`` and
    ``sigma`` (robust scale floored at the noise floor), the squared standardised length
    ``chi2`` (NaN outside valid), its ``threshold`` and the ``changed`` pixels."""

    centre: Float64Array
    sigma: Float64Array
    chi2: FloatArray
    threshold: Threshold
    changed: BoolArray

    @property
    def dof(self) -> int:
        return int(self.centre.size)

    def variates(self, before: FloatArray, after: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(before + centre) / sigma`` and ``after / sigma`` per band, whose difference has
        squared length ``chi2`` (for :func:`tolerant_chi_square`)."""
        s = self.sigma[:, None, None]
        u = (before + self.centre[:, None, None]) / s
        return np.asarray(u, np.float32), np.asarray(after / s, np.float32)


def cva(
    before: FloatArray,
    after: FloatArray,
    nochange: BoolArray | None = None,
    *,
    alpha: float = 1e-3,
    threshold: ThresholdMethod = "chi2",
    noise_floor: float = 0.0,
) -> CVA:
    """CVA with a chi-square test of the squared standardised length.

    Each band's difference is centred on its median and divided by ``max(1.4826 MAD,
    noise_floor)``, both over the ``nochange`` pixels (all valid pixels when None or fewer than
    100): a pure-noise pixel then has a chi-square statistic with N degrees of freedom. Give
    ``after`` normalised to ``before`` (:meth:`Normalisation.apply`) so a gain or offset is not
    counted; ``noise_floor`` (in the images' units) keeps a near-perfect pair from calling
    differences below sensor noise change.
    """
    if before.shape != after.shape:
        raise ValueError(f"images differ in shape: {before.shape} vs {after.shape}")
    valid = np.isfinite(before).all(axis=0) & np.isfinite(after).all(axis=0)
    diff = np.asarray(after, np.float32) - np.asarray(before, np.float32)
    ref = valid if nochange is None else valid & nochange
    if int(ref.sum()) < 100:
        ref = valid
    n_bands = before.shape[0]
    centre, sigma = np.zeros(n_bands), np.full(n_bands, max(noise_floor, 1e-30))
    if ref.any():
        sample = diff[:, ref].astype(np.float64)
        centre, sigma = _robust_centre_scale(sample, max(noise_floor, 1e-30))
    diff -= centre[:, None, None].astype(np.float32)
    diff /= sigma[:, None, None].astype(np.float32)
    chi2_map = np.einsum("kyx,kyx->yx", diff, diff)
    chi2_map[~valid] = np.nan
    thr = change_threshold(chi2_map[valid], n_bands, alpha=alpha, method=threshold)
    with np.errstate(invalid="ignore"):
        changed = valid & (chi2_map > thr.value)
    return CVA(centre, sigma, chi2_map, thr, np.asarray(changed))


def _shifts(radius: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def _neighbours(
    shape: tuple[int, ...], ys: NDArray[np.intp], xs: NDArray[np.intp], dy: int, dx: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], BoolArray]:
    """Row and column of the neighbour at (dy, dx) of each pixel (clipped to the grid) and
    whether it lies on the grid."""
    y2, x2 = ys + dy, xs + dx
    inside = (y2 >= 0) & (y2 < shape[0]) & (x2 >= 0) & (x2 < shape[1])
    return np.clip(y2, 0, shape[0] - 1), np.clip(x2, 0, shape[1] - 1), inside


def tolerant_chi_square(
    u: FloatArray, v: FloatArray, radius: int, where: BoolArray | None = None
) -> FloatArray:
    """Registration-tolerant chi-square: the larger of ``min_s |u(x) - v(x + s)|^2`` and
    ``min_s |u(x + s) - v(x)|^2`` over shifts ``s`` of up to ``radius`` pixels in each axis.

    ``u`` and ``v`` are standardised variates of the two dates (``IRMAD.variates``,
    ``CVA.variates``), so ``radius=0`` gives the plain statistic. A pixel is then changed only if
    no neighbour in the other date matches it, seen from either date: a one-pixel
    misregistration of a field edge or a roof matches its neighbour and is not change; a new
    building matches nothing. Being a minimum, it is never above the plain statistic, so a
    chi-square test on it keeps its false-alarm rate at most ``alpha``. Shifts leaving the grid
    or landing on no data are skipped. Computed only ``where`` True (NaN elsewhere; all pixels
    when None): the test needs it only where the plain statistic already rejects.
    """
    if u.shape != v.shape:
        raise ValueError(f"variates differ in shape: {u.shape} vs {v.shape}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0 pixels, got {radius}")
    shape = u.shape[1:]
    ys, xs = np.nonzero(np.ones(shape, bool) if where is None else where)
    uu, vv = u[:, ys, xs], v[:, ys, xs]
    best_u = np.full(ys.size, np.inf, np.float32)
    best_v = np.full(ys.size, np.inf, np.float32)
    for dy, dx in _shifts(radius):
        y2, x2, inside = _neighbours(shape, ys, xs, dy, dx)
        d = uu - v[:, y2, x2]
        z = np.where(inside, np.einsum("kn,kn->n", d, d), np.nan)
        np.fmin(best_u, z, out=best_u)
        d = u[:, y2, x2] - vv
        z = np.where(inside, np.einsum("kn,kn->n", d, d), np.nan)
        np.fmin(best_v, z, out=best_v)
    best = np.fmax(best_u, best_v)
    best[np.isinf(best)] = np.nan
    out = np.full(shape, np.nan, np.float32)
    out[ys, xs] = best
    return out


def change_fraction(
    delta: FloatArray,
    radius: int = 1,
    reference: BoolArray | None = None,
    where: BoolArray | None = None,
) -> FloatArray:
    """Per pixel, the share of the local full change that its change vector carries.

    ``delta`` (band, y, x) is the standardised change vector (NaN = no data). For a pixel ``x``,
    ``f = |d_x|^2 / max_n <d_x, d_n>`` over ``x`` itself and the ``reference`` pixels ``n``
    within ``radius`` (all pixels when None), so ``0 <= f <= 1``. A mixed pixel holding a
    fraction ``f`` of the change ``c`` of a pure neighbour has ``d_x = f c`` and gets ``f``
    (linear mixing); a pixel with no more-changed reference pixel near gets 1; a neighbour of
    another kind of change (little aligned with ``d_x``) does not lower it. NaN where ``d_x``
    is 0 or no data, and outside ``where`` (all pixels when None).
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0 pixels, got {radius}")
    shape = delta.shape[1:]
    finite = np.isfinite(delta).all(axis=0)
    d = np.nan_to_num(np.asarray(delta, np.float32))
    ref = d if reference is None else np.where(reference, d, 0.0).astype(np.float32)
    ys, xs = np.nonzero(finite if where is None else finite & where)
    dd = d[:, ys, xs]
    own = np.einsum("kn,kn->n", dd, dd)
    best = own.copy()
    for dy, dx in _shifts(radius):
        y2, x2, inside = _neighbours(shape, ys, xs, dy, dx)
        dot = np.where(inside, np.einsum("kn,kn->n", dd, ref[:, y2, x2]), 0.0)
        np.fmax(best, dot, out=best)
    out = np.full(shape, np.nan, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ys, xs] = np.where(own > 0, own / best, np.nan)
    return out


# --------------------------------------------------------------------------------------------
# The former single-method change (kept for callers of the stage API)
# --------------------------------------------------------------------------------------------


def change_vector_magnitude(before: FloatArray, after: FloatArray) -> FloatArray:
    """Euclidean length of the per-pixel spectral difference (band, y, x) -> (y, x)."""
    if before.shape != after.shape:
        raise ValueError(f"images differ in shape: {before.shape} vs {after.shape}")
    diff = after.astype(np.float64) - before.astype(np.float64)
    out: FloatArray = np.sqrt(np.sum(diff * diff, axis=0)).astype(np.float32)
    return out


@dataclass(frozen=True)
class SpectralChange:
    changed: BoolArray
    magnitude: FloatArray
    threshold: float


def standardised_difference(before: FloatArray, after: FloatArray) -> FloatArray:
    """Per-band difference divided by its robust standard deviation (1.4826 MAD).

    Makes the change magnitude unit-free, so uncalibrated DN and reflectance behave alike; a band
    that does not differ at all contributes zero.
    """
    diff = after.astype(np.float64) - before.astype(np.float64)
    out = np.zeros_like(diff)
    for i, d in enumerate(diff):
        ok = np.isfinite(d)
        if not ok.any():
            out[i] = np.nan
            continue
        centre = float(np.median(d[ok]))
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(d[ok] - centre)))
        out[i] = (d - centre) / sigma if sigma > 0 else np.where(ok, 0.0, np.nan)
    return out.astype(np.float32)


def spectral_change(
    before: FloatArray,
    after: FloatArray,
    *,
    min_magnitude: float = 0.0,
    standardize: bool = False,
    opening_px: int = 0,
) -> SpectralChange:
    """Change vector analysis with an Otsu threshold on the magnitude, floored at
    ``min_magnitude`` (so identical or merely noisy images give no change). With
    ``standardize`` the magnitude is in robust standard deviations of each band's difference.

    Superseded in ``compare`` by ``pipeline.pairwise``: Otsu splits the no-change mode when
    change is rare, and a plain-length floor is not a calibrated test (see :func:`cva`).
    """
    if standardize:
        zero = np.zeros_like(before)
        mag = change_vector_magnitude(zero, standardised_difference(before, after))
    else:
        mag = change_vector_magnitude(before, after)
    valid = np.isfinite(mag)
    values = mag[valid]
    threshold = float(min_magnitude)
    if values.size and float(values.max()) > float(values.min()):
        threshold = max(threshold, float(threshold_otsu(values)))  # type: ignore[no-untyped-call]
    with np.errstate(invalid="ignore"):
        changed = valid & (mag > threshold)
    return SpectralChange(open_mask(np.asarray(changed), opening_px), mag, threshold)
