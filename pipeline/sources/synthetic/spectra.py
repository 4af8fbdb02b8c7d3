"""Reflectance spectra (ground surfaces and atmospheric effects) and the phenology of the year.

All spectra are in ``SPECTRAL_BANDS`` order. They are judgement informed by DOMAIN.md, not
measurements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from pipeline.sources.synthetic.arrays import F32
from pipeline.sources.synthetic.layout import N_SURFACES, Surface

# The reflectance bands written, in the order of the spectra below.
SPECTRAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")
WAVELENGTH_UM = np.array([0.490, 0.560, 0.665, 0.842, 0.865, 1.610, 2.190], dtype=np.float32)


def _spec(*values: float) -> F32:
    return np.array(values, dtype=np.float32)


_FOREST_PEAK = _spec(0.025, 0.050, 0.028, 0.340, 0.350, 0.170, 0.080)
_FOREST_AUTUMN = _spec(0.035, 0.060, 0.070, 0.260, 0.270, 0.200, 0.110)
_FOREST_DORMANT = _spec(0.040, 0.055, 0.060, 0.170, 0.180, 0.190, 0.120)
_CROP_PEAK = _spec(0.030, 0.070, 0.040, 0.420, 0.430, 0.220, 0.100)
_CROP_SENESCENT = _spec(0.060, 0.085, 0.100, 0.280, 0.290, 0.300, 0.190)
_SOIL_TILLED = _spec(0.070, 0.095, 0.120, 0.180, 0.195, 0.260, 0.205)
_PADDY_STUBBLE = _spec(0.060, 0.080, 0.095, 0.170, 0.180, 0.230, 0.170)
_WATER = _spec(0.060, 0.070, 0.045, 0.025, 0.020, 0.008, 0.005)
_PADDY_FLOODED = 0.7 * _WATER + 0.3 * _PADDY_STUBBLE
STATIC_SPECTRA: Mapping[Surface, F32] = {
    Surface.BUILT: _spec(0.110, 0.125, 0.140, 0.190, 0.200, 0.230, 0.200),
    Surface.YARD: _spec(0.100, 0.130, 0.165, 0.215, 0.225, 0.300, 0.255),
    Surface.ASPHALT: _spec(0.065, 0.072, 0.080, 0.095, 0.098, 0.115, 0.105),
    Surface.SPOIL: _spec(0.080, 0.090, 0.100, 0.125, 0.130, 0.160, 0.145),
    # Anthracite: dark and flat, slightly rising to SWIR (DOMAIN.md "Coal and stockpiles").
    Surface.COAL: _spec(0.040, 0.042, 0.044, 0.048, 0.050, 0.056, 0.058),
    Surface.WATER: _WATER,
    Surface.SHIP: _spec(0.050, 0.052, 0.055, 0.060, 0.061, 0.065, 0.062),
}
# Coal as flat as DOMAIN.md's range allows (hard case ``flat_coal``): every band at the
# anthracite's mean, so SWIR1 equals blue and the rule's shadow test (SWIR1 - blue) sits on its
# edge. Real coal is flat to slightly rising; which of the two a site holds is not known.
FLAT_COAL = np.full(len(SPECTRAL_BANDS), 0.048, dtype=np.float32)
# What the atmosphere and weather put over the ground (applied in atmosphere.observe).
SNOW = _spec(0.850, 0.850, 0.830, 0.760, 0.740, 0.110, 0.080)
CLOUD = _spec(0.550, 0.550, 0.560, 0.580, 0.580, 0.450, 0.330)
# Share of the signal a full cloud shadow removes per band: diffuse skylight keeps blue brighter.
SHADOW_LOSS = _spec(0.55, 0.62, 0.66, 0.72, 0.72, 0.75, 0.75)
CIRRUS = _spec(1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.5)
# Within-surface brightness variation (relative, per unit of a unit-variance texture field).
_TEXTURE_AMP = np.array([0.08, 0.08, 0.08, 0.10, 0.06, 0.05, 0.07, 0.05, 0.03, 0.04], np.float32)


@dataclass(frozen=True)
class Phenology:
    """A year's timing: green-up shift (days) and harvest days of year."""

    shift: float
    paddy_harvest: float
    dryfield_harvest: float


def draw_phenology(rng: np.random.Generator) -> Phenology:
    return Phenology(
        shift=float(rng.uniform(-8, 8)),
        paddy_harvest=float(rng.uniform(275, 294)),  # 2-21 October
        dryfield_harvest=float(rng.uniform(268, 288)),  # 25 September - 15 October
    )


def _curve(doy: float, knots: Sequence[tuple[float, F32]]) -> F32:
    xs = [k[0] for k in knots]
    ys = np.stack([k[1] for k in knots])
    return np.array([np.interp(doy, xs, ys[:, b]) for b in range(ys.shape[1])], np.float32)


def surface_spectra(day: date, pheno: Phenology, *, flat_coal: bool = False) -> F32:
    """(N_SURFACES, 7) reflectance of every surface on ``day`` (coal ``FLAT_COAL`` when
    ``flat_coal``).

    Forest greens up April-June, peaks July-August, colours and senesces October-November and is
    dormant in winter; paddies flood in May-June and are harvested in October; dry fields (maize)
    are bare until May and harvested late September to mid October.
    """
    doy = float(day.timetuple().tm_yday)
    s = pheno.shift
    out = np.zeros((N_SURFACES, len(SPECTRAL_BANDS)), np.float32)
    out[Surface.FOREST] = _curve(
        doy,
        [
            (0, _FOREST_DORMANT), (100 + s, _FOREST_DORMANT), (165 + s, _FOREST_PEAK),
            (240 + s, _FOREST_PEAK), (285 + s, _FOREST_AUTUMN), (320 + s, _FOREST_DORMANT),
            (367, _FOREST_DORMANT),
        ],
    )  # fmt: skip
    h = pheno.paddy_harvest
    out[Surface.PADDY] = _curve(
        doy,
        [
            (0, _PADDY_STUBBLE), (128 + s, _PADDY_STUBBLE), (138 + s, _PADDY_FLOODED),
            (160 + s, _PADDY_FLOODED), (215 + s, _CROP_PEAK), (min(245 + s, h - 1), _CROP_PEAK),
            (h - 0.5, _CROP_SENESCENT), (h, _PADDY_STUBBLE), (367, _PADDY_STUBBLE),
        ],
    )  # fmt: skip
    h = pheno.dryfield_harvest
    out[Surface.DRYFIELD] = _curve(
        doy,
        [
            (0, _SOIL_TILLED), (125 + s, _SOIL_TILLED), (200 + s, _CROP_PEAK),
            (min(235 + s, h - 1), _CROP_PEAK), (h - 0.5, _CROP_SENESCENT), (h, _SOIL_TILLED),
            (367, _SOIL_TILLED),
        ],
    )  # fmt: skip
    for surface, spectrum in STATIC_SPECTRA.items():
        out[surface] = spectrum
    if flat_coal:
        out[Surface.COAL] = FLAT_COAL
    return out


def ground_reflectance(fractions: F32, spectra: F32, texture: F32) -> F32:
    """(H, W, 7) reflectance of mixed pixels: area-weighted spectra, with surface texture."""
    refl = fractions @ spectra
    refl *= (1.0 + (fractions @ _TEXTURE_AMP) * texture)[..., None]
    return refl.astype(np.float32)


def harvest_shifted(pheno: Phenology, days: float) -> Phenology:
    """``pheno`` with both harvests ``days`` later (earlier when negative): a hard case."""
    return replace(
        pheno,
        paddy_harvest=pheno.paddy_harvest + days,
        dryfield_harvest=pheno.dryfield_harvest + days,
    )


# ---- Hard-case features (``layout.Feature``): never footprint nor coal.
# A dark weathered rock slope with sparse grass (80 % rock): the grass follows the forest's
# season. Topographic (cast) shadow leaves only diffuse skylight, which is bluer than the
# direct beam: the share of the signal lost under a full shadow rises toward SWIR, so shaded
# rock is dark, flat and falls toward SWIR like a cloud shadow (DOMAIN.md "Coal and stockpiles").
_ROCK = _spec(0.080, 0.090, 0.100, 0.130, 0.140, 0.170, 0.150)
TOPO_SHADOW_LOSS = _spec(0.70, 0.76, 0.80, 0.86, 0.86, 0.92, 0.93)
# Exposed reservoir bed, drying: grey-brown, moist (SWIR held down), bare.
MUD = _spec(0.075, 0.085, 0.095, 0.120, 0.125, 0.140, 0.110)
# A severe burn: black char, dark and nearly flat from blue to NIR, brighter in SWIR (NBR < 0):
# a single look passes for coal (NDVI < 0.2, every band < 0.12, SWIR1 above blue); only its
# regrowth and its SWIR rise tell it apart (DOMAIN.md "Coal and stockpiles").
CHAR = _spec(0.030, 0.032, 0.035, 0.050, 0.053, 0.080, 0.075)
# Growing days (15 Apr - 30 Sep) after which a burn scar has fully regreened.
BURN_RECOVERY_GROWING_DAYS = 450.0


def rock_slope_spectrum(day: date, pheno: Phenology, sun_elevation: float) -> F32:
    """The rocky slope seen on ``day``: 80 % rock, 20 % the forest's season, in topographic
    shadow whose depth grows as the sun sinks (``shadow_depth``)."""
    ground = 0.8 * _ROCK + 0.2 * surface_spectra(day, pheno)[Surface.FOREST]
    out: F32 = (ground * (1.0 - shadow_depth(sun_elevation) * TOPO_SHADOW_LOSS)).astype(np.float32)
    return out


def shadow_depth(sun_elevation: float) -> float:
    """Share of the direct beam the slope's ridge blocks: 0.35 under the summer sun, 0.5 at
    mid-September (52 deg), full from about 42 deg (mid-October) on."""
    return float(np.clip((62.0 - sun_elevation) / 20.0, 0.35, 1.0))


def growing_days(start: date, day: date) -> int:
    """Days of the growing season (15 Apr - 30 Sep) from ``start`` to ``day``."""
    total = 0
    for year in range(start.year, day.year + 1):
        a = max(start, date(year, 4, 15))
        b = min(day, date(year, 9, 30))
        total += max(0, (b - a).days)
    return total


def char_share(burned: date, day: date) -> float:
    """Share of a burn scar still bare char on ``day``: 1 at the fire, 0 once regreened (the
    regrowth, forest-like, takes the rest)."""
    if day < burned:
        return 0.0
    return float(max(0.0, 1.0 - growing_days(burned, day) / BURN_RECOVERY_GROWING_DAYS))
