"""Coal the clouds left too few looks to count is reported, not silently dropped.

The counting rule (DOMAIN.md) needs a pixel flagged as coal in half of its clear looks and in at
least three. A year whose clouds leave a pile two clear looks, one of them veiled by a cloud edge
the mask missed, cannot count it: its ``coal_ha`` undercounts. ``coal_undecided_ha`` and the flag
``coal-undecided`` say so; the year stays in the trends (a cloud shadow over a yard in one of two
looks is undecided too)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import ndimage
from shapely.geometry import box

from pipeline import boundaries
from pipeline.analysis import COAL_UNDECIDED, analyse_site, undecided_coal
from pipeline.classify import CoalFrequency, coal_frequency, coal_observation
from pipeline.composite import median_composite
from pipeline.export.layers import TREND_COLUMNS, trend_rows
from pipeline.export.site_rasters import CLASS_LEGEND, class_map
from pipeline.results import SiteAnalysis, SiteYear
from pipeline.sites import Site
from pipeline.trends import FLAG_MEANINGS, KNOWN_FLAGS, select_series

# Reflectance (blue, green, red, nir, swir16, swir22), as in tests/test_stages.py.
BUILT = np.array([0.12, 0.13, 0.14, 0.18, 0.22, 0.20], np.float32)
COAL = np.array([0.040, 0.042, 0.045, 0.050, 0.055, 0.052], np.float32)
NOISE = 0.006  # per band and look (DOMAIN.md)

SITE = Site("t", "t", "mine", box(127.0, 39.0, 127.006, 39.0048), "test")
GRID = SITE.grid(10.0, 0.0)
PX_HA = GRID.pixel_area_ha
MIN_PX = boundaries.min_pixels_for_area(0.25, PX_HA)


def _pile() -> NDArray[np.bool_]:
    pile = np.zeros(GRID.shape, bool)
    pile[15:25, 20:30] = True  # 1 ha
    return pile


def _season(n_looks: int, veiled: tuple[int, ...], seed: int) -> NDArray[np.float32]:
    """(look, band, y, x): a yard with the pile, sensor noise in every look; a look in
    ``veiled`` has a cloud edge the mask missed over the pile (+0.05 in the visible, +0.02 in
    the SWIR): too bright for the coal rule there."""
    rng = np.random.default_rng(seed)
    ground = np.where(_pile()[None], COAL[:, None, None], BUILT[:, None, None])
    stack = np.repeat(ground[None], n_looks, axis=0)
    stack = stack + rng.normal(0.0, NOISE, stack.shape)
    veil = np.array([0.05, 0.05, 0.05, 0.03, 0.02, 0.02], np.float32)[:, None, None]
    for t in veiled:
        stack[t] = np.where(_pile()[None], stack[t] + veil, stack[t])
    return stack.astype(np.float32)


def _site_year(
    year: int, n_looks: int, veiled: tuple[int, ...], clouded: tuple[int, ...], seed: int
) -> SiteYear:
    """A site-year classified as the run counts coal: frequency over the clear looks, the
    counting rule, the minimum mapping unit. The looks in ``clouded`` are masked over the
    pile and the yard around it (a cloud and its shadow)."""
    stack = _season(n_looks, veiled, seed)
    clear = np.ones((n_looks, *GRID.shape), bool)
    for t in clouded:
        clear[t, 5:35, 10:40] = False
    composite = median_composite(stack, clear)
    coal = coal_frequency(stack, clear)
    coal_mask = boundaries.remove_small_regions(coal.mask(0.5, 3, 3), MIN_PX)
    valid = np.ones(GRID.shape, bool)
    return SiteYear(
        "t", year, (f"{year}-09-01", f"{year}-11-15"), False, (), composite, coal,
        valid.copy(), coal_mask, valid, float(np.median(composite.clear_count)), 1.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def analysis() -> SiteAnalysis:
    """2020 and 2022: five clear looks; 2021: five looks, of which clouds leave the pile two,
    one of them veiled; most of the site is seen in all five."""
    years = [
        _site_year(2020, 5, (), (), 1),
        _site_year(2021, 5, (1,), (2, 3, 4), 2),
        _site_year(2022, 5, (3,), (), 3),
    ]
    return analyse_site(
        SITE, GRID, years, buffer_m=0.0, min_mapping_unit_ha=0.25, change_opening_px=1,
        coregistration=None,
    )  # fmt: skip


def test_undecided_means_flagged_in_too_few_looks() -> None:
    flagged = np.array([[2, 1, 1, 1, 2, 0]], np.int16)
    clear = np.array([[2, 2, 1, 4, 4, 1]], np.int16)
    freq = CoalFrequency((flagged / clear).astype(np.float32), flagged, clear)
    # 2 of 2 counts; 1 of 2 and 1 of 1 cannot be settled; 1 of 4 and 2 of 4 are settled (not
    # coal: under half, or under three flags with looks enough); 0 of 1 is no evidence of coal.
    undecided = freq.undecided(0.5, 3)
    np.testing.assert_array_equal(undecided[0], [False, True, True, False, False, False])
    assert not (undecided & freq.mask(0.5, 3, 0)).any()
    # Where two flags are enough, 1 of 1 is the only pixel short of looks.
    np.testing.assert_array_equal(freq.undecided(0.5, 2)[0], [False, False, True] + [False] * 3)


def test_a_pile_seen_in_too_few_looks_is_reported_as_undecided(analysis: SiteAnalysis) -> None:
    m2020, m2021, m2022 = analysis.metrics
    for seen in (m2020, m2022):  # five looks (2022: one veiled), the pile counts
        assert seen.coal_ha == pytest.approx(1.0, abs=0.05)
        assert seen.coal_undecided_ha == 0.0
        assert COAL_UNDECIDED not in seen.flags
    # Two looks, one veiled: flagged in 1 of 2, the rule cannot count it; it is not lost.
    assert analysis.years[1].median_clear >= 3  # not a year of few clear looks
    assert m2021.coal_ha < 0.1
    assert m2021.coal_undecided_ha == pytest.approx(1.0, abs=0.05)
    assert m2021.coal_undecided_ha > m2021.coal_pm_ha
    assert COAL_UNDECIDED in m2021.flags


def test_the_yard_seen_twice_is_not_undecided(analysis: SiteAnalysis) -> None:
    """Noisy looks of the yard, two of them around the pile, flag no coal: only the pile is
    undecided."""
    sy = analysis.years[1]
    assert sy.coal is not None
    undecided = sy.coal.undecided(0.5, 3)
    assert undecided[_pile()].mean() > 0.95
    assert not undecided[~_pile()].any()


def test_the_undecided_year_is_reported_and_kept(analysis: SiteAnalysis) -> None:
    rows = trend_rows(analysis, 3)
    assert "coal_undecided_ha" in TREND_COLUMNS
    by_year = {r["year"]: r for r in rows}
    assert by_year[2021]["coal_undecided_ha"] == pytest.approx(1.0, abs=0.05)
    assert by_year[2020]["coal_undecided_ha"] == 0.0
    assert COAL_UNDECIDED in by_year[2021]["flags"].split(";")
    assert select_series(rows, "coal_ha").years == (2020, 2021, 2022)


def test_the_flag_is_known_and_explained() -> None:
    assert COAL_UNDECIDED in KNOWN_FLAGS
    assert "too few looks" in FLAG_MEANINGS[COAL_UNDECIDED]


def test_the_class_map_shows_undecided_coal(analysis: SiteAnalysis) -> None:
    assert {c.value: c.label for c in CLASS_LEGEND}[3].startswith("coal undecided")
    seen, cloudy = class_map(analysis.years[0]), class_map(analysis.years[1])
    pile = _pile()
    assert (seen[pile] == 2).mean() > 0.95
    assert (cloudy[pile] == 3).mean() > 0.95
    assert not (cloudy[~pile] == 3).any()


def test_undecided_follows_the_rule_it_cannot_settle() -> None:
    """With a stricter rule (5 flags), 3 of 4 looks is short of looks, 4 of 4 is not."""
    flagged = np.array([[3, 4, 2]], np.int16)
    clear = np.array([[4, 4, 4]], np.int16)
    freq = CoalFrequency((flagged / clear).astype(np.float32), flagged, clear)
    np.testing.assert_array_equal(freq.mask(0.5, 5, 0)[0], [False, True, False])
    np.testing.assert_array_equal(freq.undecided(0.5, 5)[0], [True, False, True])


def test_a_yard_under_a_cloud_shadow_in_one_of_two_looks_is_settled() -> None:
    """Two looks of a yard, one under a cloud shadow the mask missed (the scenario's shadow:
    diffuse skylight keeps 45% of blue, 25% of the SWIR), flag it once: the other look saw it
    bright in the SWIR, so it is not coal. Two looks of a pile, one veiled, are undecided."""
    keep = np.array([0.45, 0.38, 0.34, 0.28, 0.25, 0.25], np.float32)
    veil = np.array([0.05, 0.05, 0.05, 0.03, 0.02, 0.02], np.float32)
    yard = np.stack([BUILT, BUILT * keep])[:, :, None, None]
    pile = np.stack([COAL, COAL + veil])[:, :, None, None]
    stack = np.concatenate([yard, pile], axis=3)  # (look, band, 1, 2): yard, pile
    assert coal_observation(stack[1])[0, 0]  # the shadowed yard passes for coal
    assert not coal_observation(stack[1])[0, 1]  # the veiled pile does not
    counted = coal_frequency(stack, np.ones((2, 1, 2), bool))
    np.testing.assert_array_equal(counted.flagged[0], [1, 1])
    np.testing.assert_array_equal(counted.clear[0], [2, 2])
    np.testing.assert_array_equal(counted.undecided(0.5, 3)[0], [False, True])
    # Counts alone cannot tell them apart.
    blind = CoalFrequency(counted.frequency, counted.flagged, counted.clear)
    np.testing.assert_array_equal(blind.undecided(0.5, 3)[0], [True, True])


def test_a_slope_any_season_left_out_is_not_undecided(analysis: SiteAnalysis) -> None:
    """Ground some season of the site left out as a slope in terrain shadow is one every autumn:
    dark in one of two looks there is no undecided coal."""
    cloudy = analysis.years[1]
    assert undecided_coal(cloudy, 0.5, 3, MIN_PX)[_pile()].mean() > 0.95
    assert not undecided_coal(cloudy, 0.5, 3, MIN_PX, slopes=_pile()).any()


def test_a_pile_shaded_inside_in_one_of_two_looks_is_undecided_with_its_ring() -> None:
    """A 0.42 ha pile seen in two looks, the second under a cloud shadow the mask missed: its
    inner pixels fall below the coal rule's SWIR floors there (1 flag of 2: undecided), while
    its mixed rim, half yard, reads coal-dark in both (2 of 2: counted, but a ring one pixel
    thin is no pile, and under the minimum mapping unit). The inner part alone (0.2 ha) is
    under the unit too: only with its ring is the pile reported undecided, whole."""
    inner = np.zeros(GRID.shape, bool)
    inner[16:20, 21:26] = True  # 20 px
    pile = np.asarray(ndimage.binary_dilation(inner, np.ones((3, 3), bool)))  # 42 px
    ring = pile & ~inner
    rng = np.random.default_rng(4)
    ground = np.where(pile[None], COAL[:, None, None], BUILT[:, None, None])
    stack = np.repeat(ground[None], 2, axis=0) + rng.normal(0.0, 0.002, (2, 6, *GRID.shape))
    shade = np.float32(0.35)  # a cloud shadow: a third of the light left
    stack[1] = np.where(inner[None], stack[1] * shade, stack[1])
    stack[1] = np.where(ring[None], ((COAL + BUILT) / 2 * shade)[:, None, None], stack[1])
    stack = stack.astype(np.float32)
    clear = np.ones((2, *GRID.shape), bool)
    assert coal_observation(stack[1])[ring].all()  # the shaded rim reads coal
    assert not coal_observation(stack[1])[inner].any()  # the shaded inside is too dark
    coal = coal_frequency(stack, clear)
    coal_mask = boundaries.remove_small_regions(coal.mask(0.5, 3, 3), MIN_PX)
    assert not coal_mask.any()
    valid = np.ones(GRID.shape, bool)
    sy = SiteYear(
        "t", 2021, ("2021-09-01", "2021-11-15"), False, (), median_composite(stack, clear),
        coal, valid.copy(), coal_mask, valid, 2.0, 1.0,
    )  # fmt: skip
    assert inner.sum() < MIN_PX <= pile.sum()
    undecided = undecided_coal(sy, 0.5, 3, MIN_PX)
    np.testing.assert_array_equal(undecided, pile)
