"""Sub-pixel registration of a season's looks (pipeline/look_registration.py), on real arrays:
a textured ground seen by looks shifted by known sub-pixel amounts."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from numpy.typing import NDArray
from scipy import ndimage

from pipeline.chunks import halo_px
from pipeline.classify import RELIGHT_REACH_PX
from pipeline.coregister import shift_array
from pipeline.grid import Grid
from pipeline.look_registration import (
    LookRegistrationParams,
    register_looks,
    resample,
    resample_look,
)
from pipeline.masking import MaskRules
from pipeline.recipe import RecipeParams
from pipeline.results import SceneRecord

SHAPE = (96, 96)
PARAMS = LookRegistrationParams(band=0)


def ground(seed: int = 3) -> NDArray[np.float64]:
    """A ground with texture at a few pixels' scale and a bright block (a yard)."""
    rng = np.random.default_rng(seed)
    g = ndimage.gaussian_filter(rng.standard_normal((160, 160)), 1.5)
    g = g / g.std() * 0.02 + 0.1
    g[60:90, 50:100] += 0.15
    return g


def look(g: NDArray[np.float64], shift: tuple[float, float], seed: int) -> NDArray[np.float32]:
    """``g`` seen shifted by ``shift`` px (rows, cols; cubic spline), cut to ``SHAPE``, with
    sensor noise."""
    moved = ndimage.shift(g, shift, order=3, mode="nearest")[32:128, 32:128]
    noise = np.random.default_rng(seed).normal(0.0, 0.002, SHAPE)
    return (moved + noise).astype(np.float32)


def series(shifts: list[tuple[float, float]]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    g = ground()
    band = np.stack([look(g, s, seed) for seed, s in enumerate(shifts)])
    return band, np.ones(band.shape, bool)


def test_a_look_shifted_by_a_sub_pixel_amount_is_placed_within_a_tenth_of_a_pixel() -> None:
    true = (0.4, -0.3)
    band, clear = series([(0.0, 0.0)] * 7 + [true])
    found = register_looks(band, clear, range(8), PARAMS)
    assert all(f.shift is not None for f in found)
    others = np.mean([f.shift for f in found[:7]], axis=0)
    # The shift registers the look: it moves it back by what it was moved.
    relative = np.asarray(found[7].shift) - others
    assert np.abs(relative - (-true[0], -true[1])).max() < 0.1
    assert found[7].moved
    assert not any(f.moved for f in found[:7])  # a few hundredths off the mean: left alone
    moved, _ = resample_look(band[7][None], clear[7], found[7].shift)
    inner = (slice(4, -4), slice(4, -4))
    noise = np.abs(band[1] - band[0])[inner].mean()  # two looks of the same ground
    before = np.abs(band[7] - band[0])[inner].mean()
    after = np.abs(moved[0] - band[0])[inner].mean()
    assert before > 2.0 * noise
    assert after < 1.5 * noise


def test_the_frame_is_the_looks_mean_position() -> None:
    band, clear = series([(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 1.0), (0.0, 1.0)])
    found = register_looks(band, clear, range(5), PARAMS)
    cols = [f.shift[1] for f in found if f.shift is not None]
    assert len(cols) == 5
    # Mean position 0.4 px: the unshifted looks move 0.4 right, the others 0.6 left.
    assert cols[:3] == pytest.approx([0.4] * 3, abs=0.1)
    assert cols[3:] == pytest.approx([-0.6] * 2, abs=0.1)


def test_a_look_of_noise_is_not_moved() -> None:
    band, clear = series([(0.0, 0.0)] * 5)
    band[2] = np.random.default_rng(9).normal(0.1, 0.02, SHAPE).astype(np.float32)
    found = register_looks(band, clear, range(5), PARAMS)
    assert not found[2].moved
    assert found[2].shift is None


def test_a_flat_look_is_not_moved() -> None:
    band, clear = series([(0.0, 0.0)] * 4 + [(0.5, 0.5)])
    band[4] = 0.12
    found = register_looks(band, clear, range(5), PARAMS)
    assert found[4].shift is None
    assert not found[4].moved


def test_a_cloudy_look_with_few_clear_pixels_is_not_moved() -> None:
    band, clear = series([(0.0, 0.0)] * 4 + [(0.6, -0.6)])
    clear[4] = False
    clear[4, 30:70, 30:70] = True  # 1600 px < min_overlap_px
    found = register_looks(band, clear, range(5), PARAMS)
    assert found[4].shift is None
    assert not found[4].moved
    clear[4, 10:90, 10:90] = True  # 6400 px: placed
    found = register_looks(band, clear, range(5), PARAMS)
    assert found[4].moved


def test_a_season_of_one_look_has_no_consensus() -> None:
    band, clear = series([(0.0, 0.0), (0.7, 0.0)])
    found = register_looks(band, clear, [1], PARAMS)
    assert all(f.shift is None and not f.moved for f in found)


def test_resample_is_bilinear_and_whole_shifts_are_exact() -> None:
    ramp = np.tile(np.arange(10, dtype=np.float32), (6, 1))  # value = column
    out = resample(ramp, (0.0, 0.25))
    assert np.isnan(out[:, 0]).all()  # reaches outside the array
    np.testing.assert_allclose(out[:, 1:], ramp[:, 1:] - 0.25, atol=1e-6)
    np.testing.assert_array_equal(resample(ramp, (1.0, -2.0)), shift_array(ramp, (1, -2), np.nan))


def test_resample_of_a_window_equals_the_window_of_the_whole() -> None:
    a = np.random.default_rng(1).random((3, 40, 50)).astype(np.float32)
    shift = (0.37, -1.62)
    whole = resample(a, shift)
    part = resample(a[:, 5:30, 8:45], shift)
    np.testing.assert_array_equal(part[:, 3:-3, 3:-3], whole[:, 8:27, 11:42])


def test_resample_look_keeps_masked_pixels_out_and_moves_the_mask_by_the_nearest_pixel() -> None:
    reflectance = np.full((2, 12, 12), 0.1, np.float32)
    clear = np.ones((12, 12), bool)
    reflectance[:, 6, 6] = 0.9  # a cloud
    clear[6, 6] = False
    moved, moved_clear = resample_look(reflectance, clear, (0.4, 1.3))
    finite = np.isfinite(moved).all(axis=0)
    np.testing.assert_array_equal(moved_clear, finite & shift_array(clear, (0, 1), False))
    assert np.nanmax(moved) == pytest.approx(0.1)  # the cloud bled into no clear pixel
    assert not moved_clear[6:8, 7:9].any()  # the pixels that reach the cloud


def test_the_record_keeps_the_shift_through_json() -> None:
    record = SceneRecord("S2A_X", "2021-10-01T00:00:00", registered_px=(0.35, -0.2))
    loaded = SceneRecord(**json.loads(json.dumps(asdict(record))))
    assert loaded == record
    assert loaded.registered_px == (0.35, -0.2)


def test_a_chunk_reads_the_registration_reach_around_it() -> None:
    grid = Grid("EPSG:32652", Affine(10, 0, 500000, 0, -10, 4200000), 200, 200)
    rules = MaskRules(cloud_dilation_m=30.0, cloud_heights_m=None)
    assert halo_px(rules, grid, RecipeParams(registration=None)) == 4
    assert halo_px(rules, grid, RecipeParams()) == 3 + 3 + 1  # dilation, reach, greenness
    shadows = MaskRules(cloud_dilation_m=30.0)  # the light under matched shadows reaches further
    assert halo_px(shadows, grid, RecipeParams()) == 3 + 3 + RELIGHT_REACH_PX


@pytest.mark.parametrize("city", ["bordeaux", "hongkong", "mumbai", "nantes"])
def test_real_sentinel2_looks_of_one_place_are_left_as_read(real_data: Path, city: str) -> None:
    """Two real Sentinel-2 looks of one city (OSCD, years apart, with construction between
    them) lie well under min_shift_px apart: matched, placed, neither moved."""
    looks = []
    for folder in ("imgs_1", "imgs_2"):
        (path,) = (real_data / "oscd-dev" / city / folder).glob("*B04.tif")
        with rasterio.open(path) as ds:
            looks.append(ds.read(1).astype(np.float32) / 10000.0)
    h, w = min(a.shape[0] for a in looks), min(a.shape[1] for a in looks)
    band = np.stack([a[:h, :w] for a in looks])
    found = register_looks(band, band > 0, [0, 1], PARAMS)
    assert all(f.shift is not None for f in found)
    assert not any(f.moved for f in found)
