"""Residual haze (``pipeline.haze``): known spectra seen through a lambda^-1.5 path reflectance
with sensor noise; the estimate, the removal, and the classes coal, shadow and water keep."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from pipeline import haze
from pipeline.bands import BANDS
from pipeline.classify import coal_observation
from pipeline.recipe import Look, RecipeParams, dehazed, look_record

PIXEL_M = 10.0
SHAPE = (120, 120)
NOISE = 0.004  # sensor noise (reflectance), the no-change tests' level
# Spectra in BANDS order (blue green red nir swir16 swir22). Forest follows the DDV relation
# (blue ~ SWIR2 / 4, Kaufman et al. 1997) within its scatter; coal is dark and flat (DOMAIN.md);
# a shadow in diffuse skylight keeps blue and falls toward SWIR; water is dark in SWIR.
FOREST = np.array([0.024, 0.050, 0.030, 0.300, 0.150, 0.090], np.float32)
COAL = np.array([0.040, 0.042, 0.044, 0.048, 0.056, 0.058], np.float32)
SHADOW = np.array([0.060, 0.055, 0.050, 0.045, 0.035, 0.030], np.float32)
WATER = np.array([0.060, 0.070, 0.045, 0.025, 0.008, 0.005], np.float32)
WAVELENGTH = np.array([haze.WAVELENGTH_UM[b] for b in BANDS])
COAL_AT = (slice(10, 30), slice(10, 30))
SHADOW_AT = (slice(90, 110), slice(60, 90))
WATER_AT = (slice(60, 80), slice(10, 40))


def ground() -> np.ndarray:
    """(band, y, x): forest, with a coal pile, a shadow and a pond."""
    out = np.broadcast_to(FOREST[:, None, None], (len(BANDS), *SHAPE)).copy()
    for spectrum, (rows, cols) in ((COAL, COAL_AT), (SHADOW, SHADOW_AT), (WATER, WATER_AT)):
        out[:, rows, cols] = spectrum[:, None, None]
    return out


def seen(blue_haze: np.ndarray | float, seed: int) -> np.ndarray:
    """The ground through haze of ``blue_haze`` (blue path reflectance, scalar or (y, x)),
    spread as lambda^-1.5, with sensor noise."""
    rng = np.random.default_rng(seed)
    path = (WAVELENGTH[0] / WAVELENGTH) ** 1.5
    hazy = ground() + path[:, None, None] * np.broadcast_to(blue_haze, SHAPE)[None]
    return (hazy + rng.normal(0, NOISE, hazy.shape)).astype(np.float32)


def estimate(look: np.ndarray) -> haze.HazeField:
    return haze.estimate(*haze.ddv_bands(look), np.ones(SHAPE, bool), PIXEL_M)


def corrected(look: np.ndarray) -> np.ndarray:
    found = estimate(look)
    return haze.remove(look, found.at(slice(0, SHAPE[0]), slice(0, SHAPE[1])))


def share(mask: np.ndarray, where: tuple[slice, slice]) -> float:
    return float(mask[where].mean())


def test_spectrum_is_the_angstrom_law() -> None:
    s = haze.spectrum(1.5)
    assert s[0] == pytest.approx(1.0)
    assert s[-1] == pytest.approx((0.490 / 2.190) ** 1.5, rel=1e-5)
    assert np.all(np.diff(s) < 0)  # falls with wavelength
    assert np.all(haze.spectrum(0.0) == 1.0)  # grey haze


@pytest.mark.parametrize("blue_haze", [0.02, 0.05, 0.08])
def test_uniform_haze_is_estimated(blue_haze: float) -> None:
    found = estimate(seen(blue_haze, seed=1))
    # Forest sits 0.0015 above the DDV line and the 5th percentile of the noise ~0.007 below:
    # the estimate falls short by about 0.005, never by more than 0.01.
    assert found.blocks.shape == (3, 3)
    assert np.all(found.blocks <= blue_haze)
    assert np.all(found.blocks >= blue_haze - 0.01)


def test_haze_free_look_is_left_unchanged() -> None:
    look = seen(0.0, seed=2)
    found = estimate(look)
    assert found.max == 0.0
    assert np.array_equal(corrected(look), look)


def test_coal_shadow_and_water_keep_their_class_after_correction() -> None:
    clear_look = seen(0.0, seed=3)
    hazy_look = seen(0.06, seed=3)
    coal_clear = coal_observation(clear_look)
    coal_hazy = coal_observation(hazy_look)
    coal_fixed = coal_observation(corrected(hazy_look))
    # Haze makes coal brighter in blue than in SWIR1: the rule reads it as a shadow.
    assert share(coal_clear, COAL_AT) > 0.95
    assert share(coal_hazy, COAL_AT) < 0.05
    assert share(coal_fixed, COAL_AT) > 0.95
    # Shadow and water stay rejected; forest is never coal.
    for where in (SHADOW_AT, WATER_AT):
        assert share(coal_fixed, where) == 0.0
    assert coal_fixed.sum() <= coal_fixed[COAL_AT].sum()


def test_haze_that_varies_across_the_grid_is_followed() -> None:
    ramp = np.linspace(0.02, 0.07, SHAPE[1], dtype=np.float32)[None, :].repeat(SHAPE[0], 0)
    look = seen(ramp, seed=4)
    found = estimate(look).at(slice(0, SHAPE[0]), slice(0, SHAPE[1]))
    # Between the outer block centres (pixels 24.5..110) the bilinear field tracks the ramp.
    inner = slice(25, 110)
    error = found[:, inner] - ramp[:, inner]
    assert np.all(error <= 0.008)
    assert np.all(error >= -0.016)
    # The pile lies where the field is its block's low percentile: a little haze stays in.
    assert share(coal_observation(haze.remove(look, found)), COAL_AT) > 0.9


def test_removal_never_goes_below_the_floor() -> None:
    look = seen(0.08, seed=5)
    look[:, WATER_AT[0], WATER_AT[1]] = 0.002  # darker than the floor already
    fixed = haze.remove(look, np.full(SHAPE, 0.08, np.float32))
    rule = haze.HazeRule()
    assert np.all((fixed >= np.float32(rule.floor)) | (fixed == look))
    assert np.all(fixed <= look)


def test_field_at_a_window_is_that_of_the_whole_grid() -> None:
    """A chunk's window of the field equals the whole grid's field there (``chunks``)."""
    found = estimate(seen(np.linspace(0.01, 0.06, SHAPE[0])[:, None] * np.ones(SHAPE), 6))
    whole = found.at(slice(0, SHAPE[0]), slice(0, SHAPE[1]))
    for rows, cols in ((slice(0, 17), slice(40, 77)), (slice(33, 120), slice(101, 120))):
        assert np.array_equal(found.at(rows, cols), whole[rows, cols])


def test_blocks_without_dark_vegetation_take_their_neighbours_value() -> None:
    look = seen(0.04, seed=7)
    clear = np.ones(SHAPE, bool)
    clear[:50, :50] = False  # the first block has no clear pixel
    found = haze.estimate(*haze.ddv_bands(look), clear, PIXEL_M)
    assert found.blocks[0, 0] in (found.blocks[0, 1], found.blocks[1, 0], found.blocks[1, 1])
    nothing = haze.estimate(*haze.ddv_bands(look), np.zeros(SHAPE, bool), PIXEL_M)
    assert nothing.max == 0.0


def test_recipe_dehazes_each_look_and_records_the_haze() -> None:
    looks = [
        Look(date(2021, 9, d), seen(h, seed=d), np.ones(SHAPE, bool), look_record(f"S{d}", "t"))
        for d, h in ((1, 0.0), (2, 0.05))
    ]
    pixel_ha = PIXEL_M**2 / 1e4
    out = dehazed(looks, pixel_ha, RecipeParams())
    assert np.array_equal(out[0].reflectance, looks[0].reflectance)
    assert out[0].record.haze_blue == 0.0
    assert out[1].record.haze_blue is not None
    assert 0.035 <= out[1].record.haze_blue <= 0.05
    assert out[1].record.haze_blue_max is not None
    assert out[1].record.haze_blue_max >= out[1].record.haze_blue
    assert np.all(out[1].reflectance[0] < looks[1].reflectance[0])
    off = dehazed(looks, pixel_ha, RecipeParams(haze=None))
    assert all(a.reflectance is b.reflectance for a, b in zip(off, looks, strict=True))
    assert off[1].record.haze_blue is None


def test_ground_within_the_relations_uncertainty_is_not_haze() -> None:
    """Noise-free forest 0.005 above the DDV line (within its ~0.006 scatter) is no haze."""
    look = ground()
    look[0] = np.where(look[0] == FOREST[0], 0.25 * FOREST[5] + 0.005, look[0])
    assert estimate(look).max == 0.0
    assert estimate(look + (haze.spectrum(1.5) * 0.03)[:, None, None]).max > 0.025


def test_bare_ground_without_vegetation_is_not_haze() -> None:
    """A block of bare soil and built ground (a mine or a town) sits ~0.02 above the DDV line in
    SWIR2's range: without the vegetation test its lower envelope would read as haze."""
    soil = np.array([0.070, 0.095, 0.120, 0.180, 0.260, 0.205], np.float32)
    built = np.array([0.100, 0.110, 0.120, 0.150, 0.190, 0.175], np.float32)
    rng = np.random.default_rng(3)
    look = np.where(
        (np.arange(SHAPE[1]) % 7 < 4)[None, None, :], soil[:, None, None], built[:, None, None]
    ) * np.ones((1, *SHAPE), np.float32)
    look = (look + rng.normal(0, NOISE, look.shape)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        unguarded = (look[0] - 0.25 * look[5])[(look[5] > 0.01) & (look[5] < 0.25)]
    assert np.percentile(unguarded, 5) > 0.01  # the case is real: soil sits above the line
    assert estimate(look).max == 0.0
    assert estimate(look + (haze.spectrum(1.5) * 0.03)[:, None, None]).max == 0.0  # no target


@pytest.mark.parametrize("snow_share", [0.2, 0.35, 0.5])
def test_forest_under_patchy_snow_is_not_haze(snow_share: float) -> None:
    """Forest under a share of snow the scene's snow mask leaves clear (it flags pixels mostly
    snow): snow keeps the SWIR1/SWIR2 ratio of the forest it partly covers and lifts blue by
    ~0.8 of its share, so the vegetation test alone would read it as haze and the removal
    would crush the look's visible bands; snow's NDSI sets it apart."""
    snow = np.array([0.850, 0.850, 0.830, 0.760, 0.110, 0.080], np.float32)  # SNOW, BANDS order
    rng = np.random.default_rng(8)
    share = np.clip(snow_share + rng.normal(0, 0.02, SHAPE), 0.0, 0.5).astype(np.float32)
    look = ground() * (1.0 - share[None]) + snow[:, None, None] * share[None]
    look = (look + rng.normal(0, NOISE, look.shape)).astype(np.float32)
    blue, _, swir16, swir22 = haze.ddv_bands(look)
    with np.errstate(invalid="ignore"):
        vegetation = (swir16 >= 1.5 * swir22) & (swir22 > 0.01) & (swir22 < 0.25)
    assert vegetation.mean() > 0.5  # the case is real: the ratio test takes it for vegetation
    assert np.percentile((blue - 0.25 * swir22)[vegetation], 5) > 0.08
    assert estimate(look).max == 0.0
    # Haze over the same scene with the snow gone is still found.
    assert estimate(seen(0.04, seed=8)).max > 0.03
