"""Event tests: did a site's yearly series change at a known date (a sanctions resolution, a
summit)?

Pure stage: years, values and dates in, frozen dataclasses out. For each event:

- **Split.** A year's value comes from its season window (default 1 Sep - 15 Nov of that year,
  or the window actually used, e.g. widened). The year is *after* the event when its window
  starts after the event date, *before* when its window ends before it, and *straddling* (left
  out of both sides, and listed) when the event falls inside its window: that composite mixes
  looks from both sides. Years are taken as given (no re-dating, no interpolation of gaps).
- **Before/after means** with percentile-bootstrap 95% intervals: the years of each side are
  resampled with replacement independently (``n_resamples``, default 2,000), the interval of
  each mean and of the difference after - before are the 2.5 and 97.5 percentiles (numpy's
  default linear interpolation). The bootstrap treats the years of a side as exchangeable: it
  ignores a trend within a side (the ITS below models it) and autocorrelation, and with 2-4 years
  a side it has few distinct resamples and its interval is too narrow (with 5 and 7 years a side
  it held the true difference in about 88% of random series, not 95%): quote it with its n.
- **Interrupted time series** (segmented regression), with t in years and t0 the first year
  after the event, D = 1 for after years::

      y = b0 + b1 (t - t0) + b2 D + b3 (t - t0) D

  b2 (``its_level_change``) is the jump at t0 from the extrapolated pre-event line, b3
  (``its_slope_change``) the change of slope per year. Fitted by least squares on the before and
  after years (straddling years left out).
- **Permutation p** by Freedman & Lane (1983): fit the model without the tested terms, permute
  its residuals (the event position and the years stay fixed), add them back to its fitted
  values, refit both models and compare the F statistic. ``its_p`` tests b2 = b3 = 0 jointly
  (is there any event effect?), ``its_level_p`` b2 = 0 given b3, ``its_slope_p`` b3 = 0 given
  b2. Residuals rather than event positions are permuted because a dozen years allow only a
  handful of event positions (p could never reach 0.05). Exchangeable residuals are assumed:
  autocorrelated years make p too small, as for any test on a short series. Every permutation
  is enumerated when n! <= ``n_permutations`` (n <= 7 with the default 9,999): p is then exact.
- **Refusal.** ``status`` is "insufficient" with fewer than 2 years on either side (no means
  compared); the ITS needs in addition ``its_min_n`` years in all (default 6: four parameters
  and at least two residual degrees of freedom), else ``its_status`` is "insufficient".

Seeds: the bootstrap draws from ``default_rng([seed, 1])``, the permutations from
``default_rng(seed)``: results are byte-reproducible for given inputs and numpy version.

Several events often split the years identically (UNSCR 2321 and 2371 both fall between the
2016 and 2017 seasons; both 2018 summits between 2017 and 2018): :func:`event_tests` reports
such events with ``same_split_as`` (their numbers are identical; it is one test, not two) and
adjusts ``its_p`` for the distinct splits tested (Holm), in ``its_p_holm``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.trends import (
    DEFAULT_PERMUTATIONS,
    permutation_orders,
    permutation_p,
    yearly_series,
)

__all__ = [
    "DEFAULT_EVENTS",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEASON",
    "Event",
    "EventSplit",
    "EventTest",
    "event_test",
    "event_tests",
    "holm",
    "season_windows",
    "split_by_event",
]


@dataclass(frozen=True)
class Event:
    """A dated event to test a series against."""

    name: str
    date: date


DEFAULT_EVENTS: tuple[Event, ...] = (
    Event("UNSCR 2321 (coal export cap)", date(2016, 11, 30)),
    Event("UNSCR 2371 (coal export ban)", date(2017, 8, 5)),
    Event("Inter-Korean summit (Panmunjom)", date(2018, 4, 27)),
    Event("US-DPRK summit (Singapore)", date(2018, 6, 12)),
)
"""DOMAIN.md's sanctions dates and the two 2018 summits."""

DEFAULT_SEASON = ("09-01", "11-15")
"""The default season window (MM-DD), as ``SeasonConfig``."""

DEFAULT_RESAMPLES = 2000
DEFAULT_ITS_MIN_N = 6

Status = Literal["tested", "insufficient"]
DateLike = date | str


def _month_day(text: str) -> tuple[int, int]:
    try:
        month, day = (int(part) for part in text.split("-"))
        date(2001, month, day)
    except ValueError as exc:
        raise ValueError(f"expected a month-day 'MM-DD', got {text!r}") from exc
    return month, day


def season_windows(
    years: Iterable[int], start: str = DEFAULT_SEASON[0], end: str = DEFAULT_SEASON[1]
) -> dict[int, tuple[date, date]]:
    """The same day-of-year window in every year: {year: (first day, last day)}."""
    (m0, d0), (m1, d1) = _month_day(start), _month_day(end)
    return {int(y): (date(int(y), m0, d0), date(int(y), m1, d1)) for y in years}


def _as_date(value: DateLike, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a date or 'YYYY-MM-DD', got {value!r}") from exc


@dataclass(frozen=True)
class EventSplit:
    """Years before, after and straddling an event (each ascending)."""

    before: tuple[int, ...]
    after: tuple[int, ...]
    straddling: tuple[int, ...]


def split_by_event(
    years: Iterable[int],
    event_date: DateLike,
    windows: Mapping[int, tuple[DateLike, DateLike]] | None = None,
) -> EventSplit:
    """Which side of ``event_date`` each year's data lies on.

    ``windows[year] = (start, end)`` is the season window the year's value comes from (dates or
    ISO strings, e.g. trends.csv's ``window_start``/``window_end``); default
    :data:`DEFAULT_SEASON` in every year. After: start > event date; before: end < event date;
    otherwise straddling (the event day itself counts as inside the window).
    """
    when = _as_date(event_date, "event_date")
    ys = sorted(int(y) for y in years)
    if len(set(ys)) != len(ys):
        raise ValueError(f"years must not repeat, got {ys}")
    wins = season_windows(ys) if windows is None else windows
    before: list[int] = []
    after: list[int] = []
    straddling: list[int] = []
    for y in ys:
        if y not in wins:
            raise ValueError(f"no season window for year {y}")
        start = _as_date(wins[y][0], f"window start of {y}")
        end = _as_date(wins[y][1], f"window end of {y}")
        if end < start:
            raise ValueError(f"window of {y} ends ({end}) before it starts ({start})")
        if start > when:
            after.append(y)
        elif end < when:
            before.append(y)
        else:
            straddling.append(y)
    return EventSplit(tuple(before), tuple(after), tuple(straddling))


@dataclass(frozen=True)
class EventTest:
    """Before/after comparison and interrupted time series at one event (see the module notes).

    Means and their ``*_low``/``*_high`` (95% percentile-bootstrap bounds) are in the units of
    the values; ``difference = after_mean - before_mean``. ``its_level_change`` (b2) and
    ``its_slope_change`` (b3, per year) come from the segmented regression, ``its_p``,
    ``its_level_p`` and ``its_slope_p`` from Freedman-Lane residual permutations
    (``its_exact``: all permutations enumerated). Fields are NaN when their status is
    "insufficient". ``same_split_as`` and ``its_p_holm`` are set by :func:`event_tests`.
    """

    event: str
    event_date: str
    before_years: tuple[int, ...]
    after_years: tuple[int, ...]
    straddling_years: tuple[int, ...]
    status: Status
    before_mean: float
    before_low: float
    before_high: float
    after_mean: float
    after_low: float
    after_high: float
    difference: float
    difference_low: float
    difference_high: float
    its_status: Status
    its_level_change: float
    its_slope_change: float
    its_p: float
    its_level_p: float
    its_slope_p: float
    its_exact: bool
    n_resamples: int
    n_permutations: int
    seed: int
    same_split_as: str | None = None
    its_p_holm: float = math.nan


def _series(years: ArrayLike, values: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    yrs, vals = yearly_series(years, values)
    return yrs.astype(np.int64), vals


def _bootstrap(
    before: NDArray[np.float64], after: NDArray[np.float64], n_resamples: int, seed: int
) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
    rng = np.random.default_rng([seed, 1])
    mb = before[rng.integers(0, before.size, size=(n_resamples, before.size))].mean(axis=1)
    ma = after[rng.integers(0, after.size, size=(n_resamples, after.size))].mean(axis=1)

    def bounds(x: NDArray[np.float64]) -> tuple[float, float]:
        low, high = np.quantile(x, [0.025, 0.975])
        return float(low), float(high)

    return bounds(mb), bounds(ma), bounds(ma - mb)


def _residual_maker(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """M = I - X X^+: residuals of a least-squares fit on X are M y (M symmetric)."""
    return np.asarray(np.eye(x.shape[0]) - x @ np.linalg.pinv(x), dtype=np.float64)


def _f_stats(
    resid_null: NDArray[np.float64],
    m_reduced: NDArray[np.float64],
    m_full: NDArray[np.float64],
    q: int,
    df: int,
    tol: float,
) -> NDArray[np.float64]:
    """F = ((RSS_reduced - RSS_full)/q) / (RSS_full/df) for each row of ``resid_null`` (inf when
    the full model fits exactly and the reduced one does not, 0 when it gains nothing)."""
    rss_r = np.sum((resid_null @ m_reduced) ** 2, axis=-1)
    rss_f = np.sum((resid_null @ m_full) ** 2, axis=-1)
    gain = np.maximum(rss_r - rss_f, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (gain / q) / (rss_f / df)
    f = np.where(gain <= tol, 0.0, np.where(rss_f <= tol, np.inf, f))
    return np.asarray(f, dtype=np.float64)


def _its(
    t: NDArray[np.float64],
    after: NDArray[np.bool_],
    y: NDArray[np.float64],
    n_permutations: int,
    seed: int,
) -> tuple[float, float, float, float, float, bool]:
    n = y.size
    d = after.astype(np.float64)
    full = np.column_stack([np.ones(n), t, d, t * d])
    coef = np.linalg.lstsq(full, y, rcond=None)[0]
    m_full = _residual_maker(full)
    # Sums of squares below tol are rounding: a constant or exactly linear series gives F = 0.
    scale = max(float(np.sum((y - y.mean()) ** 2)), 1e-8 * float(np.sum(y * y)))
    tol = 1e-12 * max(scale, np.finfo(np.float64).tiny)
    orders, exact = permutation_orders(n, n_permutations, seed)
    ps = []
    for keep, q in (([0, 1], 2), ([0, 1, 3], 1), ([0, 1, 2], 1)):
        m_red = _residual_maker(full[:, keep])
        resid = m_red @ y
        observed = float(_f_stats(resid, m_red, m_full, q, n - 4, tol))
        permuted = _f_stats(resid[orders], m_red, m_full, q, n - 4, tol)
        ps.append(1.0 if observed == 0.0 else permutation_p(observed, permuted, exact))
    return float(coef[2]), float(coef[3]), ps[0], ps[1], ps[2], exact


def event_test(
    years: ArrayLike,
    values: ArrayLike,
    event: Event,
    windows: Mapping[int, tuple[DateLike, DateLike]] | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    its_min_n: int = DEFAULT_ITS_MIN_N,
    seed: int = 0,
) -> EventTest:
    """Before/after means with bootstrap intervals and the interrupted time series at ``event``
    for one metric (NaN values are missing years and are dropped). ``windows``: see
    :func:`split_by_event`."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    if its_min_n < 5:
        raise ValueError(f"its_min_n must be >= 5 (4 parameters and a residual), got {its_min_n}")
    yrs, vals = _series(years, values)
    split = split_by_event(yrs.tolist(), event.date, windows)
    nan = math.nan
    base = EventTest(
        event=event.name,
        event_date=event.date.isoformat(),
        before_years=split.before,
        after_years=split.after,
        straddling_years=split.straddling,
        status="insufficient",
        before_mean=nan,
        before_low=nan,
        before_high=nan,
        after_mean=nan,
        after_low=nan,
        after_high=nan,
        difference=nan,
        difference_low=nan,
        difference_high=nan,
        its_status="insufficient",
        its_level_change=nan,
        its_slope_change=nan,
        its_p=nan,
        its_level_p=nan,
        its_slope_p=nan,
        its_exact=False,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        seed=seed,
    )
    if len(split.before) < 2 or len(split.after) < 2:
        return base
    by_year = dict(zip(yrs.tolist(), vals.tolist(), strict=True))
    before = np.array([by_year[y] for y in split.before])
    after = np.array([by_year[y] for y in split.after])
    (bl, bh), (al, ah), (dl, dh) = _bootstrap(before, after, n_resamples, seed)
    out = replace(
        base,
        status="tested",
        before_mean=float(before.mean()),
        before_low=bl,
        before_high=bh,
        after_mean=float(after.mean()),
        after_low=al,
        after_high=ah,
        difference=float(after.mean() - before.mean()),
        difference_low=dl,
        difference_high=dh,
    )
    used = np.array(split.before + split.after, dtype=np.float64)
    if used.size < its_min_n:
        return out
    t = used - float(split.after[0])
    is_after = np.array([False] * len(split.before) + [True] * len(split.after))
    y = np.concatenate([before, after])
    level, slope, p, p_level, p_slope, exact = _its(t, is_after, y, n_permutations, seed)
    return replace(
        out,
        its_status="tested",
        its_level_change=level,
        its_slope_change=slope,
        its_p=p,
        its_level_p=p_level,
        its_slope_p=p_slope,
        its_exact=exact,
        its_p_holm=p,
    )


def holm(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm's step-down adjustment of ``p_values`` (NaN stays NaN and is not counted)."""
    finite = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    finite.sort()
    m = len(finite)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return tuple(out)


def event_tests(
    years: ArrayLike,
    values: ArrayLike,
    events: Sequence[Event] = DEFAULT_EVENTS,
    windows: Mapping[int, tuple[DateLike, DateLike]] | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    its_min_n: int = DEFAULT_ITS_MIN_N,
    seed: int = 0,
) -> tuple[EventTest, ...]:
    """:func:`event_test` for each event, in the order given. An event that splits the years
    exactly as an earlier one gets that event's numbers and ``same_split_as`` its name;
    ``its_p_holm`` adjusts ``its_p`` over the distinct splits that were tested."""
    results: list[EventTest] = []
    first_by_split: dict[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], int] = {}
    for event in events:
        res = event_test(
            years,
            values,
            event,
            windows,
            n_resamples=n_resamples,
            n_permutations=n_permutations,
            its_min_n=its_min_n,
            seed=seed,
        )
        key = (res.before_years, res.after_years, res.straddling_years)
        if key in first_by_split:
            res = replace(res, same_split_as=results[first_by_split[key]].event)
        else:
            first_by_split[key] = len(results)
        results.append(res)
    distinct = list(first_by_split.values())
    adjusted = holm([results[i].its_p for i in distinct])
    holm_by_split = {
        (results[i].before_years, results[i].after_years, results[i].straddling_years): adjusted[j]
        for j, i in enumerate(distinct)
    }
    return tuple(
        replace(r, its_p_holm=holm_by_split[(r.before_years, r.after_years, r.straddling_years)])
        for r in results
    )
