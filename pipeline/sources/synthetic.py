"""The built-in synthetic scenario: Sentinel-2 L2A-like imagery of three fictional sites, with truth.

Why it exists: no multi-year imagery of the watched places ships with the project, and accuracy can
only be measured where the answer is known. The scenario is written to disk exactly as a real
source would deliver it (COGs in uint16 DN with the baseline-04.00 offset, 20 m SCL, a static STAC
catalog with Earth Search v1 asset keys), so the readers, masks and offset rules are exercised on
the same path as real data, and the truth (footprint and coal polygons per site and year) is
written beside it.

Everything is deterministic from ``ScenarioParams.seed``: each scene draws from a generator seeded
by (seed, site, date), each site-year by (seed, site, year), so a subset of sites or years gives
the same pixels as the full build, with or without a process pool.

The module reads top to bottom as: parameters and demo sites; the truth layout per site and year
(shapely, pure); scene planning (dates, platform, baseline; pure); rendering (numpy arrays in,
arrays out; pure); the file-writing edge (``build_scenario``); and ``SyntheticSource``, which
caches a build and delegates searching to ``StaticCatalogSource``.

Spectra, phenology and cloud climatology are judgement informed by DOMAIN.md, not measurements.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import secrets
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np
import pystac
import rasterio
import shapely
from affine import Affine
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from rasterio.crs import CRS
from rasterio.features import rasterize
from scipy.ndimage import gaussian_filter, zoom
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon, box, mapping, shape
from shapely.geometry.polygon import orient

from pipeline.errors import SiteError, SourceError
from pipeline.grid import Grid, reproject_geometry
from pipeline.sites import Site
from pipeline.sources.base import Scene
from pipeline.sources.catalog import StaticCatalogSource
from pipeline.sources.sensors import (
    S2_BAND_IDS,
    S2_BOA_OFFSET_DN,
    S2_OFFSET_BASELINE,
    S2_RESOLUTION,
    S2_SCALE,
    parse_baseline,
)

logger = logging.getLogger(__name__)

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]
U16 = NDArray[np.uint16]
Progress = Callable[[int, int], None]
"""Build progress callback: (scenes written, scenes in total)."""

# Bump when the generator's output changes for the same parameters: it is part of the cache key.
GENERATOR_VERSION = "2"
COLLECTION_ID = "sentinel-2-l2a"
DEMO_SITE_IDS: tuple[str, ...] = ("demo-camp", "demo-port", "demo-control")
# Scenes cover the site grid plus this margin, so readers must do windowed reads.
SCENE_MARGIN_M = 120.0
# Surfaces are rasterised at 10 m / SUPERSAMPLE (2.5 m), shifted there and block-averaged: mixed
# pixels at every edge, and misregistration in 2.5 m steps.
SUPERSAMPLE = 4
SUPER_RES_M = 10.0 / SUPERSAMPLE
MAX_SHIFT_M = 10.0
# The reflectance bands written, in the order of the spectra below.
SPECTRAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")
_WAVELENGTH_UM = np.array([0.490, 0.560, 0.665, 0.842, 0.865, 1.610, 2.190], dtype=np.float32)
_I10 = [i for i, b in enumerate(SPECTRAL_BANDS) if S2_RESOLUTION[b] == 10]
_I20 = [i for i, b in enumerate(SPECTRAL_BANDS) if S2_RESOLUTION[b] == 20]
_BAND_ID = {name: band_id for band_id, name in S2_BAND_IDS.items()}
# Sentinel-2B delivered from July 2017: before, revisit is 10 days (S2A alone).
_S2B_START = date(2017, 7, 6)
# A date on the 5-day revisit cycle; each site gets its own phase from its id.
_ORBIT_EPOCH = date(2015, 7, 4)
# The acquisition window the pipeline analyses by default (DOMAIN.md): always well sampled here.
AUTUMN_WINDOW = ((9, 1), (11, 15))

# Processing baselines by date (approximate history, judgement): from 04.00 on, DN carry +1000.
_BASELINES: tuple[tuple[date, str], ...] = (
    (date(2015, 1, 1), "02.04"),
    (date(2018, 5, 23), "02.07"),
    (date(2018, 11, 6), "02.09"),
    (date(2019, 7, 8), "02.13"),
    (date(2020, 1, 28), "02.14"),
    (date(2021, 3, 30), "03.00"),
    (date(2021, 6, 30), "03.01"),
    (date(2022, 1, 25), "04.00"),
    (date(2022, 12, 6), "05.09"),
    (date(2023, 12, 13), "05.10"),
    (date(2024, 7, 23), "05.11"),
)


# ------------------------------------------------------------------------------------------------
# Parameters and the demo sites


class ScenarioParams(BaseModel):
    """What the synthetic scenario contains. Every field is part of the cache key.

    The defaults are the demo scenario: three sites, ten years, 15-30 acquisitions per site and
    year (at least ``autumn_min_acquisitions`` of them in 1 Sep - 15 Nov), realistic clouds.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(42, ge=0, description="root of every random draw")
    start_year: int = Field(2016, ge=2016, le=2030, description="first calendar year imaged")
    end_year: int = Field(2025, ge=2016, le=2030, description="last calendar year imaged")
    acquisitions_per_year: tuple[int, int] = Field(
        (15, 30), description="(min, max) scenes per site and year, all seasons; max <= 36"
    )
    autumn_min_acquisitions: int = Field(
        8, ge=0, le=15, description="scenes at least in 1 Sep - 15 Nov (when the year allows)"
    )
    sites: tuple[str, ...] = Field(DEMO_SITE_IDS, description="demo site ids to generate")
    cloud_frequency: float = Field(
        1.0, ge=0.0, le=3.0, description="scales the monthly chance of clouds; 0 = always clear"
    )
    noise_sigma: float = Field(0.004, ge=0.0, le=0.05, description="sensor noise (reflectance)")
    gain_jitter: float = Field(0.03, ge=0.0, le=0.2, description="per-scene band gain, +/-")
    offset_jitter: float = Field(0.005, ge=0.0, le=0.05, description="per-scene offset, +/-")
    haze_probability: float = Field(0.3, ge=0.0, le=1.0, description="chance of unflagged haze")
    snow_probability: float = Field(0.5, ge=0.0, le=1.0, description="chance of snow, Dec-Mar")
    coal_dark_label_fraction: float = Field(
        0.35, ge=0.0, le=1.0, description="share of scenes where SCL labels coal 2 or 3"
    )
    partial_coverage_probability: float = Field(
        0.05, ge=0.0, le=1.0, description="chance a swath edge leaves part of a scene nodata"
    )
    ship_probability: float = Field(
        0.4, ge=0.0, le=1.0, description="chance a loaded coal ship is moored at the port"
    )
    max_shift_m: float = Field(
        MAX_SHIFT_M, ge=0.0, le=MAX_SHIFT_M, description="misregistration bound, multiple of 2.5"
    )

    @field_validator("sites")
    @classmethod
    def _known_sites(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in DEMO_SITE_IDS]
        if unknown or not value or len(set(value)) != len(value):
            raise ValueError(f"sites {list(value)}: need distinct ids among {list(DEMO_SITE_IDS)}")
        return value

    @field_validator("max_shift_m")
    @classmethod
    def _on_supergrid(cls, value: float) -> float:
        if not math.isclose(value / SUPER_RES_M, round(value / SUPER_RES_M)):
            raise ValueError(f"max_shift_m {value}: must be a multiple of {SUPER_RES_M} m")
        return value

    @model_validator(mode="after")
    def _ranges(self) -> ScenarioParams:
        if self.end_year < self.start_year:
            raise ValueError(f"end_year {self.end_year} is before start_year {self.start_year}")
        lo, hi = self.acquisitions_per_year
        if not 1 <= lo <= hi <= 36:
            raise ValueError(
                f"acquisitions_per_year {(lo, hi)}: need 1 <= min <= max <= 36 "
                "(36 is the 10-day revisit of one satellite)"
            )
        return self

    @property
    def years(self) -> list[int]:
        return list(range(self.start_year, self.end_year + 1))

    def cache_key(self) -> str:
        """A short hash of these parameters and ``GENERATOR_VERSION``."""
        text = f"{GENERATOR_VERSION}\n{self.model_dump_json()}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_SYNTHETIC_SOURCE_NOTE = (
    "sitewatch synthetic demo scenario (pipeline.sources.synthetic): a fictional site, "
    "not a real place; its imagery and truth are generated"
)


def _site_feature(
    site_id: str, name: str, kind: str, ring: list[list[float]], confidence: str
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {
            "id": site_id,
            "name": name,
            "kind": kind,
            "source": _SYNTHETIC_SOURCE_NOTE,
            "confidence": confidence,
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


# Rectangles in UTM (2.4 x 2.0 km, 1.6 x 1.2 km, 1.2 x 1.2 km) drawn in lon/lat, 6 decimals.
DEMO_SITES_GEOJSON: dict[str, Any] = {
    "type": "FeatureCollection",
    "features": [
        _site_feature(
            "demo-camp",
            "Demo camp with adjacent coal mine (synthetic)",
            "camp-mine",
            [
                [125.785725, 39.541349],
                [125.813622, 39.540676],
                [125.81435, 39.558676],
                [125.786446, 39.559348],
                [125.785725, 39.541349],
            ],
            "exact by construction: synthetic truth of a fictional site",
        ),
        _site_feature(
            "demo-port",
            "Demo coal-export quay (synthetic)",
            "port",
            [
                [125.19063, 38.714744],
                [125.20902, 38.714397],
                [125.209353, 38.725203],
                [125.19096, 38.72555],
                [125.19063, 38.714744],
            ],
            "exact by construction: synthetic truth of a fictional site",
        ),
        _site_feature(
            "demo-control",
            "Demo control area: forest, fields, stable village, pond (synthetic)",
            "control",
            [
                [126.293233, 39.094394],
                [126.307094, 39.094715],
                [126.306683, 39.105517],
                [126.292819, 39.105196],
                [126.293233, 39.094394],
            ],
            "exact by construction: synthetic truth of a fictional site",
        ),
    ],
}


def demo_sites(only: Iterable[str] | None = None) -> list[Site]:
    """The demo sites as ``Site`` objects (the same as ``load_sites("aoi/demo.geojson")``)."""
    wanted = None if only is None else set(only)
    out = []
    for feature in DEMO_SITES_GEOJSON["features"]:
        props = dict(feature["properties"])
        if wanted is not None and props["id"] not in wanted:
            continue
        extra = {k: v for k, v in props.items() if k not in ("id", "name", "kind", "source")}
        geom = shape(feature["geometry"])
        out.append(Site(props["id"], props["name"], props["kind"], geom, props["source"], extra))
    return out


# ------------------------------------------------------------------------------------------------
# Truth: which surface lies where, per site and year-state (local metres around the site centre)


class Surface(IntEnum):
    """Ground surfaces; each has a spectrum (some vary with the season)."""

    FOREST = 0
    PADDY = 1
    DRYFIELD = 2
    BUILT = 3
    YARD = 4
    ASPHALT = 5
    SPOIL = 6
    COAL = 7
    WATER = 8
    SHIP = 9  # transient: a loaded coal ship at the quay in some scenes, never truth


N_SURFACES = len(Surface)
FOOTPRINT_SURFACES = frozenset(
    {Surface.BUILT, Surface.YARD, Surface.ASPHALT, Surface.SPOIL, Surface.COAL}
)
LayoutItem = tuple[Surface, Polygon]


def _rect(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    return box(x0, y0, x1, y1)


def _pile(cx: float, cy: float, area_ha: float, aspect: float = 1.3) -> Polygon:
    """A compact elliptical stockpile of ``area_ha`` (long axis east-west)."""
    circle = Point(0.0, 0.0).buffer(1.0, quad_segs=16)
    b = math.sqrt(area_ha * 1e4 / (circle.area * aspect))  # exact area for the 64-gon
    return affinity.translate(affinity.scale(circle, aspect * b, b, origin=(0, 0)), cx, cy)


def _step(table: Mapping[int, Any], year: int) -> Any:
    """The value of the latest key <= year (the first value before the table starts)."""
    keys = sorted(table)
    past = [k for k in keys if k <= year]
    return table[past[-1] if past else keys[0]]


# demo-camp: compound, 2018 annex, 2020 family zone, 2023 west wing; mine yard, spoil, coal.
_CAMP_YARDS: dict[int, tuple[Polygon, ...]] = {
    2015: (_rect(-900, -150, -250, 350), _rect(250, -250, 700, 150)),
    2018: (_rect(-250, -50, -50, 300),),
    2020: (_rect(-800, -450, -450, -150),),
    2023: (_rect(-1080, -50, -900, 300),),
}
_CAMP_BUILT: dict[int, tuple[Polygon, ...]] = {
    2015: (
        *(_rect(x, y, x + 120, y + 40) for x in (-860, -700, -540, -380) for y in (250, 150, 50)),
        _rect(-700, -120, -560, -40),
        _rect(280, 60, 380, 130),
    ),
    2018: (_rect(-230, 200, -70, 260), _rect(-230, 80, -70, 140)),
    2020: tuple(_rect(x, y, x + 90, y + 30) for x in (-780, -660, -540) for y in (-420, -300)),
    2023: (_rect(-1060, 180, -920, 270), _rect(-1060, 20, -920, 110)),
}
_CAMP_ASPHALT = (_rect(-860, -120, -740, -40), _rect(-250, -20, 250, 10))
_CAMP_SPOIL_HA = {2015: 5.0, 2018: 7.0, 2021: 9.5, 2023: 12.0, 2025: 14.0}
_CAMP_PILE_SLOTS = ((400.0, -165.0), (560.0, -165.0), (470.0, -30.0), (620.0, -30.0))
_CAMP_COAL_HA: dict[int, tuple[float, ...]] = {
    2015: (0.8, 0.6, 0.0, 0.0),
    2017: (0.7, 0.0, 0.5, 0.0),
    2018: (1.0, 0.8, 0.0, 0.0),
    2019: (1.1, 0.9, 0.6, 0.0),
    2020: (1.2, 1.0, 0.8, 0.0),
    2021: (0.9, 0.7, 0.0, 0.6),
    2022: (1.2, 1.1, 0.7, 0.5),
    2023: (1.2, 1.2, 1.0, 0.8),
    2024: (1.0, 0.9, 0.7, 0.5),
    2025: (1.2, 1.2, 1.2, 1.0),
}
_CAMP_LANDSCAPE: tuple[LayoutItem, ...] = (
    (Surface.PADDY, _rect(-1150, -950, -600, -520)),
    (Surface.DRYFIELD, _rect(-600, -950, -100, -560)),
    (Surface.DRYFIELD, _rect(300, -950, 1100, -650)),
    (Surface.WATER, _pile(150, -420, 1.6, aspect=1.6)),
)

# demo-port: sea to the south, a reclaimed yard and a pier (stable); coal piles vary strongly.
_PORT_SEA = Polygon(
    [
        (-2500, -120),
        (-500, -160),
        (0, -140),
        (500, -170),
        (2500, -130),
        (2500, -2500),
        (-2500, -2500),
    ]
)
_PORT_LANDSCAPE: tuple[LayoutItem, ...] = (
    (Surface.WATER, _PORT_SEA),
    (Surface.DRYFIELD, _rect(-780, 250, -300, 580)),
    (Surface.PADDY, _rect(100, 250, 780, 580)),
)
_PORT_FIXED: tuple[LayoutItem, ...] = (
    (Surface.YARD, _rect(-550, -180, 450, 100)),
    (Surface.BUILT, _rect(-450, -400, 350, -180)),
    (Surface.BUILT, _rect(-500, 40, -300, 90)),
    (Surface.BUILT, _rect(-250, 40, -50, 90)),
)
_PORT_PILE_SLOTS = (
    (-340.0, -290.0), (-170.0, -290.0), (0.0, -290.0), (170.0, -290.0),
    (-400.0, -80.0), (150.0, -80.0),
)  # fmt: skip
_PORT_COAL_HA: dict[int, tuple[float, ...]] = {
    2015: (1.4, 1.3, 1.2, 1.2, 1.2, 1.2),
    2017: (1.2, 1.0, 0.9, 0.0, 1.0, 0.9),
    2018: (0.6, 0.0, 0.0, 0.0, 0.6, 0.0),
    2019: (0.7, 0.6, 0.0, 0.0, 0.7, 0.0),
    2020: (0.9, 0.8, 0.6, 0.0, 0.7, 0.5),
    2021: (1.0, 0.9, 0.8, 0.6, 0.8, 0.7),
    2022: (1.2, 1.1, 1.0, 0.8, 1.0, 0.9),
    2023: (1.4, 1.3, 1.2, 1.0, 1.2, 1.1),
    2024: (1.4, 1.4, 1.4, 1.4, 1.2, 1.2),
    2025: (1.3, 1.2, 1.1, 1.0, 1.0, 0.9),
}
# Berths where a ship may lie: along the pier's south and east faces (on water).
_PORT_BERTHS = (_rect(-330, -434, -150, -404), _rect(354, -390, 384, -210))

# demo-control: nothing changes but the seasons.
_CONTROL_LAYOUT: tuple[LayoutItem, ...] = (
    (Surface.DRYFIELD, _rect(-580, -580, -100, -250)),
    (Surface.PADDY, _rect(-100, -580, 300, -300)),
    (Surface.WATER, _pile(-250, 250, 1.1, aspect=1.4)),
    (Surface.YARD, _rect(150, 100, 400, 300)),
    *(
        (Surface.BUILT, _rect(x, y, x + 40, y + 20))
        for x in (180, 260, 340)
        for y in (130, 200, 260)
    ),
)


def site_layout(site_id: str, year: int) -> tuple[LayoutItem, ...]:
    """The surfaces of ``site_id`` in the year-state ``year``, in paint order (later on top).

    Coordinates are metres east/north of the site centre in its UTM zone; everything not covered
    is forest. A year-state holds from 1 April of ``year`` to 31 March of the next year.
    """
    if site_id == "demo-camp":
        yards = [p for y, ps in _CAMP_YARDS.items() if y <= year for p in ps]
        built = [p for y, ps in _CAMP_BUILT.items() if y <= year for p in ps]
        radius = math.sqrt(2 * _step(_CAMP_SPOIL_HA, year) * 1e4 / math.pi)
        spoil = (
            Point(700, -50).buffer(radius, quad_segs=16).intersection(_rect(700, -2e3, 2e3, 2e3))
        )
        piles = _piles(_CAMP_PILE_SLOTS, _step(_CAMP_COAL_HA, year))
        return (
            *_CAMP_LANDSCAPE,
            *((Surface.YARD, p) for p in yards),
            *((Surface.BUILT, p) for p in built),
            *((Surface.ASPHALT, p) for p in _CAMP_ASPHALT),
            (Surface.SPOIL, spoil),
            *((Surface.COAL, p) for p in piles),
        )
    if site_id == "demo-port":
        piles = _piles(_PORT_PILE_SLOTS, _step(_PORT_COAL_HA, year), aspect=1.4)
        return (*_PORT_LANDSCAPE, *_PORT_FIXED, *((Surface.COAL, p) for p in piles))
    if site_id == "demo-control":
        return _CONTROL_LAYOUT
    raise SiteError(f"site {site_id!r} has no synthetic layout; known: {list(DEMO_SITE_IDS)}")


def _piles(
    slots: Sequence[tuple[float, float]], areas: Sequence[float], aspect: float = 1.3
) -> list[Polygon]:
    return [_pile(x, y, a, aspect) for (x, y), a in zip(slots, areas, strict=True) if a > 0]


def truth_geometries(site_id: str, year: int) -> tuple[MultiPolygon, MultiPolygon]:
    """(footprint, coal) of a year-state in local metres: the union of the footprint surfaces."""
    layout = site_layout(site_id, year)
    footprint = shapely.union_all([g for s, g in layout if s in FOOTPRINT_SURFACES])
    coal = shapely.union_all([g for s, g in layout if s is Surface.COAL])
    return _as_multipolygon(footprint), _as_multipolygon(coal)


def _as_multipolygon(geom: Any) -> MultiPolygon:
    if geom.is_empty:
        return MultiPolygon()
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    raise SourceError(f"expected a polygon, got {geom.geom_type}")


def state_year(day: date) -> int:
    """The year-state seen on ``day``: 1 April Y .. 31 March Y+1 is state Y."""
    return day.year if day.month >= 4 else day.year - 1


# ------------------------------------------------------------------------------------------------
# Spectra and phenology (reflectance in SPECTRAL_BANDS order)


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
_SNOW = _spec(0.850, 0.850, 0.830, 0.760, 0.740, 0.110, 0.080)
_CLOUD = _spec(0.550, 0.550, 0.560, 0.580, 0.580, 0.450, 0.330)
# Share of the signal a full cloud shadow removes per band: diffuse skylight keeps blue brighter.
_SHADOW_LOSS = _spec(0.55, 0.62, 0.66, 0.72, 0.72, 0.75, 0.75)
_CIRRUS = _spec(1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.5)
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


def surface_spectra(day: date, pheno: Phenology) -> F32:
    """(N_SURFACES, 7) reflectance of every surface on ``day``.

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
            (160 + s, _PADDY_FLOODED), (215 + s, _CROP_PEAK), (245 + s, _CROP_PEAK),
            (h - 0.5, _CROP_SENESCENT), (h, _PADDY_STUBBLE), (367, _PADDY_STUBBLE),
        ],
    )  # fmt: skip
    h = pheno.dryfield_harvest
    out[Surface.DRYFIELD] = _curve(
        doy,
        [
            (0, _SOIL_TILLED), (125 + s, _SOIL_TILLED), (200 + s, _CROP_PEAK),
            (235 + s, _CROP_PEAK), (h - 0.5, _CROP_SENESCENT), (h, _SOIL_TILLED),
            (367, _SOIL_TILLED),
        ],
    )  # fmt: skip
    for surface, spectrum in STATIC_SPECTRA.items():
        out[surface] = spectrum
    return out


# ------------------------------------------------------------------------------------------------
# Scene planning: dates, platform, baseline, sun (pure)


def _site_key(site_id: str) -> int:
    return zlib.crc32(site_id.encode())


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(keys)))


def _revisit(site_id: str, day: date) -> int | None:
    """The revisit index of ``day`` for this site, or None when no satellite passes."""
    offset = (day - _ORBIT_EPOCH).days - _site_key(site_id) % 5
    return offset // 5 if offset % 5 == 0 else None


def platform_of(site_id: str, day: date) -> str | None:
    """``sentinel-2a``/``sentinel-2b`` on the site's 5-day cycle (2b from July 2017), or None."""
    k = _revisit(site_id, day)
    if k is None:
        return None
    if k % 2 == 0:
        return "sentinel-2a"
    return "sentinel-2b" if day >= _S2B_START else None


def baseline_of(day: date) -> str:
    """The processing baseline of a product acquired (and processed) on ``day``."""
    return [b for start, b in _BASELINES if start <= day][-1]


def boa_offset_dn(baseline: str) -> int:
    """DN added to round(reflectance * 10000) under ``baseline``: 1000 from 04.00 on, else 0."""
    parsed = parse_baseline(baseline)
    return -S2_BOA_OFFSET_DN if parsed is not None and parsed >= S2_OFFSET_BASELINE else 0


def acquisition_dates(params: ScenarioParams, site_id: str, year: int) -> list[date]:
    """The scenes of one site and calendar year: a sample of the real revisit days.

    The autumn window (1 Sep - 15 Nov) gets at least ``autumn_min_acquisitions`` (or 40%) of them,
    so that the default analysis season has enough clear views in a typical year.
    """
    rng = _rng(params.seed, _site_key(site_id), year, 1)
    days = [date(year, 1, 1) + timedelta(d) for d in range(366 if _leap(year) else 365)]
    passes = [d for d in days if platform_of(site_id, d) is not None]
    a0, a1 = date(year, *AUTUMN_WINDOW[0]), date(year, *AUTUMN_WINDOW[1])
    autumn = [d for d in passes if a0 <= d <= a1]
    other = [d for d in passes if not a0 <= d <= a1]
    lo, hi = params.acquisitions_per_year
    n = int(rng.integers(lo, hi + 1))
    n_autumn = min(len(autumn), n, max(params.autumn_min_acquisitions, round(0.4 * n)))
    n_other = min(len(other), n - n_autumn)
    picked = [autumn[i] for i in rng.choice(len(autumn), n_autumn, replace=False)]
    picked += [other[i] for i in rng.choice(len(other), n_other, replace=False)]
    return sorted(picked)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def sun_position(day: date, lat: float) -> tuple[float, float]:
    """(elevation, azimuth) in degrees at the 10:30 local solar time of the overpass."""
    doy = day.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    phi, hour = math.radians(lat), math.radians(-22.5)
    sin_el = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour)
    el = math.asin(sin_el)
    cos_az = (math.sin(decl) - sin_el * math.sin(phi)) / (math.cos(el) * math.cos(phi))
    az = math.degrees(math.acos(max(-1.0, min(1.0, cos_az))))  # morning: east of south
    return math.degrees(el), az


# Per month: chance of (clear, scattered, broken, overcast) skies. Judgement from the monsoon
# climate (DOMAIN.md): wet July-August, clearest October.
_SKY_BY_MONTH: Mapping[int, tuple[float, float, float, float]] = {
    1: (0.55, 0.25, 0.12, 0.08), 2: (0.55, 0.25, 0.12, 0.08), 3: (0.45, 0.25, 0.15, 0.15),
    4: (0.40, 0.25, 0.15, 0.20), 5: (0.35, 0.25, 0.20, 0.20), 6: (0.20, 0.25, 0.25, 0.30),
    7: (0.10, 0.20, 0.30, 0.40), 8: (0.15, 0.20, 0.30, 0.35), 9: (0.45, 0.25, 0.15, 0.15),
    10: (0.60, 0.20, 0.10, 0.10), 11: (0.50, 0.25, 0.12, 0.13), 12: (0.50, 0.25, 0.13, 0.12),
}  # fmt: skip
_COVER_RANGE = ((0.0, 0.0), (0.02, 0.3), (0.3, 0.7), (0.7, 1.0))


# ------------------------------------------------------------------------------------------------
# Rendering (pure: arrays and plain values in, arrays out)


def block_fractions(labels: U8, n_classes: int, factor: int) -> F32:
    """(H, W, n_classes) share of each label in every ``factor`` x ``factor`` block of ``labels``."""
    h, w = labels.shape[0] // factor, labels.shape[1] // factor
    base = np.arange(h * w, dtype=np.intp).reshape(h, 1, w, 1) * n_classes
    index = base + labels.reshape(h, factor, w, factor)
    counts = np.bincount(index.ravel(), minlength=h * w * n_classes).astype(np.float32)
    out: F32 = counts.reshape(h, w, n_classes) * np.float32(1.0 / (factor * factor))
    return out


def block_mean(a: F32, factor: int) -> F32:
    """Mean over ``factor`` x ``factor`` blocks of the first two axes (e.g. 10 m -> 20 m)."""
    # Strided sums: several times faster than reshape().mean() on these small trailing axes.
    out: F32 = np.zeros((a.shape[0] // factor, a.shape[1] // factor, *a.shape[2:]), np.float32)
    for i in range(factor):
        for j in range(factor):
            out += a[i::factor, j::factor]
    out *= np.float32(1.0 / (factor * factor))
    return out


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> F32:
    """Gaussian-smoothed white noise scaled to zero mean and unit variance."""
    f: F32 = gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
    out: F32 = ((f - f.mean()) / (f.std() + 1e-12)).astype(np.float32)
    return out


def cover_opacity(field: F32, cover: float, softness: float = 0.6) -> F32:
    """Opacity 0..1 where ``field`` exceeds its (1 - cover) quantile, with soft edges."""
    if cover <= 0:
        return np.zeros_like(field)
    threshold = float(np.quantile(field, 1.0 - cover))
    out: F32 = np.clip((field - threshold) / softness + 0.5, 0.0, 1.0).astype(np.float32)
    return out


@dataclass(frozen=True)
class Atmosphere:
    """Per-scene conditions at 10 m on the scene grid: all arrays (H, W), values 0..1 or reflectance."""

    cloud: F32  # opacity of thick cloud
    cloud_brightness: float
    cirrus: F32  # additive reflectance at 1.0 of _CIRRUS
    shadow: F32  # cloud-shadow strength
    haze: F32  # additive path reflectance in blue
    snow: F32  # snow cover share where there is land (see visible_snow)
    nodata: NDArray[np.bool_]


def draw_atmosphere(
    rng: np.random.Generator,
    params: ScenarioParams,
    day: date,
    shape10: tuple[int, int],
    sun: tuple[float, float],
) -> Atmosphere:
    """Clouds, cirrus, displaced shadows, haze, winter snow and swath edges for one scene.

    Fields are drawn on a 60 m grid padded by the longest shadow, so a cloud outside the chip can
    cast its shadow into it, then interpolated to 10 m.
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
    shadow6 = cloud_big[r0 : r0 + h6, c0 : c0 + w6] * float(rng.uniform(0.75, 1.0))
    cirrus6 = np.zeros((h6, w6), np.float32)
    if rng.random() < 0.15 * params.cloud_frequency:
        amount = float(rng.uniform(0.015, 0.05))
        cirrus6 = cover_opacity(smooth_field(rng, (h6, w6), 4.0), float(rng.uniform(0.1, 0.6)))
        cirrus6 *= amount
    haze6 = np.zeros((h6, w6), np.float32)
    if rng.random() < params.haze_probability:
        haze_field = smooth_field(rng, (h6, w6), 8.0)
        haze6 = (float(rng.uniform(0.005, 0.03)) * np.clip(0.6 + 0.3 * haze_field, 0, 1)).astype(
            np.float32
        )
    snow6 = np.zeros((h6, w6), np.float32)
    if day.month in (12, 1, 2, 3) and rng.random() < params.snow_probability:
        snow6 = cover_opacity(smooth_field(rng, (h6, w6), 5.0), float(rng.uniform(0.4, 1.0)))
    nodata = np.zeros(shape10, bool)
    if rng.random() < params.partial_coverage_probability:
        # A swath edge about 12 degrees off north-south; the part beyond it has no data.
        rows, cols = np.mgrid[0 : shape10[0], 0 : shape10[1]]
        width = float(rng.uniform(0.15, 0.6)) * shape10[1]
        slant = math.tan(math.radians(12.0)) * (rows - shape10[0] / 2)
        nodata = cols + slant < width if rng.random() < 0.5 else cols + slant > shape10[1] - width
    brightness = float(rng.uniform(0.8, 1.3))

    def up(a: F32) -> F32:
        if not a.any():  # most fields are absent from most scenes
            return np.zeros(shape10, np.float32)
        out: F32 = zoom(a, 6, order=1, grid_mode=True, mode="nearest").astype(np.float32)
        return out

    return Atmosphere(
        up(cloud6), brightness, up(cirrus6), up(shadow6), up(haze6), up(snow6), nodata
    )


def ground_reflectance(fractions: F32, spectra: F32, texture: F32) -> F32:
    """(H, W, 7) reflectance of mixed pixels: area-weighted spectra, with surface texture."""
    refl = fractions @ spectra
    refl *= (1.0 + (fractions @ _TEXTURE_AMP) * texture)[..., None]
    return refl.astype(np.float32)


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
        refl = refl * (1.0 - snow) + snow * _SNOW
    if a.shadow.any():
        refl *= 1.0 - a.shadow[..., None] * _SHADOW_LOSS
    if a.haze.any():
        refl += a.haze[..., None] * (_WAVELENGTH_UM[0] / _WAVELENGTH_UM) ** 1.5
    if a.cirrus.any():
        refl += a.cirrus[..., None] * _CIRRUS
    if a.cloud.any():
        cloud = a.cloud[..., None]
        refl = refl * (1.0 - cloud) + cloud * (_CLOUD * np.float32(a.cloud_brightness))
    out: F32 = refl.astype(np.float32, copy=False)
    return out


def scene_classification(
    fractions20: F32,
    observed20: F32,
    atmosphere20: Mapping[str, F32],
    nodata20: NDArray[np.bool_],
    coal_label: int | None,
) -> U8:
    """A Sen2Cor-like SCL at 20 m, decided from the known causes.

    Priority: nodata, cloud (9 > 0.6 opacity, 8 > 0.3), thin cirrus, snow, cloud shadow, water,
    coal as dark area/shadow (in some scenes, ``coal_label``), vegetation (NDVI > 0.4), not
    vegetated. Thin cloud edges below 0.3 opacity are left unflagged, as Sen2Cor does.
    """
    red, nir = observed20[..., 2], observed20[..., 3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    scl = np.where(ndvi > 0.4, 4, 5).astype(np.uint8)
    if coal_label is not None:
        scl[fractions20[..., Surface.COAL] > 0.5] = coal_label
    scl[fractions20[..., Surface.WATER] > 0.5] = 6
    scl[atmosphere20["shadow"] > 0.4] = 3
    scl[atmosphere20["snow"] > 0.5] = 11
    scl[atmosphere20["cirrus"] > 0.01] = 10
    scl[atmosphere20["cloud"] > 0.3] = 8
    scl[atmosphere20["cloud"] > 0.6] = 9
    scl[nodata20] = 0
    return scl


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


def scene_grid(site: Site) -> Grid:
    """The scene extent: the site's 10 m analysis grid expanded by ``SCENE_MARGIN_M``."""
    g = site.grid(10.0, 200.0)
    left, bottom, right, top = g.bounds
    m = SCENE_MARGIN_M
    return Grid.from_bounds(g.crs, (left - m, bottom - m, right + m, top + m), 10.0)


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
    rng = _rng(seed, _site_key(site_id), 0, 2)
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
    mask: NDArray[np.bool_] = _labels(canvas, [(Surface.SHIP, _PORT_BERTHS[berth])]) == Surface.SHIP
    return mask


@dataclass(frozen=True)
class _SceneMeta:
    """What the item JSON needs about one rendered scene."""

    site_id: str
    day: date
    platform: str
    baseline: str
    shift_m: tuple[float, float]
    sun: tuple[float, float]
    percentages: Mapping[str, float]


def render_scene(
    params: ScenarioParams,
    site_id: str,
    day: date,
    labels_by_state: Mapping[int, U8] | None = None,
) -> tuple[dict[str, NDArray[Any]], _SceneMeta]:
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
    rng = _rng(params.seed, _site_key(site_id), day.toordinal(), 0)
    year = state_year(day)
    pheno = draw_phenology(_rng(params.seed, _site_key(site_id), year, 3))

    k = int(params.max_shift_m / SUPER_RES_M)
    sx, sy = (int(v) for v in rng.integers(-k, k + 1, size=2))
    if labels_by_state is None or year not in labels_by_state:
        labels = _labels(canvas, site_layout(site_id, year))
    else:
        labels = labels_by_state[year]
    if site_id == "demo-port" and rng.random() < params.ship_probability:
        ship = _berth_mask(params.seed, int(rng.integers(len(_PORT_BERTHS))))
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
    return assets, _SceneMeta(site_id, day, platform, baseline, shift_m, sun, percentages)


# ------------------------------------------------------------------------------------------------
# The file-writing edge


def item_id(site_id: str, day: date, platform: str) -> str:
    """An Earth-Search-like id, unique per site and date."""
    return f"S2{platform[-1].upper()}_SYN-{site_id}_{day:%Y%m%d}_0_L2A"


def _acquired_at(site_id: str, day: date) -> datetime:
    seconds = 2 * 3600 + 15 * 60 + _site_key(site_id) % 600  # about 10:30 local solar time
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


def _write_cog(path: Path, array: NDArray[Any], transform: Affine, crs: CRS) -> None:
    h, w = array.shape
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=w,
        height=h,
        count=1,
        dtype=array.dtype.name,
        crs=crs,
        transform=transform,
        nodata=0,
        compress="deflate",
        predictor=2,
        # One tile for these small chips: the default 512 tile costs time for nothing.
        blocksize=256 if max(h, w) <= 256 else 512,
    ) as dst:
        dst.write(array, 1)


def _lonlat_polygon(geom_utm: Any, crs: str) -> Polygon | MultiPolygon:
    geom = reproject_geometry(geom_utm, crs, "EPSG:4326")
    rounded = shapely.transform(geom, lambda xy: np.round(xy, 6))
    if isinstance(rounded, Polygon):
        return orient(rounded, 1.0)
    if isinstance(rounded, MultiPolygon):
        return MultiPolygon([orient(p, 1.0) for p in rounded.geoms])
    raise SourceError(f"expected a polygon, got {rounded.geom_type}")


def _item_dict(
    meta: _SceneMeta, canvas: _Canvas, shapes: Mapping[str, tuple[int, int]]
) -> dict[str, Any]:
    grid = canvas.scene_grid
    epsg = int(grid.crs.split(":")[1])
    left, bottom, right, top = grid.bounds
    footprint = shapely.segmentize(box(left, bottom, right, top), 500.0)
    geom = _lonlat_polygon(footprint, grid.crs)
    assets: dict[str, Any] = {}
    for key in (*SPECTRAL_BANDS, "scl"):
        res = S2_RESOLUTION[key]
        h, w = shapes[key]
        band: dict[str, Any] = {"nodata": 0, "data_type": "uint8" if key == "scl" else "uint16"}
        asset: dict[str, Any] = {
            "href": f"./{key}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": f"{_BAND_ID[key]} - {res}m",
            "gsd": res,
            "proj:shape": [h, w],
            "proj:transform": [float(res), 0.0, left, 0.0, -float(res), top],
            "roles": ["data"],
        }
        if key != "scl":
            offset = -boa_offset_dn(meta.baseline) * S2_SCALE
            band.update({"scale": S2_SCALE, "offset": offset, "spatial_resolution": res})
            asset["eo:bands"] = [{"name": _BAND_ID[key], "common_name": key}]
            asset["roles"] = ["data", "reflectance"]
        asset["raster:bands"] = [band]
        assets[key] = asset
    dt = _acquired_at(meta.site_id, meta.day)
    properties: dict[str, Any] = {
        "datetime": dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "platform": meta.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        **meta.percentages,
        "proj:epsg": epsg,
        "s2:processing_baseline": meta.baseline,
        "s2:product_type": "S2MSI2A",
        "earthsearch:boa_offset_applied": False,
        "view:sun_elevation": round(meta.sun[0], 3),
        "view:sun_azimuth": round(meta.sun[1], 3),
        "sitewatch:synthetic": True,
        "sitewatch:generator_version": GENERATOR_VERSION,
        # Ground features appear this many 10 m pixels east (x) and north (y) of their true place.
        "sitewatch:shift_px": [meta.shift_m[0] / 10.0, meta.shift_m[1] / 10.0],
    }
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "id": item_id(meta.site_id, meta.day, meta.platform),
        "geometry": mapping(geom),
        "bbox": [round(v, 6) for v in geom.bounds],
        "properties": properties,
        "links": [],
        "assets": assets,
        "collection": COLLECTION_ID,
    }


@dataclass(frozen=True)
class _Unit:
    """One (site, calendar year) of work: its scenes are rendered and written together."""

    params: ScenarioParams
    site_id: str
    year: int
    dates: tuple[date, ...]
    collection_dir: str


def _build_unit(unit: _Unit) -> list[dict[str, Any]]:
    """Render and write every scene of one site-year; return the item dicts (main process saves)."""
    canvas = _canvas(unit.site_id, unit.params.seed)
    grid = canvas.scene_grid
    crs = CRS.from_string(grid.crs)
    grid20 = grid.rescaled(20.0)
    states = sorted({state_year(d) for d in unit.dates})
    labels = {y: _labels(canvas, site_layout(unit.site_id, y)) for y in states}
    items = []
    with rasterio.Env():
        for day in unit.dates:
            assets, meta = render_scene(unit.params, unit.site_id, day, labels)
            item = item_id(unit.site_id, day, meta.platform)
            folder = Path(unit.collection_dir) / item
            folder.mkdir(parents=True)
            shapes = {}
            for key, array in assets.items():
                transform = grid.transform if S2_RESOLUTION[key] == 10 else grid20.transform
                _write_cog(folder / f"{key}.tif", array, transform, crs)
                shapes[key] = (int(array.shape[0]), int(array.shape[1]))
            items.append(_item_dict(meta, canvas, shapes))
    return items


def truth_collection(site_id: str, years: Iterable[int]) -> dict[str, Any]:
    """The truth GeoJSON of a site: a feature per (year, layer), RFC 7946, 6 decimals, CCW."""
    (site,) = demo_sites([site_id])
    crs = site.utm_crs
    centre = site.geometry_in(crs).centroid
    features = []
    for year in years:
        for layer, geom in zip(("footprint", "coal"), truth_geometries(site_id, year), strict=True):
            utm = affinity.translate(geom, centre.x, centre.y)
            lonlat = _as_multipolygon(_lonlat_polygon(utm, crs)) if not utm.is_empty else utm
            features.append(
                {
                    "type": "Feature",
                    "properties": {
                        "site_id": site_id,
                        "year": year,
                        "layer": layer,
                        "area_ha": round(float(utm.area) / 1e4, 4),
                    },
                    "geometry": mapping(lonlat),
                }
            )
    return {"type": "FeatureCollection", "features": features}


def _geojson_text(doc: Mapping[str, Any]) -> str:
    """Compact, one feature per line, deterministic bytes."""
    lines = [json.dumps(f, separators=(",", ":")) for f in doc["features"]]
    return '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"


def build_scenario(
    params: ScenarioParams,
    root: Path,
    progress: Progress | None = None,
    *,
    workers: int | None = None,
) -> Path:
    """Write the scenario into ``root`` (which must be empty or absent); return catalog.json.

    Layout: ``catalog.json`` -> ``sentinel-2-l2a/collection.json`` -> one folder per item with its
    JSON and one COG per asset; ``truth/<site_id>.geojson``; ``scenario.json`` (the parameters).
    ``workers`` > 1 renders site-years in that many processes (None: up to 2 for a large build);
    the bytes written do not depend on it.
    """
    # Absolute: pystac's normalize_hrefs resolves a relative root against the wrong folder.
    root = Path(root).resolve()
    if root.exists() and any(root.iterdir()):
        raise SourceError(f"{root}: scenario folder is not empty; give a new or empty folder")
    collection_dir = root / COLLECTION_ID
    collection_dir.mkdir(parents=True, exist_ok=True)
    units = [
        _Unit(params, s, y, tuple(acquisition_dates(params, s, y)), str(collection_dir))
        for s in params.sites
        for y in params.years
    ]
    total = sum(len(u.dates) for u in units)
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if total >= 100 else 1
    logger.info("building synthetic scenario: %d scenes into %s (%d workers)", total, root, workers)
    results: dict[int, list[dict[str, Any]]] = {}
    done = 0
    if progress:
        progress(0, total)
    if workers <= 1:
        for i, unit in enumerate(units):
            results[i] = _build_unit(unit)
            done += len(unit.dates)
            if progress:
                progress(done, total)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_build_unit, unit): i for i, unit in enumerate(units)}
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                done += len(units[i].dates)
                if progress:
                    progress(done, total)
    items = [item for i in range(len(units)) for item in results[i]]
    items.sort(key=lambda d: (d["properties"]["datetime"], d["id"]))
    catalog_path = _write_catalog(params, root, items)
    truth_dir = root / "truth"
    truth_dir.mkdir()
    for site_id in params.sites:
        doc = truth_collection(site_id, params.years)
        (truth_dir / f"{site_id}.geojson").write_text(_geojson_text(doc), encoding="utf-8")
    summary = {
        "generator_version": GENERATOR_VERSION,
        "params": params.model_dump(mode="json"),
        "scenes": total,
        "truth": {s: f"truth/{s}.geojson" for s in params.sites},
    }
    (root / "scenario.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return catalog_path


def _write_catalog(params: ScenarioParams, root: Path, items: list[dict[str, Any]]) -> Path:
    catalog = pystac.Catalog(
        id="sitewatch-synthetic",
        title="sitewatch synthetic demo scenario",
        description=(
            "Generated Sentinel-2 L2A-like scenes of fictional sites with known truth "
            f"(pipeline.sources.synthetic, generator {GENERATOR_VERSION}, seed {params.seed}). "
            "Not real imagery."
        ),
    )
    times = [datetime.fromisoformat(d["properties"]["datetime"]) for d in items]
    boxes = [d["bbox"] for d in items]
    corners = np.array(boxes, dtype=float).reshape(-1, 4)
    bbox = (
        [*corners[:, :2].min(axis=0), *corners[:, 2:].max(axis=0)]
        if boxes
        else [-180, -90, 180, 90]
    )
    extent = pystac.Extent(
        pystac.SpatialExtent([bbox]),
        pystac.TemporalExtent([[min(times, default=None), max(times, default=None)]]),
    )
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="Sentinel-2 Level-2A (synthetic)",
        description="Synthetic Sentinel-2 L2A with Earth Search v1 asset keys and DN conventions.",
        extent=extent,
    )
    catalog.add_child(collection)
    for d in items:
        collection.add_item(pystac.Item.from_dict(d, migrate=False, preserve_dict=False))
    # The trailing separator tells pystac ``root`` is a folder even when its name has a dot.
    catalog.normalize_hrefs(os.path.join(str(root), ""))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


# ------------------------------------------------------------------------------------------------
# The source


@dataclass(frozen=True)
class SiteTruth:
    """The true state of one site in one year-state, as read back from the truth file.

    Geometries are (Multi)Polygons in EPSG:4326 (empty when the layer is absent, e.g. coal at the
    control site); areas are hectares computed in UTM from the exact shapes.
    """

    site_id: str
    year: int
    footprint: Polygon | MultiPolygon
    coal: Polygon | MultiPolygon
    footprint_area_ha: float
    coal_area_ha: float


def read_truth(path: Path) -> dict[int, SiteTruth]:
    """Parse a ``truth/<site_id>.geojson`` file into one ``SiteTruth`` per year."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        layers: dict[tuple[int, str], tuple[Any, float, str]] = {}
        for f in doc["features"]:
            p = f["properties"]
            layers[(int(p["year"]), p["layer"])] = (
                shape(f["geometry"]),
                float(p["area_ha"]),
                p["site_id"],
            )
    except FileNotFoundError:
        raise SourceError(f"{path}: truth file not found") from None
    except (OSError, ValueError, KeyError, TypeError, shapely.errors.ShapelyError) as exc:
        raise SourceError(f"{path}: not a readable truth file ({exc})") from None
    out = {}
    for year in sorted({y for y, _ in layers}):
        try:
            fp, fp_ha, site_id = layers[(year, "footprint")]
            coal, coal_ha, _ = layers[(year, "coal")]
        except KeyError:
            raise SourceError(f"{path}: year {year} lacks a footprint or coal feature") from None
        out[year] = SiteTruth(site_id, year, fp, coal, fp_ha, coal_ha)
    return out


class SyntheticSource:
    """A ``SceneSource`` over the synthetic scenario, built on first use and cached.

    The build goes to ``cache_dir/synthetic-<key>/``, where the key hashes the parameters and
    ``GENERATOR_VERSION``. It is written in a temporary folder beside it and renamed into place,
    so a killed build never leaves a half cache; later sources with the same parameters reuse it.
    """

    name = "synthetic"

    def __init__(
        self,
        params: ScenarioParams,
        cache_dir: Path,
        *,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.params = params
        self.cache_dir = Path(cache_dir).resolve()
        self._workers = workers
        self._progress = progress
        self._catalog: StaticCatalogSource | None = None
        self._truth: dict[str, dict[int, SiteTruth]] = {}

    @property
    def root(self) -> Path:
        """The scenario folder (built now if absent)."""
        path = self.cache_dir / f"synthetic-{self.params.cache_key()}"
        if not (path / "catalog.json").is_file():
            self._build(path)
        return path

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.json"

    def sites(self) -> list[Site]:
        """The demo sites this scenario covers."""
        return demo_sites(self.params.sites)

    def search(self, site: Site, start: date, end: date) -> list[Scene]:
        """Scenes over ``site`` in [start, end], sorted by datetime then id."""
        if self._catalog is None:
            self._catalog = StaticCatalogSource(self.catalog_path)
        return self._catalog.search(site, start, end)

    def truth(self, site_id: str) -> dict[int, SiteTruth]:
        """The truth of ``site_id`` per year (start_year..end_year)."""
        if site_id not in self.params.sites:
            raise SiteError(
                f"site {site_id!r} is not in this synthetic scenario; it has {list(self.params.sites)}"
            )
        if site_id not in self._truth:
            self._truth[site_id] = read_truth(self.root / "truth" / f"{site_id}.geojson")
        return self._truth[site_id]

    def _build(self, path: Path) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # One builder at a time per key: others wait here, then find the finished build.
        with _exclusive(self.cache_dir / f".{path.name}.lock"):
            if (path / "catalog.json").is_file():
                return
            if path.exists():
                raise SourceError(
                    f"{path}: exists but holds no catalog.json; it is not a finished build of "
                    "this generator. Delete it to rebuild"
                )
            prefix = f".{path.name}.tmp-"
            for orphan in self.cache_dir.glob(f"{prefix}*"):
                # Under the lock nobody else is building this key: this is a killed build's.
                logger.info("removing %s, left by a build that did not finish", orphan)
                shutil.rmtree(orphan, ignore_errors=True)
            # Not mkdtemp: its 0700 mode would stick to the cache; the lock makes the name unique.
            tmp = self.cache_dir / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
            tmp.mkdir()
            try:
                build_scenario(self.params, tmp, self._progress, workers=self._workers)
                os.replace(tmp, path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``lock_path`` (released by the OS if the process dies)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; the atomic rename still keeps the cache whole
        yield
        return
    handle: IO[str]
    with open(lock_path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
