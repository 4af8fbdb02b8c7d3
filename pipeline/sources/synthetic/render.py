"""Rendering one scene (pure: parameters in, DN arrays out) and the per-site state it reuses.

A scene is the site's 10 m analysis grid plus ``SCENE_MARGIN_M``. Surfaces are rasterised at
2.5 m, shifted there (misregistration) and block-averaged into mixed pixels; spectra, texture,
atmosphere, per-scene gain and offset and sensor noise follow, then the L2A DN convention of the
scene's processing baseline. 20 m bands and the SCL are block means of the 10 m rendering; the
mask (SCL, QA_PIXEL) reaches ``MASK_MARGIN_M`` past the scene with the clouds and shadows alone,
as a real tile's mask covers the ground around a site.

Hard cases (``ScenarioParams``, all off by default) enter here: hard-case features painted over
the ground (``layout.site_features``), shifted harvests, a full-pixel misregistration per year,
metadata that contradicts the BOA offset in the pixels, and Landsat 8/9 scenes (30 m block means
of the 10 m rendering, OLI band response by HLS v1.4, Collection 2 Level-2 DN and QA_PIXEL).
Their random draws come from the scene's own hard-case stream (``seeds``), never from the
scene's main stream, so a hard case changes only what it is about.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.features import rasterize
from scipy.ndimage import binary_dilation
from shapely import affinity

from pipeline.errors import SourceError
from pipeline.grid import Grid
from pipeline.harmonize import MSI_TO_OLI
from pipeline.radiometry import S2_BOA_OFFSET_DN, S2_SCALE
from pipeline.sites import Site
from pipeline.sources.sensors import LANDSAT_OFFSET, LANDSAT_SCALE, S2_RESOLUTION
from pipeline.sources.synthetic.arrays import (
    F32,
    U8,
    U16,
    block_fractions,
    block_mean,
    smooth_field,
)
from pipeline.sources.synthetic.atmosphere import (
    MASK_MARGIN_M,
    Atmosphere,
    draw_atmosphere,
    mask_margin,
    observe,
    scene_classification,
    visible_snow,
)
from pipeline.sources.synthetic.layout import (
    N_SURFACES,
    PORT_BERTHS,
    Feature,
    LayoutItem,
    Surface,
    layout_key,
    site_features,
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
    scene_platform,
    sun_position,
)
from pipeline.sources.synthetic.seeds import seeded_rng, site_key
from pipeline.sources.synthetic.sites import demo_sites
from pipeline.sources.synthetic.spectra import (
    CHAR,
    MUD,
    SPECTRAL_BANDS,
    Phenology,
    char_share,
    draw_phenology,
    ground_reflectance,
    harvest_shifted,
    rock_slope_spectrum,
    shadow_depth,
    surface_spectra,
)

# Scenes cover the site grid plus this margin, so readers must do windowed reads.
SCENE_MARGIN_M = 120.0
_I10 = [i for i, b in enumerate(SPECTRAL_BANDS) if S2_RESOLUTION[b] == 10]
_I20 = [i for i, b in enumerate(SPECTRAL_BANDS) if S2_RESOLUTION[b] == 20]
# Landsat 8/9 OLI (Earth Search ``landsat-c2-l2`` keys): the six reflective bands, NIR from the
# narrow MSI NIR (B8A) as HLS does, and the 30 m QA_PIXEL.
LANDSAT_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir08", "swir16", "swir22")
LANDSAT_ASSETS: tuple[str, ...] = (*LANDSAT_BANDS, "qa_pixel")
MASK_ASSETS = frozenset(("scl", "qa_pixel"))
LANDSAT_RESOLUTION = 30
_IL = [SPECTRAL_BANDS.index(b) for b in LANDSAT_BANDS]
_OLI_SLOPE = np.array([a for a, _ in MSI_TO_OLI], np.float32)
_OLI_INTERCEPT = np.array([b for _, b in MSI_TO_OLI], np.float32)
# A full-pixel misregistration per year (``shift_by_year``): one of 8 directions, 3 steps (135
# degrees) on from the previous year's.
_DIRECTIONS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))


def scene_grid(site: Site) -> Grid:
    """The scene extent: the site's 10 m analysis grid expanded by ``SCENE_MARGIN_M``."""
    g = site.grid(10.0, 200.0)
    left, bottom, right, top = g.bounds
    m = SCENE_MARGIN_M
    return Grid.from_bounds(g.crs, (left - m, bottom - m, right + m, top + m), 10.0)


def asset_grid(scene: Grid, key: str, landsat: bool = False) -> Grid:
    """The grid asset ``key`` is rendered on: the 10 m scene grid at the band's resolution.

    20 m assets are 2 x 2 block means of the 10 m rendering: same origin, half the pixels;
    Landsat assets (``landsat``) 3 x 3 block means at 30 m. The mask (``MASK_ASSETS``) reaches
    ``MASK_MARGIN_M`` further on every side (``scene_window`` is the scene's part of it).
    """
    res_m = LANDSAT_RESOLUTION if landsat else S2_RESOLUTION[key]
    factor = round(res_m / scene.resolution)
    left, _, _, top = scene.bounds
    res = scene.resolution * factor
    margin = round(MASK_MARGIN_M / res) if key in MASK_ASSETS else 0
    transform = Affine(res, 0.0, left - margin * res, 0.0, -res, top + margin * res)
    return Grid(
        scene.crs,
        transform,
        scene.width // factor + 2 * margin,
        scene.height // factor + 2 * margin,
    )


def scene_window(key: str, landsat: bool = False) -> tuple[slice, slice]:
    """The part of asset ``key`` (rendered on ``asset_grid``) that covers the scene."""
    if key not in MASK_ASSETS:
        return slice(None), slice(None)
    m = round(MASK_MARGIN_M / (LANDSAT_RESOLUTION if landsat else S2_RESOLUTION[key]))
    return slice(m, -m), slice(m, -m)


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


@lru_cache(maxsize=32)
def _feature_mask(site_id: str, seed: int, wkb: bytes) -> U8:
    """A hard-case feature rasterised on the site's 2.5 m canvas (1 inside, 0 outside)."""
    canvas = _canvas(site_id, seed)
    dx, dy = canvas.origin_utm
    geometry = affinity.translate(shapely.from_wkb(wkb), dx, dy)
    out = rasterize(
        [(geometry, 1)],
        out_shape=canvas.super_shape,
        transform=canvas.super_transform,
        fill=0,
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
    # What the item says of the BOA offset, and (wrong-offset hard case only) what the pixels
    # really carry: DN added to round(reflectance * 10000).
    boa_offset_applied: bool = False
    pixel_offset_dn: int | None = None

    @property
    def landsat(self) -> bool:
        return self.platform.startswith("landsat")


def render_scene(
    params: ScenarioParams,
    site_id: str,
    day: date,
    labels_by_state: Mapping[tuple[int, bool], U8] | None = None,
) -> tuple[dict[str, NDArray[Any]], SceneMeta]:
    """All assets of one scene as DN arrays (keys = Earth Search asset keys), and its metadata.

    ``labels_by_state`` caches the 2.5 m surface maps per layout state (``layout.layout_key``)
    across the scenes of a site; they are computed here when absent.
    """
    platform = scene_platform(params, site_id, day)
    if platform is None:
        raise SourceError(
            f"{site_id} {day}: no synthetic satellite passes that day; use acquisition_dates()"
        )
    canvas = _canvas(site_id, params.seed)
    grid = canvas.scene_grid
    h, w = grid.height, grid.width
    rng = seeded_rng(params.seed, site_key(site_id), day.toordinal(), 0)
    # Hard cases draw from their own stream: the scene's other draws stay as without them.
    hard = bool(params.hard_cases)
    case_rng = seeded_rng(params.seed, site_key(site_id), day.toordinal(), 4) if hard else None
    year = state_year(day)
    state = layout_key(params, day)
    pheno = draw_phenology(seeded_rng(params.seed, site_key(site_id), year, 3))
    harvest_shift = dict(params.harvest_shift_days).get(year)
    if harvest_shift:
        pheno = harvest_shifted(pheno, harvest_shift)

    k = int(params.max_shift_m / SUPER_RES_M)
    sx, sy = (int(v) for v in rng.integers(-k, k + 1, size=2))
    if params.shift_by_year:
        sx, sy = _year_shift(params, site_id, year)
    if labels_by_state is None or state not in labels_by_state:
        labels = _labels(canvas, site_layout(site_id, year, params, pre_construction=state[1]))
    else:
        labels = labels_by_state[state]
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
    spectra = surface_spectra(day, pheno, flat_coal=params.flat_coal)
    ground = ground_reflectance(fractions, spectra, texture)
    dark10: NDArray[np.bool_] | None = None
    features = site_features(site_id, year, params)
    if features:
        shares = [_feature_share(site_id, params.seed, f, rows, cols) for f in features]
        ground, dark10 = paint_features(ground, features, shares, texture, day, pheno, sun, params)
    atmosphere = draw_atmosphere(rng, params, day, (h, w), sun, case_rng)
    observed = observe(ground, fractions, atmosphere)
    gain = 1.0 + rng.uniform(-params.gain_jitter, params.gain_jitter, len(SPECTRAL_BANDS))
    offset = rng.uniform(-params.offset_jitter, params.offset_jitter, len(SPECTRAL_BANDS))
    observed = (observed * gain.astype(np.float32) + offset.astype(np.float32)).astype(np.float32)
    shift_m = (sx * SUPER_RES_M, sy * SUPER_RES_M)
    if platform.startswith("landsat"):
        landsat, cover = _landsat_assets(observed, fractions, atmosphere, params, rng)
        return landsat, SceneMeta(site_id, day, platform, "", shift_m, sun, cover, grid)

    baseline = baseline_of(day)
    offset_dn = boa_offset_dn(baseline)
    pixel_offset_dn, flag_applied = offset_dn, False
    if case_rng is not None and case_rng.random() < params.wrong_offset_probability:
        pixel_offset_dn, flag_applied = _wrong_offset(case_rng, offset_dn)
    nodata10 = atmosphere.nodata
    nodata20 = block_mean(nodata10.astype(np.float32), 2) > 0.5
    obs20 = block_mean(observed[..., _I20], 2)
    assets: dict[str, NDArray[Any]] = {}
    sigma = params.noise_sigma
    for i in _I10:
        band = observed[..., i] + sigma * rng.standard_normal((h, w), dtype=np.float32)
        assets[SPECTRAL_BANDS[i]] = to_dn(band, pixel_offset_dn, nodata10)
    for j, i in enumerate(_I20):
        band = obs20[..., j] + sigma * rng.standard_normal(obs20.shape[:2], dtype=np.float32)
        assets[SPECTRAL_BANDS[i]] = to_dn(band, pixel_offset_dn, nodata20)

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
    dark20 = None if dark10 is None else block_mean(dark10.astype(np.float32), 2) > 0.5
    scl = scene_classification(
        block_mean(fractions, 2), block_mean(observed, 2), atm20, nodata20, coal_label, dark20
    )
    assets["scl"] = _with_margin(scl, _margin_scl(atmosphere))
    valid = max(int((scl != 0).sum()), 1)

    def share(classes: tuple[int, ...]) -> float:
        return round(100.0 * float(np.isin(scl, classes).sum()) / valid, 4)

    percentages = {
        "eo:cloud_cover": share((8, 9, 10)),
        "s2:cloud_shadow_percentage": share((3,)),
        "s2:snow_ice_percentage": share((11,)),
        "s2:nodata_pixel_percentage": round(100.0 * float((scl == 0).mean()), 4),
    }
    meta = SceneMeta(
        site_id, day, platform, baseline, shift_m, sun, percentages, grid, flag_applied,
        pixel_offset_dn if params.wrong_offset_probability > 0 else None,
    )  # fmt: skip
    return assets, meta


def _margin_scl(atmosphere: Atmosphere) -> U8:
    """The SCL over the scene and ``MASK_MARGIN_M`` around it, from its thick clouds and their
    shadows alone (``scene_classification``'s thresholds): the ground beyond the scene is not
    rendered, and reads as vegetation."""
    cloud, shadow, nodata = mask_margin(atmosphere, S2_RESOLUTION["scl"])
    scl = np.full(cloud.shape, 4, np.uint8)
    scl[shadow > 0.4] = 3
    scl[cloud > 0.3] = 8
    scl[cloud > 0.6] = 9
    scl[nodata] = 0
    return scl


def _with_margin(scene: NDArray[Any], margin: NDArray[Any]) -> NDArray[Any]:
    """``margin`` (the mask over the scene and around it) with the scene's own mask in its
    middle."""
    m = (margin.shape[0] - scene.shape[0]) // 2
    out = margin.copy()
    out[m : m + scene.shape[0], m : m + scene.shape[1]] = scene
    return out


def _year_shift(params: ScenarioParams, site_id: str, year: int) -> tuple[int, int]:
    """The full-``max_shift_m`` misregistration of every scene of ``year`` (2.5 m steps)."""
    k = int(params.max_shift_m / SUPER_RES_M)
    base = int(seeded_rng(params.seed, site_key(site_id), 0, 5).integers(len(_DIRECTIONS)))
    dx, dy = _DIRECTIONS[(base + 3 * year) % len(_DIRECTIONS)]
    return dx * k, dy * k


def _wrong_offset(case_rng: np.random.Generator, offset_dn: int) -> tuple[int, bool]:
    """(DN offset really in the pixels, ``earthsearch:boa_offset_applied``) of a scene whose
    metadata lies. Before 04.00 the pixels carry an offset the baseline denies (a reprocessed
    product with stale metadata); from 04.00 either the flag claims the offset applied while
    the pixels still carry it, or the pixels lack the offset the baseline and flag announce
    (earth-search #33, #66, #71)."""
    if offset_dn == 0:
        return -int(S2_BOA_OFFSET_DN), False
    if case_rng.random() < 0.5:
        return offset_dn, True
    return 0, False


def _feature_share(site_id: str, seed: int, feature: Feature, rows: slice, cols: slice) -> F32:
    """The 10 m share of each pixel a feature covers, misregistered like the scene."""
    mask = _feature_mask(site_id, seed, shapely.to_wkb(feature.geometry))
    return block_fractions(np.ascontiguousarray(mask[rows, cols]), 2, SUPERSAMPLE)[..., 1]


def paint_features(
    ground: F32,
    features: Sequence[Feature],
    shares: Sequence[F32],
    texture: F32,
    day: date,
    pheno: Phenology,
    sun: tuple[float, float],
    params: ScenarioParams,
) -> tuple[F32, NDArray[np.bool_] | None]:
    """``ground`` with the hard-case features painted over it, and where Sen2Cor would call the
    ground topographic shadow (SCL 2), or None."""
    out = ground.copy()
    rough = (1.0 + 0.05 * texture)[..., None]
    dark: NDArray[np.bool_] | None = None
    for feature, share in zip(features, shares, strict=True):
        f = share[..., None]
        if feature.kind == "rock_slope":
            out = out * (1.0 - f) + f * rock_slope_spectrum(day, pheno, sun[0]) * rough
            if shadow_depth(sun[0]) > 0.5:
                dark = share > 0.5
        elif feature.kind == "mud":
            out = out * (1.0 - f) + f * MUD * rough
        elif feature.kind == "burn" and params.burn_date is not None:
            c = char_share(params.burn_date, day)
            if c > 0:
                out = out * (1.0 - f * c) + (f * c) * CHAR * rough
    result: F32 = out.astype(np.float32)
    return result, dark


def _landsat_assets(
    observed: F32,
    fractions: F32,
    atmosphere: Atmosphere,
    params: ScenarioParams,
    rng: np.random.Generator,
) -> tuple[dict[str, NDArray[Any]], dict[str, float]]:
    """A Landsat 8/9 OLI Collection 2 Level-2 scene from the 10 m rendering: 30 m block means,
    the OLI band response (HLS v1.4: OLI = a MSI + b), DN = (reflectance + 0.2) / 2.75e-5 and a
    QA_PIXEL from the known causes (Fmask flags coal as cloud shadow in some scenes)."""
    h3, w3 = observed.shape[0] // 3, observed.shape[1] // 3

    def to30(a: F32) -> F32:
        return block_mean(np.ascontiguousarray(a[: h3 * 3, : w3 * 3]), 3)

    oli = to30(observed[..., _IL]) * _OLI_SLOPE + _OLI_INTERCEPT
    nodata = to30(atmosphere.nodata.astype(np.float32)) > 0.5
    assets: dict[str, NDArray[Any]] = {}
    for j, key in enumerate(LANDSAT_BANDS):
        band = oli[..., j] + params.noise_sigma * rng.standard_normal((h3, w3), dtype=np.float32)
        dn = np.clip(np.rint((band - LANDSAT_OFFSET) / LANDSAT_SCALE), 1, 65535).astype(np.uint16)
        dn[nodata] = 0
        assets[key] = dn
    frac30 = to30(fractions)
    cloud = to30(atmosphere.cloud)
    shadow = to30(atmosphere.shadow) > 0.4
    if rng.random() < params.coal_dark_label_fraction:
        shadow |= frac30[..., Surface.COAL] > 0.5  # FORCE#368
    qa = _qa_pixel(
        cloud, shadow, nodata,
        snow=to30(visible_snow(atmosphere.snow, fractions)) > 0.5,
        cirrus=to30(atmosphere.cirrus) > 0.01,
        water=frac30[..., Surface.WATER] > 0.5,
    )  # fmt: skip
    outer_cloud, outer_shadow, outer_nodata = mask_margin(atmosphere, LANDSAT_RESOLUTION)
    assets["qa_pixel"] = _with_margin(qa, _qa_pixel(outer_cloud, outer_shadow > 0.4, outer_nodata))
    cloudy = cloud > 0.3
    valid = max(int((~nodata).sum()), 1)
    cover = round(100.0 * float((cloudy & ~nodata).sum()) / valid, 4)
    return assets, {"eo:cloud_cover": cover}


def _qa_pixel(
    cloud: F32,
    shadow: NDArray[np.bool_],
    nodata: NDArray[np.bool_],
    snow: NDArray[np.bool_] | None = None,
    cirrus: NDArray[np.bool_] | None = None,
    water: NDArray[np.bool_] | None = None,
) -> U16:
    """Collection 2 QA_PIXEL bits from thick-cloud opacity ``cloud`` and the flags (absent:
    none): dilated cloud (two pixels around), cirrus, cloud, shadow, snow, clear, water, cloud
    confidence; fill (bit 0) alone where ``nodata``."""
    cloudy = cloud > 0.3
    dilated = binary_dilation(cloudy, iterations=2) & ~cloudy
    none = np.zeros(cloud.shape, bool)
    qa = np.zeros(cloud.shape, np.uint16)
    qa |= dilated.astype(np.uint16) << 1
    qa |= (none if cirrus is None else cirrus).astype(np.uint16) << 2
    qa |= cloudy.astype(np.uint16) << 3
    qa |= shadow.astype(np.uint16) << 4
    qa |= (none if snow is None else snow).astype(np.uint16) << 5
    qa |= (~(cloudy | dilated)).astype(np.uint16) << 6
    qa |= (none if water is None else water).astype(np.uint16) << 7
    confidence = np.where(cloud > 0.6, 3, np.where(cloudy, 2, 1)).astype(np.uint16)
    qa |= confidence << 8
    qa[nodata] = 1  # fill
    return qa


def render_scenes(
    params: ScenarioParams, site_id: str, dates: Iterable[date]
) -> Iterator[tuple[dict[str, NDArray[Any]], SceneMeta]]:
    """``render_scene`` for each of ``dates`` in turn; each year-state's surfaces rasterised once."""
    dates = list(dates)
    canvas = _canvas(site_id, params.seed)
    states = sorted({layout_key(params, d) for d in dates})
    labels = {
        k: _labels(canvas, site_layout(site_id, k[0], params, pre_construction=k[1]))
        for k in states
    }
    for day in dates:
        yield render_scene(params, site_id, day, labels)
