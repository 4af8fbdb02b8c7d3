"""Known-answer and invariant tests of the pure stages: indices, masking, composite, classify,
change, and the per-site analysis: areas with their edge uncertainty, the net change between
two years."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage
from shapely.geometry import box

from pipeline import indices
from pipeline.analysis import analyse_site, year_change
from pipeline.bands import BANDS, rim_px
from pipeline.change import mask_change, spectral_change
from pipeline.classify import (
    CoalFrequency,
    coal_frequency,
    coal_observation,
    drop_thin_regions,
    footprint_mask,
    grow_mixed_edges,
    grow_to_unmixed_area,
    obscured_looks,
)
from pipeline.composite import Composite, median_composite
from pipeline.errors import InsufficientDataError
from pipeline.grid import Grid
from pipeline.masking import clear_from_scl
from pipeline.results import SiteYear, YearMetrics
from pipeline.sites import Site
from pipeline.trends import Z95, net_change, se_from_half_width, significant_change

HYP = settings(max_examples=40, derandomize=True, database=None, deadline=None)

# Reflectance spectra (blue, green, red, nir, swir16, swir22) of the surfaces the rules separate.
VEGETATION = [0.03, 0.06, 0.04, 0.35, 0.18, 0.09]
BUILT = [0.12, 0.13, 0.14, 0.18, 0.22, 0.20]
SOIL = [0.09, 0.12, 0.16, 0.22, 0.30, 0.26]
WATER = [0.05, 0.06, 0.04, 0.02, 0.01, 0.005]
COAL = [0.040, 0.042, 0.045, 0.050, 0.055, 0.052]
SHADOWED_VEG = [0.02, 0.025, 0.02, 0.09, 0.04, 0.02]


def image(*spectra: list[float]) -> np.ndarray:
    """A (band, 1, n) image with one pixel per spectrum."""
    return np.array(spectra, np.float32).T[:, None, :]


def test_indices_known_values() -> None:
    img = image(VEGETATION, WATER)
    np.testing.assert_allclose(
        indices.ndvi(img)[0], [(0.35 - 0.04) / 0.39, (0.02 - 0.04) / 0.06], rtol=1e-5
    )
    np.testing.assert_allclose(indices.mndwi(img)[0, 1], (0.06 - 0.01) / 0.07, rtol=1e-5)
    zero = np.zeros((6, 1, 1), np.float32)
    assert np.isnan(indices.ndvi(zero)).all()


def test_other_indices_known_values() -> None:
    b, g, r, n, s1, s2 = SOIL
    img = image(SOIL)
    np.testing.assert_allclose(indices.ndbi(img)[0, 0], (s1 - n) / (s1 + n), rtol=1e-5)
    np.testing.assert_allclose(
        indices.bsi(img)[0, 0], ((s1 + r) - (n + b)) / ((s1 + r) + (n + b)), rtol=1e-5
    )
    np.testing.assert_allclose(indices.nbr(img)[0, 0], (n - s2) / (n + s2), rtol=1e-5)
    np.testing.assert_allclose(
        indices.awei_sh(img)[0, 0], b + 2.5 * g - 1.5 * (n + s1) - 0.25 * s2, rtol=1e-5
    )


def test_footprint_rule_separates_surfaces() -> None:
    img = image(VEGETATION, BUILT, SOIL, WATER, COAL, SHADOWED_VEG)
    got = footprint_mask(img, opening_px=0)[0]
    assert got.tolist() == [False, True, True, False, True, False]


def test_footprint_never_on_nodata() -> None:
    img = image(BUILT, BUILT)
    img[:, 0, 1] = np.nan
    assert footprint_mask(img, opening_px=0)[0].tolist() == [True, False]


def test_coal_rule_rejects_confusers() -> None:
    shadowed_soil_blue_heavy = [0.05, 0.045, 0.04, 0.045, 0.03, 0.025]  # falls toward SWIR
    img = image(COAL, WATER, VEGETATION, BUILT, SHADOWED_VEG, shadowed_soil_blue_heavy)
    assert coal_observation(img)[0].tolist() == [True, False, False, False, False, False]


def test_coal_rule_holds_under_sensor_noise_where_ndvi_does_not() -> None:
    """Coal seen with 0.006 reflectance of noise per band (the no-change tests' level): NDVI on
    a target this dark swings past 0.2 in a fair share of looks, the NIR - red bound does not;
    shaded vegetation, as dark, stays out under the same noise."""
    rng = np.random.default_rng(20261130)
    n = 4000
    coal = np.array(COAL, np.float32)[:, None, None] + rng.normal(0, 0.006, (6, 1, n)).astype(
        np.float32
    )
    with np.errstate(invalid="ignore"):
        ndvi_fails = float((indices.ndvi(coal) >= 0.2).mean())
    assert ndvi_fails > 0.03  # the case is real: NDVI alone loses coal looks
    kept, ndvi_only = coal_observation(coal).mean(), coal_observation(coal, nir_minus_red_max=0.0)
    assert kept - ndvi_only.mean() > 0.8 * ndvi_fails  # most of them come back
    assert kept > 0.92  # the rest: SWIR1 >= blue and the darkness bounds under the same noise
    shade = np.array(SHADOWED_VEG, np.float32)[:, None, None] + rng.normal(0, 0.006, (6, 1, n))
    assert coal_observation(shade.astype(np.float32)).mean() < 0.01
    # Char rises toward SWIR (not flat): NIR - red admits hardly any of it that NDVI did not.
    char = np.array([0.030, 0.032, 0.035, 0.050, 0.080, 0.075], np.float32)[:, None, None]
    char = (char + rng.normal(0, 0.006, (6, 1, n))).astype(np.float32)
    extra = coal_observation(char) & ~coal_observation(char, nir_minus_red_max=0.0)
    assert extra.mean() < 0.01
    assert coal_observation(char, flat_range_max=1.0).mean() - coal_observation(char).mean() > 0.02


def test_flat_coal_passes_the_shadow_test_under_noise_a_falling_shadow_does_not() -> None:
    """Coal exactly flat (SWIR1 = blue: DOMAIN.md's 0.03-0.07 at its flattest) under 0.006 of
    noise per band: a test at SWIR1 - blue >= 0 would drop half its looks and the counting rule
    (flagged in half the clear looks) most of the pile; the products' accuracy (0.005) as the
    margin keeps most looks. Ground in shadow falling toward SWIR by 0.015 stays out."""
    rng = np.random.default_rng(20261203)
    n, looks = 4000, 8
    # (band, look, pixel): the rule is per pixel, so each look is a row of one image.
    flat = (0.048 + rng.normal(0, 0.006, (6, looks, n))).astype(np.float32)
    at_zero = coal_observation(flat, swir_minus_blue_min=0.0)
    kept = coal_observation(flat)
    assert at_zero.mean() < 0.55  # the case is real: a zero margin is a coin toss per look
    assert kept.mean() > 0.65
    assert (kept.mean(axis=0) >= 0.5).mean() > 0.85  # the counting rule keeps the pile
    assert (at_zero.mean(axis=0) >= 0.5).mean() < 0.7
    falling = np.array([0.050, 0.048, 0.046, 0.044, 0.035, 0.032], np.float32)[:, None, None]
    falling = (falling + rng.normal(0, 0.006, (6, looks, n))).astype(np.float32)
    shaded = coal_observation(falling)
    assert shaded.mean() < 0.15
    assert (shaded.mean(axis=0) >= 0.5).mean() < 0.02


def test_the_season_takes_the_shadow_test_where_one_look_is_too_noisy() -> None:
    """``coal_frequency`` takes the shadow test on the median of a pixel's dark looks as well
    as look by look: of flat coal under 0.006 of noise in eight looks, the per-look test alone
    keeps 92 % of the pixels, the season's 94.5 %; ground dark and falling toward SWIR in every
    look (a slope in shadow) stays out (taken over the coal-like looks, the median let 2 % of
    it in: the water test keeps the looks noise lifts), and so does asphalt, coal-dark only in
    the two looks a cloud's shadow darkens (falling as shadows do), while a pile in a cloud's shadow in
    three of its eight looks is still coal."""
    rng = np.random.default_rng(20261204)
    n, looks = 4000, 8

    def season(spectrum: list[float]) -> np.ndarray:
        """(look, band, 1, n) of ``spectrum`` under 0.006 of noise per band."""
        noise = rng.normal(0, 0.006, (looks, 6, 1, n))
        return (np.array(spectrum)[None, :, None, None] + noise).astype(np.float32)

    clear = np.ones((looks, 1, n), bool)
    flat = season([0.048] * 6)
    kept = coal_frequency(flat, clear).mask(0.5, 3, seen_once_reach_px=0)
    look_by_look = np.mean([coal_observation(look) for look in flat], axis=0) >= 0.5
    assert look_by_look.mean() < 0.93  # the case is real: the per-look test drops pixels
    assert kept.mean() > 0.94
    falling = season([0.050, 0.048, 0.046, 0.044, 0.035, 0.032])
    assert coal_frequency(falling, clear).mask(0.5, 3, seen_once_reach_px=0).mean() < 0.01
    shade = 1.0 - np.array([0.55, 0.62, 0.66, 0.72, 0.72, 0.75], np.float32)  # light kept
    asphalt = season([0.085, 0.088, 0.090, 0.095, 0.100, 0.095])
    asphalt[:2] *= shade[None, :, None, None]
    shadowed = coal_frequency(asphalt, clear)
    assert shadowed.flagged.max() <= 2  # never more than its two shadowed looks
    assert not shadowed.mask(0.5, 3, seen_once_reach_px=0).any()
    pile = season(COAL)
    pile[:3] *= shade[None, :, None, None]
    assert coal_frequency(pile, clear).mask(0.5, 3, seen_once_reach_px=0).mean() > 0.99


def test_coal_frequency_rule() -> None:
    t = 6
    stack = np.repeat(image(COAL, COAL, COAL, BUILT)[None], t, axis=0)
    clear = np.ones((t, 1, 4), bool)
    stack[3:, :, 0, 1] = BUILT  # pixel 1 coal in 3 of 6 -> 50%, 3 observations: coal
    stack[2:, :, 0, 2] = BUILT  # pixel 2 coal in 2 of 6: not enough
    freq = coal_frequency(stack, clear)
    np.testing.assert_allclose(freq.frequency[0], [1.0, 0.5, 2 / 6, 0.0])
    assert freq.mask(0.5, 3)[0].tolist() == [True, True, False, False]
    # Fewer than 3 clear observations: coal only when flagged in every one of them.
    clear[:, 0, 0] = [True, True, False, False, False, False]
    clear[:, 0, 1] = [False, False, True, True, False, False]  # one coal look, one built
    short = coal_frequency(stack, clear).mask(0.5, 3)[0]
    assert short[0]
    assert not short[1]
    clear[:, 0, 0] = [True, False, False, False, False, False]  # one look alone is not enough
    clear[:, 0, 1:] = False
    assert not coal_frequency(stack, clear).mask(0.5, 3)[0, 0]
    clear[:, 0, 1] = [True, True, True, True, True, True]  # but next to a confirmed pile it is
    stack[:, :, 0, 1] = COAL
    assert coal_frequency(stack, clear).mask(0.5, 3)[0, :2].all()


# A thick cloud's spectrum (bright, lower in the SWIR where water and ice absorb) and the share
# of light a full cloud shadow takes per band (diffuse skylight keeps blue brighter).
CLOUD = np.array([0.55, 0.56, 0.58, 0.58, 0.45, 0.33], np.float32)
SHADOW_LOSS = np.array([0.55, 0.62, 0.66, 0.72, 0.72, 0.75], np.float32)


def test_a_pile_under_a_missed_veil_or_shade_is_still_coal() -> None:
    """Three looks of four piles, 500 pixels each (sensor noise 0.006). Look 2 lies under what
    the mask missed: pile 0 under a cloud edge of 8% opacity, pile 1 in a cloud's shadow; each
    is then no coal to the rule, and the pile, flagged in 2 of its 3 clear looks, would be
    lost. Neither look counts as a clear look of the pile, which is coal in both it had. Pile 2
    is carted off before look 2 (bright soil uncovered: more light in the SWIR than in the
    visible), pile 3 arrives on a concrete yard in look 1: both are real change, and every look
    of them counts."""
    rng = np.random.default_rng(5)
    n = 500
    ground = np.repeat(np.stack([image(COAL, COAL, COAL, BUILT)] * 3), n, axis=3)
    veiled, shaded, carted, arrived = (slice(k * n, (k + 1) * n) for k in range(4))
    ground[2, :, 0, carted] = np.array(SOIL)[:, None]
    ground[1:, :, 0, arrived] = np.array(COAL)[:, None]
    ground[2, :, 0, veiled] = 0.92 * ground[2, :, 0, veiled] + 0.08 * CLOUD[:, None]
    ground[2, :, 0, shaded] *= (1 - SHADOW_LOSS)[:, None]
    stack = (ground + rng.normal(0, 0.006, ground.shape)).astype(np.float32)
    clear = np.ones((3, 1, 4 * n), bool)
    hidden = coal_observation(stack[2])[0]
    assert hidden[veiled].mean() < 0.05
    assert hidden[shaded].mean() < 0.05
    reference = median_composite(stack, clear).reflectance
    obscured = obscured_looks(stack, clear, reference)[:, 0]
    assert obscured[2, veiled].mean() > 0.95
    assert obscured[2, shaded].mean() > 0.95
    assert obscured[:2, : 2 * n].mean() < 0.01  # the clear looks of the two piles
    assert obscured[:, 2 * n :].mean() < 0.01  # real change
    before = coal_frequency(stack, clear).mask(0.5, 3)[0]
    after = coal_frequency(stack, clear, obscured=obscured[:, None]).mask(0.5, 3)[0]
    for pile in (veiled, shaded):
        assert before[pile].mean() < 0.05
        assert after[pile].mean() > 0.8  # the rest: a clear look noise left unflagged
    assert not after[carted].any()
    assert not after[arrived].any()
    off = obscured_looks(stack, clear, reference, veil_min_rise=0, shade_min_loss=0)
    assert not off.any()


def test_an_obscured_look_never_leaves_one_look_alone() -> None:
    """A slope in terrain shadow that deepens as the sun sinks: its early look passes for coal,
    its later one, half as bright, does not. Not counting the dark look would leave the early
    one alone to speak for the pixel; a pixel keeps two clear looks at least."""
    slope = np.array(COAL, np.float32) * 0.8
    stack = np.stack([image(list(slope)), image(list(slope * 0.5))])
    clear = np.ones((2, 1, 1), bool)
    obscured = obscured_looks(stack, clear, median_composite(stack, clear).reflectance)
    assert obscured[1, 0, 0]
    assert not coal_observation(stack[1])[0, 0]
    counted = coal_frequency(stack, clear, obscured=obscured)
    assert counted.clear[0, 0] == 2
    assert counted.flagged[0, 0] == 1
    assert not counted.mask(0.5, 3).any()


def test_a_veiled_look_does_not_refute_coal() -> None:
    """Two clear looks of a pile, where clouds hid the rest of the season (whose median saw
    coal): one sees coal, the other lies under a cloud's edge the mask missed (25 % opacity),
    which lifts the SWIR over the coal rule's ceiling as well as the visible. The veil hides
    the pile; it does not show ground that is not coal, so the pile stays undecided. Beside
    it a yard, in a cloud's shadow the mask missed in its first look (flagged as coal) and
    seen bright in its second: that look refutes the flag."""
    coal = np.array(COAL, np.float32)
    built = np.array(BUILT, np.float32)
    veil = 0.75 * coal + 0.25 * CLOUD
    stack = np.stack([image(COAL, list(built * 0.35)), image(list(veil), BUILT)])
    clear = np.ones((2, 1, 2), bool)
    assert veil[4] >= 0.12  # SWIR1 over the rule's ceiling: it would refute if it counted
    reference = image(COAL, BUILT)  # the season's median
    obscured = obscured_looks(stack, clear, reference)
    assert obscured[1, 0, 0]
    assert not obscured[1, 0, 1]
    counted = coal_frequency(stack, clear, obscured=obscured)
    assert counted.flagged[0].tolist() == [1, 1]
    assert counted.refuted is not None
    assert counted.refuted[0].tolist() == [0, 1]
    assert counted.undecided(0.5, 3)[0].tolist() == [True, False]
    # Unjudged (no season median), the veil refutes: the pile would leave the undecided area.
    assert not coal_frequency(stack, clear).undecided(0.5, 3)[0, 0]


def test_noise_alone_obscures_no_look() -> None:
    """Twelve looks of coal, yard, soil and vegetation with sensor noise of 0.006 per band:
    the tests take practically no clear look of unchanged ground for a veil or a shade."""
    rng = np.random.default_rng(11)
    spectra = [COAL, BUILT, SOIL, VEGETATION, SHADOWED_VEG]
    ground = np.repeat(np.repeat(image(*spectra), 200, axis=1)[None], 12, axis=0)
    stack = (ground + rng.normal(0, 0.006, ground.shape)).astype(np.float32)
    clear = np.ones((12, 200, len(spectra)), bool)
    obscured = obscured_looks(stack, clear, median_composite(stack, clear).reflectance)
    assert obscured.mean() < 0.001


def test_coal_seen_once_joins_a_confirmed_pile_only_near_it() -> None:
    # A pile confirmed in 4 looks (columns 0-4); clouds leave the 20 columns east of it one clear
    # look, in which an unflagged cloud shadow darkens the yard there to coal's level.
    flagged = np.zeros((5, 25), np.int16)
    flagged[:, :5] = 4
    flagged[:, 5:] = 1
    clear = np.where(flagged == 4, 4, 1).astype(np.int16)
    freq = CoalFrequency((flagged / clear).astype(np.float32), flagged, clear)
    near = freq.mask(0.5, 3, seen_once_reach_px=3)
    assert near[:, :8].all()  # the pile, and its part seen once up to 3 px beyond it
    assert not near[:, 8:].any()  # not the shadowed yard beyond
    assert freq.mask(0.5, 3, seen_once_reach_px=30).all()  # an unbounded reach takes it all
    assert freq.mask(0.5, 3, seen_once_reach_px=0).sum() == 25  # 0: confirmed coal alone


def test_a_pin_hole_does_not_make_a_pile_thin() -> None:
    # A pile counted on a coarse sensor (30 m on a 10 m grid) where noise cost the count one
    # pixel: every 3 x 3 square of the 5 x 5 pile holds the hole, so an opening drops the pile.
    mask = np.zeros((20, 40), bool)
    mask[2:7, 2:7] = True
    mask[4, 4] = False  # the pin-hole
    mask[2:6, 12:17] = True  # and a 4 x 5 pile with a hole of two pixels
    mask[3:5, 14] = False
    mask[10, 2:30] = True  # a road, one pixel wide
    mask[12:17, 20:25] = True  # a 5 x 5 field inside a one-pixel track: a hole of 9
    mask[13:16, 21:24] = False
    mask[12, 30:38] = mask[13, 30:38] = True  # a ship two pixels wide, a notch in its deck
    mask[12, 33] = False
    kept = drop_thin_regions(mask, 1, pin_holes=True)
    assert kept[2:7, 2:7].sum() == 24
    assert kept[2:6, 12:17].sum() == 18
    assert not kept[10].any()  # the road
    assert not kept[12:17, 20:25].any()  # the track around the field: the hole is no pin-hole
    assert not kept[12:14, 30:38].any()  # the ship
    assert not (kept & ~mask).any()  # a hole is not filled in the result
    assert (drop_thin_regions(mask, 0, pin_holes=True) == mask).all()
    # Elsewhere (a slope's shadow, a drained bed, regrown ground) the holes count: no pile.
    assert not drop_thin_regions(mask, 1)[2:7, 2:7].any()


def test_scl_mask_keeps_dark_classes_and_dilates_clouds() -> None:
    scl = np.full((11, 11), 5, np.uint8)
    scl[0, 0], scl[0, 1], scl[0, 2] = 2, 3, 6  # dark area, shadow, water stay clear
    scl[5, 5] = 9
    clear = clear_from_scl(scl, masked=(0, 1, 8, 9, 10, 11), dilated=(8, 9, 10), dilation_px=2)
    assert clear[0, 0]
    assert clear[0, 1]
    assert clear[0, 2]
    assert not clear[5, 5]
    assert not clear[5, 7]
    assert not clear[7, 5]
    assert clear[5, 8]
    assert not clear[4, 4]
    assert clear[3, 3]


def test_composite_median_and_count() -> None:
    stack = np.stack([np.full((6, 2, 2), v, np.float32) for v in (0.1, 0.2, 0.9)])
    clear = np.ones((3, 2, 2), bool)
    clear[2, 0, 0] = False  # the bright (cloud) value is masked at one pixel
    clear[:, 1, 1] = False
    c = median_composite(stack, clear)
    assert c.reflectance[0, 0, 0] == pytest.approx(0.15)
    assert c.reflectance[0, 0, 1] == pytest.approx(0.2)
    assert np.isnan(c.reflectance[:, 1, 1]).all()
    assert c.clear_count.tolist() == [[2, 3], [3, 0]]
    with pytest.raises(InsufficientDataError):
        median_composite(stack[:0], clear[:0])


frames = hnp.arrays(np.float32, (6, 5, 4), elements=st.floats(0, 1, width=32))


@HYP
@given(frames, st.integers(1, 5))
def test_composite_of_identical_frames_is_the_frame(frame: np.ndarray, n: int) -> None:
    stack = np.repeat(frame[None], n, axis=0)
    c = median_composite(stack, np.ones((n, 5, 4), bool))
    np.testing.assert_array_equal(c.reflectance, frame)
    assert (c.mad == 0).all()
    assert (c.clear_count == n).all()


masks = hnp.arrays(np.bool_, st.tuples(st.integers(1, 20), st.integers(1, 20)))


@HYP
@given(masks, st.integers(0, 2))
def test_change_of_a_mask_with_itself_is_empty(m: np.ndarray, opening: int) -> None:
    c = mask_change(m, m, opening_px=opening)
    assert not c.added.any()
    assert not c.removed.any()


@HYP
@given(frames)
def test_spectral_change_of_image_with_itself_is_empty(frame: np.ndarray) -> None:
    for standardize in (False, True):
        assert not spectral_change(frame, frame, standardize=standardize).changed.any()


@HYP
@given(masks, masks)
def test_added_and_removed_are_disjoint_subsets(a: np.ndarray, b: np.ndarray) -> None:
    b = np.resize(b, a.shape)
    c = mask_change(a, b, opening_px=0)
    assert not (c.added & c.removed).any()
    assert (c.added <= b).all()
    assert (c.removed <= a).all()
    assert c.added.sum() >= 0
    assert c.removed.sum() >= 0


def test_one_pixel_shift_is_not_expansion() -> None:
    before = np.zeros((40, 40), bool)
    before[10:30, 10:30] = True
    after = np.roll(before, 1, axis=1)  # misregistration by one pixel
    assert not mask_change(before, after, opening_px=1).added.any()
    grown = before.copy()
    grown[10:30, 30:36] = True  # a real 6-pixel-wide extension
    assert mask_change(before, grown, opening_px=1).added.sum() == 20 * 6


def test_spectral_change_finds_a_changed_block() -> None:
    rng = np.random.default_rng(0)
    a = (0.1 + rng.normal(0, 0.005, (6, 50, 50))).astype(np.float32)
    b = (a + rng.normal(0, 0.005, a.shape)).astype(np.float32)
    b[:, 20:30, 20:30] += 0.15
    got = spectral_change(a, b, min_magnitude=3.0, standardize=True).changed
    truth = np.zeros((50, 50), bool)
    truth[20:30, 20:30] = True
    assert (got == truth).mean() > 0.995


@HYP
@given(
    hnp.arrays(
        np.float32, (7, 3, 4), elements=st.one_of(st.just(np.nan), st.floats(0, 1, width=32))
    ),
    st.sampled_from([0.0, 10.0, 50.0, 90.0, 100.0]),
)
def test_nan_percentile_matches_numpy(data: np.ndarray, q: float) -> None:
    import warnings

    from pipeline.composite import nan_percentile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanpercentile(data.astype(np.float64), q, axis=0)
    np.testing.assert_allclose(nan_percentile(data, q), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("function", "rule"),
    [
        ("footprint_mask", "FootprintRule"),
        ("coal_observation", "CoalRule"),
        ("greenness", "FootprintRule"),
        ("crop_signs", "FootprintRule"),
        ("is_green", "FootprintRule"),
    ],
)
def test_stage_defaults_match_config_defaults(function: str, rule: str) -> None:
    """A notebook calling a stage with its defaults gets what a default run does."""
    import inspect

    from pipeline import classify, config

    model = getattr(config, rule)
    aliases = {"percentile": "green_percentile"}
    for name, param in inspect.signature(getattr(classify, function)).parameters.items():
        field = aliases.get(name, name)
        if param.default is inspect.Parameter.empty or field not in model.model_fields:
            continue
        assert param.default == model.model_fields[field].default, (function, name)


def test_rim_unmixing_restores_half_covered_pixels() -> None:
    from pipeline.classify import grow_mixed_edges

    core = np.zeros((20, 20), bool)
    core[8:12, 8:12] = True
    img = np.full((6, 20, 20), 0.3, np.float32)  # bright ground
    img[:, 8:12, 8:12] = 0.05  # dark pile
    img[:, 8:12, 12] = 0.3 - 0.6 * 0.25  # 60 % pile: kept
    img[:, 8:12, 7] = 0.3 - 0.4 * 0.25  # 40 % pile: not kept
    grown = grow_mixed_edges(core, img)
    assert grown[8:12, 12].all()
    assert not grown[8:12, 7].any()
    assert (grown[8:12, 8:12]).all()
    assert grown.sum() == 16 + 4


def _rim_fractions_whole_array(
    core: np.ndarray,
    reflectance: np.ndarray,
    ring_px: int,
    guard_px: int,
    window_px: int,
    nearest_background: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The definition ``classify._rim_fractions`` keeps bit for bit, on whole (band, y, x)
    arrays as it was first written: it now sums the band terms one band at a time."""
    square = np.ones((3, 3), bool)
    finite = np.isfinite(reflectance).all(axis=0)
    near = ndimage.binary_dilation(core, structure=square, iterations=max(ring_px, 1))
    far = ~near
    if guard_px > 0:
        far = ~ndimage.binary_dilation(near, structure=square, iterations=guard_px)
    ring = near & ~core & finite
    window = window_px + 2 * (max(ring_px, 1) - 1 + guard_px)

    def local_mean(mask: np.ndarray) -> np.ndarray:
        weight = ndimage.uniform_filter(mask.astype(np.float64), window)
        out = np.empty(reflectance.shape, np.float64)
        for b, band in enumerate(reflectance):
            total = ndimage.uniform_filter(np.where(mask, band, 0.0).astype(np.float64), window)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[b] = np.where(weight > 1e-9, total / np.maximum(weight, 1e-12), np.nan)
        return out

    if not ring.any():
        return ring, np.full(core.shape, np.nan)
    level, background = local_mean(core & finite), local_mean(far & finite)
    missing = np.isnan(background).any(axis=0)
    if nearest_background and missing.any() and not missing.all():
        nearest = ndimage.distance_transform_edt(
            missing, return_distances=False, return_indices=True
        )
        background = background[:, nearest[0], nearest[1]]
    contrast = level - background
    norm = np.sum(contrast * contrast, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.sum((reflectance - background) * contrast, axis=0) / norm
    return ring, np.where(norm > 1e-6, fraction, np.nan)


@pytest.mark.parametrize("seed", range(12))
def test_rim_fractions_band_by_band_keep_the_whole_array_definition(seed: int) -> None:
    from pipeline.classify import _rim_fractions

    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(20, 120, 2))
    reflectance = (rng.random((6, h, w)) * 0.3).astype(np.float32)
    reflectance[:, rng.random((h, w)) < 0.05] = np.nan
    blocks = rng.random((h // 6 + 1, w // 6 + 1)) < rng.uniform(0.2, 0.5)
    core = np.kron(blocks, np.ones((6, 6), bool))[:h, :w]  # piles of 6 px blocks
    options = {
        "ring_px": int(rng.integers(1, 4)), "guard_px": int(rng.integers(0, 3)),
        "window_px": int(rng.choice([3, 7, 9])), "nearest_background": bool(seed % 2),
    }  # fmt: skip
    ring, fraction = _rim_fractions(core, reflectance, **options)
    want_ring, want_fraction = _rim_fractions_whole_array(core, reflectance, **options)
    assert np.array_equal(ring, want_ring)
    assert np.isfinite(fraction[ring]).any()
    assert np.array_equal(fraction, want_fraction, equal_nan=True)


# --- analysis: areas with internal-edge uncertainty, net change between two years ------------

GRID = Grid("EPSG:32652", Affine(10.0, 0.0, 300_000.0, 0.0, -10.0, 4_400_000.0), 200, 160)


def _site_year(year: int, footprint: np.ndarray, coal: np.ndarray | None = None) -> SiteYear:
    """A seen site-year on ``GRID`` with the given masks, every pixel valid."""
    shape = footprint.shape
    coal = np.zeros(shape, bool) if coal is None else coal
    return SiteYear(
        site_id="t",
        year=year,
        window=(f"{year}-09-01", f"{year}-11-15"),
        widened=False,
        scenes=(),
        composite=Composite(
            np.zeros((6, *shape), np.float32),
            np.full(shape, 6, np.int16),
            np.zeros((6, *shape), np.float32),
        ),
        coal=CoalFrequency(
            coal.astype(np.float32), coal.astype(np.int16) * 6, np.full(shape, 6, np.int16)
        ),
        footprint=footprint | coal,
        coal_mask=coal,
        valid=np.ones(shape, bool),
        median_clear=6.0,
        coverage=1.0,
    )


def _camp() -> np.ndarray:
    """A 100 ha square (1 km at 10 m) well inside the 2 x 1.6 km grid."""
    camp = np.zeros(GRID.shape, bool)
    camp[30:130, 30:130] = True
    return camp


def _metrics(sy: SiteYear) -> YearMetrics:
    return YearMetrics(sy.year, 0.0, 0.0, 0.0, 0.0, (), ())


def test_year_change_reports_a_camp_extension_as_significant_expansion() -> None:
    before = _site_year(2020, _camp())
    grown = _camp()
    grown[60:70, 130:140] = True  # 1 ha block on the east side
    c = year_change(
        before, _site_year(2021, grown), _metrics(before), GRID, 25, change_opening_px=1, sectors=16
    )
    assert (c.added_ha, c.removed_ha, c.net_ha) == pytest.approx((1.0, 0.0, 1.0))
    # Unchanged boundary cancels: sqrt(0.2^2 + (1.96 * 100 m2 * sqrt(390 / 6) / 1e4)^2) ha.
    assert c.net_pm_ha == pytest.approx(math.hypot(0.2, Z95 * 100 * math.sqrt(390 / 6) / 1e4))
    assert c.added_pm_ha == pytest.approx(0.2)  # the 1 ha block's 40 edges
    assert c.removed_pm_ha == 0.0
    assert c.significant
    assert c.kind == "expansion"
    # The rule before (two years' errors independent, every edge counted) missed it: each year
    # carried +/-2 ha, so 1 ha of growth of a 100 ha camp could never count.
    se = se_from_half_width(2.0)
    assert not significant_change(100.0, se, 101.0, se)


def test_year_change_misregistration_and_relocation() -> None:
    before = _site_year(2020, _camp())
    shifted = year_change(
        before, _site_year(2021, np.roll(_camp(), 1, axis=1)), _metrics(before), GRID, 25, 1, 16
    )
    assert shifted.net_ha == 0.0
    assert (shifted.added_ha, shifted.removed_ha) == (0.0, 0.0)  # slivers opened away
    assert not shifted.significant
    assert shifted.kind == "no significant change"

    annex_before, annex_after = _camp(), _camp()
    annex_before[30:50, 130:150] = True  # a 4 ha annex...
    annex_after[50:70, 130:150] = True  # ...moved 200 m south
    a = _site_year(2020, annex_before)
    moved = year_change(a, _site_year(2021, annex_after), _metrics(a), GRID, 25, 1, 16)
    assert moved.net_ha == 0.0
    assert not moved.significant
    assert (moved.added_ha, moved.removed_ha) == pytest.approx((4.0, 4.0))
    assert moved.kind == "relocation"


def test_year_change_counts_only_pixels_seen_in_both_years() -> None:
    a = _site_year(2020, _camp())
    grown = _camp()
    grown[30:130, 130:160] = True  # 3 ha of growth...
    b = replace(
        _site_year(2021, grown), valid=np.broadcast_to(np.arange(GRID.width) < 130, GRID.shape)
    )
    c = year_change(a, b, _metrics(a), GRID, 25, 1, 16)  # ...hidden where 2021 saw nothing
    assert c.net_ha == 0.0
    assert c.net_pm_ha == pytest.approx(
        net_change(a.footprint, b.footprint, b.valid, 10.0).net_pm_ha
    )
    assert c.kind == "no significant change"


def test_year_change_coal_net_change() -> None:
    camp = _camp()
    pile = np.zeros(GRID.shape, bool)
    pile[60:80, 60:80] = True  # 4 ha
    bigger = np.zeros(GRID.shape, bool)
    bigger[60:80, 60:90] = True  # 6 ha
    a = _site_year(2020, camp, pile)
    c = year_change(a, _site_year(2021, camp, bigger), _metrics(a), GRID, 25, 1, 16)
    assert c.coal_net_ha == pytest.approx(2.0)
    expected = net_change(pile, bigger, np.ones(GRID.shape, bool), 10.0)
    assert c.coal_net_pm_ha == pytest.approx(expected.net_pm_ha)
    assert c.coal_added_ha == pytest.approx(2.0)
    assert c.net_ha == 0.0  # the footprint (coal included) did not move


def test_analyse_site_areas_count_internal_edges_only() -> None:
    """A footprint cut by the edge of what was seen is not uncertain along the cut."""
    site = Site("t", "t", "kwanliso", box(127.0, 39.0, 127.02, 39.016), "test")
    grid = site.grid(10.0, 0.0)
    camp = np.zeros(grid.shape, bool)
    camp[20:60, 20:60] = True  # 16 ha: 160 edges
    seen = np.ones(grid.shape, bool)
    seen[:, 40:] = False  # the east half unseen (cloud): the camp is cut at column 40
    years = [replace(_site_year(y, camp & seen), valid=seen) for y in (2019, 2020, 2021)]
    grown = camp.copy()
    grown[20:60, 10:20] = True  # 4 ha west, in the seen part
    years[2] = replace(_site_year(2021, grown & seen), valid=seen)
    a = analyse_site(site, grid, years, buffer_m=0.0, min_mapping_unit_ha=0.25, change_opening_px=1)
    m = a.metrics[0]
    assert m.footprint_ha == pytest.approx(8.0)
    # 40 + 20 + 20 internal edges (west, north, south); the 40 along the cut do not count.
    assert m.footprint_pm_ha == pytest.approx(0.5 * 10 * 80 * 10 / 1e4)
    assert m.coal_pm_ha == 0.0
    assert [(c.year_from, c.year_to) for c in a.changes] == [
        (2019, 2020), (2020, 2021), (2019, 2021)
    ]  # fmt: skip
    first_last = a.changes[-1]
    assert first_last.net_ha == pytest.approx(4.0)
    assert first_last.significant
    assert first_last.kind == "expansion"
    assert not a.changes[0].significant
    assert a.changes[0].kind == "no significant change"


@pytest.mark.parametrize(
    ("platforms", "grid_m", "bands", "expected"),
    [
        (["sentinel-2a", "sentinel-2b"], 10.0, ("red", "nir"), 1),
        (["sentinel-2a"], 10.0, BANDS, 2),  # the 20 m SWIR bands
        (["landsat-8"], 10.0, ("red", "nir"), 3),
        (["landsat-9", "sentinel-2a"], 10.0, ("red", "nir"), 3),  # the coarsest sensor's
        (["landsat-8"], 30.0, BANDS, 1),
        (["unknown-sat"], 10.0, BANDS, 1),
        ([], 10.0, BANDS, 1),
    ],
)
def test_rim_px_follows_the_coarsest_band(
    platforms: list[str], grid_m: float, bands: tuple[str, ...], expected: int
) -> None:
    assert rim_px(platforms, grid_m, bands) == expected


def test_mixed_rim_of_a_30m_pile_on_a_10m_grid_is_restored() -> None:
    """A 2.3 ha pile on yard, seen at 30 m (block means) and resampled to 10 m: the pure 30 m
    pixels alone (the coal rule's core) undercount the pile; unmixing a 3-pixel rim restores
    its area, where a 1-pixel rim cannot reach the outer mixed pixels."""
    rng = np.random.default_rng(0)
    truth = np.zeros((60, 60), bool)
    truth[13:29, 14:28] = True  # off the 30 m block grid: every edge block is mixed
    truth[29:35, 18:25] = True
    fine = np.where(truth[None], np.array(COAL)[:, None, None], np.array(SOIL)[:, None, None])
    coarse = fine.reshape(6, 20, 3, 20, 3).mean(axis=(2, 4))
    seen = np.repeat(np.repeat(coarse, 3, axis=1), 3, axis=2).astype(np.float32)
    seen += rng.normal(0, 0.004, seen.shape).astype(np.float32)
    core = coal_observation(seen)
    assert 0.3 < core.sum() / truth.sum() < 0.8  # the case is real: the core undercounts
    one = grow_mixed_edges(core, seen, ring_px=1)
    three = grow_mixed_edges(core, seen, ring_px=3)
    assert abs(three.sum() / truth.sum() - 1.0) < 0.12
    assert abs(three.sum() / truth.sum() - 1.0) < abs(one.sum() / truth.sum() - 1.0) - 0.1
    assert (three & ~truth).sum() < 0.15 * truth.sum()  # grown onto the pile, not the yard


def _landsat_seen(truth_fine: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a 10 m grid reads of a scene drawn at 2.5 m (``truth_fine``: coal on soil): 30 m
    block means (Landsat's pixel) read bilinearly onto the 10 m grid, as ``sources.read`` reads
    a Landsat asset, with 0.004 reflectance of noise."""
    from rasterio.warp import Resampling, reproject

    h, w = truth_fine.shape[0] // 12, truth_fine.shape[1] // 12
    fine = np.where(truth_fine[None], np.array(COAL)[:, None, None], np.array(SOIL)[:, None, None])
    coarse = fine.reshape(6, h, 12, w, 12).mean(axis=(2, 4)).astype(np.float32)
    seen = np.empty((6, 3 * h, 3 * w), np.float32)
    reproject(
        coarse,
        seen,
        src_transform=Affine(30.0, 0, 0, 0, -30.0, 0),
        dst_transform=Affine(10.0, 0, 0, 0, -10.0, 0),
        src_crs="EPSG:32652",
        dst_crs="EPSG:32652",
        resampling=Resampling.bilinear,
    )
    return seen + rng.normal(0, 0.004, seen.shape).astype(np.float32)


def _piles(centres_m: list[tuple[float, float, float]], size_px: int) -> np.ndarray:
    """Elliptic piles (centre x, centre y, area in ha; 1.6:1) drawn at 2.5 m on a
    ``size_px`` x ``size_px`` 10 m grid."""
    yy, xx = (np.mgrid[0 : 4 * size_px, 0 : 4 * size_px] + 0.5) * 2.5
    out = np.zeros(yy.shape, bool)
    for cx, cy, ha in centres_m:
        b = math.sqrt(ha * 1e4 / (math.pi * 1.6))
        out |= ((xx - cx) / (1.6 * b)) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
    return out


def _three_piles(rng: np.random.Generator, ha: tuple[float, float]) -> np.ndarray:
    """Three piles of ``ha`` (min, max) hectares, well apart, at random offsets."""
    return _piles(
        [
            (300 + rng.uniform(0, 30), 300 + rng.uniform(0, 30), rng.uniform(*ha)),
            (700 + rng.uniform(0, 30), 330 + rng.uniform(0, 30), rng.uniform(*ha)),
            (500 + rng.uniform(0, 30), 700 + rng.uniform(0, 30), rng.uniform(*ha)),
        ],
        108,
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_pile_blurred_by_landsat_keeps_its_area(seed: int) -> None:
    """Piles of 0.5-1.2 ha seen by Landsat on a 10 m grid, where the coal rule passes on less
    than two thirds of them: the area rule maps each pile's unmixed area, and no pile joins
    another or is lost."""
    rng = np.random.default_rng(seed)
    fine = _three_piles(rng, (0.5, 1.2))
    seen = _landsat_seen(fine, rng)
    core = coal_observation(seen)
    area = grow_to_unmixed_area(core, seen, rim_px=3)
    truth_px = fine.sum() / 16
    assert core.sum() < 0.65 * truth_px  # the case is real: the rule alone misses the rim
    assert abs(area.sum() / truth_px - 1.0) < 0.10
    _, n = ndimage.label(area)
    assert n == 3


def test_small_blurred_piles_keep_their_area_where_the_pixel_centre_rule_loses_it() -> None:
    """Piles of 0.25-0.5 ha under Landsat's blur: the half-coal outline of a convex pile
    shrinks by about sigma^2 / 2R, so the pixel-centre rule (``grow_mixed_edges``) loses
    a tenth of their area, every Landsat year alike; the area rule keeps it."""
    truth_px = majority = area = 0.0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        fine = _three_piles(rng, (0.25, 0.5))
        seen = _landsat_seen(fine, rng)
        core = coal_observation(seen)
        truth_px += fine.sum() / 16
        majority += grow_mixed_edges(core, seen, ring_px=3).sum()
        area += grow_to_unmixed_area(core, seen, rim_px=3).sum()
    assert majority / truth_px < 0.92
    assert abs(area / truth_px - 1.0) < 0.10


def test_close_piles_keep_their_area_between_them() -> None:
    """Two piles 40 m apart leave no background pixel between them within the unmixing window:
    the nearest background stands in, and the two keep their summed area."""
    rng = np.random.default_rng(5)
    fine = _piles([(400, 540, 0.9), (400 + 2 * 48 + 40, 540, 0.9)], 108)
    seen = _landsat_seen(fine, rng)
    area = grow_to_unmixed_area(coal_observation(seen), seen, rim_px=3)
    assert abs(area.sum() / (fine.sum() / 16) - 1.0) < 0.08


def test_a_sharp_pile_is_not_grown_past_its_edge() -> None:
    """On a 10 m image of a 10 m pile (no blur beyond the pixel) the area rule adds the mixed
    edge pixels and no more: the rim's shares sum to the part of the pile outside the core."""
    rng = np.random.default_rng(7)
    fine = _piles([(300, 300, 0.8), (700, 600, 1.1)], 100)
    sharp = np.where(fine[None], np.array(COAL)[:, None, None], np.array(SOIL)[:, None, None])
    seen = sharp.reshape(6, 100, 4, 100, 4).mean(axis=(2, 4)).astype(np.float32)
    seen += rng.normal(0, 0.004, seen.shape).astype(np.float32)
    truth = fine.reshape(100, 4, 100, 4).mean(axis=(1, 3)) >= 0.5
    area = grow_to_unmixed_area(coal_observation(seen), seen, rim_px=1)
    assert abs(area.sum() / truth.sum() - 1.0) < 0.05
    assert (area & ~truth).sum() <= 0.06 * truth.sum()
