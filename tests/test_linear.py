"""New linear features (``pipeline.linear``) on synthetic NDVI with known answers: a thin road
is found as a line and dated; a field edge, an edge shifted by one pixel, noise, a short strip
and a one-year artefact are not. Then the stage wired into the analysis: the road joins the
footprint and survives the change stage's opening."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from affine import Affine
from numpy.typing import NDArray
from shapely.geometry import Polygon, box

from pipeline.analysis import LINEAR_FEATURES, add_lines, analyse_site, year_change
from pipeline.classify import CoalFrequency
from pipeline.composite import Composite
from pipeline.grid import Grid, reproject_geometry
from pipeline.linear import (
    LineRule,
    displaced,
    greenness_loss,
    joining,
    local_median,
    long_thin,
    new_lines,
    track_lines,
    valley_depth,
)
from pipeline.results import SiteYear, YearMetrics
from pipeline.sites import Site

F32 = NDArray[np.float32]
SHAPE = (80, 80)
PIXEL_M = 10.0
RULE = LineRule()
FOREST = 0.75


def forest(seed: int, noise: float = 0.02, level: float = FOREST) -> F32:
    """Forest NDVI with seeded composite noise."""
    rng = np.random.default_rng(seed)
    return (level + rng.normal(0.0, noise, SHAPE)).astype(np.float32)


def road_mask(rows: slice = slice(10, 70), col: int = 40) -> NDArray[np.bool_]:
    """A straight road one pixel wide (600 m at 10 m by default)."""
    road = np.zeros(SHAPE, bool)
    road[rows, col] = True
    return road


def with_road(ndvi: F32, road: NDArray[np.bool_], value: float = 0.40) -> F32:
    """``ndvi`` with the mixed road pixels (asphalt half across forest: ~0.4)."""
    out = ndvi.copy()
    out[road] = value
    return out


# --- valley depth ----------------------------------------------------------------------------


def test_valley_depth_measures_a_line_and_ignores_a_step() -> None:
    flat = np.full(SHAPE, FOREST, np.float32)
    line = with_road(flat, road_mask())
    depth = valley_depth(line)
    assert depth[road_mask()] == pytest.approx(FOREST - 0.40, abs=1e-6)
    assert depth[~road_mask()].max() == pytest.approx(0.0, abs=1e-6)
    step = flat.copy()
    step[:, :40] = 0.2  # a harvested field beside forest
    assert valley_depth(step).max() == pytest.approx(0.0, abs=1e-6)


def test_valley_depth_fills_a_road_straddling_two_pixels() -> None:
    flat = np.full(SHAPE, FOREST, np.float32)
    two = road_mask(col=40) | road_mask(col=41)
    depth = valley_depth(with_road(flat, two, 0.55))
    assert np.all(depth[two] == pytest.approx(0.20, abs=1e-6))


def test_valley_depth_refuses_an_even_span() -> None:
    with pytest.raises(ValueError, match="span_px must be an odd number"):
        valley_depth(np.zeros(SHAPE, np.float32), 4)


def test_greenness_loss_removes_the_scene_wide_change() -> None:
    before = forest(1)
    after = before - np.float32(0.1)  # a drier, hazier year everywhere: no change
    assert np.abs(greenness_loss(before, after)).max() < 1e-5


def test_greenness_loss_takes_each_cover_against_its_own_change() -> None:
    # Built ground (60 % of the scene, left) unchanged; the forest greener by 0.2 in this
    # year's composite, a road cut through it. Against the scene's median (the built ground's)
    # the whole forest gains; against the blocks around it, only the road loses.
    built = np.zeros(SHAPE, bool)
    built[:, :45] = True
    road = np.zeros(SHAPE, bool)
    road[40, 45:] = True  # 350 m long, from the built ground's edge
    before = np.where(built, 0.1, 0.5).astype(np.float32) + forest(1, level=0.0)
    greener = np.where(built, 0.1, 0.7).astype(np.float32)
    this = with_road(greener + forest(2, level=0.0), road, 0.45)
    after = with_road(greener + forest(3, level=0.0), road, 0.45)
    loss = greenness_loss(before, this)
    inner = np.zeros(SHAPE, bool)
    inner[:, 52:] = True  # the forest a block's half-width from the built edge
    assert (loss[inner & ~road] > -RULE.min_loss).all()  # the forest gains nothing
    assert (loss[road & inner] > 0.2).all()
    found = new_lines(before, this, after, PIXEL_M, RULE, known=built)
    assert found[road].mean() > 0.9
    assert not (found & ~road).any()
    # One offset for the scene, as before: the forest "gains", the road is "displaced".
    change = before - this
    scene_loss = change - np.nanmedian(change)
    assert (scene_loss[inner & ~road] < -RULE.min_loss).mean() > 0.9


def test_local_median_follows_blocks_and_refills_empty_ones() -> None:
    values = np.zeros((40, 40), np.float32)
    values[:, 20:] = 1.0
    values[5, 5] = 50.0  # one outlier changes no block's median
    values[:20, 20:] = np.nan  # a block too empty to say: the image's median
    m = local_median(values, 10)
    assert m[:, :8].max() == pytest.approx(0.0)
    assert m[25:, 33:].min() == pytest.approx(1.0)
    assert np.isfinite(m).all()
    with pytest.raises(ValueError, match="block_px"):
        local_median(values, 0)


# --- shape -----------------------------------------------------------------------------------


def test_long_thin_mends_a_broken_line_and_drops_blobs_and_short_strips() -> None:
    line = road_mask()
    line[30, 40] = False  # one pixel of a lighter mix does not break a road: it is mended
    blob = np.zeros(SHAPE, bool)
    blob[5:30, 50:75] = True  # a 6 ha clearing: long enough, far too wide
    short = road_mask(rows=slice(60, 68), col=10)  # 80 m
    kept = long_thin(line | blob | short, PIXEL_M, RULE)
    np.testing.assert_array_equal(kept, road_mask())


# --- new lines -------------------------------------------------------------------------------


def test_a_new_thin_road_is_found_as_a_line() -> None:
    road = road_mask()
    before, this, after = forest(1), with_road(forest(2), road), with_road(forest(3), road)
    found = new_lines(before, this, after, PIXEL_M, RULE)
    np.testing.assert_array_equal(found, road)


def test_a_diagonal_road_straddling_pixels_is_found_in_a_drier_year() -> None:
    road = np.zeros(SHAPE, bool)
    for i in range(10, 60):  # 50 steps of a diagonal: ~700 m
        road[i, i + 5] = road[i, i + 6] = True
    drier = np.float32(0.08)  # the whole scene greener the year before: not the road
    before = forest(1) + drier
    this, after = with_road(forest(2), road, 0.55), with_road(forest(3), road, 0.5)
    found = new_lines(before, this, after, PIXEL_M, RULE)
    assert found[road].mean() > 0.9
    assert not (found & ~road).any()


def test_a_road_seen_a_pixel_aside_the_next_year_still_persists() -> None:
    """The next year's composite sits a pixel off (each season's looks are jittered, and
    co-registration moves a year only when it lies 0.75 px or more off): the road's
    loss is held beside it, not in place. A one-year artefact still fails."""
    road = road_mask()
    before, this = forest(1), with_road(forest(2), road)
    after = with_road(forest(3), road_mask(col=41))
    assert np.median(greenness_loss(before, after)[road]) < RULE.min_loss  # lost in place
    np.testing.assert_array_equal(new_lines(before, this, after, PIXEL_M, RULE), road)
    # Beside a line, noise alone holds no loss.
    assert not new_lines(before, this, forest(3), PIXEL_M, RULE).any()


def test_an_existing_road_is_not_new() -> None:
    road = road_mask()
    before, this, after = (with_road(forest(s), road) for s in (1, 2, 3))
    assert not new_lines(before, this, after, PIXEL_M, RULE).any()


def test_a_harvested_field_edge_is_not_a_line() -> None:
    field = np.zeros(SHAPE, bool)
    field[:, :40] = True
    before = np.where(field, 0.8, FOREST).astype(np.float32) + forest(1, level=0.0)
    this = np.where(field, 0.25, FOREST).astype(np.float32) + forest(2, level=0.0)
    after = np.where(field, 0.3, FOREST).astype(np.float32) + forest(3, level=0.0)
    assert not new_lines(before, this, after, PIXEL_M, RULE).any()


def test_a_clearing_edge_shifted_by_one_pixel_is_not_a_line() -> None:
    bare = np.zeros(SHAPE, bool)
    bare[:, :40] = True
    before = np.where(bare, 0.1, FOREST).astype(np.float32) + forest(1, level=0.0)
    shifted = np.roll(bare, 1, axis=1)  # the strip at column 40 loses its green: a step moved
    this = np.where(shifted, 0.1, FOREST).astype(np.float32) + forest(2, level=0.0)
    after = np.where(shifted, 0.1, FOREST).astype(np.float32) + forest(3, level=0.0)
    assert (greenness_loss(before, this)[:, 40] > 0.5).all()  # it did lose greenness
    assert not new_lines(before, this, after, PIXEL_M, RULE).any()


def test_a_thin_dark_strip_moved_by_part_of_a_pixel_is_not_a_new_line() -> None:
    """An old track (two dark pixels and a mixed rim) seen a pixel further east: its new rim
    is a darkened pixel inside a valley, but the old rim beside it greened."""
    strip = road_mask(col=39) | road_mask(col=40)
    old_rim, new_rim = road_mask(col=38), road_mask(col=41)
    before = with_road(with_road(forest(1), strip, 0.1), old_rim, 0.3)
    this = with_road(with_road(forest(2), strip, 0.1), new_rim, 0.35)
    after = with_road(with_road(forest(3), strip, 0.1), new_rim, 0.35)
    assert (valley_depth(this)[new_rim] >= RULE.min_depth).all()
    assert (greenness_loss(before, this)[new_rim] >= RULE.min_loss).all()
    assert not new_lines(before, this, after, PIXEL_M, RULE).any()
    # The same rim darkened with nothing greening beside it is a new line (a widened track).
    widened = with_road(with_road(forest(2), strip, 0.1), old_rim | new_rim, 0.3)
    kept = with_road(with_road(forest(3), strip, 0.1), old_rim | new_rim, 0.3)
    np.testing.assert_array_equal(new_lines(before, widened, kept, PIXEL_M, RULE), new_rim)


def test_displaced_needs_most_of_a_line_paired_with_greening() -> None:
    line = road_mask()
    gain = np.zeros(SHAPE, np.float32)
    gain[10:25, 42] = -0.3  # a quarter of the line has a field greening beside it
    assert not displaced(line, gain, 3, RULE.min_loss).any()
    gain[10:70, 42] = -0.3
    np.testing.assert_array_equal(displaced(line, gain, 3, RULE.min_loss), line)


def test_noise_alone_gives_no_line() -> None:
    before, this, after = (forest(s, noise=0.04) for s in (1, 2, 3))
    assert not new_lines(before, this, after, PIXEL_M, RULE).any()


def test_a_one_year_artefact_is_not_a_road() -> None:
    road = road_mask()  # a dark line in one composite only (a contrail's shadow, a stripe)
    before, this, after = forest(1), with_road(forest(2), road), forest(3)
    assert not new_lines(before, this, after, PIXEL_M, RULE).any()


def test_known_footprint_is_not_taken_for_a_line() -> None:
    road = road_mask()
    before, this, after = forest(1), with_road(forest(2), road), with_road(forest(3), road)
    assert not new_lines(before, this, after, PIXEL_M, RULE, known=road).any()


# --- across a series -------------------------------------------------------------------------


def test_track_lines_dates_a_road_and_keeps_it_until_it_regrows() -> None:
    road = road_mask()
    series = [forest(1), with_road(forest(2), road), with_road(forest(3), road), forest(4)]
    found = track_lines(series, PIXEL_M, RULE)
    assert [int(f.sum()) for f in found] == [0, int(road.sum()), int(road.sum()), 0]
    np.testing.assert_array_equal(found[1], road)
    # Unconfirmed in the last year: nothing new can be dated there.
    late = [forest(1), forest(2), with_road(forest(3), road)]
    assert not any(f.any() for f in track_lines(late, PIXEL_M, RULE))


# --- wired into the analysis -----------------------------------------------------------------

GRID = Grid("EPSG:32652", Affine(10.0, 0.0, 300_000.0, 0.0, -10.0, 4_400_000.0), 80, 80)


def _site_year(year: int, ndvi: F32, footprint: NDArray[np.bool_]) -> SiteYear:
    """A site-year whose composite has ``ndvi`` (red 0.05, NIR from it), every pixel valid."""
    red = np.full(SHAPE, 0.05, np.float32)
    nir = red * (1 + ndvi) / (1 - ndvi)
    refl = np.stack([red, red, red, nir, red, red]).astype(np.float32)
    return SiteYear(
        site_id="t", year=year, window=(f"{year}-09-01", f"{year}-11-15"), widened=False,
        scenes=(), composite=Composite(refl, np.full(SHAPE, 8, np.int16), np.zeros_like(refl)),
        coal=CoalFrequency(np.zeros(SHAPE, np.float32), np.zeros(SHAPE, np.int16),
                           np.full(SHAPE, 8, np.int16)),
        footprint=footprint, coal_mask=np.zeros(SHAPE, bool), valid=np.ones(SHAPE, bool),
        median_clear=8.0, coverage=1.0,
    )  # fmt: skip


def _camp_series(
    road: NDArray[np.bool_] | None = None,
) -> tuple[list[SiteYear], NDArray[np.bool_]]:
    """A camp (bare yard) with a road cut north from it in 2021 (or ``road``), which no pixel
    rule maps."""
    camp = np.zeros(SHAPE, bool)
    camp[60:75, 30:50] = True
    road = road_mask(rows=slice(20, 60)) if road is None else road
    years = []
    for i, year in enumerate((2020, 2021, 2022, 2023)):
        ndvi = np.where(camp, 0.1, forest(i)).astype(np.float32)
        years.append(_site_year(year, with_road(ndvi, road) if year >= 2021 else ndvi, camp))
    return years, road


def test_add_lines_dates_the_road_to_its_year_and_keeps_it_after() -> None:
    years, road = _camp_series()
    out = add_lines(years, PIXEL_M, RULE)
    assert not out[0].footprint[road].any()
    for sy in out[1:]:
        assert sy.footprint[road].all()
        assert sy.linear is not None
        np.testing.assert_array_equal(sy.linear, road)
    np.testing.assert_array_equal(out[0].footprint, years[0].footprint)


def test_a_track_far_from_the_footprint_is_not_the_camp_expanding() -> None:
    track = road_mask(rows=slice(5, 45), col=70)  # 250 m east of the camp at its nearest
    years, _ = _camp_series(track)
    out = add_lines(years, PIXEL_M, RULE)
    assert not any(sy.footprint[track].any() for sy in out)
    anywhere = add_lines(years, PIXEL_M, replace(RULE, max_gap_m=None))
    assert all(sy.footprint[track].all() for sy in anywhere[1:])


def test_a_road_that_follows_a_field_track_to_the_camp_joins_it() -> None:
    """A road cut through the forest in 2021 reaches the camp along a track across a field that
    was there before: across the field it is a valley but lost no greenness, so its new part
    ends 150 m short of the camp. It joins the camp through the track; the track, no new
    ground, is not added."""
    camp = np.zeros(SHAPE, bool)
    camp[60:75, 30:50] = True
    field = np.zeros(SHAPE, bool)
    field[45:60, 25:55] = True
    road = road_mask(rows=slice(20, 60))
    years = []
    for i, year in enumerate((2020, 2021, 2022, 2023)):
        ndvi = np.where(field, forest(i + 10, level=0.35), forest(i))
        ndvi[road & field] = 0.2 if year == 2020 else 0.15  # the track, then the road on it
        ndvi = np.where(camp, 0.1, ndvi).astype(np.float32)
        years.append(_site_year(year, with_road(ndvi, road & ~field) if year >= 2021 else ndvi,
                                camp))  # fmt: skip
    out = add_lines(years, PIXEL_M, RULE)
    new = road & ~field
    assert not out[0].footprint[road].any()
    for sy in out[1:]:
        assert sy.footprint[new].all()
        assert not sy.footprint[road & field].any()


def test_an_old_track_does_not_carry_a_new_track_from_far_away_to_the_camp() -> None:
    """A new track 250 m east of the camp, joined to it by 350 m of an older track (a valley
    in every year, no loss): more than a line's length of valleys is no gap in one road, so
    the new track is not the camp's."""
    track = road_mask(rows=slice(5, 45), col=70)
    old = np.zeros(SHAPE, bool)
    old[45, 50:71] = True
    old[45:60, 50] = True
    camp = np.zeros(SHAPE, bool)
    camp[60:75, 30:50] = True
    years = []
    for i, year in enumerate((2020, 2021, 2022, 2023)):
        ndvi = with_road(np.where(camp, 0.1, forest(i)).astype(np.float32), old)
        years.append(_site_year(year, with_road(ndvi, track) if year >= 2021 else ndvi, camp))
    out = add_lines(years, PIXEL_M, RULE)
    assert not any(sy.footprint[track].any() for sy in out)
    # Within a line's length of the footprint, the old track carries it (the rule's reach).
    near = add_lines(years, PIXEL_M, replace(RULE, min_length_m=400.0))
    assert all(sy.footprint[track].all() for sy in near[1:])


def test_joining_keeps_whole_lines_that_reach_the_footprint() -> None:
    camp = np.zeros(SHAPE, bool)
    camp[60:75, 30:50] = True
    near = road_mask(rows=slice(10, 58), col=40)  # ends 30 m (3 pixels) short of the camp
    far = road_mask(rows=slice(10, 56), col=60)
    joined = joining(near | far, camp, 3.0)
    np.testing.assert_array_equal(joined, near)


def test_the_road_survives_the_change_stage_opening() -> None:
    years, road = _camp_series()
    out = add_lines(years, PIXEL_M, RULE)
    metrics = YearMetrics(2020, 0.0, 0.0, 0.0, 0.0, (), ())
    change = year_change(out[0], out[3], metrics, GRID, 25, 1, 16)
    assert change.added_ha == pytest.approx(road.sum() * 0.01)
    # Without the line record, the opening takes the one-pixel road away.
    plain = year_change(out[0], _no_lines(out[3]), metrics, GRID, 25, 1, 16)
    assert plain.added_ha == 0.0


def _no_lines(sy: SiteYear) -> SiteYear:
    return replace(sy, linear=None)


def test_analyse_site_flags_the_years_with_lines() -> None:
    years, _ = _camp_series()
    site = Site("t", "t", "kwanliso", _square(), "test")
    analysis = analyse_site(
        site, GRID, years, buffer_m=0.0, min_mapping_unit_ha=0.25, change_opening_px=1,
        coregistration=None, lines=RULE,
    )  # fmt: skip
    flagged = [m.year for m in analysis.metrics if LINEAR_FEATURES in m.flags]
    assert flagged == [2021, 2022, 2023]
    off = analyse_site(
        site, GRID, years, buffer_m=0.0, min_mapping_unit_ha=0.25, change_opening_px=1,
        coregistration=None, lines=None,
    )  # fmt: skip
    assert not any(LINEAR_FEATURES in m.flags for m in off.metrics)


def _square() -> Polygon:
    """The grid's extent in WGS84."""
    moved = reproject_geometry(box(300_000, 4_399_200, 300_800, 4_400_000), GRID.crs, "EPSG:4326")
    assert isinstance(moved, Polygon)
    return moved
