"""Terrain-shadowed slopes (``terrain``, ``recipe.classify``): ground whose brightness follows
the sinking autumn sun is neither footprint nor coal; flat ground is kept.

The looks are built here from the physics the module cites, not from the synthetic scenario:
a slope of 15 degrees facing north at 40 N, lit by a direct beam that goes with
cos(i) / cos(z) = cos(z + s) / cos(z) and by skylight that is bluest (a larger diffuse share in
blue than in SWIR), on a season of eight looks from early September to mid November.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from pipeline import terrain
from pipeline.analysis import settle_terrain_shadow
from pipeline.bands import BANDS
from pipeline.classify import coal_frequency
from pipeline.composite import Composite, median_composite
from pipeline.recipe import Look, RecipeParams, SeasonProducts, classify, look_record, site_year
from pipeline.terrain import (
    SUN_ARRAYS,
    SunResponse,
    shadowed,
    shorth,
    solar_declination,
    sun_response,
)

DAYS = [date(2023, 9, 2), date(2023, 9, 12), date(2023, 9, 22), date(2023, 10, 2),
        date(2023, 10, 12), date(2023, 10, 22), date(2023, 11, 1), date(2023, 11, 11)]  # fmt: skip
LATITUDE = 40.0
SLOPE_DEG = 15.0
# Share of skylight in the irradiance, per band (blue ... swir22): bluest.
DIFFUSE = np.array([0.35, 0.28, 0.22, 0.15, 0.08, 0.06], np.float32)
ROCK = np.array([0.080, 0.090, 0.100, 0.130, 0.170, 0.150], np.float32)
YARD = np.array([0.100, 0.130, 0.165, 0.215, 0.300, 0.255], np.float32)
COAL = np.array([0.040, 0.042, 0.044, 0.048, 0.056, 0.058], np.float32)
FOREST = np.array([0.035, 0.060, 0.070, 0.260, 0.200, 0.110], np.float32)
PIXEL_HA = 0.01  # 10 m pixels

Mask = NDArray[np.bool_]


def _illumination(day: date) -> float:
    """cos(i) / cos(z) of a north-facing slope at the 10:30 sun (zenith ~5 deg past noon's)."""
    zenith = math.radians(LATITUDE - solar_declination(day) + 5.0)
    return max(math.cos(zenith + math.radians(SLOPE_DEG)), 0.0) / math.cos(zenith)


def _scene(seed: int = 3) -> tuple[NDArray[np.float32], Mask, dict[str, Mask]]:
    """(stack (time, band, y, x), clear (time, y, x), masks): flat yard, a coal pile whose
    brightness changes at random from look to look, a shadowed rock slope, and a second slope
    with only three clear looks, in forest; a look-wide gain and sensor noise everywhere."""
    assert len(BANDS) == 6
    rng = np.random.default_rng(seed)
    shape = (40, 40)
    masks = {name: np.zeros(shape, bool) for name in ("yard", "coal", "slope", "few")}
    masks["yard"][0:15, :] = True
    masks["coal"][20:30, 0:10] = True
    masks["slope"][20:30, 15:25] = True
    masks["few"][20:30, 30:40] = True
    stack = np.empty((len(DAYS), len(BANDS), *shape), np.float32)
    clear = np.ones((len(DAYS), *shape), bool)
    for t, day in enumerate(DAYS):
        lit = DIFFUSE + (1.0 - DIFFUSE) * _illumination(day)
        look = np.broadcast_to(FOREST[:, None, None], stack.shape[1:]).copy()
        look[:, masks["yard"]] = YARD[:, None]
        look[:, masks["coal"]] = (COAL * np.exp(rng.normal(0.0, 0.15)))[:, None]
        look[:, masks["slope"] | masks["few"]] = (ROCK * lit)[:, None]
        look *= np.float32(np.exp(rng.normal(0.0, 0.02)))
        stack[t] = look + rng.normal(0.0, 0.002, look.shape).astype(np.float32)
        if t not in (0, 4, 7):
            clear[t][masks["few"]] = False
    return stack, clear, masks


def _classified(with_sun: bool, seed: int = 3) -> tuple[object, dict[str, Mask]]:
    stack, clear, masks = _scene(seed)
    composite = median_composite(stack, clear)
    return (
        classify(
            composite.reflectance,
            valid=np.ones(stack.shape[2:], bool),
            pixel_area_ha=PIXEL_HA,
            params=RecipeParams(),
            coal=coal_frequency(stack, clear),
            sun=sun_response(stack, clear, DAYS) if with_sun else None,
        ),
        masks,
    )


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_slope_that_darkens_with_the_sun_is_neither_footprint_nor_coal(seed: int) -> None:
    before, masks = _classified(with_sun=False, seed=seed)
    after, _ = _classified(with_sun=True, seed=seed)
    slope = masks["slope"]
    assert before.footprint[slope].mean() > 0.9  # the rules alone map it: the case is real
    assert after.footprint[slope].mean() < 0.05
    assert not after.coal_mask[slope].any()
    assert after.terrain_shadow is not None
    assert after.terrain_shadow[slope].mean() > 0.9
    assert not after.terrain_shadow[~slope].any()  # the excluded area is the slope's only


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_flat_ground_and_coal_are_kept(seed: int) -> None:
    before, masks = _classified(with_sun=False, seed=seed)
    after, _ = _classified(with_sun=True, seed=seed)
    assert after.footprint[masks["yard"]].mean() > 0.95
    assert after.coal_mask[masks["coal"]].mean() > 0.9
    np.testing.assert_array_equal(after.coal_mask, before.coal_mask)
    outside = ~masks["slope"]
    np.testing.assert_array_equal(after.footprint[outside], before.footprint[outside])


def test_site_year_maps_neither_the_slope_nor_loses_the_rest() -> None:
    """The whole recipe: the season's products carry the sun response, and the site-year's
    footprint and coal leave the slope out."""
    stack, clear, masks = _scene()
    looks = [
        Look(day, stack[t], clear[t], look_record(f"look-{t}", f"{day.isoformat()}T02:30:00Z"))
        for t, day in enumerate(DAYS)
    ]
    area = np.ones(stack.shape[2:], bool)
    sy = site_year("slope-site", 2023, looks, [], area, PIXEL_HA, RecipeParams())
    assert sy.footprint[masks["slope"]].mean() < 0.05
    assert sy.footprint[masks["yard"]].mean() > 0.95
    assert sy.coal_mask[masks["coal"]].mean() > 0.9
    assert sy.footprint[masks["few"]].mean() > 0.9


def test_too_few_looks_leave_the_slope_undecided() -> None:
    before, masks = _classified(with_sun=False)
    after, _ = _classified(with_sun=True)
    stack, clear, _ = _scene()
    response = sun_response(stack, clear, DAYS)
    few = masks["few"]
    assert (response.looks[few] == 3).all()
    assert before.footprint[few].mean() > 0.9
    np.testing.assert_array_equal(after.footprint[few], before.footprint[few])


def test_one_dark_look_the_mask_missed_is_not_a_trend() -> None:
    """A flat pixel under an undetected cloud shadow in one late look: least squares would see
    a pixel darkening with the sun; the Theil-Sen slope and Kendall's S barely move."""
    stack, clear, masks = _scene()
    stack[6][:, masks["yard"]] *= 0.45
    response = sun_response(stack, clear, DAYS)
    assert abs(float(np.median(response.slope[:, masks["yard"]]))) < 0.003
    flat = shadowed(response, masks["yard"] | masks["coal"] | masks["slope"])
    assert not flat[masks["yard"]].any()


def test_theil_sen_slope_and_trend_of_a_known_darkening() -> None:
    days = DAYS[:6]
    sun = np.array([solar_declination(d) for d in days])
    rate = 0.02  # ln reflectance per degree
    level = (0.1 * np.exp(rate * (sun - sun[0]))).astype(np.float32)
    stack = np.broadcast_to(level[:, None, None, None], (6, len(BANDS), 2, 3)).copy()
    clear = np.ones((6, 2, 3), bool)
    response = sun_response(stack, clear, days)
    np.testing.assert_allclose(response.slope, rate, rtol=1e-4)
    n = 6
    expected = (n * (n - 1) / 2 - 1) / math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    np.testing.assert_allclose(response.trend, expected, rtol=1e-5)
    np.testing.assert_allclose(response.span, sun[0] - sun[-1], rtol=1e-5)
    assert (response.looks == 6).all()


def test_a_pixel_never_clear_has_no_response() -> None:
    stack, clear, _ = _scene()
    clear[:, 0, 0] = False
    clear[1:, 0, 1] = False
    response = sun_response(stack, clear, DAYS)
    for px in ((0, 0), (0, 1)):
        assert np.isnan(response.slope[(slice(None), *px)]).all()
        assert np.isnan(response.trend[px])
        assert np.isnan(response.span[px])
    assert response.looks[0, 0] == 0
    assert response.looks[0, 1] == 1


def test_response_is_per_pixel_so_windows_paste_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``chunks`` relies on: the response of a window is the window of the response
    (also when computed by bands of rows), and ``SeasonProducts`` carries it through
    ``empty``/``window``/``paste``."""
    stack, clear, _ = _scene()
    whole = sun_response(stack, clear, DAYS)
    with monkeypatch.context() as m:
        m.setattr(terrain, "_BLOCK_VALUES", 1)  # one row at a time
        by_rows = sun_response(stack, clear, DAYS)
    for a, b in zip(by_rows.arrays(), whole.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    rows, cols = slice(7, 29), slice(12, 33)
    part = sun_response(stack[:, :, rows, cols], clear[:, rows, cols], DAYS)
    for mine, theirs in zip(whole.window(rows, cols).arrays(), part.arrays(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    pasted = SunResponse.empty(len(BANDS), stack.shape[2:])
    for r in (slice(0, 20), slice(20, 40)):
        piece = sun_response(stack[:, :, r], clear[:, r], DAYS)
        for into, value in zip(pasted.window(r, slice(None)).arrays(), piece.arrays(), strict=True):
            into[...] = value
    for a, b in zip(pasted.arrays(), whole.arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert "sun" in SeasonProducts.__dataclass_fields__


def test_two_looks_of_one_day_are_ties_in_the_sun() -> None:
    """Kendall's variance loses the tied pairs: a look repeated on the same day (two orbits,
    or Sentinel-2 and Landsat) adds no pair and no evidence of a trend."""
    days = DAYS[:5]
    sun = np.array([solar_declination(d) for d in days])
    level = (0.1 * np.exp(0.02 * (sun - sun[0]))).astype(np.float32)
    stack = np.broadcast_to(level[:, None, None, None], (5, len(BANDS), 1, 1)).copy()
    doubled = np.concatenate([stack, stack[-1:]])
    clear = np.ones((6, 1, 1), bool)
    once = sun_response(stack, clear[:5], days)
    twice = sun_response(doubled, clear, [*days, days[-1]])
    np.testing.assert_allclose(twice.slope, once.slope, rtol=1e-5)
    s_stat = 10 + 4  # 10 concordant pairs of distinct days, 4 more with the repeated look
    variance = (6 * 5 * 17 - 2 * 1 * 9) / 18
    np.testing.assert_allclose(twice.trend, (s_stat - 1) / math.sqrt(variance), rtol=1e-5)
    assert twice.looks[0, 0] == 6


def test_building_shadow_strips_are_not_terrain() -> None:
    """Two pixels wide, following the sun: a tall building's lengthening shadow, not a slope."""
    stack, clear, masks = _scene()
    strip = np.zeros(masks["yard"].shape, bool)
    strip[5:7, 5:35] = True
    for t, day in enumerate(DAYS):
        lit = DIFFUSE + (1.0 - DIFFUSE) * _illumination(day)
        stack[t][:, strip] *= lit[:, None]
    response = sun_response(stack, clear, DAYS)
    found = shadowed(response, masks["yard"] | masks["coal"] | masks["slope"])
    assert not found[strip].any()
    assert found[masks["slope"]].mean() > 0.9


def test_mismatched_looks_are_refused() -> None:
    stack, clear, _ = _scene()
    with pytest.raises(ValueError, match="do not describe the same looks"):
        sun_response(stack, clear, DAYS[:-1])


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2023, 6, 21), 23.44), (date(2023, 12, 21), -23.44), (date(2023, 3, 20), 0.0),
     (date(2023, 9, 23), 0.0)],
)  # fmt: skip
def test_solar_declination(day: date, expected: float) -> None:
    assert solar_declination(day) == pytest.approx(expected, abs=0.5)


def test_shorth_stays_on_the_majority() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.0, 1.0, 600), rng.normal(6.0, 0.5, 400), [np.nan]])
    location, scale = shorth(values)
    assert abs(location) < 0.3
    assert 0.7 < scale < 1.4
    assert shorth(np.array([np.nan])) == (0.0, 0.0)


def _numpy_response(
    stack: NDArray[np.float32], clear: Mask, sun: NDArray[np.float64]
) -> tuple[NDArray[Any], ...]:
    """The definition: the numpy ``terrain._response`` the numba kernel replaced, verbatim."""
    ok = clear & np.isfinite(stack).all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.where(ok[:, None], np.log(np.maximum(stack, 0.005)), np.nan)
    logs = logs.astype(np.float32)
    first, second = np.triu_indices(len(sun), k=1)
    apart = sun[second] != sun[first]
    first, second = first[apart], second[apart]
    run = (sun[second] - sun[first]).astype(np.float32)[:, None, None]
    shape = stack.shape[2:]
    slope = np.full((stack.shape[1], *shape), np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for b in range(stack.shape[1]):
            if first.size:
                slope[b] = np.nanmedian((logs[second, b] - logs[first, b]) / run, axis=0)
        mean_log = logs.mean(axis=1)
    signs = np.sign(run) * np.sign(mean_log[second] - mean_log[first])
    s_stat = np.nansum(signs, axis=0) if first.size else np.zeros(shape)
    n = ok.sum(axis=0).astype(np.float64)
    variance = n * (n - 1) * (2 * n + 5)
    for value in np.unique(sun):
        g = ok[sun == value].sum(axis=0).astype(np.float64)
        variance -= g * (g - 1) * (2 * g + 5)
    low = np.where(ok, sun[:, None, None], np.inf).min(axis=0)
    high = np.where(ok, sun[:, None, None], -np.inf).max(axis=0)
    usable = (n >= 2) & (high > low)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.sign(s_stat) * np.maximum(np.abs(s_stat) - 1.0, 0.0) / np.sqrt(variance / 18)
    return (
        np.where(usable, slope, np.nan).astype(np.float32),
        np.where(usable, score, np.nan).astype(np.float32),
        np.where(usable, high - low, np.nan).astype(np.float32),
        n.astype(np.int16),
        np.where(usable, s_stat, np.nan).astype(np.float32),
        np.where(usable, variance / 18, np.nan).astype(np.float32),
    )


def _random_looks(
    seed: int, n_time: int, *, distinct: bool = False
) -> tuple[NDArray[np.float32], Mask, list[date]]:
    """Quantised reflectance (ties, zero slopes, values under the log floor and below zero),
    NaN and inf bands, 30 % cloud, whole cloudy looks, looks of one day (unless ``distinct``)
    and days out of order."""
    rng = np.random.default_rng(seed)
    if distinct:
        offsets = rng.permutation(120)[:n_time]
    else:
        offsets = rng.integers(0, 40 if seed % 2 else 300, n_time)
    days = [date(2023, 8, 25) + timedelta(days=int(d)) for d in offsets]
    if seed % 3 == 0:
        days.sort()
    levels = (10000, 200, 25)[seed % 3]
    shape = (n_time, len(BANDS), 5, 7)
    stack = (np.round(rng.uniform(-0.02, 0.4, shape) * levels) / levels).astype(np.float32)
    stack[rng.random(shape) < 0.03] = np.nan
    stack[rng.random(shape) < 0.005] = np.inf
    clear = rng.random((n_time, *shape[2:])) > 0.3
    clear[rng.random(n_time) < 0.15] = False
    clear[:, 0, 0] = False  # never clear
    return stack, clear, days


def _assert_as_numpy(stack: NDArray[np.float32], clear: Mask, days: list[date]) -> None:
    sun = np.array([solar_declination(d) for d in days], np.float64)
    got = sun_response(stack, clear, days).arrays()
    want = _numpy_response(stack, clear, sun)
    for name, a, b in zip(SUN_ARRAYS, got, want, strict=True):
        assert a.dtype == b.dtype, name
        assert a.shape == b.shape, name
        # Equal as numbers, NaN where NaN. A sort may order -0.0 and 0.0 either way, in numpy
        # as in the kernel: the sign of a zero slope is the one bit this does not hold fixed.
        assert np.array_equal(a, b, equal_nan=True), name
        if name != "slope":
            assert np.array_equal(np.signbit(a), np.signbit(b)), name


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 40))
def test_kernel_matches_the_numpy_definition(seed: int, n_time: int) -> None:
    _assert_as_numpy(*_random_looks(seed, n_time))


@pytest.mark.parametrize("n_time", [2, 3, 12, 24, 35, 36, 40])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_the_numpy_definition_across_its_median_paths(
    seed: int, n_time: int
) -> None:
    """35 looks of distinct days make 595 pairs, 36 make 630: numpy's nanmedian takes its
    masked-array path below 600 and its one-pixel-at-a-time path above."""
    _assert_as_numpy(*_random_looks(seed, n_time, distinct=True))


def test_where_relates_only_those_pixels_each_as_without_it() -> None:
    """``where`` packs the pixels it names: their response is the whole grid's, the others
    have none (NaN, 0 looks)."""
    rng = np.random.default_rng(11)
    t, h, w = 9, 13, 17
    days = [date(2023, 9, 1) + timedelta(days=8 * i) for i in range(t)]
    stack = rng.uniform(0.01, 0.3, (t, 6, h, w)).astype(np.float32)
    clear = rng.random((t, h, w)) > 0.25
    where = rng.random((h, w)) > 0.6
    whole, part = sun_response(stack, clear, days), sun_response(stack, clear, days, where=where)
    for a, b in zip(whole.arrays(), part.arrays(), strict=True):
        assert np.array_equal(a[..., where], b[..., where], equal_nan=True)
    assert np.isnan(part.slope[:, ~where]).all()
    assert np.isnan(part.trend[~where]).all()
    assert (part.looks[~where] == 0).all()
    none = sun_response(stack, clear, days, where=np.zeros((h, w), bool))
    assert (none.looks == 0).all()


# --- the years settle a season's verdict (``analysis.settle_terrain_shadow``) -----------------


def _season(
    year: int,
    seed: int,
    *,
    shaded_yard: bool = False,
    slope_looks: int = 8,
    slope_in_full_shadow: bool = False,
    slope_in_deep_shadow: bool = False,
) -> Any:
    """A site-year of ``_scene`` (the same ground every year, its looks moved to ``year``):
    with ``shaded_yard``, part of the yard under cloud shadows the mask missed (the direct beam
    cut, skylight left), ever deeper, in the season's last four looks; with ``slope_looks``
    under 8, the slope clear in only that many looks; with ``slope_in_full_shadow``, the slope
    in the ridge's shadow all season, alike in every look (no trend); with
    ``slope_in_deep_shadow``, the ridge cuts the whole direct beam all season: skylight only."""
    stack, clear, masks = _scene(seed)
    if shaded_yard:
        for t, direct in zip(range(4, 8), (0.75, 0.6, 0.5, 0.45), strict=True):
            stack[t][:, SHADED_ROWS] *= (DIFFUSE + (1.0 - DIFFUSE) * direct)[:, None, None]
    if slope_looks < len(DAYS):
        clear[slope_looks:][:, masks["slope"]] = False
    if slope_in_full_shadow or slope_in_deep_shadow:
        noise = np.random.default_rng(seed).normal(0.0, 0.002, (len(DAYS), len(BANDS), 100))
        # The ridge cuts most of the beam all season, or all of it.
        lit = DIFFUSE + (1.0 - DIFFUSE) * (0.0 if slope_in_deep_shadow else 0.3)
        stack[:, :, masks["slope"]] = (ROCK * lit)[None, :, None] + noise.astype(np.float32)
    looks = [
        Look(
            day.replace(year=year), stack[t], clear[t],
            look_record(f"look-{year}-{t}", f"{day.replace(year=year).isoformat()}T02:30:00Z"),
        )
        for t, day in enumerate(DAYS)
    ]  # fmt: skip
    area = np.ones(stack.shape[2:], bool)
    return site_year("slope-site", year, looks, [], area, PIXEL_HA, RecipeParams()), masks


SHADED_ROWS = slice(0, 6)


def test_a_yard_one_season_saw_darken_with_the_sun_is_mapped_again_by_the_others() -> None:
    """Unflagged cloud shadows over part of a yard in a season's late looks follow the sun as a
    slope does; the other seasons saw the yard flat, and it is mapped again. The slope, shadowed
    every season, stays out."""
    years = [_season(2020 + i, seed=3 + i, shaded_yard=i == 1)[0] for i in range(4)]
    _, masks = _season(2020, 3)
    shaded = np.zeros_like(masks["yard"])
    shaded[SHADED_ROWS] = True
    assert years[1].terrain_shadow[shaded].mean() > 0.5  # the season alone is fooled
    assert years[1].footprint[shaded].mean() < 0.5
    settled = settle_terrain_shadow(years, 1, PIXEL_HA)
    for before, after in zip(years, settled, strict=True):
        assert after.footprint[masks["yard"]].mean() > 0.95
        assert after.footprint[masks["slope"]].mean() < 0.05
        assert after.terrain_shadow[masks["slope"]].mean() > 0.9
        assert not after.terrain_shadow[shaded].any()
        # The second slope has three clear looks every season: no season can judge it alone,
        # the seasons pooled can (``pooled_terrain_shadow``).
        assert before.footprint[masks["few"]].mean() > 0.9
        assert after.footprint[masks["few"]].mean() < 0.05
        if before is not years[1]:
            outside = ~masks["few"]
            np.testing.assert_array_equal(after.footprint[outside], before.footprint[outside])
    # One other season that saw the yard flat is enough: a slope is never seen so.
    pair = settle_terrain_shadow(years[:2], 1, PIXEL_HA)
    assert pair[1].footprint[masks["yard"]].mean() > 0.95
    assert pair[1].footprint[masks["slope"]].mean() < 0.05


def test_a_slope_one_season_could_not_judge_is_left_out_by_the_others() -> None:
    """A season with three clear looks of the slope cannot tell it follows the sun and maps it;
    the three seasons that could, found it shadowed, and it is left out that season too."""
    years = [_season(2020 + i, seed=3 + i, slope_looks=3 if i == 2 else 8)[0] for i in range(4)]
    _, masks = _season(2020, 3)
    slope = masks["slope"]
    assert years[2].footprint[slope].mean() > 0.9  # the season alone maps it
    settled = settle_terrain_shadow(years, 1, PIXEL_HA)
    assert settled[2].footprint[slope].mean() < 0.05
    assert not settled[2].coal_mask[slope].any()
    assert settled[2].terrain_shadow[slope].mean() > 0.9
    assert settled[2].footprint[masks["yard"]].mean() > 0.95
    # One other season is too few to take ground out of a season that mapped it.
    kept = settle_terrain_shadow(years[1:3], 1, PIXEL_HA)
    np.testing.assert_array_equal(kept[1].footprint, years[2].footprint)


def test_a_season_votes_flat_only_where_its_looks_could_show_a_trend() -> None:
    """Four looks cannot make Kendall's trend significant at 0.025 (the most a falling series
    reaches is z = 1.70): such ground is not judged, and its season does not vote."""
    assert terrain.min_trend_looks(0.025) == 5
    assert terrain.min_trend_looks(0.05) == 4
    stack, clear, masks = _scene()
    response = sun_response(stack, clear, DAYS)
    seen = terrain.judged(response)
    assert seen[masks["yard"]].all()
    assert not seen[masks["few"]].any()  # three looks
    clear[4:][:, masks["yard"]] = False  # four looks left
    assert not terrain.judged(sun_response(stack, clear, DAYS))[masks["yard"]].any()


def test_a_season_that_saw_the_slope_in_full_shadow_does_not_map_it_again() -> None:
    """A season whose sun stays behind the ridge sees the slope dark and alike in every look: it
    votes flat, but darker than the season that saw the slope darken, so the slope is no yard.
    """
    years = [_season(2020 + i, seed=3 + i, slope_in_full_shadow=i > 0)[0] for i in range(3)]
    _, masks = _season(2020, 3)
    slope = masks["slope"]
    assert years[0].terrain_shadow[slope].mean() > 0.9
    assert years[1].terrain_flat[slope].mean() > 0.9  # the case is real: judged, and flat
    settled = settle_terrain_shadow(years, 1, PIXEL_HA)
    assert settled[0].footprint[slope].mean() < 0.05
    assert settled[0].terrain_shadow[slope].mean() > 0.9


def test_a_slope_the_other_seasons_saw_in_deep_shadow_is_left_out() -> None:
    """Seasons that see the slope in the ridge's shadow all along (skylight only: SWIR1 under
    the footprint rule's floor) neither map nor judge it; a season of three clear looks maps it
    as bare rock. Those seasons saw it darker in every band: it is left out as shadowed. A yard
    every season saw alike stays."""
    years = [
        _season(2020 + i, seed=3 + i, slope_looks=3 if i == 2 else 8,
                slope_in_deep_shadow=i != 2)[0]
        for i in range(4)
    ]  # fmt: skip
    _, masks = _season(2020, 3)
    slope = masks["slope"]
    for i in (0, 1, 3):  # the case is real: neither mapped nor judged
        assert years[i].footprint[slope].mean() < 0.05
        assert not (years[i].terrain_shadow | years[i].terrain_flat)[slope].any()
    assert years[2].footprint[slope].mean() > 0.9
    assert not (years[2].terrain_shadow | years[2].terrain_flat)[slope].any()
    settled = settle_terrain_shadow(years, 1, PIXEL_HA)
    assert settled[2].footprint[slope].mean() < 0.05
    assert settled[2].terrain_shadow[slope].mean() > 0.9
    for before, after in zip(years, settled, strict=True):
        assert after.footprint[masks["yard"]].mean() > 0.95
        assert after.footprint[masks["few"]].mean() < 0.05  # the seasons pooled judge it
        if before is not years[2]:
            outside = ~masks["few"]
            np.testing.assert_array_equal(after.footprint[outside], before.footprint[outside])
    # One such season is too few.
    kept = settle_terrain_shadow(years[1:3], 1, PIXEL_HA)
    np.testing.assert_array_equal(kept[1].footprint, years[2].footprint)


# --- seasons pooled (``terrain.pooled``, ``analysis.pooled_terrain_shadow``) ------------------


def _looks_on(
    days: list[date], level: float, *, follows_sun: bool, seed: int
) -> tuple[NDArray[np.float32], Mask]:
    """A 6 x 6 patch of rock at ``level`` times its spectrum on ``days``: lit as the slope of
    ``_illumination`` when ``follows_sun``, else flat; sensor noise."""
    rng = np.random.default_rng(seed)
    stack = np.empty((len(days), len(BANDS), 6, 6), np.float32)
    for t, day in enumerate(days):
        lit = DIFFUSE + (1.0 - DIFFUSE) * _illumination(day) if follows_sun else np.ones(6)
        spectrum = (ROCK * level * lit).astype(np.float32)
        stack[t] = spectrum[:, None, None] + rng.normal(0.0, 0.002, (len(BANDS), 6, 6))
    return stack, np.ones((len(days), 6, 6), bool)


def test_pooled_seasons_add_their_kendall_scores() -> None:
    """The seasonal Kendall test: S and its variance add up over the seasons, and the sum is
    scored as one season's is; one season pooled is that season."""
    early, late = DAYS[0::2], [d.replace(year=2024) for d in DAYS[1::2]]
    a = sun_response(*_looks_on(early, 1.0, follows_sun=True, seed=1), early)
    b = sun_response(*_looks_on(late, 1.0, follows_sun=True, seed=2), late)
    both = terrain.pooled([a, b])
    np.testing.assert_array_equal(both.score, a.score + b.score)
    np.testing.assert_allclose(both.variance, a.variance + b.variance, rtol=1e-6)
    expected = (np.abs(both.score) - 1.0) * np.sign(both.score) / np.sqrt(both.variance)
    np.testing.assert_allclose(both.trend, expected, rtol=1e-6)
    assert (both.looks == 8).all()
    np.testing.assert_array_equal(both.span, np.fmax(a.span, b.span))
    # Four looks each: neither season's trend is significant, the pooled one is.
    assert (a.trend < 1.96).all()
    assert (b.trend < 1.96).all()
    assert (both.trend >= 1.96).all()
    alone = terrain.pooled([a])
    for name, mine, theirs in zip(SUN_ARRAYS, alone.arrays(), a.arrays(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, err_msg=name)
    with pytest.raises(ValueError, match="no seasons"):
        terrain.pooled([])


def test_a_change_between_seasons_is_no_trend_when_pooled() -> None:
    """Flat ground twice as bright in the season whose looks came under the higher sun: taken
    as one season it falls with the sun; pooled, each season is compared only with itself."""
    early = [date(2022, 9, 1) + timedelta(days=4 * i) for i in range(8)]
    late = [date(2023, 10, 10) + timedelta(days=4 * i) for i in range(8)]
    bright, clear_a = _looks_on(early, 2.0, follows_sun=False, seed=3)
    dark, clear_b = _looks_on(late, 1.0, follows_sun=False, seed=4)
    as_one = sun_response(
        np.concatenate([bright, dark]), np.concatenate([clear_a, clear_b]), early + late
    )
    assert (as_one.trend >= 1.96).mean() > 0.9  # the case is real
    pooled = terrain.pooled(
        [sun_response(bright, clear_a, early), sun_response(dark, clear_b, late)]
    )
    # No trend: a normal score, significant at 0.05 two-sided by chance only.
    assert np.median(np.abs(pooled.trend)) < 1.0
    assert (np.abs(pooled.trend) >= 1.96).mean() < 0.2
    assert np.abs(pooled.slope).max() < np.abs(as_one.slope).min()


def test_pooled_slope_is_the_mean_weighted_by_pairs_of_looks() -> None:
    """Six looks (15 pairs) weigh five times three (3 pairs) and fifteen times two (1 pair); a
    season without a trend at a pixel (one look) weighs nothing there."""
    shape = (1, 2)

    def season(slope: float, looks: int) -> SunResponse:
        n = np.full(shape, looks, np.int16)
        value = np.float32(1.0 if looks >= 2 else np.nan)
        return SunResponse(
            slope=np.full((len(BANDS), *shape), slope * value, np.float32),
            trend=np.full(shape, value, np.float32), span=np.full(shape, 10.0 * value, np.float32),
            looks=n, score=np.full(shape, value, np.float32),
            variance=np.full(shape, value, np.float32),
        )  # fmt: skip

    many, few, two, none = season(0.01, 6), season(0.05, 3), season(0.03, 2), season(0.09, 1)
    expected = (15 * 0.01 + 3 * 0.05 + 1 * 0.03) / 19
    np.testing.assert_allclose(terrain.pooled([few, many, two]).slope, expected, rtol=1e-6)
    np.testing.assert_allclose(terrain.pooled([few, none]).slope, 0.05, rtol=1e-6)
    assert (terrain.pooled([few, none]).looks == 3).all()  # one look alone adds nothing
    assert np.isnan(terrain.pooled([none, none]).slope).all()


def test_the_rim_of_coal_left_out_with_its_slope_goes_too() -> None:
    """The second slope (three clear looks a season, which no season judges alone) is mapped
    as coal one season, with a rim of mixed pixels beside it: the seasons pooled leave the
    slope out, and the rim, a piece under the minimum mapping unit, goes with it."""
    years = [_season(2020 + i, seed=3 + i)[0] for i in range(4)]
    _, masks = _season(2020, 3)
    few = masks["few"]
    rim = np.zeros_like(few)
    rim[19, 30:40] = True
    years[1] = replace(
        years[1], coal_mask=years[1].coal_mask | few | rim, footprint=years[1].footprint | rim
    )
    settled = settle_terrain_shadow(years, 25, PIXEL_HA)
    assert not settled[1].coal_mask[few | rim].any()
    assert not settled[1].footprint[few | rim].any()
    assert settled[1].coal_mask[masks["coal"]].mean() == years[1].coal_mask[masks["coal"]].mean()


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_season_sees_a_slope_darken_from_three_looks_but_not_over_a_few_degrees(
    seed: int,
) -> None:
    """``terrain.follows_sun``: three looks across the season are enough to see the slope
    darken as a slope does (not to judge it: no significance), the yard never does; two looks
    4 degrees of sun apart see nothing, on the slope either."""
    stack, clear, masks = _scene(seed)
    reference = masks["yard"] | masks["coal"] | masks["slope"] | masks["few"]
    seen = terrain.follows_sun(sun_response(stack, clear, DAYS), reference)
    assert seen[masks["slope"]].mean() > 0.95
    assert seen[masks["few"]].mean() > 0.95  # three looks
    assert not seen[masks["yard"]].any()
    assert not seen[~reference].any()
    early = sun_response(stack[:2], clear[:2], DAYS[:2])
    assert np.nanmax(early.span) < 8.0
    assert not terrain.follows_sun(early, reference).any()


@pytest.mark.parametrize(("light", "left_out"), [(0.55, False), (0.3, True)])
def test_only_seasons_that_saw_the_ground_darker_than_coal_vote_it_a_slope(
    light: float, left_out: bool
) -> None:
    """A season mapped the yard without judging it; two seasons did not map it, their
    composites darker there in every band. At 55 % of its light (cloud shadows the mask missed
    in a cloudy season's few looks) the yard is still brighter than coal: no vote, it stays.
    At 30 % (skylight only, a slope behind its ridge all season) it reads darker than coal:
    two votes, it is left out."""
    years = [_season(2020 + i, seed=3 + i)[0] for i in range(3)]
    _, masks = _season(2020, 3)
    yard = masks["yard"]
    years[0] = replace(years[0], terrain_flat=years[0].terrain_flat & ~yard)  # not judged
    for i in (1, 2):
        sy = years[i]
        reflectance = sy.composite.reflectance.copy()
        reflectance[:, yard] *= np.float32(light)
        years[i] = replace(
            sy,
            composite=Composite(reflectance, sy.composite.clear_count, sy.composite.mad),
            footprint=sy.footprint & ~yard,
            terrain_flat=sy.terrain_flat & ~yard,
            sun=None,  # votes only: no pooling
        )
    assert np.mean(years[1].composite.reflectance[:, yard]) > 0.075 or left_out  # the case
    settled = settle_terrain_shadow(years, 1, PIXEL_HA)
    kept = settled[0].footprint[yard].mean()
    assert kept < 0.05 if left_out else kept > 0.95
