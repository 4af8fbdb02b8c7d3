"""The surface-water history across a site's years (``pipeline.water``): the mud of a reservoir
drawn down is not footprint, while land reclaimed from the water and built on, or stocked with
coal, stays expansion, and ground never under water is left alone.

Site-years built by hand from the synthetic generator's spectra (a season composite, its
footprint and coal masks as the rules map them), with seeded texture and sensor noise, so each
assertion is about the water rule alone.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from numpy.typing import NDArray
from shapely.geometry import box

from pipeline import water
from pipeline.analysis import EXPOSED_BED, analyse_site
from pipeline.bands import BANDS
from pipeline.composite import Composite
from pipeline.results import SiteYear
from pipeline.sites import Site
from pipeline.sources.synthetic.layout import Surface
from pipeline.sources.synthetic.spectra import MUD, SPECTRAL_BANDS, STATIC_SPECTRA
from pipeline.water import (
    drop_exposed_beds,
    exposed_bed,
    local_median,
    moisture_index,
    open_water,
)

_PICK = [SPECTRAL_BANDS.index(b) for b in BANDS]


def spectrum(values: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray(values, np.float32)[_PICK]


BUILT = spectrum(STATIC_SPECTRA[Surface.BUILT])
YARD = spectrum(STATIC_SPECTRA[Surface.YARD])
SPOIL = spectrum(STATIC_SPECTRA[Surface.SPOIL])
COAL = spectrum(STATIC_SPECTRA[Surface.COAL])
WATER = spectrum(STATIC_SPECTRA[Surface.WATER])
WET_MUD = spectrum(MUD)
# (blue, green, red, nir, swir16, swir22): autumn forest, as the generator's in October.
FOREST = np.array([0.035, 0.060, 0.070, 0.260, 0.200, 0.110], np.float32)

SHAPE = (64, 64)
Region = tuple[slice, slice]
CAMP: Region = (slice(4, 20), slice(4, 28))  # a yard with buildings: dry footprint every year
RESERVOIR: Region = (slice(30, 56), slice(4, 28))  # full in year 0
DEEP: Region = (slice(46, 56), slice(4, 28))  # still under water when drawn down
BED: Region = (slice(30, 46), slice(4, 28))  # exposed when drawn down: wet mud
SHORE: Region = (slice(29, 30), slice(4, 28))  # the full reservoir's rim: half water, half forest
SEA: Region = (slice(30, 60), slice(36, 60))  # open water in year 0
FILL: Region = (slice(30, 38), slice(36, 60))  # reclaimed from year 1: built quay and yard
COAL_YARD: Region = (slice(38, 43), slice(36, 60))  # reclaimed from year 1: coal stocks
WET_SPOIL: Region = (slice(4, 9), slice(36, 46))  # moist ground never under water

Y = 2020


def paint(regions: list[tuple[Region, NDArray[np.float32]]], seed: int) -> NDArray[np.float32]:
    """A season composite: forest, with ``regions`` painted in order, then texture (5 %,
    per pixel, all bands alike) and sensor noise (0.003), seeded."""
    rng = np.random.default_rng(seed)
    img = np.empty((len(BANDS), *SHAPE), np.float32)
    img[:] = FOREST[:, None, None]
    for (rows, cols), values in regions:
        img[:, rows, cols] = values[:, None, None]
    img *= 1.0 + 0.05 * rng.standard_normal(SHAPE, dtype=np.float32)
    img += 0.003 * rng.standard_normal(img.shape, dtype=np.float32)
    return img


def mask(*regions: Region) -> NDArray[np.bool_]:
    out = np.zeros(SHAPE, bool)
    for rows, cols in regions:
        out[rows, cols] = True
    return out


def site_year(
    year: int,
    regions: list[tuple[Region, NDArray[np.float32]]],
    footprint: NDArray[np.bool_],
    coal: NDArray[np.bool_] | None = None,
) -> SiteYear:
    reflectance = paint(regions, seed=year)
    composite = Composite(reflectance, np.full(SHAPE, 8, np.int16), np.zeros_like(reflectance))
    coal_mask = coal if coal is not None else np.zeros(SHAPE, bool)
    return SiteYear(
        "port", year, (f"{year}-09-01", f"{year}-11-15"), False, (), composite, None,
        footprint | coal_mask, coal_mask, np.ones(SHAPE, bool), 8.0, 1.0,
    )  # fmt: skip


def camp() -> list[tuple[Region, NDArray[np.float32]]]:
    return [(CAMP, YARD), ((slice(6, 12), slice(6, 26)), BUILT), (WET_SPOIL, WET_MUD)]


def full_year(year: int) -> SiteYear:
    """The reservoir full and the sea at its old shore."""
    half_shore = 0.5 * WATER + 0.5 * FOREST
    regions = [*camp(), (RESERVOIR, WATER), (SHORE, half_shore), (SEA, WATER)]
    return site_year(year, regions, mask(CAMP, WET_SPOIL))


def drawn_down_year(year: int) -> SiteYear:
    """The reservoir drawn down to its deep end; land reclaimed from the sea, built and
    stocked with coal. The rim of the old shore is mud and forest, mapped with the mud (as
    the rules' rim unmixing does)."""
    rim = 0.6 * WET_MUD + 0.4 * FOREST
    regions = [
        *camp(), (RESERVOIR, WATER), (BED, WET_MUD), (SHORE, rim), (SEA, WATER),
        (FILL, YARD), ((slice(30, 34), slice(40, 56)), BUILT), (COAL_YARD, COAL),
    ]  # fmt: skip
    return site_year(year, regions, mask(CAMP, WET_SPOIL, BED, SHORE, FILL), coal=mask(COAL_YARD))


@pytest.fixture(scope="module")
def series() -> list[SiteYear]:
    return [full_year(Y), drawn_down_year(Y + 1), drawn_down_year(Y + 2)]


@pytest.fixture(scope="module")
def settled(series: list[SiteYear]) -> tuple[list[SiteYear], list[NDArray[np.bool_] | None]]:
    beds = drop_exposed_beds(series, 25)
    return list(beds.years), list(beds.removed)


def share(m: NDArray[np.bool_], where: Region) -> float:
    return float(m[where].mean())


def test_the_fixture_is_what_the_rules_see(series: list[SiteYear]) -> None:
    for sy in series:
        assert sy.composite is not None
        water = open_water(sy.composite.reflectance, sy.valid)
        assert share(water, DEEP) == 1.0
        assert not (water & sy.footprint).any()
    full, low = (sy.composite.reflectance for sy in series[:2] if sy.composite is not None)
    assert share(open_water(full, series[0].valid), RESERVOIR) == 1.0
    assert share(open_water(low, series[1].valid), BED) == 0.0
    # Mud is wetter than every dry surface of the scene, by the index the rule reads.
    index = moisture_index(low)
    assert np.median(index[BED]) > np.percentile(index[CAMP], 90)


def test_drawn_down_reservoir_mud_is_not_footprint(
    series: list[SiteYear], settled: tuple[list[SiteYear], list[NDArray[np.bool_] | None]]
) -> None:
    years, removed = settled
    for i in (1, 2):
        assert share(series[i].footprint, BED) == 1.0
        assert share(years[i].footprint, BED) == 0.0
        assert share(years[i].footprint, SHORE) == 0.0  # the mixed rim goes with it
        bed = removed[i]
        assert bed is not None
        np.testing.assert_array_equal(bed, mask(BED, SHORE))


def test_reclaimed_land_built_on_former_water_stays_expansion(
    series: list[SiteYear], settled: tuple[list[SiteYear], list[NDArray[np.bool_] | None]]
) -> None:
    years, _ = settled
    for i in (1, 2):
        assert share(years[i].footprint, FILL) == 1.0


def test_reclaimed_land_beside_the_mud_keeps_its_ground() -> None:
    """Fill pushed into the drawn-down reservoir itself: the mud beside it goes, the fill stays
    (each pixel is judged on the median of its 3 x 3 square of candidate ground, which keeps
    each side's value up to the edge between them; a corner pixel may go with its majority)."""
    fill: Region = (BED[0], slice(16, 28))
    mud: Region = (BED[0], slice(4, 16))
    low = drawn_down_year(Y + 1)
    assert low.composite is not None
    refl = low.composite.reflectance.copy()
    refl[:, fill[0], fill[1]] = paint([(fill, YARD)], seed=7)[:, fill[0], fill[1]]
    reclaimed = replace(low, composite=replace(low.composite, reflectance=refl))
    beds = drop_exposed_beds([full_year(Y), reclaimed], 25)
    after = beds.years[1].footprint
    assert int(after[mud].sum()) <= 2
    assert int((~after[fill]).sum()) <= 1  # its corner against the mud and the mixed rim


def test_coal_on_former_water_stays_coal(
    settled: tuple[list[SiteYear], list[NDArray[np.bool_] | None]],
) -> None:
    years, _ = settled
    for i in (1, 2):
        assert share(years[i].footprint, COAL_YARD) == 1.0
        assert share(years[i].coal_mask, COAL_YARD) == 1.0


def test_ground_never_under_water_is_unchanged(
    series: list[SiteYear], settled: tuple[list[SiteYear], list[NDArray[np.bool_] | None]]
) -> None:
    years, removed = settled
    # The full year has no former water: the water of later years lies within its own.
    assert years[0] is series[0]
    assert removed[0] is not None
    assert not removed[0].any()
    for before, after in zip(series, years, strict=True):
        # Wet ground never seen under water, and the dry camp, keep their footprint.
        assert share(after.footprint, WET_SPOIL) == 1.0
        assert share(after.footprint, CAMP) == 1.0
        assert not (after.footprint & ~before.footprint).any()  # only taken away


def test_mud_that_floods_again_is_removed_and_the_flooded_year_untouched() -> None:
    years = [full_year(Y), drawn_down_year(Y + 1), full_year(Y + 2)]
    beds = drop_exposed_beds(years, 25)
    assert share(beds.years[1].footprint, BED) == 0.0
    assert beds.years[2] is years[2]


def test_a_puddle_below_the_mapping_unit_is_no_former_water() -> None:
    """Wet ground seen under a 4 x 4 pixel puddle (or a shadow read as water) in another year is
    not a reservoir's bed: only water bodies of the minimum mapping unit count."""
    puddle: Region = (slice(4, 8), slice(36, 40))
    wet = full_year(Y)
    assert wet.composite is not None
    refl = wet.composite.reflectance.copy()
    refl[:, puddle[0], puddle[1]] = WATER[:, None, None]
    flooded = replace(
        wet,
        composite=replace(wet.composite, reflectance=refl),
        footprint=wet.footprint & ~mask(puddle),
    )
    assert share(open_water(refl, wet.valid), puddle) == 1.0
    beds = drop_exposed_beds([flooded, drawn_down_year(Y + 1)], 25)
    assert share(beds.years[1].footprint, WET_SPOIL) == 1.0
    assert share(beds.years[1].footprint, BED) == 0.0


def test_a_shoreline_one_pixel_off_is_no_drawdown() -> None:
    """A quay on the sea, the second year misregistered by a pixel: its foot, wet sediment, sits
    where the first year saw sea. A one-pixel sliver is no exposed bed: the quay stays."""
    quay: Region = (slice(26, 30), slice(36, 60))
    moved: Region = (slice(27, 31), slice(36, 60))
    edge: Region = (slice(30, 31), slice(36, 60))
    first = site_year(Y, [*camp(), (SEA, WATER), (quay, BUILT)], mask(CAMP, WET_SPOIL, quay))
    regions = [*camp(), (SEA, WATER), (moved, BUILT), (edge, WET_MUD)]
    second = site_year(Y + 1, regions, mask(CAMP, WET_SPOIL, moved))
    assert second.composite is not None
    index = moisture_index(second.composite.reflectance)
    assert np.median(index[edge]) > np.percentile(index[CAMP], 90)  # wet-looking
    beds = drop_exposed_beds([first, second], 25)
    assert beds.years[1] is second


def test_a_scene_wide_gain_changes_nothing(series: list[SiteYear]) -> None:
    """A hazier or brighter year (a gain over every band) moves the scene's dry ground with the
    mud: the test is relative to it, so the decisions stay."""
    brighter = []
    for sy in series:
        assert sy.composite is not None
        c = sy.composite
        brighter.append(replace(sy, composite=replace(c, reflectance=c.reflectance * 1.08)))
    base = drop_exposed_beds(series, 25).removed
    for a, b in zip(base, drop_exposed_beds(brighter, 25).removed, strict=True):
        assert a is not None
        assert b is not None
        np.testing.assert_array_equal(a, b)


def test_without_enough_dry_ground_nothing_is_judged(series: list[SiteYear]) -> None:
    """Only mud and reclaimed land on former water: no dry ground to judge wetness against."""
    sy = series[1]
    assert sy.composite is not None
    refl = sy.composite.reflectance
    water = open_water(refl, sy.valid)
    former = open_water(series[0].composite.reflectance, sy.valid)  # type: ignore[union-attr]
    footprint = sy.footprint & ~mask(CAMP, WET_SPOIL)
    bed = exposed_bed(
        footprint, sy.coal_mask, sy.valid, water, former, moisture_index(refl), refl[4]
    )
    assert not bed.any()
    # The same with the dry camp judges.
    bed = exposed_bed(
        sy.footprint, sy.coal_mask, sy.valid, water, former, moisture_index(refl), refl[4]
    )
    assert share(bed, BED) >= 0.99


def test_local_median_keeps_each_ground_to_its_edge_and_drops_a_spike() -> None:
    values = np.zeros((6, 8), np.float32)
    values[:, 4:] = 1.0
    values[2, 1] = 5.0  # a noisy pixel
    where = np.ones(values.shape, bool)
    where[5, :] = False  # not this ground: never read, never written
    values[5, :] = 9.0
    out = local_median(values, where)
    expected = np.zeros(values.shape, np.float32)
    expected[:, 4:] = 1.0
    expected[5, :] = np.nan
    np.testing.assert_array_equal(out, expected)
    at = np.zeros(values.shape, bool)
    at[2, 1] = True
    only = local_median(values, where, at)
    assert only[2, 1] == 0.0
    assert np.isnan(only[~at]).all()


def test_a_sampled_dry_ground_decides_as_the_whole(
    series: list[SiteYear], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = drop_exposed_beds(series, 25).removed
    monkeypatch.setattr(water, "REFERENCE_SAMPLE_PX", 120)
    sampled = drop_exposed_beds(series, 25).removed
    for a, b in zip(whole, sampled, strict=True):
        assert a is not None
        assert b is not None
        np.testing.assert_array_equal(a, b)


def test_one_year_alone_is_returned_as_it_is(series: list[SiteYear]) -> None:
    beds = drop_exposed_beds(series[1:2], 25)
    assert beds.years[0] is series[1]


def test_the_analysis_counts_the_reclaimed_land_as_expansion_and_not_the_mud(
    series: list[SiteYear],
) -> None:
    site = Site("port", "port", "port", box(126.0, 39.0, 126.008, 39.0064), "test")
    grid = site.grid(10.0, 0.0)
    assert grid.shape[0] >= SHAPE[0]
    assert grid.shape[1] >= SHAPE[1]
    padded = [_padded(sy, grid.shape) for sy in series]
    analysis = analyse_site(
        site, grid, padded, buffer_m=0.0, min_mapping_unit_ha=0.25, change_opening_px=1
    )
    px = grid.pixel_area_ha
    metrics = {m.year: m for m in analysis.metrics}
    camp_ha = float(mask(CAMP, WET_SPOIL).sum()) * px
    reclaimed_ha = float(mask(FILL, COAL_YARD).sum()) * px
    assert metrics[Y].footprint_ha == pytest.approx(camp_ha)
    assert metrics[Y + 1].footprint_ha == pytest.approx(camp_ha + reclaimed_ha)
    assert metrics[Y + 1].coal_ha == pytest.approx(float(mask(COAL_YARD).sum()) * px)
    added = {(c.year_from, c.year_to): c.added_ha for c in analysis.changes}
    assert added[(Y, Y + 1)] == pytest.approx(reclaimed_ha)
    assert added[(Y + 1, Y + 2)] == 0.0
    bed_ha = float(mask(BED, SHORE).sum()) * px
    assert metrics[Y + 1].exposed_bed_ha == pytest.approx(bed_ha)
    assert EXPOSED_BED in metrics[Y + 1].flags
    assert metrics[Y].exposed_bed_ha == 0.0
    assert EXPOSED_BED not in metrics[Y].flags


def _padded(sy: SiteYear, shape: tuple[int, int]) -> SiteYear:
    """``sy`` on a grid of ``shape`` (forest beyond the fixture's corner)."""
    assert sy.composite is not None

    def grow(a: NDArray[np.bool_]) -> NDArray[np.bool_]:
        out = np.zeros(shape, bool)
        out[: SHAPE[0], : SHAPE[1]] = a
        return out

    refl = np.empty((len(BANDS), *shape), np.float32)
    refl[:] = FOREST[:, None, None]
    refl[:, : SHAPE[0], : SHAPE[1]] = sy.composite.reflectance
    composite = Composite(refl, np.full(shape, 8, np.int16), np.zeros_like(refl))
    return replace(
        sy,
        composite=composite,
        footprint=grow(sy.footprint),
        coal_mask=grow(sy.coal_mask),
        valid=np.ones(shape, bool),
    )


@pytest.mark.slow
def test_water_level_case_has_no_false_expansion_on_the_control(tmp_path: object) -> None:
    """The accuracy suite's water-level case on a seed never used while tuning."""
    from pathlib import Path

    from pipeline.accuracy_suite import CASES, run_case

    case = next(c for c in CASES if c.name == "water-level")
    assert isinstance(tmp_path, Path)
    result = run_case(case, 2024, tmp_path, workers=2)
    assert result.error is None, result.error
    false_expansion = result.measure("false_expansion")
    assert false_expansion is not None
    assert isinstance(false_expansion.value, float)
    assert false_expansion.value <= 0.005


def test_a_moist_bare_field_in_the_footprint_is_no_dry_reference() -> None:
    """A field bare under a cloudy summer is in a year's footprint until the fields rule takes
    it out, and its soil is moist: taken for dry ground it lifts the fence the mud must clear.
    Ground the series shows farmed (``fields``) is left out of the reference."""
    field: Region = (slice(10, 28), slice(46, 62))
    soil = 0.7 * WET_MUD + 0.3 * YARD
    rim = 0.6 * WET_MUD + 0.4 * FOREST
    regions = [*camp(), (RESERVOIR, WATER), (BED, WET_MUD), (SHORE, rim), (SEA, WATER),
               (field, soil)]  # fmt: skip
    mapped = mask(CAMP, WET_SPOIL, BED, SHORE, field)
    years = [full_year(Y), site_year(Y + 1, regions, mapped), site_year(Y + 2, regions, mapped)]
    fooled = drop_exposed_beds(years, 25)
    assert share(fooled.years[1].footprint, BED) > 0.9  # the case is real
    beds = drop_exposed_beds(years, 25, fields=mask(field))
    for i in (1, 2):
        assert share(beds.years[i].footprint, BED) == 0.0
        assert share(beds.years[i].footprint, field) == 1.0  # the fields rule's to judge
