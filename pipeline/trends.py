"""Trend statistics for the site-year tables, and area uncertainty without a reference sample.

Pure stage: 1-D arrays and plain parameters in, frozen dataclasses out. The formulas are those of
DOMAIN.md, "Statistics for trend tables":

- Theil-Sen slope with its 95% interval (scipy.stats.theilslopes).
- Mann-Kendall S, Var(S) with the tie correction, Z with the continuity correction and a two-sided
  normal p. Below ``min_n`` points (default 5) the trend is reported as ``"insufficient"`` and Z/p
  as NaN: with n = 4 even the exact test cannot reach p < 0.05, so a printed p would mislead.
- Pettitt change point with the approximate p = 2 exp(-6K^2 / (n^3 + n^2)).
- Edge uncertainty 0.5 * pixel * perimeter, a +/- on a mapped area.

Uncertainty convention used throughout sitewatch: a "+/-" (``edge_uncertainty_ha``, and the
``*_ci`` fields of :func:`pipeline.accuracy.olofsson`) is a **95% half-width**; the matching
standard error is half-width / 1.96 (:func:`se_from_half_width`). :func:`significant_change`
takes standard errors, and applies DOMAIN's rule |dA| > 1.96 sqrt(SE1^2 + SE2^2).

Inputs must be finite: NaN means a missing year and is dropped by :func:`summarise` only, so that
a gap is never silently passed to a statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from pipeline.errors import InsufficientDataError

__all__ = [
    "Z95",
    "MannKendall",
    "Pettitt",
    "TheilSen",
    "TrendLabel",
    "TrendSummary",
    "edge_uncertainty_ha",
    "mann_kendall",
    "pettitt",
    "se_from_half_width",
    "significant_change",
    "summarise",
    "theil_sen",
]

Z95 = 1.959963984540054
"""Two-sided 95% normal quantile."""

TrendLabel = Literal["increasing", "decreasing", "no trend", "insufficient"]

DEFAULT_MIN_N = 5
DEFAULT_ALPHA = 0.05


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


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


@dataclass(frozen=True)
class TheilSen:
    """Theil-Sen line y = intercept + slope * x; slope_low/high bound the 95% interval."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float


def theil_sen(x: ArrayLike, y: ArrayLike) -> TheilSen:
    """Median of pairwise slopes, intercept median(y) - slope * median(x), 95% slope interval.

    Pairs with equal x are left out (scipy's rule). Needs at least two distinct x.
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


def mann_kendall(
    y: ArrayLike, min_n: int = DEFAULT_MIN_N, alpha: float = DEFAULT_ALPHA
) -> MannKendall:
    """Mann-Kendall trend test of ``y`` (equally weighted observations, in time order).

    S = sum_{k<j} sgn(y_j - y_k); Var(S) = [n(n-1)(2n+5) - sum_t t(t-1)(2t+5)] / 18 over tie
    groups t; Z = (S - 1)/sqrt(Var S) for S > 0, (S + 1)/sqrt(Var S) for S < 0, 0 for S = 0;
    p = 2 (1 - Phi(|Z|)). The trend is "increasing"/"decreasing" when p < ``alpha``, else
    "no trend"; "insufficient" when n < ``min_n``. Serial correlation is not corrected for
    (Hamed-Rao is the variant to add if annual values turn out autocorrelated). Memory is
    O(n^2): meant for yearly series, not per-pixel time stacks.
    """
    ys = _finite_1d(y, "y")
    _check_alpha(alpha)
    if min_n < 2:
        raise ValueError(f"min_n must be >= 2, got {min_n}")
    n = int(ys.size)
    # [k, j] = sgn(y_j - y_k), from comparisons so that extreme values cannot overflow.
    later, earlier = ys[np.newaxis, :], ys[:, np.newaxis]
    sign = (later > earlier).astype(np.int64) - (later < earlier).astype(np.int64)
    s = int(np.triu(sign, k=1).sum())
    ties = _tie_counts(ys)
    var_s = float(n * (n - 1) * (2 * n + 5) - np.sum(ties * (ties - 1) * (2 * ties + 5))) / 18.0

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
    # Continuity correction: move S one step toward 0 (S is an integer with steps of 1 or 2).
    z = 0.0 if s == 0 or var_s == 0.0 else (s - math.copysign(1.0, s)) / math.sqrt(var_s)
    p = float(min(1.0, 2.0 * stats.norm.sf(abs(z))))
    trend: TrendLabel = ("increasing" if s > 0 else "decreasing") if p < alpha else "no trend"
    return MannKendall(n, s, var_s, z, p, tau, trend)


@dataclass(frozen=True)
class Pettitt:
    """Pettitt change point. ``index`` is the 0-based position of the last value of the first
    segment (the change happens between ``index`` and ``index + 1``); ``k`` is K = max |U_k|.
    A constant series gives K = 0, index 0 and p = 1."""

    index: int
    k: float
    p: float


def pettitt(y: ArrayLike) -> Pettitt:
    """Pettitt's test: U_k = 2 sum_{i<=k} r_i - k(n+1) on (average) ranks r, K = max |U_k| over
    k = 1..n-1 (first maximum on ties), p ~ 2 exp(-6K^2/(n^3 + n^2)) capped at 1.

    U_k equals sum_{i<=k} sum_{j>k} sgn(y_i - y_j): positive when the first segment is higher.
    The approximate p is coarse for short series; read it with the Mann-Kendall sufficiency rule.
    """
    ys = _finite_1d(y, "y")
    n = int(ys.size)
    if n < 2:
        raise InsufficientDataError(f"Pettitt's test needs at least 2 values, got {n}")
    ranks = np.asarray(stats.rankdata(ys), dtype=np.float64)
    k = np.arange(1, n, dtype=np.float64)
    u = 2.0 * np.cumsum(ranks)[:-1] - k * (n + 1)
    pos = int(np.argmax(np.abs(u)))
    big_k = float(abs(u[pos]))
    p = float(min(1.0, 2.0 * math.exp(-6.0 * big_k**2 / (n**3 + n**2))))
    return Pettitt(index=pos, k=big_k, p=p)


def edge_uncertainty_ha(mask: NDArray[np.bool_], pixel_size_m: float) -> float:
    """DOMAIN's edge rule for a mask's area without a reference sample, as a 95% half-width in ha.

    half-width = 0.5 * pixel * perimeter: every boundary may be off by half a pixel. The perimeter
    is the number of pixel edges between a True pixel and a False pixel or the array border,
    times ``pixel_size_m`` (square pixels). A 1 ha square on 10 m pixels gives 0.2 ha (+/-20%).
    """
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.dtype != np.bool_:
        raise ValueError(f"mask must be a 2-D boolean array, got {arr.dtype} {arr.shape}")
    if not (math.isfinite(pixel_size_m) and pixel_size_m > 0):
        raise ValueError(f"pixel_size_m must be a positive number, got {pixel_size_m}")
    padded = np.pad(arr, 1, constant_values=False)
    edges = int(np.count_nonzero(padded[1:, :] != padded[:-1, :]))
    edges += int(np.count_nonzero(padded[:, 1:] != padded[:, :-1]))
    perimeter_m = edges * pixel_size_m
    return 0.5 * pixel_size_m * perimeter_m / 10_000.0


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
    treated as independent. Any NaN input gives False (a change that cannot be tested is not
    reported); with both errors zero, any non-zero difference counts.
    """
    if (not math.isnan(se1) and se1 < 0) or (not math.isnan(se2) and se2 < 0):
        raise ValueError(f"standard errors must be >= 0, got se1={se1}, se2={se2}")
    values = (area1, se1, area2, se2, z)
    if any(math.isnan(v) for v in values):
        return False
    return abs(area2 - area1) > z * math.hypot(se1, se2)


@dataclass(frozen=True)
class TrendSummary:
    """One metric of one site over its years, for ``trend_summary.csv``.

    ``n`` counts the years with a value (NaN years are dropped). ``first``/``last`` are the values
    in ``first_year``/``last_year`` and ``change = last - first``. Slope fields are in value units
    per year, on ``value = intercept + slope * year``; they are descriptive even when the trend is
    "insufficient". ``change`` and the slope fields are NaN with fewer than 2 years; ``mk_z``,
    ``mk_p`` and ``pettitt_*`` are NaN/None when n < min_n (``mk_s`` and ``mk_tau`` are kept).
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


def summarise(
    years: ArrayLike,
    values: ArrayLike,
    min_n: int = DEFAULT_MIN_N,
    alpha: float = DEFAULT_ALPHA,
) -> TrendSummary:
    """Theil-Sen, Mann-Kendall and Pettitt on one metric's yearly values.

    Years are sorted; NaN values are dropped; duplicate or non-integer years are an error.
    ``pettitt_year`` is the last year of the first segment.
    """
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
    _check_alpha(alpha)
    if np.isinf(vals).any():
        raise ValueError(f"values must be finite or NaN (missing), got {vals.tolist()}")

    order = np.argsort(yrs)
    yrs, vals = yrs[order], vals[order]
    keep = ~np.isnan(vals)
    yrs, vals = yrs[keep], vals[keep]
    n = int(vals.size)

    mk = mann_kendall(vals, min_n=min_n, alpha=alpha)
    nan = math.nan
    ts = theil_sen(yrs, vals) if n >= 2 else TheilSen(nan, nan, nan, nan)
    pettitt_year: int | None = None
    pettitt_p = nan
    if n >= min_n:
        pt = pettitt(vals)
        pettitt_year = int(yrs[pt.index])
        pettitt_p = pt.p

    first = float(vals[0]) if n else nan
    last = float(vals[-1]) if n else nan
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
        pettitt_year=pettitt_year,
        pettitt_p=pettitt_p,
    )
