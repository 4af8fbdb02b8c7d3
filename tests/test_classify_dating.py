"""Expansion dated to the year it appears: ground cleared in mid-summer is footprint in that
year (confirmed by the next year), while fields, harvested early or on time, or seen only after
their harvest under a cloudy summer, never are.

Looks built by hand, every ten days from 1 June to 15 November (``support.hand_looks``), so
each assertion is about the dating rules alone.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from shapely.geometry import box
from support.hand_looks import FOREST, Region, analysed, hand_looks, hand_site_years

from pipeline.analysis import (
    MAY_LAG,
    MIN_FIELD_YEARS,
    REDATED,
    UNSEEN_FIELDS,
    drop_unseen_fields,
    field_signs,
    redate_clearings,
    unseen_part_of_field,
    whole_parcels,
)
from pipeline.recipe import Look
from pipeline.results import SeasonEvidence, SiteAnalysis, SiteYear
from pipeline.sites import Site

# (blue, green, red, nir, swir16, swir22)
CROP = [0.030, 0.070, 0.040, 0.420, 0.220, 0.100]
SOIL = [0.070, 0.095, 0.120, 0.180, 0.260, 0.205]
YARD = [0.100, 0.130, 0.165, 0.215, 0.300, 0.255]

Y = 2020
YEARS = (Y, Y + 1, Y + 2, Y + 3, Y + 4)
# No clear look from July to September: fields are seen bare in June (sown) and after harvest.
CLOUDY_SUMMERS = (Y + 1, Y + 2, Y + 4)

# Rows and columns of each piece of ground on the 10 m grid (everything else: forest).
CAMP = (slice(5, 20), slice(5, 20))  # a yard every year
PATCH = (slice(30, 40), slice(5, 15))  # forest, cleared on 1 July of Y, bare ever after
FIELD = (slice(30, 45), slice(30, 45))  # a crop every year, green July-September
POTATO = (slice(5, 15), slice(35, 50))  # a crop every year, green in June, harvested 15 July
CONVERTED = (slice(48, 56), slice(5, 20))  # like FIELD in Y, built from April of Y+1
LATE = (slice(48, 56), slice(30, 45))  # like FIELD until Y+3, built from April of Y+4


def surface(day: date) -> list[tuple[tuple[slice, slice], list[float]]]:
    """What lies on each piece of ground on ``day``."""
    year = day.year
    crop = CROP if date(year, 7, 1) <= day < date(year, 10, 1) else SOIL
    return [
        (PATCH, FOREST if day < date(Y, 7, 1) else SOIL),
        (FIELD, crop),
        (POTATO, CROP if day < date(year, 7, 15) else SOIL),
        (CONVERTED, crop if year == Y else YARD),
        (LATE, crop if year < Y + 4 else YARD),
        (CAMP, YARD),
    ]


@pytest.fixture(scope="module")
def site() -> Site:
    return Site("dating", "dating", "camp", box(126.0, 39.0, 126.0072, 39.0056), "test")


def cloudy_summer(day: date) -> list[Region]:
    """No clear look from July to September of the cloudy summers."""
    cloudy = day.year in CLOUDY_SUMMERS and date(day.year, 7, 1) <= day < date(day.year, 10, 1)
    return [(slice(None), slice(None))] if cloudy else []


def looks(year: int, shape: tuple[int, int]) -> list[Look]:
    return hand_looks(year, shape, surface, cloudy_summer)


@pytest.fixture(scope="module")
def site_years(site: Site) -> list[SiteYear]:
    return hand_site_years(site, YEARS, looks, min_side_px=60)


@pytest.fixture(scope="module")
def analysis(site: Site, site_years: list[SiteYear]) -> SiteAnalysis:
    return analysed(site, site_years)


def evidence(sy: SiteYear) -> SeasonEvidence:
    assert sy.evidence is not None
    return sy.evidence


def share(mask: np.ndarray, where: tuple[slice, slice]) -> float:
    return float(mask[where].mean())


def test_one_year_alone_lags_and_keeps_the_clearing_ambiguous(site_years: list[SiteYear]) -> None:
    first = site_years[0]
    assert share(first.footprint, CAMP) == 1.0
    # Green in June: the greenness test keeps the clearing out of Y, as it keeps fields out.
    assert share(first.footprint, PATCH) == 0.0
    assert share(evidence(first).ambiguous, PATCH) == 1.0
    assert share(evidence(first).field, PATCH) == 0.0  # ambiguous ground is no field evidence
    assert share(evidence(first).vegetated, PATCH) == 0.0
    # A crop harvested after 1 September was green while crops stand: not ambiguous.
    for crop in (FIELD, CONVERTED, LATE):
        assert share(first.footprint, crop) == 0.0
        assert share(evidence(first).field, crop) == 1.0
        assert share(evidence(first).ambiguous, crop) == 0.0
    # Harvested in July: as ambiguous as a clearing, until the next year.
    assert share(evidence(first).ambiguous, POTATO) == 1.0
    assert share(evidence(first).field, POTATO) == 0.0
    assert not evidence(first).unconfirmed.any()  # the summer was seen


def test_a_cloudy_summer_alone_maps_its_fields_as_footprint(site_years: list[SiteYear]) -> None:
    cloudy = site_years[1]
    assert share(cloudy.footprint, FIELD) == 1.0  # sown in June, harvested before any clear look
    assert share(evidence(cloudy).unconfirmed, FIELD) == 1.0
    assert share(cloudy.footprint, POTATO) == 0.0  # it was seen green in June
    np.testing.assert_array_equal(evidence(cloudy).unconfirmed, cloudy.footprint)


def test_each_piece_of_ground_is_dated_to_its_year(analysis: SiteAnalysis) -> None:
    fp = {sy.year: sy.footprint for sy in analysis.years}
    for year in YEARS:
        assert share(fp[year], CAMP) == 1.0, year
        assert share(fp[year], FIELD) == 0.0, year
        assert share(fp[year], POTATO) == 0.0, year
        # Cleared in July of Y: footprint from Y on, not from Y+1.
        assert share(fp[year], PATCH) == 1.0, year
    # Built over a field in the spring of Y+1, two cloudy summers: footprint from Y+1 (Y+3
    # saw it built, not a field), never dated back to Y.
    assert [share(fp[y], CONVERTED) for y in YEARS] == [0.0, 1.0, 1.0, 1.0, 1.0]
    # Built in the spring of the last year under a cloudy summer: only the years before can
    # judge, and they saw a field. The last year may lag, and says so.
    assert [share(fp[y], LATE) for y in YEARS] == [0.0] * 5


def test_metrics_flag_what_the_neighbouring_years_changed(analysis: SiteAnalysis) -> None:
    metrics = {m.year: m for m in analysis.metrics}
    assert metrics[Y].flags == (REDATED,)
    assert metrics[Y].redated_ha == pytest.approx(1.0)  # the 10 x 10 pixel clearing
    assert metrics[Y + 1].flags == (UNSEEN_FIELDS,)
    assert metrics[Y + 1].unseen_fields_ha == pytest.approx(2.25 + 1.2)  # FIELD and LATE
    assert metrics[Y + 2].flags == (UNSEEN_FIELDS,)  # judged by Y and Y+3
    assert metrics[Y + 2].unseen_fields_ha == pytest.approx(2.25 + 1.2)
    assert metrics[Y + 3].flags == ()
    assert metrics[Y + 4].flags == (MAY_LAG, UNSEEN_FIELDS)
    assert metrics[Y + 4].unseen_fields_ha == pytest.approx(2.25 + 1.2)
    assert metrics[Y + 1].footprint_ha == pytest.approx(metrics[Y].footprint_ha + 1.2)
    # Expansion Y -> Y+1 is the spring conversion alone: not the clearing (Y's), not the field.
    added = {(c.year_from, c.year_to): c.added_ha for c in analysis.changes}
    assert added[(Y, Y + 1)] == pytest.approx(1.2)
    assert all(added[(y, y + 1)] == 0.0 for y in YEARS[1:-1])


def test_redating_moves_ground_one_year_at_most(site_years: list[SiteYear]) -> None:
    redated = redate_clearings(site_years, 25)
    assert redated[-1] is site_years[-1]  # the last year has no next year
    assert redated[-1].redated is None
    for before, after in zip(site_years, redated, strict=True):
        assert not (before.footprint & ~after.footprint).any()  # only gains
    assert redated[0].redated is not None
    assert redated[0].redated.sum() == 100  # the clearing, no field
    assert not any(sy.redated.any() for sy in redated[1:-1])  # type: ignore[union-attr]


def test_unseen_fields_are_only_taken_away(site_years: list[SiteYear]) -> None:
    dropped = drop_unseen_fields(site_years, 25)
    for before, after in zip(site_years, dropped, strict=True):
        assert not (after.footprint & ~before.footprint).any()
        np.testing.assert_array_equal(after.coal_mask, before.coal_mask)
    assert [int(sy.unseen_fields.sum()) for sy in dropped] == [0, 345, 345, 0, 345]  # type: ignore[union-attr]


def test_a_year_without_evidence_is_flagged_and_left_alone(
    site: Site, site_years: list[SiteYear]
) -> None:
    old = [replace(sy, evidence=None) for sy in site_years]  # as stored before the rules
    analysis = analysed(site, old)
    assert all(m.flags == (MAY_LAG,) for m in analysis.metrics)
    for before, after in zip(old, analysis.years, strict=True):
        np.testing.assert_array_equal(before.footprint, after.footprint)


def test_one_year_of_field_signs_is_not_a_field(site_years: list[SiteYear]) -> None:
    """A single look under unflagged haze can make forest look harvested: a field must be
    mapped a field in two years before it can take ground out of an unseen year."""
    first = site_years[0]
    field = evidence(first).field.copy()
    field[LATE] = False  # LATE a field in Y+3 only
    edited = [replace(first, evidence=replace(evidence(first), field=field)), *site_years[1:]]
    dropped = drop_unseen_fields(edited, 25)
    assert share(dropped[-1].footprint, LATE) == 1.0  # kept: built in the last year after all
    assert share(dropped[-1].footprint, FIELD) == 0.0


def test_a_field_rim_without_field_signs_leaves_with_its_field(
    site_years: list[SiteYear],
) -> None:
    """The last year (Y+4) saw FIELD only after its harvest: it leaves on the field signs of
    the years before. Its two southern rows showed no signs of their own in any year (mixed
    pixels against the forest): they are the same parcel and leave with it, not a 0.3 ha strip
    of footprint that the minimum mapping unit keeps."""
    rim = (slice(43, 45), FIELD[1])
    edited = []
    for sy in site_years:
        field = evidence(sy).field.copy()
        field[rim] = False
        edited.append(replace(sy, evidence=replace(evidence(sy), field=field)))
    assert field_signs(edited)[rim].max() < MIN_FIELD_YEARS <= field_signs(edited)[FIELD].max()
    dropped = drop_unseen_fields(edited, 25)
    assert share(dropped[-1].footprint, FIELD) == 0.0
    assert share(dropped[-1].footprint, CAMP) == 1.0


def test_whole_parcels_takes_the_regions_mostly_field() -> None:
    candidates = np.zeros((10, 20), bool)
    candidates[0:5, 0:10] = True  # a parcel, four fifths of it with field signs
    candidates[6:10, 12:20] = True  # ground a quarter field: only that quarter
    fields = np.zeros((10, 20), bool)
    fields[0:4, 0:10] = True
    fields[6, 12:20] = True
    out = whole_parcels(candidates, fields)
    assert out[0:5, 0:10].all()
    assert out[6, 12:20].all()
    assert not out[7:10, 12:20].any()
    assert not (out & ~candidates).any()
    assert not whole_parcels(candidates, np.zeros((10, 20), bool)).any()


def test_a_field_that_greens_later_leaves_the_cloudy_years_before(
    site_years: list[SiteYear],
) -> None:
    """A series opening with two cloudy summers (Y+1, Y+2) shows field signs in one year only
    (Y+3): too few to call the ground a field, but green in Y+3 is enough to take it out of
    the years before, since built or cleared ground does not green within a season. The
    last year (Y+4), with no later year to look at, keeps it (and says it may lag)."""
    series = site_years[1:]
    dropped = drop_unseen_fields(series, 25)
    fp = {sy.year: sy.footprint for sy in dropped}
    assert [share(fp[y], FIELD) for y in YEARS[1:]] == [0.0, 0.0, 0.0, 1.0]
    # Built in the spring of Y+1 and seen built in Y+3: footprint in every year.
    assert [share(fp[y], CONVERTED) for y in YEARS[1:]] == [1.0, 1.0, 1.0, 1.0]
    assert [share(fp[y], CAMP) for y in YEARS[1:]] == [1.0, 1.0, 1.0, 1.0]
    # The first year has no earlier year to judge by, and is judged by the later one alone.
    unchanged = drop_unseen_fields(series[:1], 25)
    assert share(unchanged[0].footprint, FIELD) == 1.0


def with_ground(
    sy: SiteYear,
    where: tuple[slice, slice],
    *,
    footprint: bool,
    unconfirmed: bool = False,
    vegetated: bool = False,
    field: bool = False,
) -> SiteYear:
    """``sy`` with what its season saw of the pixels ``where`` replaced (ambiguous: no)."""
    ev = evidence(sy)
    masks = {
        "footprint": sy.footprint.copy(),
        "unconfirmed": ev.unconfirmed.copy(),
        "vegetated": ev.vegetated.copy(),
        "field": ev.field.copy(),
        "ambiguous": ev.ambiguous.copy(),
    }
    values = (footprint, unconfirmed, vegetated, field, False)
    for mask, value in zip(masks.values(), values, strict=True):
        mask[where] = value
    footprint_mask = masks.pop("footprint")
    return replace(sy, footprint=footprint_mask, evidence=replace(ev, **masks))


def test_unseen_part_of_field_is_the_unseen_regions_touching_the_field() -> None:
    unseen = np.zeros((8, 8), bool)
    unseen[0:3, 0:3] = True  # touches the field by a corner
    unseen[6:8, 5:8] = True  # a row apart from it
    field = np.zeros((8, 8), bool)
    field[3:5, 3:5] = True
    part = unseen_part_of_field(unseen, field)
    assert part[0:3, 0:3].all()
    assert not part[6:8, 5:8].any()
    assert not (part & ~unseen).any()
    assert not unseen_part_of_field(unseen, np.zeros((8, 8), bool)).any()


def test_a_field_partly_under_cloud_is_a_field_in_its_year(site_years: list[SiteYear]) -> None:
    """Y sees FIELD green, Y+1 and Y+2 see it only after harvest (cloudy summers): one year of
    field signs, and no later year saw it green, so it stays footprint in both. When Y+1 saw
    half of it through a gap in the clouds, green and harvested, the other half is the same
    field: two years of field signs, and FIELD leaves Y+1 and Y+2 (Y+2's judge is Y, Y+1
    having no clear summer look there either). CONVERTED, a field in Y built over in Y+1,
    touches no field Y+1 saw: it keeps its footprint."""
    series = site_years[:3]
    kept = drop_unseen_fields(series, 25)
    assert [share(sy.footprint, FIELD) for sy in kept] == [0.0, 1.0, 1.0]
    assert field_signs(series)[FIELD].max() == 1
    seen_half = (FIELD[0], slice(38, 45))
    gap = with_ground(series[1], seen_half, footprint=False, vegetated=True, field=True)
    edited = [series[0], gap, series[2]]
    signs = field_signs(edited)
    assert (signs[FIELD] == 2).all()
    assert (signs[CONVERTED] == 1).all()
    dropped = drop_unseen_fields(edited, 25)
    assert [share(sy.footprint, FIELD) for sy in dropped] == [0.0, 0.0, 0.0]
    assert [share(sy.footprint, CONVERTED) for sy in dropped] == [0.0, 1.0, 1.0]
    assert [share(sy.footprint, CAMP) for sy in dropped] == [1.0, 1.0, 1.0]


def test_a_year_that_saw_neither_green_nor_footprint_does_not_judge(
    site_years: list[SiteYear],
) -> None:
    """FIELD in Y+1 neither green nor footprint (no clear look while its crop stood, a wet
    composite): Y+2's unseen FIELD is judged by Y and Y+3, which saw it green, and leaves.
    The burn rule, which overrides what a year saw itself, takes any clear look as a judge:
    FIELD mapped footprint in Y+2 with a summer look stays, Y+1 not having seen it green."""
    series = site_years[:4]
    blank = with_ground(series[1], FIELD, footprint=False)
    dropped = drop_unseen_fields([series[0], blank, *series[2:]], 25)
    assert share(dropped[2].footprint, FIELD) == 0.0
    assert share(dropped[2].unseen_fields, FIELD) == 1.0  # type: ignore[arg-type]
    built = with_ground(series[2], FIELD, footprint=True)  # seen bare while crops stand
    kept = drop_unseen_fields([series[0], blank, built, series[3]], 25)
    assert share(kept[2].footprint, FIELD) == 1.0
