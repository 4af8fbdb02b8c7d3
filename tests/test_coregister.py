"""Co-registration of a site's years (pipeline/coregister.py): shifts recovered on a real
Sentinel-2 scene and on textured arrays, none invented from haze, noise, real ground change or
a scene without texture, and an analysis that measures the moved maps and says so."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import rasterio
from numpy.typing import NDArray
from scipy import ndimage
from shapely.geometry import box

from pipeline.analysis import COREGISTERED, analyse_site
from pipeline.bands import BAND_INDEX
from pipeline.classify import CoalFrequency
from pipeline.composite import Composite
from pipeline.config import CoregistrationConfig
from pipeline.coregister import (
    DEFAULT_COREGISTRATION,
    CoregistrationParams,
    PairShift,
    adjust_network,
    coregister_years,
    moved_site_year,
    pair_shift,
    place_images,
    registration_image,
    shift_array,
    subpixel_shifts,
    whole_pixel_moves,
)
from pipeline.results import SiteYear
from pipeline.sites import Site
from pipeline.terrain import SUN_ARRAYS, sun_response
from pipeline.trends import FLAG_MEANINGS, KNOWN_FLAGS

F32 = NDArray[np.float32]
S2_RED = Path("sentinel2-l2a-29RKH-20200219") / "B04.tif"
SWIR1 = BAND_INDEX["swir16"]


def landscape(shape: tuple[int, int], seed: int) -> F32:
    """A textured surface reflectance: smooth relief at several scales, fields and a few
    built blocks (bright), as SWIR1 sees a camp in farmland."""
    rng = np.random.default_rng(seed)
    h, w = shape
    out = np.full(shape, 0.18, np.float64)
    for sigma, amp in ((12, 0.04), (4, 0.02), (1.5, 0.01)):
        field = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
        out += amp * field / field.std()
    for _ in range(25):
        y, x = rng.integers(0, h - 12), rng.integers(0, w - 12)
        dy, dx = rng.integers(3, 12, size=2)
        out[y : y + dy, x : x + dx] = rng.uniform(0.25, 0.35)
    return out.astype(np.float32)


def crop(image: NDArray[np.floating], at: tuple[int, int], size: int) -> F32:
    return np.asarray(image[at[0] : at[0] + size, at[1] : at[1] + size], np.float32)


def coarse(image: NDArray[np.floating], offset: tuple[int, int], factor: int = 3) -> F32:
    """``image`` integrated over ``factor`` x ``factor`` blocks starting at ``offset`` (a sensor
    whose pixels sit ``offset / factor`` of a pixel off)."""
    oy, ox = offset
    h = (image.shape[0] - factor) // factor * factor
    w = (image.shape[1] - factor) // factor * factor
    part = np.asarray(image[oy : oy + h, ox : ox + w], np.float64)
    blocks = part.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    return np.asarray(blocks, np.float32)


@pytest.fixture(scope="module")
def red(real_data: Path) -> F32:
    """The real scene's red band (100 m, reflectance)."""
    with rasterio.open(real_data / S2_RED) as src:
        return np.asarray(src.read(1) * 1e-4, np.float32)


def _image(band: F32) -> NDArray[np.float64]:
    image = registration_image(band, np.ones(band.shape, bool))
    assert image is not None
    return image


# --- pairs ------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("move", [(1, 0), (0, -1), (2, -3), (-4, 5)])
def test_whole_pixel_shift_of_the_real_scene_is_recovered(red: F32, move: tuple[int, int]) -> None:
    a = crop(red, (300, 300), 256)
    b = crop(red, (300 - move[0], 300 - move[1]), 256)  # b's ground sits `move` further on
    found = pair_shift(_image(a), _image(b), a.size, DEFAULT_COREGISTRATION)
    assert found is not None
    (dy, dx), r = found
    assert (dy, dx) == pytest.approx((-move[0], -move[1]), abs=0.1)
    assert r > 0.8


@pytest.mark.realdata
@pytest.mark.parametrize("offset", [(1, 0), (0, 2), (2, 1)])
def test_sub_pixel_shift_of_the_real_scene_is_recovered(red: F32, offset: tuple[int, int]) -> None:
    """Two 300 m views of the 100 m scene whose pixels are a third or two off each other."""
    a, b = coarse(red, (0, 0)), coarse(red, offset)
    found = pair_shift(_image(a), _image(b), a.size, DEFAULT_COREGISTRATION)
    assert found is not None
    expected = (offset[0] / 3, offset[1] / 3)
    assert found[0] == pytest.approx(expected, abs=0.12)


@pytest.mark.parametrize("offset", [(0, 1), (2, 0), (1, 1)])
def test_sub_pixel_shift_of_a_textured_landscape_is_recovered(offset: tuple[int, int]) -> None:
    fine = landscape((600, 600), 3)
    a, b = coarse(fine, (0, 0)), coarse(fine, offset)
    found = pair_shift(_image(a), _image(b), a.size, DEFAULT_COREGISTRATION)
    assert found is not None
    assert found[0] == pytest.approx((offset[0] / 3, offset[1] / 3), abs=0.12)


def test_a_flat_scene_gives_no_shift() -> None:
    """Noise over a uniform field, one year a pixel off: nothing to match, no shift."""
    rng = np.random.default_rng(5)
    flat = 0.2 + rng.normal(0, 0.006, (140, 140)).astype(np.float32)
    other = 0.2 + rng.normal(0, 0.006, (140, 140)).astype(np.float32)
    assert pair_shift(_image(flat), _image(other), flat.size, DEFAULT_COREGISTRATION) is None
    valid = np.ones(flat.shape, bool)
    placed = place_images([_image(flat), _image(np.roll(other, 1, axis=1))], [valid, valid],
                          DEFAULT_COREGISTRATION)  # fmt: skip
    assert all(p.position is None and p.move == (0, 0) for p in placed)
    constant = np.full((50, 50), 0.2, np.float32)
    assert registration_image(constant, np.ones(constant.shape, bool)) is None


def test_too_few_valid_pixels_give_no_shift() -> None:
    land = landscape((120, 120), 4)
    image = _image(land)
    assert pair_shift(image, image, 2499, DEFAULT_COREGISTRATION) is None
    assert pair_shift(image, image, 2500, DEFAULT_COREGISTRATION) is not None


# --- a series ---------------------------------------------------------------------------------


def _seen_again(land: F32, seed: int, *, hazy: bool, changed: bool) -> F32:
    """``land`` on another day: a hazier atmosphere (gain 6%, +0.015), noise of 0.006
    reflectance, and (``changed``) a new 8 ha compound and a cleared field."""
    rng = np.random.default_rng(seed)
    out = land.astype(np.float64)
    if hazy:
        out = out * 1.06 + 0.015
    out = out + rng.normal(0, 0.006, land.shape)
    if changed:
        out[40:80, 150:170] = 0.32
        out[150:190, 30:70] = 0.26
    return out.astype(np.float32)


@pytest.mark.parametrize("source", ["real", "landscape"])
def test_haze_noise_and_ground_change_invent_no_shift(
    source: str, request: pytest.FixtureRequest
) -> None:
    if source == "real":
        land = crop(request.getfixturevalue("red"), (400, 500), 220)
    else:
        land = landscape((220, 220), 6)
    years = [land, _seen_again(land, 1, hazy=True, changed=False),
             _seen_again(land, 2, hazy=False, changed=True),
             _seen_again(land, 3, hazy=True, changed=True)]  # fmt: skip
    valid = [np.ones(land.shape, bool)] * 4
    placed = place_images([_image(y) for y in years], valid, DEFAULT_COREGISTRATION)
    for p in placed:
        assert p.move == (0, 0)
        assert p.position is not None
        assert max(abs(v) for v in p.position) < 0.2
        assert p.pairs == 3


@pytest.mark.realdata
def test_one_year_off_in_a_real_series_is_moved_back(red: F32) -> None:
    """Four looks at the real scene (hazy, noisy, one with a new compound), one a pixel south
    and one two pixels west: those two move back, the others stay."""
    at, size = (300, 300), 240
    land = crop(red, at, size)
    south = crop(red, (at[0] - 1, at[1]), size)  # content one row further down
    west = crop(red, (at[0], at[1] + 2), size)  # content two columns further left
    years = [land, _seen_again(south, 1, hazy=True, changed=False),
             _seen_again(land, 2, hazy=False, changed=True),
             _seen_again(west, 3, hazy=True, changed=False)]  # fmt: skip
    valid = [np.ones(land.shape, bool)] * 4
    placed = place_images([_image(y) for y in years], valid, DEFAULT_COREGISTRATION)
    assert [p.move for p in placed] == [(0, 0), (1, 0), (0, 0), (0, -2)]


def test_a_year_a_fraction_of_a_pixel_off_is_resampled_onto_the_others() -> None:
    """Four years of a textured landscape, each seen again (haze, noise, one with a new
    compound), on 50 m pixels made from 10 m ground: one year's pixels sit 0.6 px north, enough
    to map a small site a rim aside. Only it is given a shift, the one that brings it back; the
    others stay."""
    fine = landscape((1000, 1000), 11)
    years = [
        coarse(fine, (0, 0), 5),
        _seen_again(coarse(fine, (0, 0), 5), 1, hazy=True, changed=False),
        _seen_again(coarse(fine, (3, 0), 5), 2, hazy=False, changed=False),  # 0.6 px north
        _seen_again(coarse(fine, (0, 0), 5), 3, hazy=True, changed=True),
    ]
    valid = [np.ones(years[0].shape, bool)] * 4
    images = [_image(y) for y in years]
    shifts = subpixel_shifts(images, valid, DEFAULT_COREGISTRATION)
    assert shifts[0] is None
    assert shifts[1] is None
    assert shifts[3] is None
    assert shifts[2] == pytest.approx((0.6, 0.0), abs=0.12)
    # Off: nothing is resampled.
    off = replace(DEFAULT_COREGISTRATION, min_resample_px=None)
    assert subpixel_shifts(images, valid, off) == [None] * 4


def test_a_year_half_a_pixel_off_three_that_agree_is_resampled_onto_them() -> None:
    """Three years that agree and one 0.5 px north of them: the whole-pixel frame settles
    between them (a quarter of the way), where the odd year lies under ``min_resample_px`` off,
    but it is half a pixel off the years that agree, and it alone is shifted onto them."""
    fine = landscape((1000, 1000), 13)
    years = [
        _seen_again(coarse(fine, (0, 0), 4), 1, hazy=False, changed=False),
        _seen_again(coarse(fine, (0, 0), 4), 2, hazy=True, changed=False),
        _seen_again(coarse(fine, (2, 0), 4), 3, hazy=False, changed=True),  # 0.5 px north
        _seen_again(coarse(fine, (0, 0), 4), 4, hazy=True, changed=True),
    ]
    valid = [np.ones(years[0].shape, bool)] * 4
    images = [_image(y) for y in years]
    placed = place_images(images, valid, DEFAULT_COREGISTRATION)
    assert all(p.move == (0, 0) for p in placed)
    threshold = DEFAULT_COREGISTRATION.min_resample_px
    assert placed[2].position is not None
    assert threshold is not None
    assert abs(placed[2].position[0]) < threshold
    shifts = subpixel_shifts(images, valid, DEFAULT_COREGISTRATION)
    assert [shifts[k] for k in (0, 1, 3)] == [None] * 3
    assert shifts[2] == pytest.approx((0.5, 0.0), abs=0.12)


def test_a_year_most_of_a_pixel_off_is_resampled_not_moved_by_a_whole_pixel() -> None:
    """Three years that agree and one 0.8 px north of them: a whole-pixel move would bring it
    back by a pixel and leave it 0.2 px off the other way, its map a rim's width aside on a
    small site. It is resampled the whole 0.8 px onto them instead; the others stay."""
    fine = landscape((1000, 1000), 17)
    years = [
        _seen_again(coarse(fine, (0, 0), 5), 1, hazy=True, changed=False),
        _seen_again(coarse(fine, (0, 0), 5), 2, hazy=False, changed=True),
        _seen_again(coarse(fine, (0, 0), 5), 3, hazy=True, changed=True),
        _seen_again(coarse(fine, (4, 0), 5), 4, hazy=False, changed=False),  # 0.8 px north
    ]
    valid = [np.ones(years[0].shape, bool)] * 4
    images = [_image(y) for y in years]
    placed = place_images(images, valid, DEFAULT_COREGISTRATION)
    assert [p.move for p in placed] == [(0, 0), (0, 0), (0, 0), (-1, 0)]
    shifts = subpixel_shifts(images, valid, DEFAULT_COREGISTRATION)
    assert shifts[:3] == [None] * 3
    assert shifts[3] == pytest.approx((0.8, 0.0), abs=0.12)


def test_years_whole_pixels_apart_are_left_to_the_whole_pixel_moves() -> None:
    """Every year a whole pixel off the ground, each in another direction (the accuracy
    suite's misregistration case): two years share a position along each axis, but the ground
    is where none of them sits. No year is resampled; each moves back by its pixel."""
    fine = landscape((640, 640), 12)

    def year(oy: int, ox: int, seed: int) -> F32:
        return _seen_again(coarse(fine[oy : oy + 600, ox : ox + 600], (0, 0)), seed,
                           hazy=seed % 2 == 0, changed=False)  # fmt: skip

    years = [year(9, 6, 1), year(6, 9, 2), year(3, 6, 3), year(6, 3, 4)]
    valid = [np.ones(years[0].shape, bool)] * 4
    images = [_image(y) for y in years]
    assert subpixel_shifts(images, valid, DEFAULT_COREGISTRATION) == [None] * 4
    moves = [p.move for p in place_images(images, valid, DEFAULT_COREGISTRATION)]
    assert moves == [(-1, 0), (0, -1), (1, 0), (0, 1)]


def test_years_seen_again_without_a_shift_are_not_resampled() -> None:
    """Haze, noise and new ground invent no sub-pixel shift either."""
    land = landscape((220, 220), 6)
    years = [land, _seen_again(land, 1, hazy=True, changed=False),
             _seen_again(land, 2, hazy=False, changed=True),
             _seen_again(land, 3, hazy=True, changed=True)]  # fmt: skip
    valid = [np.ones(land.shape, bool)] * 4
    assert subpixel_shifts([_image(y) for y in years], valid, DEFAULT_COREGISTRATION) == [None] * 4


def test_whole_pixel_moves_pick_the_frame_that_moves_least() -> None:
    # Every year a pixel off in a turning direction (the accuracy suite's case): the truth is
    # the frame within a quarter pixel of the mean, and each year moves back by one pixel.
    frame, moves = whole_pixel_moves([0.25, -0.75, -0.75, 1.25])
    assert moves == [0, -1, -1, 1]
    assert frame == pytest.approx(0.25, abs=0.01)
    # One year far off among right ones: only it moves, though the mean is pulled 0.75 px.
    assert whole_pixel_moves([0.0, 0.02, -0.02, 3.0])[1] == [0, 0, 0, 3]
    # Two years 1.1 px apart: one moves (not both, in opposite directions).
    moves = whole_pixel_moves([0.55, -0.55])[1]
    assert sorted(abs(m) for m in moves) == [0, 1]
    # A third of a pixel apart: nothing moves.
    assert whole_pixel_moves([0.15, -0.15, 0.05])[1] == [0, 0, 0]


def test_the_network_drops_a_blunder_and_centres_the_positions() -> None:
    true = np.array([(0.0, 0.0), (1.0, -1.0), (0.0, 2.0), (-1.0, 0.0)])
    pairs = [
        PairShift(i, j, (float(true[i, 0] - true[j, 0]), float(true[i, 1] - true[j, 1])), 0.8)
        for i in range(4)
        for j in range(i + 1, 4)
    ]
    pairs[2] = PairShift(0, 3, (3.0, 1.0), 0.5)  # a false match
    positions, kept = adjust_network(5, pairs, 0.35)
    assert len(kept) == 5
    assert all(p.j != 3 or p.i != 0 for p in kept)
    assert positions[4] is None  # no pair reaches it
    placed = np.array([p for p in positions if p is not None])
    np.testing.assert_allclose(placed, true - true.mean(axis=0), atol=1e-9)


def test_shift_array_fills_and_never_wraps() -> None:
    a = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    out = shift_array(a, (1, -1), np.nan)
    assert np.isnan(out[0, 0]).all()
    assert np.isnan(out[0, :, 3]).all()
    np.testing.assert_array_equal(out[0, 1:, :3], a[0, :2, 1:])
    assert shift_array(a, (0, 0), np.nan) is a
    assert not shift_array(np.ones((2, 2), bool), (3, 0), False).any()


def test_a_moved_year_moves_its_response_to_the_sun() -> None:
    """The season's response to the sun moves with the year's maps, when read; ground brought
    in from outside the grid has no look."""
    rng = np.random.default_rng(0)
    days = [date(2023, 9, 1) + timedelta(days=10 * i) for i in range(6)]
    stack = rng.uniform(0.02, 0.3, (6, 6, 8, 9)).astype(np.float32)
    sun = sun_response(stack, np.ones((6, 8, 9), bool), days)
    sy = replace(_site_year(2020, np.full((8, 9), 0.2, np.float32), np.zeros((8, 9), bool)),
                 sun=sun)  # fmt: skip
    moved = moved_site_year(sy, (1, -2)).sun
    assert moved is not None
    for name, mine, theirs in zip(SUN_ARRAYS, moved.arrays(), sun.arrays(), strict=True):
        np.testing.assert_array_equal(mine[..., 1:, :-2], theirs[..., :-1, 2:], err_msg=name)
    assert (moved.looks[0] == 0).all()
    assert (moved.looks[:, -2:] == 0).all()
    assert np.isnan(moved.slope[:, 0]).all()
    assert np.isnan(moved.score[:, -1]).all()


# --- the analysis ----------------------------------------------------------------------------

SITE = Site("t", "t", "kwanliso", box(127.0, 39.0, 127.016, 39.0128), "test")


def _site_year(year: int, land: F32, footprint: NDArray[np.bool_]) -> SiteYear:
    shape = land.shape
    refl = np.repeat(land[None], 6, axis=0)
    refl[3] = 0.3 - land  # NIR: darker where SWIR1 is bright
    coal = np.zeros(shape, bool)
    return SiteYear(
        site_id="t", year=year, window=(f"{year}-09-01", f"{year}-11-15"), widened=False,
        scenes=(), composite=Composite(refl, np.full(shape, 8, np.int16), np.zeros_like(refl)),
        coal=CoalFrequency(np.zeros(shape, np.float32), np.zeros(shape, np.int16),
                           np.full(shape, 8, np.int16)),
        footprint=footprint, coal_mask=coal, valid=np.ones(shape, bool),
        median_clear=8.0, coverage=1.0,
    )  # fmt: skip


def _series(grid_shape: tuple[int, int]) -> tuple[list[SiteYear], NDArray[np.bool_]]:
    """Three years of a camp that does not change; 2021's imagery one pixel east."""
    land = landscape(grid_shape, 8)
    camp = np.zeros(grid_shape, bool)
    camp[40:90, 50:110] = True
    land[camp] = 0.3
    east = np.roll(land, 1, axis=1)
    east[:, 0] = land[:, 0]
    years = [_site_year(2020, land, camp), _site_year(2021, east, np.roll(camp, 1, axis=1)),
             _site_year(2022, land, camp)]  # fmt: skip
    return years, camp


def test_the_analysis_measures_the_moved_maps_and_records_the_shift() -> None:
    grid = SITE.grid(10.0, 0.0)
    years, camp = _series(grid.shape)
    a = analyse_site(SITE, grid, years, buffer_m=0.0, min_mapping_unit_ha=0.25, change_opening_px=0)
    moved = a.years[1]
    assert moved.registration is not None
    assert moved.registration.moved_px == (1, 0)
    assert moved.registration.shift_px == pytest.approx((1.0, 0.0), abs=0.1)
    np.testing.assert_array_equal(moved.footprint, camp)
    assert not moved.valid[:, -1].any()  # brought in from beyond the grid: not seen
    assert moved.valid[:, :-1].all()
    assert moved.composite is not None
    assert np.isnan(moved.composite.reflectance[:, :, -1]).all()
    assert (moved.composite.clear_count[:, -1] == 0).all()
    np.testing.assert_array_equal(
        moved.composite.reflectance[SWIR1, :, :-1],
        years[0].composite.reflectance[SWIR1, :, :-1],  # type: ignore[union-attr]
    )
    m = a.metrics[1]
    assert COREGISTERED in m.flags
    assert (m.shift_x_px, m.shift_y_px) == pytest.approx((1.0, 0.0), abs=0.1)
    for i in (0, 2):
        assert COREGISTERED not in a.metrics[i].flags
        assert a.years[i].registration is not None
        assert a.years[i].registration.moved_px == (0, 0)  # type: ignore[union-attr]
    # Without co-registration the one-pixel offset reads as expansion and loss; with it, none.
    assert all(c.added_ha == 0.0 and c.removed_ha == 0.0 for c in a.changes)
    off = analyse_site(SITE, grid, years, buffer_m=0.0, min_mapping_unit_ha=0.0,
                       change_opening_px=0, coregistration=None)  # fmt: skip
    assert off.changes[0].added_ha > 0.0
    assert all(sy.registration is None for sy in off.years)
    assert all(COREGISTERED not in mt.flags for mt in off.metrics)


def test_years_without_a_composite_are_left_alone() -> None:
    grid = SITE.grid(10.0, 0.0)
    years, _ = _series(grid.shape)
    empty = replace(years[2], composite=None, coal=None, valid=np.zeros(grid.shape, bool))
    out = coregister_years([years[0], years[1], empty], DEFAULT_COREGISTRATION)
    assert out[2] is empty
    assert out[1].registration is not None
    assert out[1].registration.moved_px in ((1, 0), (0, 0))


def test_config_defaults_are_the_module_defaults(tmp_path: Path) -> None:
    from pipeline.demo import demo_config
    from pipeline.run import coregistration_params

    config = demo_config(tmp_path / "demo", tmp_path / "cache")
    assert coregistration_params(config) == CoregistrationParams()
    off = config.updated(coregistration={"enabled": False})
    assert coregistration_params(off) is None
    assert CoregistrationConfig().band == "swir16"
    assert "coregistered" in KNOWN_FLAGS
    assert "coregistered" in FLAG_MEANINGS


def test_a_frame_whole_pixels_away_never_wins_on_rounding() -> None:
    """Years that agree within a fifth of a pixel move nowhere: the frame two pixels off
    repeats their misfit but for float rounding, and used to win on it (every year moved 2 px)."""
    frame, moves = whole_pixel_moves([0.081, -0.058, 0.034, -0.137])
    assert moves == [0, 0, 0, 0]
    assert abs(frame) < 0.2
