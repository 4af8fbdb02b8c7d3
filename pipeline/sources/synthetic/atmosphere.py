"""The atmosphere of one scene: clouds, cirrus, displaced cloud shadows, haze, winter snow, swath
edges; how they alter the ground reflectance, and the Sen2Cor-like SCL decided from them.

Hard cases: ``haze_strength`` scales the haze; in ``snow_years`` snow also lies from
``snow_from`` to the end of the year, inside the season window. Their draws come from the
scene's hard-case stream, so the rest of the scene is what it would be without them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import zoom

from pipeline.sources.synthetic.arrays import F32, U8, cover_opacity, smooth_field
from pipeline.sources.synthetic.layout import Surface
from pipeline.sources.synthetic.params import ScenarioParams
from pipeline.sources.synthetic.spectra import CIRRUS, CLOUD, SHADOW_LOSS, SNOW, WAVELENGTH_UM

# Per month: chance of (clear, scattered, broken, overcast) skies. Judgement from the monsoon
# climate (DOMAIN.md): wet July-August, clearest October.
_SKY_BY_MONTH: Mapping[int, tuple[float, float, float, float]] = {
    1: (0.55, 0.25, 0.12, 0.08), 2: (0.55, 0.25, 0.12, 0.08), 3: (0.45, 0.25, 0.15, 0.15),
    4: (0.40, 0.25, 0.15, 0.20), 5: (0.35, 0.25, 0.20, 0.20), 6: (0.20, 0.25, 0.25, 0.30),
    7: (0.10, 0.20, 0.30, 0.40), 8: (0.15, 0.20, 0.30, 0.35), 9: (0.45, 0.25, 0.15, 0.15),
    10: (0.60, 0.20, 0.10, 0.10), 11: (0.50, 0.25, 0.12, 0.13), 12: (0.50, 0.25, 0.13, 0.12),
}  # fmt: skip
_COVER_RANGE = ((0.0, 0.0), (0.02, 0.3), (0.3, 0.7), (0.7, 1.0))
#: How far past the scene the mask asset (SCL, QA_PIXEL) reaches, as a real one covers its
#: whole tile: the clouds that cast shadows into a site often lie beyond it
#: (``pipeline.sources.read.shadow_grid``). A whole number of the 60 m cells clouds are drawn on.
MASK_MARGIN_M = 6000.0
_MARGIN6 = round(MASK_MARGIN_M / 60.0)


@dataclass(frozen=True)
class Atmosphere:
    """Per-scene conditions at 10 m on the scene grid: arrays (H, W), values 0..1 or
    reflectance; and the thick clouds and their shadows further out, at 60 m."""

    cloud: F32  # opacity of thick cloud
    cloud_brightness: float
    cirrus: F32  # additive reflectance at 1.0 of CIRRUS
    shadow: F32  # cloud-shadow strength
    haze: F32  # additive path reflectance in blue
    snow: F32  # snow cover share where there is land (see visible_snow)
    nodata: NDArray[np.bool_]
    # Thick cloud opacity and its shadow's strength at 60 m over the scene and ``MASK_MARGIN_M``
    # around it (``mask_margin``), and the swath edge: (width in 10 m pixels, data to its left).
    outer_cloud: F32
    outer_shadow: F32
    swath: tuple[float, bool] | None = None


def draw_atmosphere(
    rng: np.random.Generator,
    params: ScenarioParams,
    day: date,
    shape10: tuple[int, int],
    sun: tuple[float, float],
    case_rng: np.random.Generator | None = None,
) -> Atmosphere:
    """Clouds, cirrus, displaced shadows, haze, winter snow and swath edges for one scene.

    Fields are drawn on a 60 m grid padded by the longest shadow, so a cloud outside the chip can
    cast its shadow into it, then interpolated to 10 m. ``case_rng`` (the scene's hard-case
    stream) draws the early snow of ``snow_years``.
    """
    h6, w6 = shape10[0] // 6, shape10[1] // 6
    p_clear, *rest = _SKY_BY_MONTH[day.month]
    cloudy = min(1.0, params.cloud_frequency * (1.0 - p_clear))
    weights = np.array([1.0 - cloudy, *(cloudy * r / sum(rest) for r in rest)])
    sky = int(rng.choice(4, p=weights / weights.sum()))
    cover = float(rng.uniform(*_COVER_RANGE[sky]))
    elevation, azimuth = sun
    height = float(rng.uniform(800, 2500))
    length = height / math.tan(math.radians(max(elevation, 10.0)))
    sdx = -length * math.sin(math.radians(azimuth)) / 60.0  # shadows point away from the sun
    sdy = -length * math.cos(math.radians(azimuth)) / 60.0
    pad = math.ceil(max(abs(sdx), abs(sdy))) + 2
    big = (h6 + 2 * pad, w6 + 2 * pad)
    cloud_big = cover_opacity(smooth_field(rng, big, float(rng.uniform(2.5, 6.0))), cover)
    thickness = float(rng.uniform(0.75, 1.0)) if sky < 3 else 1.0
    cloud_big *= thickness
    cloud6 = cloud_big[pad : pad + h6, pad : pad + w6]
    # The shadow at a point is the cloud up-sun of it: shift against the shadow vector.
    r0, c0 = pad + round(sdy), pad - round(sdx)
    darkness = float(rng.uniform(0.75, 1.0))
    shadow6 = cloud_big[r0 : r0 + h6, c0 : c0 + w6] * darkness
    outer_cloud, outer_shadow = _outer_sky(cloud_big, pad, (h6, w6), (round(sdy), -round(sdx)))
    outer_shadow *= darkness
    cirrus6 = np.zeros((h6, w6), np.float32)
    if rng.random() < 0.15 * params.cloud_frequency:
        amount = float(rng.uniform(0.015, 0.05))
        cirrus6 = cover_opacity(smooth_field(rng, (h6, w6), 4.0), float(rng.uniform(0.1, 0.6)))
        cirrus6 *= amount
    haze6 = np.zeros((h6, w6), np.float32)
    if rng.random() < params.haze_probability:
        haze_field = smooth_field(rng, (h6, w6), 8.0)
        amount = float(rng.uniform(0.005, 0.03))
        if params.haze_strength != 1.0:
            amount *= params.haze_strength
        haze6 = (amount * np.clip(0.6 + 0.3 * haze_field, 0, 1)).astype(np.float32)
    snow6 = np.zeros((h6, w6), np.float32)
    if day.month in (12, 1, 2, 3) and rng.random() < params.snow_probability:
        snow6 = cover_opacity(smooth_field(rng, (h6, w6), 5.0), float(rng.uniform(0.4, 1.0)))
    elif early_snow(params, day) and case_rng is not None and case_rng.random() < 0.75:
        cover = float(case_rng.uniform(0.3, 1.0))
        snow6 = cover_opacity(smooth_field(case_rng, (h6, w6), 5.0), cover)
    swath: tuple[float, bool] | None = None
    if rng.random() < params.partial_coverage_probability:
        width = float(rng.uniform(0.15, 0.6)) * shape10[1]
        swath = (width, rng.random() >= 0.5)
    rows, cols = np.mgrid[0 : shape10[0], 0 : shape10[1]]
    nodata = beyond_swath(rows, cols, shape10, swath)
    brightness = float(rng.uniform(0.8, 1.3))

    def up(a: F32) -> F32:
        if not a.any():  # most fields are absent from most scenes
            return np.zeros(shape10, np.float32)
        out: F32 = zoom(a, 6, order=1, grid_mode=True, mode="nearest").astype(np.float32)
        return out

    return Atmosphere(
        up(cloud6), brightness, up(cirrus6), up(shadow6), up(haze6), up(snow6), nodata,
        outer_cloud, outer_shadow, swath,
    )  # fmt: skip


def _outer_sky(
    cloud_big: F32, pad: int, shape6: tuple[int, int], toward_cloud: tuple[int, int]
) -> tuple[F32, F32]:
    """Cloud and (unit-strength) shadow on the 60 m grid of the scene and ``MASK_MARGIN_M``
    around it, from ``cloud_big`` (the scene padded by ``pad`` cells): no cloud beyond it. The
    shadow at a cell is the cloud ``toward_cloud`` (rows, cols) from it."""
    h6, w6 = shape6
    m = _MARGIN6
    cloud = np.zeros((h6 + 2 * m, w6 + 2 * m), np.float32)
    keep = min(pad, m)
    cloud[m - keep : m + h6 + keep, m - keep : m + w6 + keep] = cloud_big[
        pad - keep : pad + h6 + keep, pad - keep : pad + w6 + keep
    ]
    dr, dc = toward_cloud
    shadow = np.zeros_like(cloud)
    rows, cols = cloud.shape
    shadow[max(0, -dr) : rows - max(0, dr), max(0, -dc) : cols - max(0, dc)] = cloud[
        max(0, dr) : rows - max(0, -dr), max(0, dc) : cols - max(0, -dc)
    ]
    return cloud, shadow


def beyond_swath(
    rows: NDArray[np.floating] | NDArray[np.integer],
    cols: NDArray[np.floating] | NDArray[np.integer],
    shape10: tuple[int, int],
    swath: tuple[float, bool] | None,
) -> NDArray[np.bool_]:
    """Where the 10 m scene pixel coordinates ``rows``, ``cols`` (any extent around the scene of
    ``shape10``) lie past the swath edge: about 12 degrees off north-south, ``swath`` (width in
    pixels, the data to its left); none without one."""
    if swath is None:
        return np.zeros(np.broadcast_shapes(np.shape(rows), np.shape(cols)), bool)
    width, left = swath
    slant = math.tan(math.radians(12.0)) * (rows - shape10[0] / 2)
    out: NDArray[np.bool_] = cols + slant < width if not left else cols + slant > shape10[1] - width
    return out


def mask_margin(atmosphere: Atmosphere, res_m: int) -> tuple[F32, F32, NDArray[np.bool_]]:
    """Cloud opacity, shadow strength and no data on the ``res_m`` grid of the mask asset:
    the scene and ``MASK_MARGIN_M`` around it (``asset_grid``)."""
    factor = 60 // res_m

    def up(a: F32) -> F32:  # nearest: the margin's few classes need no smoother edges
        out: F32 = np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)
        return out

    cloud, shadow = up(atmosphere.outer_cloud), up(atmosphere.outer_shadow)
    step = res_m // 10
    margin = _MARGIN6 * factor
    # The centres of the mask's pixels, in 10 m pixels of the scene.
    centre = (np.arange(cloud.shape[0]) - margin) * step + (step - 1) / 2
    across = (np.arange(cloud.shape[1]) - margin) * step + (step - 1) / 2
    h, w = atmosphere.nodata.shape
    nodata = beyond_swath(centre[:, None], across[None, :], (h, w), atmosphere.swath)
    return cloud, shadow, nodata


def early_snow(params: ScenarioParams, day: date) -> bool:
    """Whether ``day`` lies in the early snow of a ``snow_years`` autumn (a hard case)."""
    return day.year in params.snow_years and day >= date(day.year, *params.snow_from)


def visible_snow(snow: F32, fractions: F32) -> F32:
    """The share of each pixel seen as snow: it lies on land, and forest canopy hides part of it."""
    out: F32 = snow * (1.0 - fractions[..., Surface.WATER])
    out *= 1.0 - 0.4 * fractions[..., Surface.FOREST]
    return out


def observe(ground: F32, fractions: F32, atmosphere: Atmosphere) -> F32:
    """(H, W, 7) top-of-canopy reflectance seen through snow, shadow, haze, cirrus and cloud."""
    a = atmosphere
    refl = ground.copy()
    # Each effect is skipped where absent: most scenes have only one or two of them.
    if a.snow.any():
        snow = visible_snow(a.snow, fractions)[..., None]
        refl = refl * (1.0 - snow) + snow * SNOW
    if a.shadow.any():
        refl *= 1.0 - a.shadow[..., None] * SHADOW_LOSS
    if a.haze.any():
        refl += a.haze[..., None] * (WAVELENGTH_UM[0] / WAVELENGTH_UM) ** 1.5
    if a.cirrus.any():
        refl += a.cirrus[..., None] * CIRRUS
    if a.cloud.any():
        cloud = a.cloud[..., None]
        refl = refl * (1.0 - cloud) + cloud * (CLOUD * np.float32(a.cloud_brightness))
    out: F32 = refl.astype(np.float32, copy=False)
    return out


def scene_classification(
    fractions20: F32,
    observed20: F32,
    atmosphere20: Mapping[str, F32],
    nodata20: NDArray[np.bool_],
    coal_label: int | None,
    dark20: NDArray[np.bool_] | None = None,
) -> U8:
    """A Sen2Cor-like SCL at 20 m, decided from the known causes.

    Priority: nodata, cloud (9 > 0.6 opacity, 8 > 0.3), thin cirrus, snow, cloud shadow, water,
    topographic shadow (``dark20``, class 2 "dark area"), coal as dark area/shadow (in some
    scenes, ``coal_label``), vegetation (NDVI > 0.4), not vegetated. Thin cloud edges below 0.3
    opacity are left unflagged, as Sen2Cor does.
    """
    red, nir = observed20[..., 2], observed20[..., 3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.where(ndvi > 0.4, 4, 5).astype(np.uint8)
    if coal_label is not None:
        scl[fractions20[..., Surface.COAL] > 0.5] = coal_label
    if dark20 is not None:
        scl[dark20] = 2
    scl[fractions20[..., Surface.WATER] > 0.5] = 6
    scl[atmosphere20["shadow"] > 0.4] = 3
    scl[atmosphere20["snow"] > 0.5] = 11
    scl[atmosphere20["cirrus"] > 0.01] = 10
    scl[atmosphere20["cloud"] > 0.3] = 8
    scl[atmosphere20["cloud"] > 0.6] = 9
    scl[nodata20] = 0
    return scl
