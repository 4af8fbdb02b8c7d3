"""Ground a year never saw clear (under cloud in every look of its season) keeps the footprint
of the nearest year that saw it (``analysis.fill_unseen``), flagged and counted apart, so a
camp does not shrink under a cloud and grow back the next year.

Looks built by hand (``support.hand_looks``), with clouds over fixed pieces of ground for
a whole season, so each assertion is about the fill alone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import box
from support.hand_looks import Region, analysed, hand_looks, hand_site_years

from pipeline.analysis import GAP_FILLED, fill_unseen
from pipeline.export.run_outputs import write_site_rasters
from pipeline.export.site_rasters import CLASS_LEGEND, class_map
from pipeline.recipe import Look
from pipeline.results import SiteAnalysis, SiteYear
from pipeline.sites import Site

# (blue, green, red, nir, swir16, swir22); forest everywhere else (``hand_looks``)
YARD = [0.100, 0.130, 0.165, 0.215, 0.300, 0.255]
COAL = [0.040, 0.042, 0.044, 0.050, 0.056, 0.050]

Y = 2020
YEARS = (Y, Y + 1, Y + 2, Y + 3)

# Rows and columns of each piece of ground on the 10 m grid (everything else: forest).
CAMP = (slice(5, 25), slice(5, 25))  # a yard every year
CAMP_UNDER_CLOUD = (slice(15, 25), slice(5, 25))  # its part under Y+1's cloud
NEW = (slice(28, 40), slice(5, 20))  # forest until Y+1, a yard from Y+2 on
PILE = (slice(28, 40), slice(30, 42))  # coal every year
FIRST = (slice(45, 55), slice(30, 45))  # a yard every year, under cloud in Y
NEVER = (slice(45, 55), slice(5, 20))  # a yard every year, under cloud every year
# Under cloud in every look of a season.
CLOUDS = {
    Y: (FIRST, NEVER),
    Y + 1: ((slice(15, 45), slice(0, 50)), NEVER),
    Y + 2: (NEVER,),
    Y + 3: (NEVER,),
}


def ground(day: date) -> list[tuple[Region, list[float]]]:
    """What lies on each piece of ground on ``day``."""
    out = [(CAMP, YARD), (PILE, COAL), (FIRST, YARD), (NEVER, YARD)]
    return [*out, (NEW, YARD)] if day.year >= Y + 2 else out


@pytest.fixture(scope="module")
def site() -> Site:
    return Site("gaps", "gaps", "camp", box(126.0, 39.0, 126.0072, 39.0056), "test")


@pytest.fixture(scope="module")
def site_years(site: Site) -> list[SiteYear]:
    def looks(year: int, shape: tuple[int, int]) -> list[Look]:
        return hand_looks(year, shape, ground, lambda day: CLOUDS[day.year])

    return hand_site_years(site, YEARS, looks, min_side_px=60)


@pytest.fixture(scope="module")
def analysis(site: Site, site_years: list[SiteYear]) -> SiteAnalysis:
    return analysed(site, site_years, coregistration=None)


def share(mask: np.ndarray, where: tuple[slice, slice]) -> float:
    return float(mask[where].mean())


def by_year(analysis: SiteAnalysis) -> dict[int, SiteYear]:
    return {sy.year: sy for sy in analysis.years}


def test_without_the_fill_a_cloud_takes_ground_out_of_the_footprint(
    site_years: list[SiteYear],
) -> None:
    under = {sy.year: sy for sy in site_years}[Y + 1]
    assert share(under.valid, CAMP_UNDER_CLOUD) == 0.0
    assert share(under.footprint, CAMP_UNDER_CLOUD) == 0.0  # what the fill mends


def test_unseen_ground_keeps_the_footprint_of_the_year_before(analysis: SiteAnalysis) -> None:
    years = by_year(analysis)
    under = years[Y + 1]
    assert share(under.footprint, CAMP) == 1.0
    assert under.gap_filled is not None
    assert share(under.gap_filled, CAMP_UNDER_CLOUD) == 1.0
    # Forest before, a yard after: the year before says forest, and the new yard shows in the
    # year that first saw it.
    assert share(under.footprint, NEW) == 0.0
    assert share(years[Y + 2].footprint, NEW) == 1.0
    # The fill is not seen ground: the year's valid pixels and coverage still tell the gap.
    assert share(under.valid, CAMP_UNDER_CLOUD) == 0.0


def test_the_first_year_takes_the_next_year_that_saw_the_ground(analysis: SiteAnalysis) -> None:
    first = by_year(analysis)[Y]
    assert share(first.footprint, FIRST) == 1.0
    assert first.gap_filled is not None
    assert share(first.gap_filled, FIRST) == 1.0


def test_ground_no_year_saw_stays_unmapped(analysis: SiteAnalysis) -> None:
    for sy in analysis.years:
        assert share(sy.footprint, NEVER) == 0.0
        assert sy.gap_filled is not None
        assert share(sy.gap_filled, NEVER) == 0.0


def test_coal_is_not_carried_but_reported_undecided(analysis: SiteAnalysis) -> None:
    years = by_year(analysis)
    assert share(years[Y].coal_mask, PILE) > 0.9  # a pile every year it is seen
    under = years[Y + 1]
    assert share(under.coal_mask, PILE) == 0.0
    assert share(under.footprint, PILE) == 1.0  # its ground was footprint the year before
    assert under.coal_undecided is not None
    hidden = years[Y].coal_mask & ~under.valid
    assert hidden.sum() > 100
    assert (under.coal_undecided == hidden).all()  # nothing else undecided in the test
    metrics = {m.year: m for m in analysis.metrics}
    assert metrics[Y + 1].coal_undecided_ha == pytest.approx(
        hidden.sum() * analysis.grid.pixel_area_ha
    )
    assert set(np.unique(class_map(under)[hidden])) == {3}


def test_the_areas_do_not_shrink_under_a_cloud_and_say_what_was_carried(
    analysis: SiteAnalysis,
) -> None:
    metrics = {m.year: m for m in analysis.metrics}
    px = analysis.grid.pixel_area_ha
    assert metrics[Y + 1].footprint_ha == pytest.approx(metrics[Y].footprint_ha)
    carried = (CAMP_UNDER_CLOUD[0].stop - CAMP_UNDER_CLOUD[0].start) * 20 + 12 * 12
    assert metrics[Y + 1].gap_filled_ha == pytest.approx(carried * px)
    assert metrics[Y].gap_filled_ha == pytest.approx(150 * px)  # FIRST, from Y + 1
    assert GAP_FILLED in metrics[Y + 1].flags
    assert GAP_FILLED in metrics[Y].flags
    assert metrics[Y + 3].gap_filled_ha == 0.0
    assert GAP_FILLED not in metrics[Y + 3].flags


def test_a_fill_makes_no_change(analysis: SiteAnalysis) -> None:
    changes = {(c.year_from, c.year_to): c for c in analysis.changes}
    assert changes[(Y, Y + 1)].added_ha == 0.0
    assert changes[(Y, Y + 1)].removed_ha == 0.0
    # The new yard was unseen in Y + 1: between Y + 1 and Y + 2 it is not a change either
    # (not seen in both years); the areas carry it.
    assert changes[(Y + 1, Y + 2)].added_ha == 0.0


def test_the_class_map_shows_carried_footprint_apart(analysis: SiteAnalysis) -> None:
    under = by_year(analysis)[Y + 1]
    classes = class_map(under)
    assert set(np.unique(classes[CAMP_UNDER_CLOUD])) == {4}
    assert set(np.unique(classes[NEVER])) == {255}
    assert {c.value: c.label for c in CLASS_LEGEND}[4].startswith("footprint carried")


def test_fill_unseen_prefers_the_year_before_over_the_year_after(
    site_years: list[SiteYear],
) -> None:
    shape = site_years[0].footprint.shape
    area = np.ones(shape, bool)

    def year(sy: SiteYear, footprint: bool, seen: bool) -> SiteYear:
        return replace(sy, footprint=np.full(shape, footprint), valid=np.full(shape, seen))

    before, gap, after = site_years[:3]
    years = [year(before, False, True), year(gap, False, False), year(after, True, True)]
    assert not fill_unseen(years, area)[1].footprint.any()  # the year before saw none
    years[0] = year(before, True, True)
    years[2] = year(after, False, True)
    filled = fill_unseen(years, area)[1]
    assert filled.footprint.all()
    assert filled.gap_filled is not None
    assert filled.gap_filled.all()
    # Outside the analysis area nothing is filled; a year without a composite lends nothing.
    assert not fill_unseen(years, np.zeros(shape, bool))[1].footprint.any()
    years[0] = replace(years[0], composite=None)
    assert not fill_unseen(years, area)[1].footprint.any()  # the year after saw none


def test_the_footprint_raster_holds_the_footprint_the_areas_count(
    analysis: SiteAnalysis, tmp_path: Path
) -> None:
    paths = write_site_rasters(tmp_path, analysis)
    path = next(p for p in paths if p.name == f"gaps_{Y + 1}_footprint.tif")
    with rasterio.open(path) as ds:
        footprint = ds.read(1)
    assert set(np.unique(footprint[CAMP_UNDER_CLOUD])) == {1}  # carried
    assert set(np.unique(footprint[NEVER])) == {255}  # never seen, nothing to carry
    assert set(np.unique(footprint[NEW])) == {255}  # unseen, carried as not footprint
