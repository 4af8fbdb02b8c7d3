"""Tests for pipeline.trends: known answers by hand, cross-checks with scipy, invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from pipeline.errors import InsufficientDataError
from pipeline.trends import (
    Z95,
    edge_uncertainty_ha,
    mann_kendall,
    pettitt,
    se_from_half_width,
    significant_change,
    summarise,
    theil_sen,
)

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)

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
    assert res.p == pytest.approx(2 * math.exp(-6 * 81 / (6**3 + 6**2)))


def test_pettitt_constant_and_short() -> None:
    res = pettitt([4.0, 4.0, 4.0])
    assert (res.index, res.k, res.p) == (0, 0.0, 1.0)
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
    res = pettitt(y)
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
