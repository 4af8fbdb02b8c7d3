"""Trend statistics for the site-year tables, and area uncertainty without a reference sample.

Pure stage: 1-D arrays and plain parameters in, frozen dataclasses out. The formulas are those of
DOMAIN.md, "Statistics for trend tables":

- Theil-Sen slope with its 95% interval (scipy.stats.theilslopes).
- Mann-Kendall S, Var(S) with the tie correction, Z with the continuity correction and a two-sided
  normal p. Below ``min_n`` points (default 5) the trend is reported as ``"insufficient"`` and Z/p
  as NaN: with n = 4 even the exact test cannot reach p < 0.05, so a printed p would mislead.
- The same test with the Hamed-Rao (1998) variance correction for autocorrelation
  (:func:`hamed_rao`), as R's ``modifiedmk::mmkh`` and pymannkendall's
  ``hamed_rao_modification_test`` compute it, except that by default the correction may only
  widen the test (see there).
- Pettitt change point, with a permutation p (:func:`pettitt`): DOMAIN's approximation
  p ~ 2 exp(-6K^2/(n^3 + n^2)) is kept as ``p_approx`` but is far too conservative for yearly
  series (at n = 12 it rejects 0.8% of series without a change at the 5% level, at n <= 10 never).
- Which years enter a trend (:func:`select_series`): years flagged ``few-clear-observations``,
  ``partial-coverage`` or ``no-data`` are left out by default and counted; every flag a row
  may carry is in :data:`KNOWN_FLAGS`, and :data:`FLAG_MEANINGS` says what it means.
- Edge uncertainty 0.5 * pixel * perimeter, a +/- on a mapped area, counting only the boundary
  inside the valid analysis area (:func:`edge_uncertainty_ha`), and the uncertainty of a change
  between two years' masks in which the unchanged boundary cancels (:func:`net_change`).

Uncertainty convention used throughout sitewatch: a "+/-" (``edge_uncertainty_ha``, and the
``*_ci`` fields of :func:`pipeline.accuracy.olofsson`) is a **95% half-width**; the matching
standard error is half-width / 1.96 (:func:`se_from_half_width`). :func:`significant_change`
takes standard errors, and applies DOMAIN's rule |dA| > 1.96 sqrt(SE1^2 + SE2^2) for independent
estimates (two Olofsson samples); two masks of the same ground use :func:`net_change`.

Permutation p-values are seeded (``seed``, default 0), so a table is byte-reproducible for given
inputs and numpy version; when n! is at most the number of permutations asked for, every
permutation is enumerated and the p-value is exact.

Inputs must be finite: NaN means a missing year and is dropped by :func:`summarise` only, so that
a gap is never silently passed to a statistic.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from pipeline.errors import InsufficientDataError

__all__ = [
    "DATING_FLAGS",
    "DEFAULT_PERMUTATIONS",
    "EXCLUDING_FLAGS",
    "FLAG_MEANINGS",
    "KNOWN_FLAGS",
    "NOTED_FLAGS",
    "Z95",
    "ChangeKind",
    "HamedRao",
    "MannKendall",
    "NetChange",
    "Pettitt",
    "SeriesSelection",
    "TheilSen",
    "TrendLabel",
    "TrendSummary",
    "change_kind",
    "edge_uncertainty_ha",
    "hamed_rao",
    "mann_kendall",
    "net_change",
    "net_change_uncertainty",
    "permutation_orders",
    "permutation_p",
    "pettitt",
    "se_from_half_width",
    "select_series",
    "significant_change",
    "significant_net_change",
    "summarise",
    "theil_sen",
]

Z95 = 1.959963984540054
"""Two-sided 95% normal quantile."""

TrendLabel = Literal["increasing", "decreasing", "no trend", "insufficient"]

DEFAULT_MIN_N = 5
DEFAULT_ALPHA = 0.05
DEFAULT_PERMUTATIONS = 9999
"""Permutations behind a permutation p: its resolution is 1e-4, its Monte Carlo standard error
near p = 0.05 about 0.002."""


def _finite_1d(values: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise ValueError(
            f"{name} has non-finite values at positions {bad}; drop missing years first "
            "(summarise() does)"
        )
    return arr


def _check_alpha(alpha: float, name: str = "alpha") -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {alpha}")


def _check_permutations(n_permutations: int) -> None:
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")


def permutation_orders(n: int, n_permutations: int, seed: int) -> tuple[NDArray[np.intp], bool]:
    """Orders of ``range(n)`` for a permutation test, one per row, and whether they are exact.

    When n! <= ``n_permutations`` every permutation is listed once (identity included): the test
    is then exact, p = #{T* >= T} / n!. Otherwise ``n_permutations`` seeded random permutations,
    and p = (1 + #{T* >= T}) / (1 + n_permutations) (the observed order counts once).
    """
    _check_permutations(n_permutations)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if math.factorial(n) <= n_permutations:
        orders = np.array(list(itertools.permutations(range(n))), dtype=np.intp)
        return orders.reshape(-1, n), True
    rng = np.random.default_rng(seed)
    base = np.broadcast_to(np.arange(n, dtype=np.intp), (n_permutations, n))
    return rng.permuted(base, axis=1), False


def permutation_p(observed: float, permuted: NDArray[np.float64], exact: bool) -> float:
    """Share of permuted statistics at least as large as ``observed`` (see
    :func:`permutation_orders`); a relative tolerance of 1e-9 absorbs rounding, so that a
    permutation equal to the observed order always counts."""
    tol = 1e-9 * max(1.0, abs(observed)) if math.isfinite(observed) else 0.0
    hits = int(np.count_nonzero(permuted >= observed - tol))
    if exact:
        return hits / permuted.size
    return (1 + hits) / (1 + permuted.size)


@dataclass(frozen=True)
class TheilSen:
    """Theil-Sen line y = intercept + slope * x; slope_low/high bound the 95% interval."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float


def theil_sen(x: ArrayLike, y: ArrayLike) -> TheilSen:
    """Median of pairwise slopes, intercept median(y) - slope * median(x), 95% slope interval.

    This is ``scipy.stats.theilslopes(y, x, alpha=0.95)`` (the interval from the normal
    approximation of Kendall's S with ties in x and y, Sen 1968). Pairs with equal x are left
    out (scipy's rule). A constant series has slope 0 and a zero-width interval. Needs at least
    two distinct x.
    """
    xs = _finite_1d(x, "x")
    ys = _finite_1d(y, "y")
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    if np.unique(xs).size < 2:
        raise InsufficientDataError(
            f"Theil-Sen needs at least 2 distinct x values, got {np.unique(xs).size}"
        )
    res = stats.theilslopes(ys, xs, alpha=0.95)
    return TheilSen(
        slope=float(res.slope),
        intercept=float(res.intercept),
        slope_low=float(res.low_slope),
        slope_high=float(res.high_slope),
    )


@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall test of a series in time order.

    ``tau`` is Kendall's tau-b between time and value (S over the tie-corrected number of pairs,
    as scipy.stats.kendalltau reports it; equal to S / (n(n-1)/2) when no values tie), 0 for a
    constant series and NaN when n < 2. ``z`` and ``p`` are NaN when ``trend`` is "insufficient".
    """

    n: int
    s: int
    var_s: float
    z: float
    p: float
    tau: float
    trend: TrendLabel


def _tie_counts(y: NDArray[np.float64]) -> NDArray[np.int64]:
    _, counts = np.unique(y, return_counts=True)
    return np.asarray(counts[counts > 1], dtype=np.int64)


def _check_min_n(min_n: int) -> None:
    if min_n < 2:
        raise ValueError(f"min_n must be >= 2, got {min_n}")


def _mk_s_var(ys: NDArray[np.float64]) -> tuple[int, float]:
    """S and its tie-corrected variance."""
    n = int(ys.size)
    # [k, j] = sgn(y_j - y_k), from comparisons so that extreme values cannot overflow.
    later, earlier = ys[np.newaxis, :], ys[:, np.newaxis]
    sign = (later > earlier).astype(np.int64) - (later < earlier).astype(np.int64)
    s = int(np.triu(sign, k=1).sum())
    ties = _tie_counts(ys)
    var_s = float(n * (n - 1) * (2 * n + 5) - np.sum(ties * (ties - 1) * (2 * ties + 5))) / 18.0
    return s, var_s


def _z_p(s: int, var_s: float) -> tuple[float, float]:
    """Z with the continuity correction (S moved one step toward 0) and the two-sided p."""
    z = 0.0 if s == 0 or var_s == 0.0 else (s - math.copysign(1.0, s)) / math.sqrt(var_s)
    return z, float(min(1.0, 2.0 * stats.norm.sf(abs(z))))


def _label(s: int, p: float, alpha: float) -> TrendLabel:
    return ("increasing" if s > 0 else "decreasing") if p < alpha else "no trend"


def mann_kendall(
    y: ArrayLike, min_n: int = DEFAULT_MIN_N, alpha: float = DEFAULT_ALPHA
) -> MannKendall:
    """Mann-Kendall trend test of ``y`` (equally weighted observations, in time order).

    S = sum_{k<j} sgn(y_j - y_k); Var(S) = [n(n-1)(2n+5) - sum_t t(t-1)(2t+5)] / 18 over tie
    groups t; Z = (S - 1)/sqrt(Var S) for S > 0, (S + 1)/sqrt(Var S) for S < 0, 0 for S = 0;
    p = 2 (1 - Phi(|Z|)). The trend is "increasing"/"decreasing" when p < ``alpha``, else
    "no trend"; "insufficient" when n < ``min_n``. Serial correlation is not corrected for:
    :func:`hamed_rao` is the corrected variant. Memory is O(n^2): meant for yearly series, not
    per-pixel time stacks. Same S, Var(S), Z and p as pymannkendall's ``original_test``.
    """
    ys = _finite_1d(y, "y")
    _check_alpha(alpha)
    _check_min_n(min_n)
    n = int(ys.size)
    s, var_s = _mk_s_var(ys)
    ties = _tie_counts(ys)
    pairs = n * (n - 1) / 2.0
    tied_pairs = float(np.sum(ties * (ties - 1)) / 2.0)
    if n < 2:
        tau = math.nan
    elif pairs - tied_pairs == 0.0:
        tau = 0.0  # constant series: S = 0, no tendency either way
    else:
        tau = s / math.sqrt(pairs * (pairs - tied_pairs))

    if n < min_n:
        return MannKendall(n, s, var_s, math.nan, math.nan, tau, "insufficient")
    z, p = _z_p(s, var_s)
    return MannKendall(n, s, var_s, z, p, tau, _label(s, p, alpha))


@dataclass(frozen=True)
class HamedRao:
    """Mann-Kendall with the Hamed-Rao (1998) autocorrelation correction.

    ``var_s`` is the plain tie-corrected Var(S); ``correction`` is n/n*, the variance inflation
    factor computed from the significant autocorrelations (1 when none is significant, NaN when
    "insufficient"); ``var_s_corrected`` is what Z uses: ``var_s * max(correction, 1)`` when the
    test was run ``conservative`` (the default), ``var_s * correction`` otherwise.
    ``significant_lags`` lists the lags whose autocorrelation was used.
    """

    n: int
    s: int
    var_s: float
    correction: float
    var_s_corrected: float
    z: float
    p: float
    trend: TrendLabel
    significant_lags: tuple[int, ...]


def _ranks_with_float_ties(d: NDArray[np.float64]) -> NDArray[np.float64]:
    """Average ranks, values within 1e-10 of the series' scale of each other counted as tied:
    detrending an exactly linear series leaves rounding noise, not an order."""
    scale = float(np.max(np.abs(d))) if d.size else 0.0
    order = np.argsort(d, kind="stable")
    gaps = np.diff(d[order]) > 1e-10 * scale
    group = np.empty(d.size, dtype=np.int64)
    group[order] = np.concatenate(([0], np.cumsum(gaps)))
    return np.asarray(stats.rankdata(group), dtype=np.float64)


def _acf(x: NDArray[np.float64], nlags: int) -> NDArray[np.float64]:
    """Sample autocorrelation at lags 0..nlags (mean removed, lag sums over n, as R's ``acf``);
    all zero beyond lag 0 for a constant series."""
    n = x.size
    y = x - x.mean()
    acov = np.correlate(y, y, "full")[n - 1 :] / n
    if acov[0] == 0.0:
        out = np.zeros(nlags + 1)
        out[0] = 1.0
        return out
    return np.asarray(acov[: nlags + 1] / acov[0], dtype=np.float64)


def hamed_rao(
    y: ArrayLike,
    t: ArrayLike | None = None,
    min_n: int = DEFAULT_MIN_N,
    alpha: float = DEFAULT_ALPHA,
    *,
    acf_alpha: float = 0.05,
    max_lag: int | None = None,
    conservative: bool = True,
) -> HamedRao:
    """Mann-Kendall trend test of ``y`` with the Hamed & Rao (1998, J. Hydrol. 204:182) variance
    correction for serial correlation.

    1. Detrend: d = y - b t with b the Theil-Sen slope of y on ``t`` (default 0, 1, ..., n-1;
       pass the years so that a gap is not closed up in the slope).
    2. Rank d (average ranks) and take the sample autocorrelation r_i of the ranks at lags
       i = 1..``max_lag`` (default n - 1). Only lags with |r_i| > z_{1-acf_alpha/2} / sqrt(n)
       count (Hamed-Rao's significance rule); the others are set to 0.
    3. n/n* = 1 + 2 / (n(n-1)(n-2)) * sum_i (n-i)(n-i-1)(n-i-2) r_i, and Var*(S) = Var(S) n/n*.
    4. Z, p and the trend label as in :func:`mann_kendall`, with Var*(S).

    ``conservative`` (default True) floors n/n* at 1: negative autocorrelation would shrink the
    variance and make the test *more* ready to declare a trend, which a table meant to be
    defended should not do on the strength of an autocorrelation estimated from a dozen years.
    With ``conservative=False`` the correction is applied as published (R ``modifiedmk::mmkh``,
    pymannkendall ``hamed_rao_modification_test``, which it reproduces); an n/n* <= 0 then gives
    NaN Z/p and "insufficient". The lag ordering assumes equally spaced years: years missing in
    the middle are closed up (as both references do).

    Short series: the significance bound is 0.88 at n = 5 and 0.57 at n = 12, so for typical
    site series the correction only acts on strong autocorrelation; "insufficient" below
    ``min_n`` (and below 3 in any case). In 3,000 simulated series of 12 independent years the
    as-published correction rejected 8.1% at the 5% level, the conservative one 4.9% (plain
    test 4.9%); with AR(1) coefficient 0.5 all three rejected 17-19%: at these lengths no
    variance correction can see moderate autocorrelation, so read a trend p near alpha with
    care.

    Ties: the pair whose slope is the Theil-Sen slope is exactly level after detrending, and a
    linear series detrends to a constant; values within 1e-10 of the series' scale are ranked
    as ties here, where R and pymannkendall let rounding noise order them. Their n/n* can
    therefore differ when the number of pairs n(n-1)/2 is odd (the median slope is then one
    pair's slope); with an even number, or no such tie, the results agree to rounding.
    """
    ys = _finite_1d(y, "y")
    _check_alpha(alpha)
    _check_alpha(acf_alpha, "acf_alpha")
    _check_min_n(min_n)
    n = int(ys.size)
    if t is None:
        ts = np.arange(n, dtype=np.float64)
    else:
        ts = _finite_1d(t, "t")
        if ts.shape != ys.shape:
            raise ValueError(f"t and y must have the same length, got {ts.size} and {n}")
        if n > 1 and not np.all(np.diff(ts) > 0):
            raise ValueError(f"t must be strictly increasing, got {ts.tolist()}")
    if max_lag is not None and max_lag < 1:
        raise ValueError(f"max_lag must be >= 1 or None, got {max_lag}")
    s, var_s = _mk_s_var(ys)
    nan = math.nan
    if n < max(min_n, 3):
        return HamedRao(n, s, var_s, nan, nan, nan, nan, "insufficient", ())

    slope = theil_sen(ts, ys).slope
    detrended = ys - slope * (ts - ts[0])
    ranks = _ranks_with_float_ties(detrended)
    lags = n - 1 if max_lag is None else min(max_lag, n - 1)
    acf = _acf(ranks, lags)
    bound = float(stats.norm.ppf(1.0 - acf_alpha / 2.0)) / math.sqrt(n)
    used = tuple(i for i in range(1, lags + 1) if abs(acf[i]) > bound)
    total = sum((n - i) * (n - i - 1) * (n - i - 2) * float(acf[i]) for i in used)
    correction = 1.0 + 2.0 / (n * (n - 1) * (n - 2)) * total
    factor = max(correction, 1.0) if conservative else correction
    if factor <= 0.0:
        return HamedRao(n, s, var_s, correction, nan, nan, nan, "insufficient", used)
    var_star = var_s * factor
    z, p = _z_p(s, var_star)
    return HamedRao(n, s, var_s, correction, var_star, z, p, _label(s, p, alpha), used)


@dataclass(frozen=True)
class Pettitt:
    """Pettitt change point.

    ``index`` is the 0-based position of the last value of the first segment (the change
    happens between ``index`` and ``index + 1``); ``k`` is K = max |U_k|. ``p`` is the
    permutation p-value (exact when ``exact``), ``p_approx`` Pettitt's approximation
    2 exp(-6K^2/(n^3 + n^2)) capped at 1. With ``years``, ``last_year_before`` and
    ``first_year_after`` name the change: "between 2017 and 2018", the new level starting in
    ``first_year_after``. A constant series gives K = 0, index 0 and p = 1.
    """

    index: int
    k: float
    p: float
    p_approx: float
    exact: bool
    last_year_before: int | None = None
    first_year_after: int | None = None


def _pettitt_k(ranks: NDArray[np.float64]) -> NDArray[np.float64]:
    """K = max_k |U_k| for each row of ranks (rows: series)."""
    n = ranks.shape[-1]
    k = np.arange(1, n, dtype=np.float64)
    u = 2.0 * np.cumsum(ranks, axis=-1)[..., :-1] - k * (n + 1)
    return np.asarray(np.max(np.abs(u), axis=-1), dtype=np.float64)


def pettitt(
    y: ArrayLike,
    years: ArrayLike | None = None,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> Pettitt:
    """Pettitt's test: U_k = 2 sum_{i<=k} r_i - k(n+1) on (average) ranks r, K = max |U_k| over
    k = 1..n-1 (first maximum on ties).

    U_k equals sum_{i<=k} sum_{j>k} sgn(y_i - y_j): positive when the first segment is higher.
    The p-value is a permutation test of K: under "no change" every order of the values is
    equally likely, so p = share of orders with K* >= K (the observed ranks permuted, ties
    included; every order when n! <= ``n_permutations``, else that many seeded random orders).
    DOMAIN's approximation is kept as ``p_approx``: it is far too conservative for yearly series
    (Pettitt 1979 states it for p <= 0.5 and large n; at n = 12 it flags 0.8% of series without
    a change at the 5% level, at n <= 10 it cannot go below 0.05 at all).
    ``years`` (same length, increasing) name the change in the result.
    """
    ys = _finite_1d(y, "y")
    n = int(ys.size)
    if n < 2:
        raise InsufficientDataError(f"Pettitt's test needs at least 2 values, got {n}")
    yrs: NDArray[np.float64] | None = None
    if years is not None:
        yrs = _finite_1d(years, "years")
        if yrs.shape != ys.shape:
            raise ValueError(f"years and y must have the same length, got {yrs.size} and {n}")
        if not np.all(np.diff(yrs) > 0):
            raise ValueError(f"years must be increasing, got {yrs.tolist()}")
    ranks = np.asarray(stats.rankdata(ys), dtype=np.float64)
    k = np.arange(1, n, dtype=np.float64)
    u = 2.0 * np.cumsum(ranks)[:-1] - k * (n + 1)
    pos = int(np.argmax(np.abs(u)))
    big_k = float(abs(u[pos]))
    p_approx = float(min(1.0, 2.0 * math.exp(-6.0 * big_k**2 / (n**3 + n**2))))
    orders, exact = permutation_orders(n, n_permutations, seed)
    p = 1.0 if big_k == 0.0 else permutation_p(big_k, _pettitt_k(ranks[orders]), exact)
    return Pettitt(
        index=pos,
        k=big_k,
        p=p,
        p_approx=p_approx,
        exact=exact,
        last_year_before=None if yrs is None else int(yrs[pos]),
        first_year_after=None if yrs is None else int(yrs[pos + 1]),
    )


# --- Which years enter a trend -----------------------------------------------------------------

EXCLUDING_FLAGS = frozenset({"few-clear-observations", "partial-coverage", "no-data"})
"""Row flags that leave a year out of a trend by default: its area is undercounted or absent
(too few clear looks to apply the counting rule, less than 95% of the analysis area seen, or
no composite at all)."""

NOTED_FLAGS = frozenset({"radiometry-break"})
"""Row flags that keep the year but must be reported with the trend: a step at a radiometry
change (e.g. Sentinel-2 baseline 04.00, January 2022) is not a trend (DOMAIN.md)."""

DATING_FLAGS = frozenset(
    {"may-lag", "redated", "unseen-fields", "exposed-bed", "terrain-shadow", "linear-features"}
)
"""Row flags of the footprint's dating with its neighbouring years (``analysis.date_footprints``;
the same strings as ``analysis.MAY_LAG``, ``REDATED`` and ``UNSEEN_FIELDS``) and of ground the
footprint leaves out (``EXPOSED_BED``, ``TERRAIN_SHADOW``). They keep the year: they say when
or why ground was counted, not that the year's area is undercounted.

- ``may-lag``: the footprint could not be checked against the next year (the last year with
  data, or a year stored without its season evidence): ground cleared in its season may show a
  year late.
- ``redated``: the footprint includes ground cleared during the season, or coal dumped on
  ground green earlier in it, confirmed by the next year (``redated_ha`` in ``trends.csv``).
- ``unseen-fields``: bare ground never seen while crops stand, a field in the neighbouring
  years, green in a later one, or vegetation in the years before and after (a burn scar's
  char), was taken out of the footprint and coal (``unseen_fields_ha``).
- ``exposed-bed``: ground another year saw under water, wet this year (a reservoir drawn
  down), was taken out of the footprint (``exposed_bed_ha``; ``water.drop_exposed_beds``).
- ``terrain-shadow``: footprint-like or coal-like ground whose brightness followed the sinking
  sun through the season (a slope in topographic shadow), or that other seasons found so,
  alone or pooled, was left unmapped (``terrain_shadow_ha``; ``terrain.shadowed``, settled
  across the years by ``analysis.settle_terrain_shadow``).
- ``linear-features``: the footprint includes long, thin features (a new road or track) found
  as lines against the years before and after (``analysis.add_lines``): too thin and mixed for
  the per-pixel rules."""

KNOWN_FLAGS = (
    EXCLUDING_FLAGS
    | NOTED_FLAGS
    | DATING_FLAGS
    | {"widened-window", "scenes-skipped", "coregistered", "coal-undecided", "gap-filled"}
)
"""Every flag :func:`select_series` understands; any other is an error, so that a new flag is
classified (excluding or not) before it reaches a table. ``widened-window`` (window widened
to find 3 clear looks, still the same day-of-year window every year), ``scenes-skipped``
(unreadable scenes, recorded in the manifest), ``coregistered`` (the year's imagery sat 0.4 px
or more off the other years and was brought back onto their frame: ``analysis.COREGISTERED``),
``coal-undecided`` (more ground flagged as coal in too few clear looks to count than the coal
area's half-width: ``analysis.COAL_UNDECIDED``), ``gap-filled`` (footprint of ground the year
never saw clear, carried from the nearest year that saw it: ``analysis.GAP_FILLED``) and the
:data:`DATING_FLAGS` keep the year.
:data:`FLAG_MEANINGS` says each in words."""

FLAG_MEANINGS: Mapping[str, str] = {
    "no-data": (
        "No clear observation of the site in this year's season window, so the year has no "
        "areas (a gap, not 0 ha) and is left out of the statistics."
    ),
    "few-clear-observations": (
        "The median pixel had fewer clear looks than the counting rule needs, so the areas are "
        "a lower bound and the year is left out of the statistics unless trends.keep_flagged "
        "is set."
    ),
    "partial-coverage": (
        "Less than 95% of the analysis area was seen clear at least once, so the unseen part's "
        "footprint is carried from other years (gap_filled_ha) and its coal is not counted "
        "(coal_undecided_ha), and the year is left out of the statistics unless "
        "trends.keep_flagged is set."
    ),
    "coal-undecided": (
        "More ground than the coal area's half-width was flagged as coal but seen in too few "
        "looks to count, or never seen clear where the nearest year that saw it had coal "
        "(coal_undecided_ha), so the coal area may miss piles the clouds hid, or dark ground "
        "was seen under a cloud shadow; the year is kept."
    ),
    "gap-filled": (
        "Some ground was under cloud in every look of this season, so its footprint is the one "
        "the nearest year that saw it had (gap_filled_ha) and its coal counts as undecided "
        "(coal_undecided_ha), not in the area; the year is kept."
    ),
    "widened-window": (
        "The season window was widened to find enough clear looks (still the same dates every "
        "year), and the year is kept in the statistics."
    ),
    "scenes-skipped": (
        "One or more scenes could not be read and were skipped (the manifest says why), and "
        "the year is kept in the statistics."
    ),
    "coregistered": (
        "This year's imagery sat 0.4 px or more off the site's other years (shift_x_px east, "
        "shift_y_px north), so its looks were resampled, or its maps moved, onto their common "
        "frame before areas and boundary movement were measured; the year is kept."
    ),
    "radiometry-break": (
        "The radiometric processing changed since the previous year with data (for example "
        "Sentinel-2 processing baseline 04.00 in January 2022), so a step at this year may be "
        "the sensor's rather than the ground's; the year is kept and the break is reported "
        "with the trend."
    ),
    "may-lag": (
        "This footprint could not be checked against the next year (the last year with data, "
        "or one stored without its season evidence), so ground cleared during its season may "
        "only show up a year late; the year is kept."
    ),
    "redated": (
        "The footprint includes ground cleared during this season, or coal dumped on ground "
        "green earlier in it, that the next year confirmed (redated_ha), so the expansion is "
        "dated to the year it happened; the year is kept."
    ),
    "unseen-fields": (
        "Bare ground that no clear look saw while crops stand, and that the neighbouring years "
        "map as a field or a later year saw green, or that the years before and after both saw "
        "as vegetation (a burn scar's char), was taken out of this year's footprint and coal "
        "(unseen_fields_ha); the year is kept."
    ),
    "exposed-bed": (
        "Ground that another year saw under water and that is wet this year, the exposed bed "
        "of a reservoir or river drawn down, was taken out of this year's footprint "
        "(exposed_bed_ha); land reclaimed and built or stocked stays; the year is kept."
    ),
    "terrain-shadow": (
        "Dark ground whose brightness fell with the sinking autumn sun through the season, "
        "through most other seasons, or through the seasons' clear looks taken together, a "
        "slope in topographic shadow, was left out of this year's footprint and coal "
        "(terrain_shadow_ha); the year is kept."
    ),
    "linear-features": (
        "The footprint includes long, thin features, a new road or track, found as lines that "
        "lost greenness against the year before they appeared and kept it lost the year after: "
        "too thin and mixed with vegetation for the per-pixel rules; the year is kept."
    ),
}
"""What each of :data:`KNOWN_FLAGS` means, one plain-English sentence an analyst can quote
(the report's glossary reads it)."""


@dataclass(frozen=True)
class SeriesSelection:
    """The years of one metric that enter the trend statistics, and those that do not.

    ``years``/``values``: the series used, ascending, all finite. ``left_out``: years with a row
    but not used, with ``left_out_reasons`` (the excluding flags, ';'-joined, or "no value").
    ``kept_flagged``: years with an excluding flag kept because ``keep_flagged`` was set.
    ``radiometry_breaks``: years flagged ``radiometry-break``, used or not: a break year left
    out still separates the used years before and after it.
    """

    years: tuple[int, ...]
    values: tuple[float, ...]
    left_out: tuple[int, ...]
    left_out_reasons: tuple[str, ...]
    kept_flagged: tuple[int, ...]
    radiometry_breaks: tuple[int, ...]

    @property
    def n_left_out(self) -> int:
        return len(self.left_out)


def _parse_flags(flags: object, year: int) -> frozenset[str]:
    if flags is None:
        return frozenset()
    if isinstance(flags, str):
        items = [f.strip() for f in flags.split(";")]
    elif isinstance(flags, Iterable):
        items = [str(f).strip() for f in flags]
    else:
        raise ValueError(f"year {year}: flags must be a ';'-separated string or a list")
    found = frozenset(f for f in items if f)
    unknown = sorted(found - KNOWN_FLAGS)
    if unknown:
        raise ValueError(
            f"year {year}: unknown flags {unknown}; known: {sorted(KNOWN_FLAGS)} "
            "(add a new flag to EXCLUDING_FLAGS or KNOWN_FLAGS in pipeline.trends)"
        )
    return found


def _value(raw: object, year: int, metric: str) -> float:
    if raw is None:
        return math.nan
    if isinstance(raw, bool) or not isinstance(raw, int | float | np.integer | np.floating):
        raise ValueError(f"year {year}: {metric} must be a number or None, got {raw!r}")
    value = float(raw)
    if math.isinf(value):
        raise ValueError(f"year {year}: {metric} must be finite or missing, got {value}")
    return value


def select_series(
    rows: Iterable[Mapping[str, object]], metric: str, *, keep_flagged: bool = False
) -> SeriesSelection:
    """The series of ``metric`` used for trends from per-year rows (``trends.csv`` rows: keys
    ``year``, ``metric`` and ``flags``, a ';'-separated string or a list).

    A year is used when its value is a finite number and, unless ``keep_flagged``, it carries
    none of :data:`EXCLUDING_FLAGS`. ``widened-window``, ``scenes-skipped`` and the
    :data:`DATING_FLAGS` keep the year;
    ``radiometry-break`` keeps it and is listed in ``radiometry_breaks``. Years repeated or not
    whole numbers, unknown flags and non-numeric values are errors.
    """
    parsed: list[tuple[int, float, frozenset[str]]] = []
    for row in rows:
        raw_year = row.get("year")
        if isinstance(raw_year, bool) or not isinstance(raw_year, int | np.integer):
            raise ValueError(f"rows need a whole-number 'year', got {raw_year!r}")
        year = int(raw_year)
        if metric not in row:
            raise ValueError(f"year {year}: no {metric!r} in the row (keys {sorted(row)})")
        parsed.append(
            (year, _value(row[metric], year, metric), _parse_flags(row.get("flags"), year))
        )
    years_seen = [p[0] for p in parsed]
    if len(set(years_seen)) != len(years_seen):
        raise ValueError(f"years must not repeat, got {years_seen}")
    parsed.sort(key=lambda p: p[0])

    years: list[int] = []
    values: list[float] = []
    left_out: list[int] = []
    reasons: list[str] = []
    kept: list[int] = []
    for year, value, flags in parsed:
        excluding = sorted(flags & EXCLUDING_FLAGS)
        if math.isnan(value):
            left_out.append(year)
            reasons.append(";".join(excluding) or "no value")
        elif excluding and not keep_flagged:
            left_out.append(year)
            reasons.append(";".join(excluding))
        else:
            years.append(year)
            values.append(value)
            if excluding:
                kept.append(year)
    breaks = tuple(year for year, _, flags in parsed if flags & NOTED_FLAGS)
    return SeriesSelection(
        years=tuple(years),
        values=tuple(values),
        left_out=tuple(left_out),
        left_out_reasons=tuple(reasons),
        kept_flagged=tuple(kept),
        radiometry_breaks=breaks,
    )


# --- One metric over its years -----------------------------------------------------------------


@dataclass(frozen=True)
class TrendSummary:
    """One metric of one site over its years, for ``trend_summary.csv``.

    ``n`` counts the years with a value (NaN years are dropped). ``first``/``last`` are the values
    in ``first_year``/``last_year`` and ``change = last - first``. Slope fields are in value units
    per year, on ``value = intercept + slope * year``; they are descriptive even when the trend is
    "insufficient". ``change`` and the slope fields are NaN with fewer than 2 years; ``mk_z``,
    ``mk_p``, the ``hr_*`` and ``pettitt_*`` fields are NaN/None when n < min_n (``mk_s`` and
    ``mk_tau`` are kept).

    ``trend``/``mk_*``: plain Mann-Kendall. ``hr_*``: Mann-Kendall with the Hamed-Rao
    correction (conservative: it can only raise p); ``hr_correction`` is n/n*.
    ``pettitt_year`` is the last year of the first segment and ``pettitt_first_after`` the first
    year of the new level; ``pettitt_p`` the permutation p, ``pettitt_p_approx`` DOMAIN's
    approximation. ``pettitt_at_break``: the change falls on a year given in ``breaks`` (a
    radiometry or sensor break, so the step may be the sensor's); None without a change point.
    """

    n: int
    first_year: int | None
    last_year: int | None
    first: float
    last: float
    change: float
    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    mk_s: int
    mk_z: float
    mk_tau: float
    mk_p: float
    trend: TrendLabel
    pettitt_year: int | None
    pettitt_p: float
    hr_z: float = math.nan
    hr_p: float = math.nan
    hr_correction: float = math.nan
    hr_trend: TrendLabel = "insufficient"
    pettitt_first_after: int | None = None
    pettitt_p_approx: float = math.nan
    pettitt_at_break: bool | None = None


def yearly_series(
    years: ArrayLike, values: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The years with a value (NaN = missing, dropped), in ascending order. Years that are
    not whole numbers or repeat, arrays of other shapes and infinite values are errors."""
    yrs = np.asarray(years, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if yrs.ndim != 1 or vals.shape != yrs.shape:
        raise ValueError(
            f"years and values must be 1-D and of equal length, got {yrs.shape} and {vals.shape}"
        )
    if not np.isfinite(yrs).all() or np.any(yrs != np.round(yrs)):
        raise ValueError(f"years must be whole numbers, got {yrs.tolist()}")
    if np.unique(yrs).size != yrs.size:
        raise ValueError(f"years must not repeat, got {yrs.tolist()}")
    if np.isinf(vals).any():
        raise ValueError(f"values must be finite or NaN (missing), got {vals.tolist()}")
    keep = ~np.isnan(vals)
    order = np.argsort(yrs[keep])
    return yrs[keep][order], vals[keep][order]


def summarise(
    years: ArrayLike,
    values: ArrayLike,
    min_n: int = DEFAULT_MIN_N,
    alpha: float = DEFAULT_ALPHA,
    *,
    breaks: Iterable[int] = (),
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> TrendSummary:
    """Theil-Sen, Mann-Kendall (plain and Hamed-Rao) and Pettitt on one metric's yearly values.

    Years are sorted; NaN values are dropped; duplicate or non-integer years are an error.
    To leave flagged years out, pass the output of :func:`select_series` (and its
    ``radiometry_breaks`` as ``breaks``).
    """
    _check_alpha(alpha)
    yrs, vals = yearly_series(years, values)
    n = int(vals.size)

    mk = mann_kendall(vals, min_n=min_n, alpha=alpha)
    hr = hamed_rao(vals, yrs, min_n=min_n, alpha=alpha)
    nan = math.nan
    ts = theil_sen(yrs, vals) if n >= 2 else TheilSen(nan, nan, nan, nan)
    pt: Pettitt | None = None
    if n >= min_n:
        pt = pettitt(vals, yrs, n_permutations=n_permutations, seed=seed)

    first = float(vals[0]) if n else nan
    last = float(vals[-1]) if n else nan
    break_years = {int(b) for b in breaks}
    return TrendSummary(
        n=n,
        first_year=int(yrs[0]) if n else None,
        last_year=int(yrs[-1]) if n else None,
        first=first,
        last=last,
        change=last - first if n >= 2 else nan,
        slope=ts.slope,
        intercept=ts.intercept,
        slope_low=ts.slope_low,
        slope_high=ts.slope_high,
        mk_s=mk.s,
        mk_z=mk.z,
        mk_tau=mk.tau,
        mk_p=mk.p,
        trend=mk.trend,
        pettitt_year=None if pt is None else pt.last_year_before,
        pettitt_p=nan if pt is None else pt.p,
        hr_z=hr.z,
        hr_p=hr.p,
        hr_correction=hr.correction,
        hr_trend=hr.trend,
        pettitt_first_after=None if pt is None else pt.first_year_after,
        pettitt_p_approx=nan if pt is None else pt.p_approx,
        pettitt_at_break=(
            None
            if pt is None or pt.first_year_after is None
            else _crosses_break(pt.last_year_before, pt.first_year_after, break_years)
        ),
    )


def _crosses_break(last_before: int | None, first_after: int, breaks: set[int]) -> bool:
    """A break flagged on a year y sits between y and the previous year with data: the change
    between ``last_before`` and ``first_after`` coincides with it when last_before < y <=
    first_after."""
    low = -math.inf if last_before is None else last_before
    return any(low < b <= first_after for b in breaks)


# --- Area uncertainty from the boundary --------------------------------------------------------


def _mask_2d(arr: object, name: str) -> NDArray[np.bool_]:
    out = np.asarray(arr)
    if out.ndim != 2 or out.dtype != np.bool_:
        raise ValueError(f"{name} must be a 2-D boolean array, got {out.dtype} {out.shape}")
    return out


def _check_pixel(pixel_size_m: float) -> None:
    if not (math.isfinite(pixel_size_m) and pixel_size_m > 0):
        raise ValueError(f"pixel_size_m must be a positive number, got {pixel_size_m}")


def _framed(
    masks: Sequence[NDArray[np.bool_]], valid: NDArray[np.bool_] | None
) -> tuple[list[NDArray[np.bool_]], NDArray[np.bool_]]:
    """The masks restricted to ``valid``; with ``valid`` None, the masks padded by one False
    pixel and everything valid, so that the array border counts as boundary (the old rule)."""
    if valid is None:
        padded = [np.pad(m, 1, constant_values=False) for m in masks]
        return padded, np.ones(padded[0].shape, dtype=np.bool_)
    v = _mask_2d(valid, "valid")
    if v.shape != masks[0].shape:
        raise ValueError(f"valid must have the shape of the mask {masks[0].shape}, got {v.shape}")
    return [m & v for m in masks], v


def _oriented_edges(
    mask: NDArray[np.bool_], valid: NDArray[np.bool_]
) -> tuple[NDArray[np.int8], NDArray[np.int8]]:
    """Per pair of 4-neighbours (down, right), +1/-1 where the mask changes between two valid
    pixels (the sign says on which side the mask is), 0 elsewhere."""
    m = mask.astype(np.int8)
    down = np.where(valid[1:, :] & valid[:-1, :], m[1:, :] - m[:-1, :], 0).astype(np.int8)
    right = np.where(valid[:, 1:] & valid[:, :-1], m[:, 1:] - m[:, :-1], 0).astype(np.int8)
    return down, right


def _edge_count(mask: NDArray[np.bool_], valid: NDArray[np.bool_]) -> int:
    return sum(int(np.count_nonzero(e)) for e in _oriented_edges(mask, valid))


def _half_pixel_rule_ha(edges: int, pixel_size_m: float) -> float:
    """DOMAIN's 0.5 * pixel * perimeter, in ha, for a boundary of ``edges`` pixel edges."""
    return 0.5 * pixel_size_m * (edges * pixel_size_m) / 10_000.0


def edge_uncertainty_ha(
    mask: NDArray[np.bool_], pixel_size_m: float, valid: NDArray[np.bool_] | None = None
) -> float:
    """DOMAIN's edge rule for a mask's area without a reference sample, as a 95% half-width in ha.

    half-width = 0.5 * pixel * perimeter: every boundary may be off by half a pixel, all in the
    same direction (a threshold that dilates or erodes the whole outline). The perimeter is the
    number of pixel edges between a True and a False pixel, times ``pixel_size_m`` (square
    pixels). A 1 ha square on 10 m pixels gives 0.2 ha (+/-20%).

    With ``valid`` (the analysis area seen clear), only *internal* edges count: both pixels
    valid. Where the mask meets the edge of the analysis area or a no-data hole, the area is cut
    there by construction, not by the classifier, and mask pixels outside ``valid`` are ignored.
    With ``valid`` None every True/False edge counts, and the array border counts as False
    (the rule before ``valid`` existed).
    """
    arr = _mask_2d(mask, "mask")
    _check_pixel(pixel_size_m)
    (framed,), v = _framed([arr], valid)
    return _half_pixel_rule_ha(_edge_count(framed, v), pixel_size_m)


ChangeKind = Literal[
    "expansion", "contraction", "relocation", "gross change only", "no significant change"
]


@dataclass(frozen=True)
class NetChange:
    """Change of a mask between two years, within the pixels valid in both.

    Areas in ha; ``*_pm_ha`` are 95% half-widths. ``net_ha = after_ha - before_ha =
    added_ha - removed_ha``. ``net_pm_ha`` is :func:`net_change_uncertainty`; ``added_pm_ha``
    and ``removed_pm_ha`` are :func:`edge_uncertainty_ha` of the added and removed pixels (their
    own boundary, seams with the unchanged footprint included). ``changed_edges`` and
    ``shared_edges`` count the boundary that moved and that stayed (see
    :func:`net_change_uncertainty`). A part is significant when it exceeds its half-width.

    ``kind``: "expansion"/"contraction" when the net change is significant (whatever the gross
    parts); "relocation" when it is not but both the added and the removed area are (a block
    moved: present it as added and removed, each with its interval, and net ~ 0);
    "gross change only" when one of them is significant alone; else "no significant change".
    """

    before_ha: float
    after_ha: float
    net_ha: float
    net_pm_ha: float
    added_ha: float
    added_pm_ha: float
    removed_ha: float
    removed_pm_ha: float
    changed_edges: int
    shared_edges: int
    net_significant: bool
    added_significant: bool
    removed_significant: bool
    kind: ChangeKind


def _pair(
    before_mask: NDArray[np.bool_],
    after_mask: NDArray[np.bool_],
    valid: NDArray[np.bool_] | None,
    pixel_size_m: float,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
    b = _mask_2d(before_mask, "before_mask")
    a = _mask_2d(after_mask, "after_mask")
    if a.shape != b.shape:
        raise ValueError(f"before_mask and after_mask differ in shape: {b.shape} vs {a.shape}")
    _check_pixel(pixel_size_m)
    (b, a), v = _framed([b, a], valid)
    return b, a, v


def _boundary_edges(
    before: NDArray[np.bool_], after: NDArray[np.bool_], valid: NDArray[np.bool_]
) -> tuple[int, int]:
    """(changed, shared) internal edges: shared = on both boundaries with the mask on the same
    side; changed = on one boundary only (an edge that flips side counts twice: one boundary
    gone, one new)."""
    changed = shared = 0
    for eb, ea in zip(_oriented_edges(before, valid), _oriented_edges(after, valid), strict=True):
        shared += int(np.count_nonzero((eb != 0) & (eb == ea)))
        changed += int(np.count_nonzero((eb != 0) & (eb != ea)))
        changed += int(np.count_nonzero((ea != 0) & (ea != eb)))
    return changed, shared


def _net_half_width_ha(changed: int, shared: int, pixel_size_m: float) -> float:
    px_area = pixel_size_m * pixel_size_m
    moved = _half_pixel_rule_ha(changed, pixel_size_m)
    # Per shared edge and year an independent error uniform on +/- half a pixel (variance
    # px^2/12 in pixel areas), in both years: 95% half-width z * px * sqrt(2 shared / 12).
    stayed = Z95 * px_area * math.sqrt(2.0 * shared / 12.0) / 10_000.0
    return math.hypot(moved, stayed)


def net_change_uncertainty(
    before_mask: NDArray[np.bool_],
    after_mask: NDArray[np.bool_],
    valid: NDArray[np.bool_] | None,
    pixel_size_m: float,
) -> float:
    """95% half-width (ha) of the net area change ``after - before`` of two masks of the same
    ground, with correlated boundary errors.

    Each year's area carries DOMAIN's half-pixel error along its boundary, but the part of the
    boundary that did not move is the same edge on the ground, seen by the same classifier on
    the same grid: its systematic error is common to both years and cancels in the difference
    (treating the two years as independent, sqrt(se1^2 + se2^2), would charge a 100 ha camp
    +/-2.8 ha for every comparison and hide a 1 ha extension). Only internal edges count (both
    pixels in ``valid``; ``valid`` None: the whole array, its border as boundary). So:

    - changed boundary (``changed`` edges: on one year's boundary only, i.e. the outline of the
      added and removed pixels): DOMAIN's rule, 0.5 * pixel * length, every such edge off by half
      a pixel in the same direction (nothing in the other year cancels it);
    - unchanged boundary (``shared`` edges: on both boundaries, mask on the same side): only
      its year-specific part remains, the true edge moving within its pixels without flipping
      any label. Taken as independent per edge and per year, uniform on +/- half a pixel (the
      quantisation error), i.e. z * pixel^2 * sqrt(2 * shared / 12).

    half-width = sqrt((0.5 * p * changed * p)^2 + (z * p^2 * sqrt(shared / 6))^2) / 10^4 ha.

    A misregistration shift moves the whole outline: all its edges become "changed" and the
    interval is large, but translation leaves the area (the net change) unchanged, so it does
    not read as a change; a compact extension adds only its own outline. Pass the masks as the
    classifier produced them (before any opening): slivers are part of the evidence.
    """
    b, a, v = _pair(before_mask, after_mask, valid, pixel_size_m)
    changed, shared = _boundary_edges(b, a, v)
    return _net_half_width_ha(changed, shared, pixel_size_m)


def significant_net_change(
    before_mask: NDArray[np.bool_],
    after_mask: NDArray[np.bool_],
    valid: NDArray[np.bool_] | None,
    pixel_size_m: float,
) -> bool:
    """|area(after) - area(before)| > :func:`net_change_uncertainty` (areas within ``valid``)."""
    return net_change(before_mask, after_mask, valid, pixel_size_m).net_significant


def net_change(
    before_mask: NDArray[np.bool_],
    after_mask: NDArray[np.bool_],
    valid: NDArray[np.bool_] | None,
    pixel_size_m: float,
) -> NetChange:
    """Net, added and removed area between two years' masks, each with its 95% half-width, and
    what kind of change they show (:class:`NetChange`). ``valid``: pixels seen in both years."""
    b, a, v = _pair(before_mask, after_mask, valid, pixel_size_m)
    px_ha = pixel_size_m * pixel_size_m / 10_000.0
    added = a & ~b
    removed = b & ~a
    changed, shared = _boundary_edges(b, a, v)
    before_ha = float(np.count_nonzero(b)) * px_ha
    after_ha = float(np.count_nonzero(a)) * px_ha
    added_ha = float(np.count_nonzero(added)) * px_ha
    removed_ha = float(np.count_nonzero(removed)) * px_ha
    net_ha = after_ha - before_ha
    net_pm = _net_half_width_ha(changed, shared, pixel_size_m)
    added_pm = _half_pixel_rule_ha(_edge_count(added, v), pixel_size_m)
    removed_pm = _half_pixel_rule_ha(_edge_count(removed, v), pixel_size_m)
    return NetChange(
        before_ha=before_ha,
        after_ha=after_ha,
        net_ha=net_ha,
        net_pm_ha=net_pm,
        added_ha=added_ha,
        added_pm_ha=added_pm,
        removed_ha=removed_ha,
        removed_pm_ha=removed_pm,
        changed_edges=changed,
        shared_edges=shared,
        net_significant=abs(net_ha) > net_pm,
        added_significant=added_ha > added_pm,
        removed_significant=removed_ha > removed_pm,
        kind=change_kind(net_ha, net_pm, added_ha, added_pm, removed_ha, removed_pm),
    )


def change_kind(
    net_ha: float,
    net_pm_ha: float,
    added_ha: float,
    added_pm_ha: float,
    removed_ha: float,
    removed_pm_ha: float,
) -> ChangeKind:
    """The label of :class:`NetChange` from its numbers: a part is significant when it exceeds
    its half-width. For added/removed masks cleaned after the fact (opening, minimum mapping
    unit), pass their areas and ``edge_uncertainty_ha(mask, pixel, valid)`` here. NaN compares
    as not significant."""
    net_sig = abs(net_ha) > net_pm_ha
    added_sig = added_ha > added_pm_ha
    removed_sig = removed_ha > removed_pm_ha
    if net_sig:
        return "expansion" if net_ha > 0 else "contraction"
    if added_sig and removed_sig:
        return "relocation"
    if added_sig or removed_sig:
        return "gross change only"
    return "no significant change"


def se_from_half_width(half_width: float, z: float = Z95) -> float:
    """The standard error behind a two-sided interval half-width (95% by default): h / z."""
    if not z > 0:
        raise ValueError(f"z must be positive, got {z}")
    if half_width < 0:
        raise ValueError(f"half_width must be >= 0, got {half_width}")
    return half_width / z


def significant_change(area1: float, se1: float, area2: float, se2: float, z: float = Z95) -> bool:
    """DOMAIN's reporting rule: |area2 - area1| > z sqrt(se1^2 + se2^2), with standard errors.

    Pass standard errors, not +/- values: for an edge uncertainty or an Olofsson ``area_ci`` use
    ``se_from_half_width(h)``, i.e. the +/- is read as a 95% half-width. The two errors are
    treated as independent: right for two independent sample-based estimates (Olofsson samples
    drawn separately each year), too strict for two masks of the same ground, whose unchanged
    boundary carries the same error in both years (use :func:`net_change` there). Any NaN input
    gives False (a change that cannot be tested is not reported); with both errors zero, any
    non-zero difference counts.
    """
    if (not math.isnan(se1) and se1 < 0) or (not math.isnan(se2) and se2 < 0):
        raise ValueError(f"standard errors must be >= 0, got se1={se1}, se2={se2}")
    values = (area1, se1, area2, se2, z)
    if any(math.isnan(v) for v in values):
        return False
    return abs(area2 - area1) > z * math.hypot(se1, se2)
