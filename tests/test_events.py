"""Tests for pipeline.events: the split by date, bootstrap means, the interrupted time series and
its permutation p, on known answers and on many random series."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest
from scipy import stats

from pipeline.events import (
    DEFAULT_EVENTS,
    Event,
    event_test,
    event_tests,
    holm,
    season_windows,
    split_by_event,
)

YEARS = np.arange(2012, 2024)  # 2012..2023
BAN = DEFAULT_EVENTS[1]  # UNSCR 2371, 2017-08-05


# --- Splitting years by a date -----------------------------------------------------------------


def test_default_events_split_the_years() -> None:
    cap, ban, panmunjom, singapore = (split_by_event(YEARS, e.date) for e in DEFAULT_EVENTS)
    # 30 Nov 2016 is after the 2016 season (ends 15 Nov); 5 Aug 2017 is before the 2017 season.
    assert cap.before == ban.before == tuple(range(2012, 2017))
    assert cap.after == ban.after == tuple(range(2017, 2024))
    # Both 2018 summits fall before the 2018 season.
    assert panmunjom.before == singapore.before == tuple(range(2012, 2018))
    assert panmunjom.after == singapore.after == tuple(range(2018, 2024))
    assert cap.straddling == ban.straddling == panmunjom.straddling == ()


def test_split_uses_the_window_actually_used() -> None:
    windows: dict[int, tuple[date | str, date | str]] = dict(season_windows(YEARS))
    windows[2017] = ("2017-08-01", "2017-11-30")  # widened: now starts before 5 Aug
    split = split_by_event(YEARS, BAN.date, windows)
    assert split.straddling == (2017,)
    assert 2017 not in split.before + split.after


@pytest.mark.parametrize(
    ("event_day", "side"),
    [
        ("2019-08-31", "after"),  # the day before the window starts
        ("2019-09-01", "straddling"),  # the first day of the window: looks on both sides
        ("2019-10-10", "straddling"),
        ("2019-11-15", "straddling"),
        ("2019-11-16", "before"),
    ],
)
def test_split_at_window_edges(event_day: str, side: str) -> None:
    split = split_by_event([2019], event_day)
    assert {"before": split.before, "after": split.after, "straddling": split.straddling}[side] == (
        2019,
    )


def test_split_rejects() -> None:
    with pytest.raises(ValueError, match="must not repeat"):
        split_by_event([2019, 2019], "2019-01-01")
    with pytest.raises(ValueError, match="no season window"):
        split_by_event([2019, 2020], "2019-01-01", {2019: ("2019-09-01", "2019-11-15")})
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        split_by_event([2019], "1 Jan 2019")
    with pytest.raises(ValueError, match="ends"):
        split_by_event([2019], "2019-01-01", {2019: ("2019-11-15", "2019-09-01")})
    with pytest.raises(ValueError, match="MM-DD"):
        season_windows([2019], start="13-01")


# --- Before/after means ------------------------------------------------------------------------


def test_bootstrap_known_answer_with_two_years_a_side() -> None:
    # Resampled means of [1, 3] are 1, 2, 3 with chances 1/4, 1/2, 1/4: the 2.5% and 97.5%
    # points are 1 and 3; for the difference, 5 - 3 = 2 and 9 - 1 = 8 each have chance 1/16.
    res = event_test([2015, 2016, 2017, 2018], [1.0, 3.0, 5.0, 9.0], BAN)
    assert res.status == "tested"
    assert (res.before_mean, res.before_low, res.before_high) == (2.0, 1.0, 3.0)
    assert (res.after_mean, res.after_low, res.after_high) == (7.0, 5.0, 9.0)
    assert (res.difference, res.difference_low, res.difference_high) == (5.0, 2.0, 8.0)
    assert res.its_status == "insufficient"  # 4 years: the segmented line fits exactly
    assert math.isnan(res.its_p)


@pytest.mark.parametrize(
    ("years", "event_day"),
    [
        ([2015, 2016, 2017, 2018, 2019], "2019-01-01"),  # one year after
        ([2016, 2017, 2018, 2019, 2020], "2016-12-01"),  # one year before
        ([2016, 2017], "2016-12-01"),
    ],
)
def test_fewer_than_two_years_a_side_is_insufficient(years: list[int], event_day: str) -> None:
    res = event_test(
        years, np.arange(len(years), dtype=float), Event("e", date.fromisoformat(event_day))
    )
    assert res.status == "insufficient"
    assert res.its_status == "insufficient"
    assert math.isnan(res.difference)
    assert math.isnan(res.its_p)


def test_missing_years_are_dropped_before_splitting() -> None:
    values = np.arange(12, dtype=float)
    values[[4, 5]] = np.nan  # 2016 and 2017 without data
    res = event_test(YEARS, values, BAN, n_permutations=99, n_resamples=100)
    assert res.before_years == (2012, 2013, 2014, 2015)
    assert res.after_years == tuple(range(2018, 2024))


# --- Interrupted time series -------------------------------------------------------------------


def test_its_recovers_level_and_slope_change() -> None:
    t = YEARS - 2017.0
    after = YEARS >= 2017
    y = 2.0 + 0.5 * t + 3.0 * after + 0.25 * t * after
    res = event_test(YEARS, y, BAN)
    assert res.its_status == "tested"
    assert res.its_level_change == pytest.approx(3.0, abs=1e-9)
    assert res.its_slope_change == pytest.approx(0.25, abs=1e-9)
    # An exact fit: no permutation of the null residuals reaches an infinite F.
    assert res.its_p == pytest.approx(1 / 10_000)


def test_its_fit_matches_least_squares() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=12)
    res = event_test(YEARS, y, BAN, n_permutations=99, n_resamples=100)
    t = YEARS - 2017.0
    d = (YEARS >= 2017).astype(float)
    design = np.column_stack([np.ones(12), t, d, t * d])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    assert res.its_level_change == pytest.approx(coef[2], rel=1e-10)
    assert res.its_slope_change == pytest.approx(coef[3], rel=1e-10)


def test_its_permutation_p_close_to_the_f_test_on_normal_errors() -> None:
    # With normal errors the classical F test is exact; the Freedman-Lane p should be near it.
    rng = np.random.default_rng(10)
    y = rng.normal(size=12) + 1.5 * (YEARS >= 2017)
    res = event_test(YEARS, y, BAN)
    t = YEARS - 2017.0
    d = (YEARS >= 2017).astype(float)
    full = np.column_stack([np.ones(12), t, d, t * d])
    rss_full = np.sum((y - full @ np.linalg.lstsq(full, y, rcond=None)[0]) ** 2)
    null = full[:, :2]
    rss_null = np.sum((y - null @ np.linalg.lstsq(null, y, rcond=None)[0]) ** 2)
    f = ((rss_null - rss_full) / 2) / (rss_full / 8)
    assert res.its_p == pytest.approx(stats.f.sf(f, 2, 8), abs=0.03)


def test_step_at_the_event_is_found() -> None:
    rng = np.random.default_rng(1)
    y = 20.0 + rng.normal(0, 1.0, 12) + 5.0 * (YEARS >= 2017)
    res = event_test(YEARS, y, BAN)
    assert res.its_p < 0.05
    assert res.its_level_p < 0.05
    assert res.its_level_change == pytest.approx(5.0, abs=2.0)
    assert res.difference_low > 0


def test_no_step_false_positive_rate_is_nominal() -> None:
    # 400 series of 12 years without an effect: each test rejects about 5% of them.
    rng = np.random.default_rng(99)
    joint = level = slope = covered = 0
    for i in range(400):
        res = event_test(
            YEARS, rng.normal(size=12), BAN, n_permutations=499, n_resamples=200, seed=i
        )
        joint += res.its_p < 0.05
        level += res.its_level_p < 0.05
        slope += res.its_slope_p < 0.05
        covered += res.difference_low <= 0.0 <= res.difference_high
    for hits in (joint, level, slope):
        assert stats.binomtest(hits, 400, 0.05).pvalue > 0.001, (joint, level, slope)
    # The percentile bootstrap with 5 and 7 years a side under-covers (documented): ~88%.
    assert 0.80 < covered / 400 < 0.95


def test_its_exact_with_few_years() -> None:
    years = [2014, 2015, 2016, 2017, 2018, 2019]
    res = event_test(years, [1.0, 1.4, 0.8, 3.1, 2.9, 3.4], BAN)
    assert res.its_exact
    assert res.its_p * 720 == pytest.approx(round(res.its_p * 720))
    short = event_test(years[1:], [1.4, 0.8, 3.1, 2.9, 3.4], BAN)
    assert short.status == "tested"
    assert short.its_status == "insufficient"  # 5 years: one residual degree of freedom


def test_constant_series_has_no_effect() -> None:
    res = event_test(YEARS, np.full(12, 7.0), BAN, n_permutations=99)
    assert (res.difference, res.its_level_change, res.its_p) == (0.0, pytest.approx(0.0), 1.0)
    # An exactly linear series: the pre-event line continues, rounding noise is not an effect.
    linear = event_test(YEARS, 3.0 + 0.1 * (YEARS - 2012), BAN, n_permutations=99)
    assert linear.its_level_change == pytest.approx(0.0, abs=1e-9)
    assert (linear.its_p, linear.its_level_p, linear.its_slope_p) == (1.0, 1.0, 1.0)


def test_event_test_is_reproducible() -> None:
    y = np.random.default_rng(4).normal(size=12)
    a = event_test(YEARS, y, BAN, seed=11)
    assert repr(a) == repr(event_test(YEARS, y, BAN, seed=11))
    b = event_test(YEARS, y, BAN, seed=12)
    assert (a.difference_low, a.its_p) != (b.difference_low, b.its_p)
    assert a.seed == 11


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_resamples": 0}, "n_resamples"),
        ({"n_permutations": 0}, "n_permutations"),
        ({"its_min_n": 4}, "its_min_n"),
    ],
)
def test_event_test_rejects_parameters(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        event_test(YEARS, np.zeros(12), BAN, **kwargs)  # type: ignore[arg-type]


def test_event_test_rejects_series() -> None:
    with pytest.raises(ValueError, match="must not repeat"):
        event_test([2015, 2015, 2016], [1.0, 2.0, 3.0], BAN)
    with pytest.raises(ValueError, match="finite or NaN"):
        event_test([2015, 2016], [1.0, math.inf], BAN)
    with pytest.raises(ValueError, match="equal length"):
        event_test([2015, 2016], [1.0], BAN)


# --- Several events ----------------------------------------------------------------------------


def test_holm_known_values() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx((0.03, 0.06, 0.06))
    out = holm([0.2, math.nan, 0.6])
    assert out[0] == pytest.approx(0.4)
    assert math.isnan(out[1])
    assert out[2] == pytest.approx(0.6)
    assert holm([]) == ()


def test_event_tests_flag_identical_splits_and_adjust() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(0, 0.5, size=12) + 4.0 * (YEARS >= 2018)
    res = event_tests(YEARS, y, n_permutations=999, n_resamples=200)
    assert [r.event for r in res] == [e.name for e in DEFAULT_EVENTS]
    assert [r.same_split_as for r in res] == [
        None,
        DEFAULT_EVENTS[0].name,
        None,
        DEFAULT_EVENTS[2].name,
    ]
    assert res[1].its_p == res[0].its_p
    assert res[3].difference == res[2].difference
    expected = holm([res[0].its_p, res[2].its_p])
    assert (res[0].its_p_holm, res[2].its_p_holm) == pytest.approx(expected)
    assert res[1].its_p_holm == res[0].its_p_holm
    assert res[2].its_p < 0.05  # the planted 2018 step
