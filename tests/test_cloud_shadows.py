"""Cloud shadows matched to the clouds that cast them (``masking.match_cloud_shadows``): the
mask's shadow class is found where a cloud of the scene casts it at one height, within the site
or beyond it, and left clear elsewhere (coal piles that Sen2Cor and Fmask also call shadow);
the coal count takes the found shadows relit (``classify.relit``) or leaves them out
(``recipe.season_products``)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from pydantic import ValidationError

from pipeline.classify import relit
from pipeline.config import MaskingConfig
from pipeline.grid import Grid
from pipeline.masking import (
    QA_PIXEL_CLOUD_SHADOW,
    SCL_CLOUD_SHADOW,
    SHADOW_MARGIN_M,
    MaskReason,
    match_cloud_shadows,
    shadow_evidence,
    shadow_step,
)
from pipeline.recipe import RecipeParams, season_products
from pipeline.sources.base import Asset, Scene, sun_angles
from pipeline.sources.read import read_scene

PIXEL_M = 60.0


def cast(clouds: np.ndarray, height_m: float, elevation: float, azimuth: float) -> np.ndarray:
    """Where ``clouds`` at ``height_m`` cast their shadows, to the nearest pixel."""
    dy, dx = shadow_step(elevation, azimuth, PIXEL_M)
    dr, dc = round(dy * height_m), round(dx * height_m)
    out = np.zeros_like(clouds)
    rows, cols = np.nonzero(clouds)
    r, c = rows + dr, cols + dc
    inside = (r >= 0) & (r < clouds.shape[0]) & (c >= 0) & (c < clouds.shape[1])
    out[r[inside], c[inside]] = True
    return out


def scene(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clouds, their true shadow, a coal pile) on an 80 x 90 grid of 60 m pixels: three
    irregular clouds in the south, a sun low in the south-south-east (shadows fall
    north-north-west), and a pile labelled shadow too, away from the shadows."""
    rng = np.random.default_rng(seed)
    clouds = np.zeros((80, 90), bool)
    for r, c in ((55, 20), (62, 48), (50, 70)):
        h, w = rng.integers(4, 9, size=2)
        clouds[r : r + h, c : c + w] = True
        clouds[r + 1 : r + h + 2, c - 2 : c + 2] = True
    coal = np.zeros_like(clouds)
    coal[8:12, 5:10] = True
    return clouds, cast(clouds, 1800.0, 35.0, 160.0) & ~clouds, coal


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_shadow_of_the_scenes_clouds_is_found_and_the_pile_left_alone(seed: int) -> None:
    clouds, shadow, coal = scene(seed)
    flagged = shadow | coal
    # Sen2Cor's shadow is under-detected at its edges: a third of the true one is unflagged.
    rng = np.random.default_rng(seed + 10)
    flagged &= ~(shadow & (rng.random(shadow.shape) < 0.3))
    match = match_cloud_shadows(clouds, flagged, 35.0, 160.0, PIXEL_M)
    assert match.zone is not None
    assert match.height_m is not None
    step = 1.0 / math.hypot(*shadow_step(35.0, 160.0, PIXEL_M))  # metres of height per pixel
    assert abs(match.height_m - 1800.0) <= step
    masked = match.zone & flagged
    assert np.array_equal(masked, flagged & shadow)  # the whole shadow, nothing else
    assert not (masked & coal).any()


def test_a_pile_labelled_shadow_in_a_clear_scene_stays_clear() -> None:
    _, _, coal = scene(0)
    match = match_cloud_shadows(np.zeros_like(coal), coal, 35.0, 160.0, PIXEL_M)
    assert match.zone is None


def test_flagged_ground_no_cloud_casts_onto_is_not_matched() -> None:
    """Dark ground up-sun of the clouds (where no shadow can fall) and clouds whose shadows
    fall beyond the searched heights leave the flag alone."""
    clouds, shadow, _ = scene(0)
    toward_sun = cast(clouds, 1800.0, 35.0, 340.0) & ~clouds  # the sun's side of the clouds
    assert match_cloud_shadows(clouds, toward_sun, 35.0, 160.0, PIXEL_M).zone is None
    low = match_cloud_shadows(clouds, shadow, 35.0, 160.0, PIXEL_M, heights_m=(3000.0, 9000.0))
    assert low.zone is None
    assert low.share < 0.3


def test_a_sun_too_low_matches_nothing() -> None:
    clouds, shadow, _ = scene(0)
    assert match_cloud_shadows(clouds, shadow, 4.0, 160.0, PIXEL_M).zone is None


def test_shadow_direction_points_away_from_the_sun() -> None:
    dy, dx = shadow_step(45.0, 180.0, 10.0)  # sun due south: shadows fall north (up the rows)
    assert (dy, dx) == pytest.approx((-0.1, 0.0), abs=1e-12)
    dy, dx = shadow_step(45.0, 90.0, 10.0)  # sun in the east: shadows fall west
    assert (dy, dx) == pytest.approx((0.0, -0.1), abs=1e-12)


def test_shadow_evidence_reads_scl_and_qa_pixel() -> None:
    scl = np.array([[8, 9, 10, SCL_CLOUD_SHADOW, 2, 4, 0]], np.uint16)
    found = shadow_evidence(scl, "scl")
    assert found.clouds.tolist() == [[True, True, False, False, False, False, False]]
    assert found.shadow.tolist() == [[False, False, False, True, False, False, False]]
    assert found.seen.tolist() == [[True] * 6 + [False]]  # 0: no data, or outside the raster
    qa = np.array([[1 << 3, 1 << QA_PIXEL_CLOUD_SHADOW, 1 << 1, 1 << 6, 1, 0]], np.uint16)
    found = shadow_evidence(qa, "qa_pixel")
    assert found.clouds.tolist() == [[True, False, False, False, False, False]]
    assert found.shadow.tolist() == [[False, True, False, False, False, False]]
    assert found.seen.tolist() == [[True, True, True, True, False, False]]  # fill, outside


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"view:sun_elevation": 35.5, "view:sun_azimuth": 160.25}, (35.5, 160.25)),
        ({"eo:sun_elevation": 64.45, "eo:sun_azimuth": 118.08}, (64.45, 118.08)),
        ({"s2:mean_solar_zenith": 54.5, "s2:mean_solar_azimuth": 161.0}, (35.5, 161.0)),
        ({"view:sun_elevation": 35.5}, None),
        ({"view:sun_elevation": "35", "view:sun_azimuth": 160.0}, None),
        ({}, None),
    ],
)
def test_sun_angles_from_item_properties(
    properties: dict[str, object], expected: tuple[float, float] | None
) -> None:
    assert sun_angles(properties) == expected


def test_cloud_heights_are_validated() -> None:
    assert MaskingConfig().rules().cloud_heights_m == (200.0, 12_000.0)
    assert MaskingConfig(cloud_shadow_heights_m=None).rules().cloud_heights_m is None
    with pytest.raises(ValidationError, match=r"cloud heights \[5000.0, 300.0\] not allowed"):
        MaskingConfig(cloud_shadow_heights_m=(5000.0, 300.0))


def test_a_yard_in_cloud_shadow_in_every_look_is_not_counted_as_coal() -> None:
    """A concrete yard shaded by clouds in all four looks of its season reads as coal in each
    (dark and flat): counted as coal without the match, left uncounted with it (no look lit,
    and no ground around it both shaded and seen lit to measure the light on, so no relit
    look); a real pile beside it, never shaded, counts either way, and the shaded yard still
    counts as a clear look of the composite."""
    yard = np.array([0.14, 0.15, 0.17, 0.22, 0.27, 0.23], np.float32)  # bare concrete
    pile = np.array([0.045, 0.045, 0.05, 0.055, 0.06, 0.055], np.float32)
    loss = np.array([0.55, 0.62, 0.66, 0.72, 0.75, 0.75], np.float32)  # a full cloud shadow
    rng = np.random.default_rng(3)
    stack = np.empty((4, 6, 12, 20), np.float32)
    for t in range(4):
        stack[t] = yard[:, None, None]
        stack[t, :, :, :10] *= (1.0 - loss)[:, None, None]
        stack[t, :, 2:10, 12:18] = pile[:, None, None]
        stack[t] += rng.normal(0, 0.002, stack[t].shape).astype(np.float32)
    clear = np.ones((4, 12, 20), bool)
    shaded = np.zeros_like(clear)
    shaded[:, :, :10] = True
    days = [date(2023, 9, 5), date(2023, 9, 25), date(2023, 10, 15), date(2023, 11, 5)]
    args = (stack, clear, days, [0, 1, 2, 3], [0, 1, 2, 3], 2023, RecipeParams())
    plain, matched = season_products(*args), season_products(*args, shaded)
    assert (plain.coal.flagged[:, :10] >= 3).all()  # the shaded yard passes for coal
    assert (matched.coal.flagged[:, :10] == 0).all()
    assert (matched.coal.clear[:, :10] == 0).all()
    assert (matched.coal.flagged[2:10, 12:18] == 4).all()  # the pile still counts
    assert (matched.composite.clear_count == 4).all()


def test_unseen_ground_is_not_landing_ground() -> None:
    """Past the edge of the mask's data (a tile's or swath's edge) the shadows cannot be seen:
    a projection landing there neither confirms nor refutes a height. Counted as landing, the
    unseen half of the true shadow drags its share under the threshold."""
    clouds, shadow, _ = scene(0)
    seen = np.ones_like(clouds)
    seen[:, :45] = False  # the western half of the grid has no data
    flagged = shadow & seen
    blind = match_cloud_shadows(clouds & seen, flagged, 35.0, 160.0, PIXEL_M, min_share=0.6)
    sighted = match_cloud_shadows(
        clouds & seen, flagged, 35.0, 160.0, PIXEL_M, seen=seen, min_share=0.6
    )
    assert blind.zone is None
    assert sighted.zone is not None
    assert (sighted.zone & flagged).sum() >= 0.9 * flagged.sum()


def _cog(path: Path, data: np.ndarray, res: float, left: float, top: float) -> Asset:
    transform = Affine(res, 0, left, 0, -res, top)
    profile = {
        "driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1,
        "dtype": data.dtype.name, "crs": "EPSG:32652", "transform": transform, "nodata": 0,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return Asset(str(path), tuple(transform)[:6], data.shape)


def _site_scene(folder: Path, scl_margin_m: float) -> tuple[Scene, Grid]:
    """A 600 m site under a sun due south, 45 degrees high, with a cloud 1 km high that lies
    south of the site, outside it, and casts its shadow (SCL 3) 1 km north, into it; a coal pile
    labelled shadow too lies in the site, east of the shadow. The SCL reaches ``scl_margin_m``
    past the site."""
    left, top = 500_000.0, 4_400_000.0
    assets = {
        b: _cog(folder / f"{b}.tif", np.full((60, 60), 1500, np.uint16), 10.0, left, top)
        for b in ("blue", "green", "red", "nir")
    }
    for b in ("swir16", "swir22"):
        assets[b] = _cog(folder / f"{b}.tif", np.full((30, 30), 2500, np.uint16), 20.0, left, top)
    n = round((600 + 2 * scl_margin_m) / 20)
    scl = np.full((n, n), 4, np.uint8)
    x0, y0 = left - scl_margin_m, top + scl_margin_m

    def paint(value: int, west: float, east: float, south: float, north: float) -> None:
        rows = slice(max(round((y0 - north) / 20), 0), max(round((y0 - south) / 20), 0))
        cols = slice(max(round((west - x0) / 20), 0), max(round((east - x0) / 20), 0))
        scl[rows, cols] = value

    paint(9, left + 100, left + 400, top - 1600, top - 1200)  # the cloud, south of the site
    paint(3, left + 100, left + 400, top - 600, top - 200)  # its shadow, 1 km north
    paint(3, left + 500, left + 580, top - 560, top - 480)  # a pile labelled shadow
    assets["scl"] = _cog(folder / "scl.tif", scl, 20.0, x0, y0)
    props = {
        "s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True,
        "view:sun_elevation": 45.0, "view:sun_azimuth": 180.0,
    }  # fmt: skip
    when = datetime(2023, 10, 1, tzinfo=UTC)
    site = Grid("EPSG:32652", Affine(10, 0, left, 0, -10, top), 60, 60)
    return Scene("S2X_MARGIN", "sentinel-2-l2a", when, assets, props), site


@pytest.mark.parametrize("margin_m", [0.0, 2000.0])
def test_a_cloud_beyond_the_site_casts_its_shadow_into_it(tmp_path: Path, margin_m: float) -> None:
    """The match reads the mask ``SHADOW_MARGIN_M`` past the site, so the shadow of a cloud
    south of it is found; with a mask that stops at the site's edge, the cloud is unseen and
    its shadow stays clear. The pile labelled shadow stays clear either way."""
    found, site = _site_scene(tmp_path, margin_m)
    reasons = read_scene(found, site).reasons
    shadow, pile = np.zeros(site.shape, bool), np.zeros(site.shape, bool)
    shadow[22:58, 12:38] = True  # well inside the painted shadow (rows 20-60, cols 10-40)
    pile[50:54, 52:56] = True
    assert (reasons[pile] == MaskReason.CLEAR).all()
    if margin_m == 0.0:
        assert not (reasons == MaskReason.CAST_SHADOW).any()
    else:
        assert (reasons[shadow] == MaskReason.CAST_SHADOW).all()
    assert 1000.0 / math.tan(math.radians(45.0)) + 600 < SHADOW_MARGIN_M  # cloud to site's edge


def test_a_pile_shaded_in_every_look_is_seen_in_the_light_measured_around_it() -> None:
    """A pile under a cloud's shadow in all four looks of its season is too dark for the coal
    rule, and the shaded yard around it dark enough to pass for coal. Relit by the light
    measured on the yard where other looks saw it lit (``classify.relit``), the pile counts as
    coal and the yard does not."""
    yard = np.array([0.14, 0.15, 0.17, 0.22, 0.27, 0.23], np.float32)
    pile = np.array([0.045, 0.045, 0.05, 0.055, 0.06, 0.055], np.float32)
    loss = np.array([0.55, 0.62, 0.66, 0.72, 0.75, 0.75], np.float32)  # a full cloud shadow
    rng = np.random.default_rng(5)
    shape = (48, 40)
    rows = np.arange(shape[0])[:, None] * np.ones(shape)
    shaded = np.zeros((4, *shape), bool)
    shaded[:2, :30] = True  # the first two looks' shadow covers the north
    shaded[2:, 14:] = True  # the last two looks' covers the south
    stack = np.empty((4, 6, *shape), np.float32)
    for t in range(4):
        ground = np.broadcast_to(yard[:, None, None], (6, *shape)).copy()
        ground[:, 18:26, 12:28] = pile[:, None, None]
        strength = 0.8 + 0.2 * rows / shape[0]  # thicker toward the south
        light = 1.0 - np.where(shaded[t], strength, 0.0)[None] * loss[:, None, None]
        noise = rng.normal(0, 0.003, ground.shape)
        stack[t] = (ground * light + noise).astype(np.float32)
    clear = np.ones((4, *shape), bool)
    days = [date(2023, 9, 5), date(2023, 9, 25), date(2023, 10, 15), date(2023, 11, 5)]
    args = (stack, clear, days, [0, 1, 2, 3], [0, 1, 2, 3], 2023, RecipeParams())
    coal = season_products(*args, shaded).coal
    counted = coal.mask()
    assert counted[20:24, 14:26].all()  # the pile, shaded in every look
    yard_shaded_always = np.zeros(shape, bool)
    yard_shaded_always[14:30] = True
    yard_shaded_always[18:26, 12:28] = False
    assert not counted[yard_shaded_always].any()
    plain = season_products(*args).coal.mask()
    assert not plain[20:24, 14:26].any()  # unrelit, the shaded pile is too dark
    relit_stack, done = relit(stack, clear, shaded)
    assert done[:, 20:24, 14:26].all()
    np.testing.assert_allclose(
        np.median(relit_stack[:, :, 20:24, 14:26], axis=(0, 2, 3)), pile, atol=0.006
    )
