"""A burn scar's char is dark, flat to NIR and low in NDVI: one look passes for coal and for
bare ground (DOMAIN.md "Confusers"). What tells it apart is its history: it was vegetation
earlier in the season or in the year before, and it greens again. A coal pile dumped on a field
during the season is the same ground until the next year, where it stays.

Looks built by hand every ten days from 1 June to 15 November (``support.hand_looks``), so each
assertion is about the rules (``recipe.classify``'s coal on green ground,
``analysis.redate_clearings`` and ``analysis.drop_unseen_fields``) alone.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from shapely.geometry import box
from support.hand_looks import FOREST, Region, analysed, hand_looks, hand_site_years

from pipeline.recipe import Look
from pipeline.results import SiteAnalysis, SiteYear, site_year_arrays, site_year_record
from pipeline.sites import Site

# (blue, green, red, nir, swir16, swir22)
CROP = [0.030, 0.070, 0.040, 0.420, 0.220, 0.100]
SOIL = [0.070, 0.095, 0.120, 0.180, 0.260, 0.205]
COAL = [0.040, 0.042, 0.044, 0.048, 0.056, 0.058]
CHAR = [0.030, 0.032, 0.035, 0.050, 0.080, 0.075]  # severe burn: passes the per-look coal rule

Y = 2020
YEARS = (Y, Y + 1, Y + 2)
FIRE = date(Y + 1, 9, 5)  # in the season window: the summer saw forest
SPRING_FIRE = date(Y + 1, 4, 20)  # before the first look: char all season
DUMPED = date(Y + 1, 9, 5)  # a pile dumped on a field after its harvest
# Clouds over the spring burn from July to September of Y + 1: never seen while crops stand.
CLOUDY_SUMMER = Y + 1

PILE = (slice(5, 15), slice(5, 15))  # coal every year
BURN = (slice(25, 35), slice(5, 15))  # forest, burned on FIRE, forest again in Y + 2
SPRING_BURN = (slice(25, 35), slice(30, 40))  # forest, burned on SPRING_FIRE, regreens in Y + 2
DUMP = (slice(5, 15), slice(30, 40))  # a field; coal from DUMPED on


def surface(day: date) -> list[tuple[tuple[slice, slice], list[float]]]:
    year = day.year
    crop = CROP if date(year, 7, 1) <= day < date(year, 9, 1) else SOIL
    return [
        (PILE, COAL),
        (BURN, CHAR if year == Y + 1 and day >= FIRE else FOREST),
        (SPRING_BURN, CHAR if year == Y + 1 and day >= SPRING_FIRE else FOREST),
        (DUMP, COAL if day >= DUMPED else crop),
    ]


def spring_burn_clouds(day: date) -> list[Region]:
    """Clouds over the spring burn from July to September of ``CLOUDY_SUMMER``."""
    cloudy = day.year == CLOUDY_SUMMER and date(day.year, 7, 1) <= day < date(day.year, 10, 1)
    return [SPRING_BURN] if cloudy else []


def looks(year: int, shape: tuple[int, int]) -> list[Look]:
    return hand_looks(year, shape, surface, spring_burn_clouds, noise=0.002)


@pytest.fixture(scope="module")
def site() -> Site:
    return Site("burn", "burn", "camp", box(126.0, 39.0, 126.006, 39.0045), "test")


@pytest.fixture(scope="module")
def site_years(site: Site) -> list[SiteYear]:
    return hand_site_years(site, YEARS, looks, min_side_px=45)


@pytest.fixture(scope="module")
def analysis(site: Site, site_years: list[SiteYear]) -> SiteAnalysis:
    return analysed(site, site_years)


def share(mask: np.ndarray, where: tuple[slice, slice]) -> float:
    return float(mask[where].mean())


def test_char_on_ground_green_this_season_is_not_coal(site_years: list[SiteYear]) -> None:
    burned = site_years[1]
    assert burned.evidence is not None
    assert burned.evidence.coal_on_green is not None
    assert share(burned.coal.flagged > 0, BURN) > 0.9  # the looks alone call it coal
    assert share(burned.coal_mask, BURN) == 0.0
    assert share(burned.evidence.coal_on_green, BURN) > 0.9
    assert share(burned.coal_mask, PILE) == 1.0  # a pile that never greened is coal


def test_a_pile_dumped_on_a_field_is_dated_to_its_year(
    site_years: list[SiteYear], analysis: SiteAnalysis
) -> None:
    dumped = site_years[1]
    assert share(dumped.coal_mask, DUMP) == 0.0  # the season alone cannot tell it from char
    assert dumped.evidence is not None
    assert dumped.evidence.coal_on_green is not None
    assert share(dumped.evidence.coal_on_green, DUMP) > 0.9
    y1 = analysis.years[1]
    assert share(y1.coal_mask, DUMP) > 0.9  # the next year kept it: coal from Y + 1
    assert y1.redated is not None
    assert share(y1.redated, DUMP) > 0.9
    assert share(analysis.years[0].coal_mask, DUMP) == 0.0


def test_a_burn_scar_that_regreens_is_neither_coal_nor_footprint(analysis: SiteAnalysis) -> None:
    y1 = analysis.years[1]
    assert share(y1.coal_mask, BURN) == 0.0
    assert share(y1.footprint, BURN) == 0.0
    assert share(y1.coal_mask | y1.footprint, PILE) == 1.0


def test_a_spring_burn_seen_bare_all_season_leaves_the_footprint(
    site_years: list[SiteYear], analysis: SiteAnalysis
) -> None:
    """Burned before the season and unseen while crops stand: the year alone maps its char
    coal (never green this season); forest the year before and the year after takes it out."""
    alone = site_years[1]
    assert share(alone.coal_mask, SPRING_BURN) > 0.5
    y1 = analysis.years[1]
    assert share(y1.footprint | y1.coal_mask, SPRING_BURN) == 0.0
    assert y1.unseen_fields is not None
    assert share(y1.unseen_fields, SPRING_BURN) > 0.9
    assert share(y1.coal_mask, PILE) == 1.0  # coal there every year stays


def test_coal_on_green_survives_storage(site_years: list[SiteYear]) -> None:
    sy = site_years[1]
    assert sy.evidence is not None
    assert sy.evidence.coal_on_green is not None
    arrays = site_year_arrays(sy)
    np.testing.assert_array_equal(arrays["evidence_coal_on_green"], sy.evidence.coal_on_green)
    assert site_year_record(sy)["has_coal_on_green"] is True
