"""Known-answer and invariant tests of the pure stages: indices, masking, composite, classify,
change."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline import indices
from pipeline.change import mask_change, spectral_change
from pipeline.classify import coal_frequency, coal_observation, footprint_mask
from pipeline.composite import median_composite
from pipeline.errors import InsufficientDataError
from pipeline.masking import clear_from_scl

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
