"""Rendering one scene (pure: parameters in, DN arrays out) and the per-site state it reuses.

A scene is the site's 10 m analysis grid plus ``SCENE_MARGIN_M``. Surfaces are rasterised at
2.5 m, shifted there (misregistration) and block-averaged into mixed pixels; spectra, texture,
atmosphere, per-scene gain and offset and sensor noise follow, then the L2A DN convention of the
scene's processing baseline. 20 m bands and the SCL are block means of the 10 m rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.features import rasterize
from shapely import affinity

from pipeline.errors import SourceError
from pipeline.grid import Grid
from pipeline.radiometry import S2_SCALE
from pipeline.sites import Site
from pipeline.sources.sensors import S2_RESOLUTION
from pipeline.sources.synthetic.arrays import (
    F32,
    U8,
    U16,
    block_fractions,
    block_mean,
    smooth_field,
)
from pipeline.sources.synthetic.atmosphere import (
    draw_atmosphere,
    observe,
    scene_classification,
    visible_snow,
)
from pipeline.sources.synthetic.layout import (
    N_SURFACES,
    PORT_BERTHS,
    LayoutItem,
    Surface,
    site_layout,
    state_year,
)
from pipeline.sources.synthetic.params import (
    MAX_SHIFT_M,
    SUPER_RES_M,
    SUPERSAMPLE,
    ScenarioParams,
)
from pipeline.sources.synthetic.schedule import (
    baseline_of,
    boa_offset_dn,
    platform_of,
    sun_position,
)
from pipeline.sources.synthetic.seeds import seeded_rng, site_key
from pipeline.sources.synthetic.sites import demo_sites
from pipeline.sources.synthetic.spectra import (
    SPECTRAL_BANDS,
    draw_phenology,
    ground_reflectance,
    surface_spectra,
)

# Scenes cover the site grid plus this margin, so readers must do windowed reads.
SCENE_MARGIN_M = 120.0
_I10 = [i for i, b in enumerate(SPECTRAL_BANDS) if S2_RESOLUTION[b] == 10]
_I20 = [i for i, b in enumerate(SPECTRAL_BANDS) if S2_RESOLUTION[b] == 20]


def scene_grid(site: Site) -> Grid:
    """The scene extent: the site's 10 m analysis grid expanded by ``SCENE_MARGIN_M``."""
    g = site.grid(10.0, 200.0)
    left, bottom, right, top = g.bounds
    m = SCENE_MARGIN_M
    return Grid.from_bounds(g.crs, (left - m, bottom - m, right + m, top + m), 10.0)


def asset_grid(scene: Grid, key: str) -> Grid:
    """The grid asset ``key`` is rendered on: the 10 m scene grid at the band's resolution.

    20 m assets are 2 x 2 block means of the 10 m rendering: same origin, half the pixels.
    """
    factor = round(S2_RESOLUTION[key] / scene.resolution)
    left, _, _, top = scene.bounds
    res = scene.resolution * factor
    transform = Affine(res, 0.0, left, 0.0, -res, top)
    return Grid(scene.crs, transform, scene.width // factor, scene.height // factor)


def to_dn(refl: F32, offset_dn: int, nodata: NDArray[np.bool_]) -> U16:
    """Reflectance -> L2A DN: round(refl * 10000) + offset, clipped to 1..65535; 0 = nodata."""
    dn = np.rint(refl / S2_SCALE) + offset_dn
    out: U16 = np.clip(dn, 1, 65535).astype(np.uint16)
    out[nodata] = 0
    return out


# ------------------------------------------------------------------------------------------------
# Per-site rendering state (built once per process and site)


@dataclass(frozen=True)
class _Canvas:
    site: Site
    scene_grid: Grid  # 10 m
    origin_utm: tuple[float, float]  # site centre: layout coordinates are relative to it
    super_transform: Affine  # SUPER_RES_M grid over the scene + MAX_SHIFT_M margin
    super_shape: tuple[int, int]
    texture: F32  # 10 m, scene grid + 1 pixel margin, ground-fixed

    @property
    def margin_px(self) -> int:
        return int(MAX_SHIFT_M / SUPER_RES_M)


@lru_cache(maxsize=8)
def _canvas(site_id: str, seed: int) -> _Canvas:
    (site,) = demo_sites([site_id])
    grid = scene_grid(site)
    centre = site.geometry_in(grid.crs).centroid
    left, _, _, top = grid.bounds
    m = MAX_SHIFT_M
    transform = Affine(SUPER_RES_M, 0.0, left - m, 0.0, -SUPER_RES_M, top + m)
    k = SUPERSAMPLE
    margin = 2 * int(m / SUPER_RES_M)
    super_shape = (grid.height * k + margin, grid.width * k + margin)
    rng = seeded_rng(seed, site_key(site_id), 0, 2)
    texture = np.clip(smooth_field(rng, (grid.height + 2, grid.width + 2), 1.2), -2.5, 2.5)
    return _Canvas(site, grid, (centre.x, centre.y), transform, super_shape, texture)


def _labels(canvas: _Canvas, layout: Sequence[LayoutItem]) -> U8:
    dx, dy = canvas.origin_utm
    shapes = [(affinity.translate(g, dx, dy), int(s)) for s, g in layout]
    out = rasterize(
        shapes,
        out_shape=canvas.super_shape,
        transform=canvas.super_transform,
        fill=int(Surface.FOREST),
        dtype="uint8",
    )
    return np.asarray(out, dtype=np.uint8)


@lru_cache(maxsize=4)
def _berth_mask(seed: int, berth: int) -> NDArray[np.bool_]:
    canvas = _canvas("demo-port", seed)
    mask: NDArray[np.bool_] = _labels(canvas, [(Surface.SHIP, PORT_BERTHS[berth])]) == Surface.SHIP
    return mask


@dataclass(frozen=True)
class SceneMeta:
    """What the item JSON needs about one rendered scene: when, by what, where, how clear."""

    site_id: str
    day: date
    platform: str
    baseline: str
    shift_m: tuple[float, float]
    sun: tuple[float, float]
    percentages: Mapping[str, float]
    grid: Grid  # the 10 m scene grid; 20 m assets lie on asset_grid(grid, key)


def render_scene(
    params: ScenarioParams,
    site_id: str,
    day: date,
    labels_by_state: Mapping[int, U8] | None = None,
) -> tuple[dict[str, NDArray[Any]], SceneMeta]:
    """All assets of one scene as DN arrays (keys = Earth Search asset keys), and its metadata.

    ``labels_by_state`` caches the 2.5 m surface maps per year-state across the scenes of a
    site; they are computed here when absent.
    """
    platform = platform_of(site_id, day)
    if platform is None:
        raise SourceError(
            f"{site_id} {day}: no synthetic satellite passes that day; use acquisition_dates()"
        )
    canvas = _canvas(site_id, params.seed)
    grid = canvas.scene_grid
    h, w = grid.height, grid.width
    rng = seeded_rng(params.seed, site_key(site_id), day.toordinal(), 0)
    year = state_year(day)
    pheno = draw_phenology(seeded_rng(params.seed, site_key(site_id), year, 3))

    k = int(params.max_shift_m / SUPER_RES_M)
    sx, sy = (int(v) for v in rng.integers(-k, k + 1, size=2))
    if labels_by_state is None or year not in labels_by_state:
        labels = _labels(canvas, site_layout(site_id, year))
    else:
        labels = labels_by_state[year]
    if site_id == "demo-port" and rng.random() < params.ship_probability:
        ship = _berth_mask(params.seed, int(rng.integers(len(PORT_BERTHS))))
        labels = np.where(ship, np.uint8(Surface.SHIP), labels)
    m = canvas.margin_px
    rows = slice(m + sy, m + sy + h * SUPERSAMPLE)
    cols = slice(m - sx, m - sx + w * SUPERSAMPLE)
    fractions = block_fractions(np.ascontiguousarray(labels[rows, cols]), N_SURFACES, SUPERSAMPLE)
    py, px = round(sy / SUPERSAMPLE), round(sx / SUPERSAMPLE)
    texture = canvas.texture[1 + py : 1 + py + h, 1 - px : 1 - px + w]

    lat = float(canvas.site.geometry.centroid.y)
    sun = sun_position(day, lat)
    ground = ground_reflectance(fractions, surface_spectra(day, pheno), texture)
    atmosphere = draw_atmosphere(rng, params, day, (h, w), sun)
    observed = observe(ground, fractions, atmosphere)
    gain = 1.0 + rng.uniform(-params.gain_jitter, params.gain_jitter, len(SPECTRAL_BANDS))
    offset = rng.uniform(-params.offset_jitter, params.offset_jitter, len(SPECTRAL_BANDS))
    observed = (observed * gain.astype(np.float32) + offset.astype(np.float32)).astype(np.float32)

    baseline = baseline_of(day)
    offset_dn = boa_offset_dn(baseline)
    nodata10 = atmosphere.nodata
    nodata20 = block_mean(nodata10.astype(np.float32), 2) > 0.5
    obs20 = block_mean(observed[..., _I20], 2)
    assets: dict[str, NDArray[Any]] = {}
    sigma = params.noise_sigma
    for i in _I10:
        band = observed[..., i] + sigma * rng.standard_normal((h, w), dtype=np.float32)
        assets[SPECTRAL_BANDS[i]] = to_dn(band, offset_dn, nodata10)
    for j, i in enumerate(_I20):
        band = obs20[..., j] + sigma * rng.standard_normal(obs20.shape[:2], dtype=np.float32)
        assets[SPECTRAL_BANDS[i]] = to_dn(band, offset_dn, nodata20)

    coal_label: int | None = None
    if rng.random() < params.coal_dark_label_fraction:
        # Sen2Cor calls coal "dark area" more often before 04.00 (class 2 changed meaning then).
        p_dark = 0.7 if offset_dn == 0 else 0.3
        coal_label = 2 if rng.random() < p_dark else 3
    atm20 = {
        "cloud": block_mean(atmosphere.cloud, 2),
        "cirrus": block_mean(atmosphere.cirrus, 2),
        "shadow": block_mean(atmosphere.shadow, 2),
        "snow": block_mean(visible_snow(atmosphere.snow, fractions), 2),
    }
    scl = scene_classification(
        block_mean(fractions, 2), block_mean(observed, 2), atm20, nodata20, coal_label
    )
    assets["scl"] = scl
    valid = max(int((scl != 0).sum()), 1)

    def share(classes: tuple[int, ...]) -> float:
        return round(100.0 * float(np.isin(scl, classes).sum()) / valid, 4)

    percentages = {
        "eo:cloud_cover": share((8, 9, 10)),
        "s2:cloud_shadow_percentage": share((3,)),
        "s2:snow_ice_percentage": share((11,)),
        "s2:nodata_pixel_percentage": round(100.0 * float((scl == 0).mean()), 4),
    }
    shift_m = (sx * SUPER_RES_M, sy * SUPER_RES_M)
    meta = SceneMeta(site_id, day, platform, baseline, shift_m, sun, percentages, grid)
    return assets, meta


def render_scenes(
    params: ScenarioParams, site_id: str, dates: Iterable[date]
) -> Iterator[tuple[dict[str, NDArray[Any]], SceneMeta]]:
    """``render_scene`` for each of ``dates`` in turn; each year-state's surfaces rasterised once."""
    dates = list(dates)
    canvas = _canvas(site_id, params.seed)
    states = sorted({state_year(d) for d in dates})
    labels = {y: _labels(canvas, site_layout(site_id, y)) for y in states}
    for day in dates:
        yield render_scene(params, site_id, day, labels)
