"""Tests for pipeline.trends: known answers by hand, cross-checks with scipy, invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from pipeline.analysis import (
    EXPOSED_BED,
    LINEAR_FEATURES,
    MAY_LAG,
    REDATED,
    TERRAIN_SHADOW,
    UNSEEN_FIELDS,
)
from pipeline.errors import InsufficientDataError
from pipeline.trends import (
    DATING_FLAGS,
    EXCLUDING_FLAGS,
    FLAG_MEANINGS,
    KNOWN_FLAGS,
    NOTED_FLAGS,
    Z95,
    change_kind,
    edge_uncertainty_ha,
    hamed_rao,
    mann_kendall,
    net_change,
    net_change_uncertainty,
    pettitt,
    se_from_half_width,
    select_series,
    significant_change,
    significant_net_change,
    summarise,
    theil_sen,
)

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)
FEWER = settings(max_examples=60, deadline=None, derandomize=True, database=None)

# Small integer-valued series: ties are common, which is what the tie correction is for.
tied_series = arrays(np.float64, st.integers(0, 25), elements=st.integers(-5, 5).map(float))
real_series = arrays(
    np.float64,
    st.integers(0, 25),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


def _brute_s(y: np.ndarray) -> int:
    n = len(y)
    return int(sum(np.sign(y[j] - y[k]) for k in range(n) for j in range(k + 1, n)))


# --- Theil-Sen ---------------------------------------------------------------------------------


def test_theil_sen_known_answer() -> None:
    # Pairwise slopes of (0,1),(1,3),(2,2): 2, 0.5, -1 -> median 0.5; intercept 2 - 0.5 * 1.
    res = theil_sen([0, 1, 2], [1, 3, 2])
    assert res.slope == 0.5
    assert res.intercept == 1.5
    assert res.slope_low <= res.slope <= res.slope_high


def test_theil_sen_resists_an_outlier() -> None:
    years = np.arange(2015, 2024)
    values = 3.0 * (years - 2015) + 10.0
    values[4] = 500.0
    assert theil_sen(years, values).slope == pytest.approx(3.0)


def test_theil_sen_needs_two_distinct_x() -> None:
    with pytest.raises(InsufficientDataError, match="2 distinct x"):
        theil_sen([2020, 2020], [1.0, 2.0])
    with pytest.raises(ValueError, match="same length"):
        theil_sen([1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        theil_sen([1, 2, 3], [1.0, math.nan, 2.0])


@SETTINGS
@given(
    st.floats(-100, 100),
    st.floats(-1e3, 1e3),
    st.integers(2, 30),
)
def test_theil_sen_recovers_a_line(slope: float, intercept: float, n: int) -> None:
    x = np.arange(2000, 2000 + n, dtype=float)
    res = theil_sen(x, intercept + slope * x)
    assert res.slope == pytest.approx(slope, abs=1e-6)
    assert res.slope_low == pytest.approx(slope, abs=1e-6)
    assert res.slope_high == pytest.approx(slope, abs=1e-6)


# --- Mann-Kendall ------------------------------------------------------------------------------


def test_mann_kendall_monotone_by_hand() -> None:
    res = mann_kendall([1, 2, 3, 4, 5])
    assert res.s == 10
    assert res.var_s == pytest.approx(5 * 4 * 15 / 18)
    assert res.z == pytest.approx(9 / math.sqrt(300 / 18))
    assert res.p == pytest.approx(0.02749, abs=1e-5)
    assert res.tau == 1.0
    assert res.trend == "increasing"


def test_mann_kendall_ties_by_hand() -> None:
    # S: 5 from the 1, 3 from each 2, 0 from the 3s. Var: (6*5*17 - 2*1*9 - 3*2*11) / 18.
    res = mann_kendall([1, 2, 2, 3, 3, 3])
    assert res.s == 11
    assert res.var_s == pytest.approx(426 / 18)
    assert res.z == pytest.approx(10 / math.sqrt(426 / 18))
    assert res.p == pytest.approx(2 * stats.norm.sf(10 / math.sqrt(426 / 18)))
    assert res.p < 0.05
    # tau-b: 15 pairs, 4 tied in y.
    assert res.tau == pytest.approx(11 / math.sqrt(15 * 11))
    assert res.trend == "increasing"


def test_mann_kendall_decreasing_and_no_trend() -> None:
    assert mann_kendall([9, 7, 8, 5, 4, 2]).trend == "decreasing"
    flat = mann_kendall([3, 1, 4, 1, 5, 2])
    assert flat.trend == "no trend"
    assert flat.p > 0.05


def test_mann_kendall_constant_series() -> None:
    res = mann_kendall([2.0] * 6)
    assert (res.s, res.var_s, res.z, res.p, res.tau, res.trend) == (
        0,
        0.0,
        0.0,
        1.0,
        0.0,
        "no trend",
    )


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_mann_kendall_insufficient_below_min_n(n: int) -> None:
    # With n = 4 even a perfect monotone series cannot give p < 0.05 (DOMAIN.md).
    res = mann_kendall(np.arange(n, dtype=float))
    assert res.trend == "insufficient"
    assert math.isnan(res.p)
    assert math.isnan(res.z)
    assert res.n == n
    assert res.s == n * (n - 1) // 2


def test_mann_kendall_min_n_and_alpha_are_parameters() -> None:
    assert mann_kendall([1, 2, 3, 4], min_n=4).trend == "no trend"  # p = 0.089
    assert mann_kendall([1, 2, 3, 4, 5], alpha=0.01).trend == "no trend"
    with pytest.raises(ValueError, match="alpha"):
        mann_kendall([1, 2, 3, 4, 5], alpha=1.5)
    with pytest.raises(ValueError, match="min_n"):
        mann_kendall([1, 2, 3], min_n=1)
    with pytest.raises(ValueError, match="non-finite"):
        mann_kendall([1.0, math.nan, 2.0, 3.0, 4.0])


@SETTINGS
@given(tied_series)
def test_mann_kendall_matches_brute_force_and_scipy(y: np.ndarray) -> None:
    res = mann_kendall(y)
    assert res.s == _brute_s(y)
    if len(y) >= 2 and np.unique(y).size > 1:
        tau_b = stats.kendalltau(np.arange(len(y)), y).statistic
        assert res.tau == pytest.approx(tau_b, abs=1e-12)
    assert res.var_s >= 0
    assert -1.0 <= res.tau <= 1.0 or math.isnan(res.tau)


@SETTINGS
@given(st.one_of(tied_series, real_series))
def test_mann_kendall_reversal_flips_sign(y: np.ndarray) -> None:
    fwd, rev = mann_kendall(y), mann_kendall(y[::-1])
    assert rev.s == -fwd.s
    assert rev.var_s == fwd.var_s
    if fwd.trend != "insufficient":
        assert rev.z == -fwd.z
        assert rev.p == fwd.p
        flipped = {"increasing": "decreasing", "decreasing": "increasing", "no trend": "no trend"}
        assert rev.trend == flipped[fwd.trend]
        assert 0.0 <= fwd.p <= 1.0
    if not math.isnan(fwd.tau):
        assert rev.tau == pytest.approx(-fwd.tau)


# --- Pettitt -----------------------------------------------------------------------------------


def test_pettitt_by_hand() -> None:
    # Ranks 2,2,2,5,5,5; U_k = 2 cumsum - 7k = -3, -6, -9, -6, -3; K = 9 after the third value.
    res = pettitt([1, 1, 1, 5, 5, 5])
    assert res.index == 2
    assert res.k == 9.0
    assert res.p_approx == pytest.approx(2 * math.exp(-6 * 81 / (6**3 + 6**2)))
    # Exact permutation p: K = 9 only when the three 1s come first or last, 2 * 3! * 3! of 6!.
    assert res.exact
    assert res.p == pytest.approx(72 / 720)


def test_pettitt_constant_and_short() -> None:
    res = pettitt([4.0, 4.0, 4.0])
    assert (res.index, res.k, res.p, res.p_approx) == (0, 0.0, 1.0, 1.0)
    with pytest.raises(InsufficientDataError, match="at least 2"):
        pettitt([1.0])


def test_pettitt_finds_a_step() -> None:
    res = pettitt(np.r_[np.full(12, 10.0), np.full(8, 20.0)])
    assert res.index == 11
    assert res.k == 12 * 8
    assert res.p < 0.01
    # With noise inside the segments the maximum may move by a year or two: that is Pettitt.
    rng = np.random.default_rng(7)
    noisy = pettitt(np.r_[rng.normal(10, 1, 12), rng.normal(20, 1, 8)])
    assert abs(noisy.index - 11) <= 2
    assert noisy.p < 0.01


@SETTINGS
@given(tied_series.filter(lambda a: a.size >= 2))
def test_pettitt_matches_pairwise_definition(y: np.ndarray) -> None:
    n = len(y)
    u = [sum(np.sign(y[i] - y[j]) for i in range(k) for j in range(k, n)) for k in range(1, n)]
    res = pettitt(y, n_permutations=99)
    assert res.k == pytest.approx(max(abs(v) for v in u))
    assert abs(u[res.index]) == pytest.approx(res.k)
    assert 0.0 <= res.p <= 1.0


# --- Edge uncertainty and significance ---------------------------------------------------------


def test_edge_uncertainty_one_hectare_square_is_twenty_percent() -> None:
    mask = np.zeros((14, 14), dtype=bool)
    mask[2:12, 2:12] = True  # 1 ha at 10 m
    assert edge_uncertainty_ha(mask, 10.0) == pytest.approx(0.2)


def test_edge_uncertainty_counts_array_border_and_holes() -> None:
    single = np.ones((1, 1), dtype=bool)
    assert edge_uncertainty_ha(single, 10.0) == pytest.approx(0.5 * 10 * 40 / 10_000)
    ring = np.ones((3, 3), dtype=bool)
    ring[1, 1] = False
    assert edge_uncertainty_ha(ring, 30.0) == pytest.approx(0.5 * 30 * (12 + 4) * 30 / 10_000)
    assert edge_uncertainty_ha(np.zeros((4, 4), dtype=bool), 10.0) == 0.0


def test_edge_uncertainty_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="pixel_size_m"):
        edge_uncertainty_ha(np.ones((2, 2), dtype=bool), 0.0)
    with pytest.raises(ValueError, match="boolean"):
        edge_uncertainty_ha(np.ones((2, 2)), 10.0)  # type: ignore[arg-type]


@SETTINGS
@given(
    st.tuples(st.integers(1, 20), st.integers(1, 20)).flatmap(lambda s: arrays(np.bool_, s)),
    st.sampled_from([10.0, 20.0, 30.0]),
)
def test_edge_uncertainty_non_negative_and_bounded(mask: np.ndarray, pixel: float) -> None:
    unc = edge_uncertainty_ha(mask, pixel)
    assert unc >= 0
    # Each pixel contributes at most 4 edges: at most 2 pixel areas of uncertainty per pixel.
    assert unc <= 2.0 * mask.sum() * pixel**2 / 10_000 + 1e-12
    assert edge_uncertainty_ha(~mask, pixel) >= 0


def test_se_from_half_width() -> None:
    assert se_from_half_width(1.96) == pytest.approx(1.96 / Z95)
    with pytest.raises(ValueError, match="half_width"):
        se_from_half_width(-1.0)


def test_significant_change_rule() -> None:
    # 1.96 * sqrt(0.5^2 + 0.5^2) = 1.386
    assert significant_change(10.0, 0.5, 12.0, 0.5)
    assert significant_change(12.0, 0.5, 10.0, 0.5)
    assert not significant_change(10.0, 0.5, 11.0, 0.5)
    assert not significant_change(10.0, math.nan, 20.0, 0.5)
    assert significant_change(10.0, 0.0, 10.5, 0.0)
    assert not significant_change(10.0, 0.0, 10.0, 0.0)
    with pytest.raises(ValueError, match="standard errors"):
        significant_change(1.0, -0.1, 2.0, 0.1)


def test_significant_change_with_edge_uncertainty() -> None:
    # Two 1 ha squares' worth of +/-0.2 ha half-widths: change needs > sqrt(0.2^2 + 0.2^2).
    se = se_from_half_width(0.2)
    assert not significant_change(1.0, se, 1.28, se)
    assert significant_change(1.0, se, 1.29, se)


# --- summarise ---------------------------------------------------------------------------------


def test_summarise_drops_nan_and_sorts() -> None:
    years = [2021, 2016, 2017, 2018, 2019, 2020, 2022]
    values = [6.0, 1.0, math.nan, 3.0, 4.0, 5.0, 7.0]
    res = summarise(years, values)
    assert res.n == 6
    assert (res.first_year, res.last_year) == (2016, 2022)
    assert (res.first, res.last, res.change) == (1.0, 7.0, 6.0)
    assert res.slope == pytest.approx(1.0)
    assert res.trend == "increasing"
    assert res.mk_s == 15
    assert res.mk_p < 0.05
    assert res.pettitt_year is not None
    assert 2016 <= res.pettitt_year < 2022


def test_summarise_insufficient() -> None:
    res = summarise([2019, 2020, 2021, 2022], [1.0, 2.0, 3.0, 4.0])
    assert res.trend == "insufficient"
    assert math.isnan(res.mk_p)
    assert res.slope == pytest.approx(1.0)  # descriptive slope still reported
    assert res.pettitt_year is None
    assert math.isnan(res.pettitt_p)


@pytest.mark.parametrize("values", [[math.nan, math.nan], [5.0, math.nan]])
def test_summarise_too_few_values(values: list[float]) -> None:
    res = summarise([2020, 2021], values)
    assert res.trend == "insufficient"
    assert math.isnan(res.slope)
    assert math.isnan(res.change)


def test_summarise_empty() -> None:
    res = summarise([], [])
    assert res.n == 0
    assert res.first_year is None
    assert math.isnan(res.first)


@pytest.mark.parametrize(
    ("years", "values", "match"),
    [
        ([2020, 2020, 2021], [1.0, 2.0, 3.0], "must not repeat"),
        ([2020.5, 2021], [1.0, 2.0], "whole numbers"),
        ([2020, 2021], [1.0], "equal length"),
        ([2020, 2021], [1.0, math.inf], "finite or NaN"),
    ],
)
def test_summarise_rejects(years: list[float], values: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        summarise(years, values)


@SETTINGS
@given(
    st.lists(
        st.one_of(st.just(math.nan), st.floats(0, 1e4, allow_nan=False)), min_size=0, max_size=15
    )
)
def test_summarise_counts_non_nan(values: list[float]) -> None:
    years = np.arange(2010, 2010 + len(values))
    res = summarise(years, values)
    assert res.n == sum(not math.isnan(v) for v in values)
    if res.n >= 5:
        assert res.trend in {"increasing", "decreasing", "no trend"}
        assert 0.0 <= res.mk_p <= 1.0
    else:
        assert res.trend == "insufficient"


# --- Reference data and cross-checks ----------------------------------------------------------

# R's `Nile` (annual flow at Aswan, 1871-1970), the example of R modifiedmk::mmkh.
NILE = np.array(
    [
        1120, 1160, 963, 1210, 1160, 1160, 813, 1230, 1370, 1140, 995, 935, 1110, 994, 1020,
        960, 1180, 799, 958, 1140, 1100, 1210, 1150, 1250, 1260, 1220, 1030, 1100, 774, 840,
        874, 694, 940, 833, 701, 916, 692, 1020, 1050, 969, 831, 726, 456, 824, 702, 1120,
        1100, 832, 764, 821, 768, 845, 864, 862, 698, 845, 744, 796, 1040, 759, 781, 865, 845,
        944, 984, 897, 822, 1010, 771, 676, 649, 846, 812, 742, 801, 1040, 860, 874, 848, 890,
        744, 749, 838, 1050, 918, 986, 797, 923, 975, 815, 1020, 906, 901, 1170, 912, 746,
        919, 718, 714, 740,
    ],
    dtype=float,
)  # fmt: skip
NILE_YEARS = np.arange(1871, 1971)


def _pymannkendall():  # type: ignore[no-untyped-def]
    return pytest.importorskip("pymannkendall")


def test_theil_sen_matches_scipy_and_pymannkendall() -> None:
    pmk = _pymannkendall()
    rng = np.random.default_rng(21)
    for n in (5, 8, 12, 20):
        y = np.cumsum(rng.normal(size=n))
        x = np.arange(2010, 2010 + n)
        res = theil_sen(x, y)
        ref = stats.theilslopes(y, x, alpha=0.95)
        assert (res.slope, res.intercept, res.slope_low, res.slope_high) == (
            ref.slope,
            ref.intercept,
            ref.low_slope,
            ref.high_slope,
        )
        assert res.slope == pytest.approx(pmk.sens_slope(y).slope, rel=1e-12)
        assert res.slope_low <= res.slope <= res.slope_high


def test_theil_sen_constant_series_is_flat() -> None:
    res = theil_sen(np.arange(2015, 2023), np.full(8, 42.0))
    assert (res.slope, res.slope_low, res.slope_high, res.intercept) == (0.0, 0.0, 0.0, 42.0)


@FEWER
@given(st.one_of(tied_series, real_series))
def test_mann_kendall_matches_pymannkendall(y: np.ndarray) -> None:
    pmk = _pymannkendall()
    res = mann_kendall(y)
    if res.trend == "insufficient":
        return
    ref = pmk.original_test(y)
    assert res.s == ref.s
    assert res.var_s == pytest.approx(ref.var_s, rel=1e-12)
    assert res.z == pytest.approx(ref.z, rel=1e-12, abs=1e-12)
    assert res.p == pytest.approx(ref.p, rel=1e-9, abs=1e-12)
    assert res.trend == ref.trend


def test_mann_kendall_kendalltau_p_on_long_series() -> None:
    # Without ties, MK is Kendall's tau between time and value; scipy's asymptotic p has no
    # continuity correction, so S is moved one step for the comparison.
    rng = np.random.default_rng(3)
    y = rng.normal(size=60) + 0.02 * np.arange(60)
    res = mann_kendall(y)
    ref = stats.kendalltau(np.arange(60), y, method="asymptotic")
    assert res.tau == pytest.approx(ref.statistic, abs=1e-12)
    z_uncorrected = res.s / math.sqrt(res.var_s)
    assert 2 * stats.norm.sf(abs(z_uncorrected)) == pytest.approx(ref.pvalue, rel=1e-9)


# --- Hamed-Rao ---------------------------------------------------------------------------------


def test_hamed_rao_reproduces_r_modifiedmk_on_nile() -> None:
    # Published output of R `modifiedmk::mmkh(c(Nile))` (package reference page, version 1.6).
    res = hamed_rao(NILE, NILE_YEARS, conservative=False)
    assert res.s == -1387
    assert res.var_s == pytest.approx(112728.33333333331, rel=1e-12)
    assert res.correction == pytest.approx(2.14289832710, rel=1e-10)
    assert res.var_s_corrected == pytest.approx(241565.35691662686, rel=1e-10)
    assert res.z == pytest.approx(-2.81997919565, rel=1e-10)
    assert res.p == pytest.approx(0.00480267631, rel=1e-8)
    assert res.trend == "decreasing"
    # The inflation is above 1, so the conservative default gives the same answer.
    assert hamed_rao(NILE, NILE_YEARS) == res
    plain = mann_kendall(NILE)
    assert plain.z == pytest.approx(-4.12806652284, rel=1e-10)


def _hamed_rao_exact_correction(y: np.ndarray, acf_alpha: float = 0.05) -> float:
    """Independent n/n*: detrending in exact rational arithmetic (ties are exact), ranks and
    autocorrelations as R's rank() and acf()."""
    from fractions import Fraction

    n = len(y)
    fy = [Fraction(float(v)) for v in y]
    slopes = sorted((fy[j] - fy[i]) / (j - i) for i in range(n) for j in range(i + 1, n))
    m = len(slopes)
    slope = slopes[m // 2] if m % 2 else (slopes[m // 2 - 1] + slopes[m // 2]) / 2
    d = [fy[i] - slope * i for i in range(n)]
    ranks = np.array(
        [sum(v < w for v in d) + (sum(v == w for v in d) + 1) / 2 for w in d], dtype=float
    )
    centred = ranks - ranks.mean()
    c0 = float(np.dot(centred, centred)) / n
    bound = stats.norm.ppf(1 - acf_alpha / 2) / math.sqrt(n)
    total = 0.0
    for lag in range(1, n):
        r = float(np.dot(centred[:-lag], centred[lag:])) / n / c0 if c0 else 0.0
        if abs(r) > bound:
            total += (n - lag) * (n - lag - 1) * (n - lag - 2) * r
    return 1 + 2 / (n * (n - 1) * (n - 2)) * total


def test_hamed_rao_matches_exact_reference_and_pymannkendall() -> None:
    pmk = _pymannkendall()
    rng = np.random.default_rng(8)
    compared_with_pmk = 0
    for i in range(120):
        n = int(rng.integers(5, 30))
        y = np.cumsum(rng.normal(size=n)) if i % 2 else rng.normal(size=n)
        res = hamed_rao(y, conservative=False)
        expected = _hamed_rao_exact_correction(y)
        assert res.correction == pytest.approx(expected, rel=1e-9, abs=1e-12)
        if (n * (n - 1) // 2) % 2 == 0 and expected > 0:
            # An even number of pairs: the Theil-Sen slope is the mean of two pairwise slopes,
            # no pair ties after detrending, and pymannkendall's float ranks are the exact ones.
            ref = pmk.hamed_rao_modification_test(y)
            assert res.var_s_corrected == pytest.approx(ref.var_s, rel=1e-9)
            assert res.z == pytest.approx(ref.z, rel=1e-9, abs=1e-12)
            assert res.p == pytest.approx(ref.p, rel=1e-8, abs=1e-12)
            assert res.trend == ref.trend
            compared_with_pmk += 1
    assert compared_with_pmk >= 30


def test_hamed_rao_detrended_tie_is_a_tie() -> None:
    # The pair whose slope is the Theil-Sen slope is exactly level after detrending: a linear
    # series detrends to a constant, whose ranks carry no autocorrelation (references return
    # NaN or rounding noise here).
    res = hamed_rao(3.0 + 0.7 * np.arange(12), conservative=False)
    assert res.correction == 1.0
    assert res.significant_lags == ()
    assert res.trend == "increasing"


def test_hamed_rao_conservative_floor() -> None:
    # Strong alternation: negative lag-1 autocorrelation shrinks Var(S) as published.
    y = np.array([0.0, 5, 1, 6, 2, 7, 3, 8, 4, 9, 5, 10, 6, 11]) + 0.01 * np.arange(14)
    raw = hamed_rao(y, conservative=False)
    safe = hamed_rao(y)
    assert raw.correction < 1.0
    assert safe.correction == raw.correction
    assert safe.var_s_corrected == safe.var_s
    assert safe.p == mann_kendall(y).p
    assert raw.p < safe.p


def test_hamed_rao_widens_for_autocorrelated_series() -> None:
    # AR(1) with coefficient 0.8 around a slow trend: positive lag-1 autocorrelation of the
    # detrended ranks inflates Var(S) and raises p.
    rng = np.random.default_rng(4)
    e = rng.normal(size=60)
    y = np.zeros(60)
    for i in range(1, 60):
        y[i] = 0.8 * y[i - 1] + e[i]
    y = y[20:] + 0.05 * np.arange(40)
    res = hamed_rao(y)
    assert res.correction > 1.2
    assert 1 in res.significant_lags
    assert res.p > mann_kendall(y).p


def test_hamed_rao_false_positive_rate_is_nominal() -> None:
    # 400 series of 12 independent years without a trend. Applied as published (negative
    # autocorrelation allowed to shrink the variance) the test rejects ~8% (3,000-series
    # simulation); the conservative default stays at the plain test's ~5%.
    rng = np.random.default_rng(77)
    series = [rng.normal(size=12) for _ in range(400)]
    hits = sum(hamed_rao(y).p < 0.05 for y in series)
    assert stats.binomtest(hits, 400, 0.05).pvalue > 0.001, hits
    published = sum((hamed_rao(y, conservative=False).p < 0.05) for y in series)
    assert published >= hits


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_hamed_rao_insufficient_below_min_n(n: int) -> None:
    res = hamed_rao(np.arange(n, dtype=float))
    assert res.trend == "insufficient"
    assert math.isnan(res.p)
    assert math.isnan(res.correction)


def test_hamed_rao_constant_and_checks() -> None:
    res = hamed_rao(np.full(7, 3.0))
    assert (res.s, res.z, res.p, res.correction, res.trend) == (0, 0.0, 1.0, 1.0, "no trend")
    with pytest.raises(ValueError, match="strictly increasing"):
        hamed_rao([1.0, 2, 3, 4, 5], t=[1, 2, 2, 3, 4])
    with pytest.raises(ValueError, match="acf_alpha"):
        hamed_rao([1.0, 2, 3, 4, 5], acf_alpha=0.0)
    with pytest.raises(ValueError, match="max_lag"):
        hamed_rao([1.0, 2, 3, 4, 5], max_lag=0)


@FEWER
@given(st.one_of(tied_series, real_series))
def test_hamed_rao_invariants(y: np.ndarray) -> None:
    plain = mann_kendall(y)
    res = hamed_rao(y)
    assert res.s == plain.s
    assert res.var_s == plain.var_s
    if res.trend == "insufficient":
        assert len(y) < 5
        return
    assert res.var_s_corrected >= res.var_s
    assert res.p >= plain.p - 1e-12  # conservative: never more significant than plain MK
    assert 0.0 <= res.p <= 1.0
    assert set(res.significant_lags) <= set(range(1, len(y)))


# --- Pettitt: permutation p and change-point year ---------------------------------------------


def test_pettitt_nile_change_in_1898() -> None:
    # The classic change of the Nile series (Cobb 1978): the new level starts in 1899.
    res = pettitt(NILE, NILE_YEARS)
    assert (res.index, res.k) == (27, 1617.0)
    assert (res.last_year_before, res.first_year_after) == (1898, 1899)
    assert res.p_approx == pytest.approx(2 * math.exp(-6 * 1617.0**2 / (100**3 + 100**2)))
    assert res.p == pytest.approx(1 / 10_000)  # no permutation reaches K
    assert not res.exact


def test_pettitt_exact_p_matches_enumeration() -> None:
    import itertools

    y = np.array([3.1, 2.0, 5.5, 4.2, 6.1, 7.3])
    res = pettitt(y)
    k_obs = res.k
    ks = []
    for perm in itertools.permutations(y):
        u = [
            sum(np.sign(perm[i] - perm[j]) for i in range(k) for j in range(k, 6))
            for k in range(1, 6)
        ]
        ks.append(max(abs(v) for v in u))
    assert res.exact
    assert res.p == pytest.approx(np.mean(np.array(ks) >= k_obs))


def test_pettitt_finds_a_planted_step_with_its_year() -> None:
    rng = np.random.default_rng(12)
    years = np.arange(2012, 2024)
    y = rng.normal(0, 1, 12) + 4.0 * (years >= 2018)
    res = pettitt(y, years)
    assert res.p < 0.01
    assert (res.last_year_before, res.first_year_after) == (2017, 2018)


def test_pettitt_false_positive_rate_is_nominal() -> None:
    # 400 series of 12 years without a change: the permutation p rejects about 5% of them;
    # DOMAIN's approximation rejects almost none (why p is the permutation one).
    rng = np.random.default_rng(2024)
    results = [pettitt(rng.normal(size=12), n_permutations=999, seed=i) for i in range(400)]
    hits = sum(r.p < 0.05 for r in results)
    assert stats.binomtest(hits, 400, 0.05).pvalue > 0.001, hits
    assert sum(r.p_approx < 0.05 for r in results) < 0.02 * 400


def test_pettitt_is_reproducible() -> None:
    y = np.random.default_rng(5).normal(size=15)
    assert repr(pettitt(y, seed=3)) == repr(pettitt(y, seed=3))
    with pytest.raises(ValueError, match="n_permutations"):
        pettitt(y, n_permutations=0)
    with pytest.raises(ValueError, match="same length"):
        pettitt(y, years=np.arange(3))


# --- Which years enter a trend -----------------------------------------------------------------


def _rows() -> list[dict[str, object]]:
    return [
        {"year": 2019, "footprint_ha": 10.0, "flags": ""},
        {"year": 2017, "footprint_ha": 8.0, "flags": "widened-window;scenes-skipped"},
        {"year": 2018, "footprint_ha": 9.5, "flags": "few-clear-observations"},
        {"year": 2020, "footprint_ha": None, "flags": "no-data"},
        {"year": 2021, "footprint_ha": 12.0, "flags": "partial-coverage;widened-window"},
        {"year": 2022, "footprint_ha": 13.0, "flags": "radiometry-break"},
        {"year": 2023, "footprint_ha": math.nan, "flags": ""},
    ]


def test_select_series_leaves_out_flagged_years() -> None:
    sel = select_series(_rows(), "footprint_ha")
    assert sel.years == (2017, 2019, 2022)
    assert sel.values == (8.0, 10.0, 13.0)
    assert sel.left_out == (2018, 2020, 2021, 2023)
    assert sel.left_out_reasons == (
        "few-clear-observations",
        "no-data",
        "partial-coverage",
        "no value",
    )
    assert sel.n_left_out == 4
    assert sel.kept_flagged == ()
    assert sel.radiometry_breaks == (2022,)


def test_select_series_can_keep_flagged_years() -> None:
    sel = select_series(_rows(), "footprint_ha", keep_flagged=True)
    assert sel.years == (2017, 2018, 2019, 2021, 2022)
    assert sel.kept_flagged == (2018, 2021)
    assert sel.left_out == (2020, 2023)  # no value, whatever the switch


def test_select_series_flag_sets() -> None:
    assert {"few-clear-observations", "partial-coverage", "no-data"} == EXCLUDING_FLAGS
    assert {"widened-window", "scenes-skipped", "radiometry-break"} <= KNOWN_FLAGS


def test_dating_flags_keep_the_year() -> None:
    """The flags of ``analysis.date_footprints`` say when ground was counted, not that the
    year's area is undercounted: known, and never a reason to leave a year out."""
    dating = {MAY_LAG, REDATED, UNSEEN_FIELDS, EXPOSED_BED, TERRAIN_SHADOW, LINEAR_FEATURES}
    assert dating == DATING_FLAGS
    assert DATING_FLAGS <= KNOWN_FLAGS
    assert not DATING_FLAGS & (EXCLUDING_FLAGS | NOTED_FLAGS)
    rows = [
        {"year": 2019, "footprint_ha": 10.0, "flags": "redated"},
        {"year": 2020, "footprint_ha": 11.0, "flags": "unseen-fields;widened-window"},
        {"year": 2021, "footprint_ha": 12.0, "flags": ["may-lag", "unseen-fields"]},
    ]
    sel = select_series(rows, "footprint_ha")
    assert sel.years == (2019, 2020, 2021)
    assert sel.left_out == ()
    assert sel.radiometry_breaks == ()


def test_every_known_flag_has_one_plain_sentence() -> None:
    assert set(FLAG_MEANINGS) == KNOWN_FLAGS
    for flag, sentence in FLAG_MEANINGS.items():
        assert sentence[0].isupper(), flag
        assert sentence.endswith("."), flag
        assert ". " not in sentence, flag  # one sentence
        assert 40 < len(sentence) < 300, flag


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{"year": 2020, "coal_ha": 1.0, "flags": "cloudy"}], "unknown flags"),
        ([{"year": 2020, "coal_ha": "1.0", "flags": ""}], "must be a number"),
        ([{"year": 2020, "flags": ""}], "no 'coal_ha'"),
        ([{"year": 2020.5, "coal_ha": 1.0}], "whole-number"),
        ([{"year": 2020, "coal_ha": 1.0}, {"year": 2020, "coal_ha": 2.0}], "must not repeat"),
    ],
)
def test_select_series_rejects(rows: list[dict[str, object]], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        select_series(rows, "coal_ha")


def test_summarise_selected_series_notes_the_break() -> None:
    rows = [
        {"year": y, "coal_ha": v, "flags": f}
        for y, v, f in [
            (2016, 5.0, ""),
            (2017, 5.2, ""),
            (2018, 4.9, ""),
            (2019, 5.1, ""),
            (2020, 5.0, "few-clear-observations"),
            (2021, 5.1, ""),
            (2022, 9.0, "radiometry-break"),
            (2023, 9.2, ""),
            (2024, 9.1, ""),
            (2025, 9.3, ""),
        ]
    ]
    sel = select_series(rows, "coal_ha")
    res = summarise(sel.years, sel.values, breaks=sel.radiometry_breaks)
    assert res.n == 9
    assert res.pettitt_first_after == 2022
    assert res.pettitt_year == 2021
    assert res.pettitt_at_break is True
    assert res.pettitt_p < 0.05
    assert res.hr_trend in {"increasing", "no trend"}
    assert not math.isnan(res.hr_p)


# --- Internal edges and the uncertainty of a change --------------------------------------------

PX = 10.0


def _camp() -> tuple[np.ndarray, np.ndarray]:
    """A 100 ha square (1 km at 10 m) well inside a 1.6 x 2 km analysis area."""
    grid = np.zeros((160, 200), dtype=bool)
    camp = grid.copy()
    camp[30:130, 30:130] = True
    return camp, np.ones_like(grid)


def test_edge_uncertainty_counts_only_internal_edges() -> None:
    camp, valid = _camp()
    assert edge_uncertainty_ha(camp, PX, valid) == pytest.approx(2.0)  # 400 edges
    # Cut by the analysis-area border (and by a no-data hole): those edges are not uncertain.
    valid_cut = valid.copy()
    valid_cut[:, 80:] = False
    assert edge_uncertainty_ha(camp, PX, valid_cut) == pytest.approx(0.5 * 10 * 2_000 / 10_000)
    touching = np.zeros((10, 10), dtype=bool)
    touching[:, :4] = True  # touches the array border on three sides
    assert edge_uncertainty_ha(touching, PX, np.ones_like(touching)) == pytest.approx(0.05)
    assert edge_uncertainty_ha(touching, PX) == pytest.approx(0.5 * 10 * 280 / 10_000)
    # Mask pixels outside valid are ignored.
    assert edge_uncertainty_ha(touching, PX, np.zeros_like(touching)) == 0.0
    with pytest.raises(ValueError, match="valid must have the shape"):
        edge_uncertainty_ha(camp, PX, valid[:5])


@FEWER
@given(
    st.tuples(st.integers(1, 15), st.integers(1, 15)).flatmap(
        lambda s: st.tuples(arrays(np.bool_, s), arrays(np.bool_, s))
    )
)
def test_edge_uncertainty_valid_never_exceeds_old_rule(masks: tuple[np.ndarray, ...]) -> None:
    mask, valid = masks
    assert edge_uncertainty_ha(mask, PX, valid) <= edge_uncertainty_ha(mask & valid, PX) + 1e-12
    assert edge_uncertainty_ha(mask, PX, np.ones_like(mask)) <= edge_uncertainty_ha(mask, PX)


def test_extension_of_a_camp_is_significant() -> None:
    camp, valid = _camp()
    extended = camp.copy()
    extended[60:70, 130:140] = True  # 1 ha block on the east side
    res = net_change(camp, extended, valid, PX)
    assert (res.net_ha, res.added_ha, res.removed_ha) == pytest.approx((1.0, 1.0, 0.0))
    assert (res.changed_edges, res.shared_edges) == (40, 390)
    # sqrt((0.5 * 10 * 400 m)^2 + (1.96 * 100 m2 * sqrt(390 / 6))^2) = 0.255 ha
    expected = math.hypot(0.2, Z95 * 100 * math.sqrt(390 / 6) / 10_000)
    assert res.net_pm_ha == pytest.approx(expected)
    assert res.net_significant
    assert res.kind == "expansion"
    assert significant_net_change(camp, extended, valid, PX)
    assert net_change_uncertainty(camp, extended, valid, PX) == res.net_pm_ha
    # The independent-errors rule would have hidden it: +/-2 ha on each year.
    se = se_from_half_width(edge_uncertainty_ha(camp, PX, valid))
    assert not significant_change(res.before_ha, se, res.after_ha, se)


def test_one_pixel_misregistration_is_not_a_change() -> None:
    camp, valid = _camp()
    shifted = np.roll(camp, 1, axis=1)
    res = net_change(camp, shifted, valid, PX)
    assert res.net_ha == 0.0
    assert (res.added_ha, res.removed_ha) == pytest.approx((1.0, 1.0))
    assert not res.net_significant
    # A sliver one pixel wide never exceeds its own half-pixel interval.
    assert not res.added_significant
    assert not res.removed_significant
    assert res.kind == "no significant change"
    diagonal = np.roll(np.roll(camp, 1, axis=0), 1, axis=1)
    assert net_change(camp, diagonal, valid, PX).kind == "no significant change"


def test_misregistration_costs_power() -> None:
    # Documented limit: with a one-pixel shift the whole outline counts as moved (+/-2 ha), so
    # a 1 ha extension goes unreported unless the years are co-registered first.
    camp, valid = _camp()
    extended = camp.copy()
    extended[60:70, 130:140] = True
    res = net_change(camp, np.roll(extended, 1, axis=1), valid, PX)
    assert res.net_ha == pytest.approx(1.0)
    assert res.net_pm_ha > 2.0
    assert not res.net_significant


def test_relocation_is_reported_as_added_and_removed() -> None:
    camp, valid = _camp()
    before = camp.copy()
    before[30:50, 130:150] = True  # a 4 ha annex (200 m x 200 m) on the east side
    after = camp.copy()
    after[50:70, 130:150] = True  # the same annex 200 m further south
    res = net_change(before, after, valid, PX)
    assert res.net_ha == 0.0
    assert not res.net_significant
    assert (res.added_ha, res.removed_ha) == pytest.approx((4.0, 4.0))
    assert (res.added_pm_ha, res.removed_pm_ha) == pytest.approx((0.4, 0.4))  # 80 edges each
    assert res.added_significant
    assert res.removed_significant
    assert res.kind == "relocation"


@pytest.mark.parametrize(
    ("numbers", "kind"),
    [
        ((1.0, 0.3, 1.0, 0.2, 0.0, 0.0), "expansion"),
        ((-1.0, 0.3, 0.0, 0.0, 1.0, 0.2), "contraction"),
        ((0.0, 0.8, 4.0, 0.4, 4.0, 0.4), "relocation"),
        ((0.5, 0.8, 4.0, 0.4, 3.5, 3.6), "gross change only"),
        ((0.0, 2.0, 1.0, 1.01, 1.0, 1.01), "no significant change"),
        ((math.nan, math.nan, math.nan, math.nan, math.nan, math.nan), "no significant change"),
    ],
)
def test_change_kind(numbers: tuple[float, ...], kind: str) -> None:
    assert change_kind(*numbers) == kind


def test_strip_one_pixel_wide_is_not_significant() -> None:
    camp, valid = _camp()
    strip = camp.copy()
    strip[30:130, 130] = True  # 1 ha as a 10 m strip along a whole side: a half-pixel shift
    res = net_change(camp, strip, valid, PX)
    assert res.net_ha == pytest.approx(1.0)
    assert not res.net_significant
    assert res.kind == "no significant change"


def test_net_change_ignores_pixels_outside_valid() -> None:
    camp, valid = _camp()
    cloud = valid.copy()
    cloud[:, 100:] = False
    grown = camp.copy()
    grown[30:130, 130:160] = True  # growth hidden under the cloud
    res = net_change(camp, grown, cloud, PX)
    assert res.net_ha == 0.0
    assert res.changed_edges == 0
    assert res.kind == "no significant change"


shape_pairs = st.tuples(st.integers(2, 14), st.integers(2, 14)).flatmap(
    lambda s: st.tuples(arrays(np.bool_, s), arrays(np.bool_, s), arrays(np.bool_, s))
)


@FEWER
@given(shape_pairs)
def test_net_change_invariants(masks: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    before, after, valid = masks
    res = net_change(before, after, valid, PX)
    rev = net_change(after, before, valid, PX)
    assert res.net_ha == pytest.approx(res.added_ha - res.removed_ha)
    assert res.net_ha == pytest.approx(res.after_ha - res.before_ha)
    assert res.net_pm_ha == rev.net_pm_ha  # symmetric in the two years
    assert (rev.added_ha, rev.removed_ha) == (res.removed_ha, res.added_ha)
    assert res.net_pm_ha >= 0
    same = net_change(before, before, valid, PX)
    assert same.changed_edges == 0
    assert same.net_ha == 0.0
    assert not same.net_significant
    edges_b = edge_uncertainty_ha(before, PX, valid) / (0.5 * PX * PX / 10_000)
    assert same.shared_edges == pytest.approx(edges_b)


def test_net_change_rejects_bad_input() -> None:
    camp, valid = _camp()
    with pytest.raises(ValueError, match="differ in shape"):
        net_change(camp, camp[:10], valid, PX)
    with pytest.raises(ValueError, match="pixel_size_m"):
        net_change(camp, camp, valid, -1.0)
    with pytest.raises(ValueError, match="boolean"):
        net_change(camp.astype(int), camp, valid, PX)  # type: ignore[arg-type]
