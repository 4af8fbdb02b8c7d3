"""Scene planning (pure): which days a site is imaged, by which satellite, under which processing
baseline, at what time and with the sun where.

Two hard cases of the accuracy suite live here: ``missing_years`` (no scene at all) and
``landsat_until`` (years imaged by Landsat 8/9 on their 16-day cycles instead of Sentinel-2).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

from pipeline.radiometry import S2_BOA_OFFSET_DN
from pipeline.sources.sensors import S2_OFFSET_BASELINE, parse_baseline
from pipeline.sources.synthetic.params import ScenarioParams
from pipeline.sources.synthetic.seeds import seeded_rng, site_key

# Sentinel-2B delivered from July 2017: before, revisit is 10 days (S2A alone).
_S2B_START = date(2017, 7, 6)
# A date on the 5-day revisit cycle; each site gets its own phase from its id.
_ORBIT_EPOCH = date(2015, 7, 4)
# Landsat 8 on its 16-day cycle (a site gets its phase from its id); Landsat 9, 8 days apart
# from it, delivers from February 2022.
_L8_EPOCH = date(2013, 4, 11)
_L9_START = date(2022, 2, 10)
LANDSAT_PLATFORMS = ("landsat-8", "landsat-9")
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


def _revisit(site_id: str, day: date) -> int | None:
    """The revisit index of ``day`` for this site, or None when no satellite passes."""
    offset = (day - _ORBIT_EPOCH).days - site_key(site_id) % 5
    return offset // 5 if offset % 5 == 0 else None


def platform_of(site_id: str, day: date) -> str | None:
    """``sentinel-2a``/``sentinel-2b`` on the site's 5-day cycle (2b from July 2017), or None."""
    k = _revisit(site_id, day)
    if k is None:
        return None
    if k % 2 == 0:
        return "sentinel-2a"
    return "sentinel-2b" if day >= _S2B_START else None


def landsat_platform_of(site_id: str, day: date) -> str | None:
    """``landsat-8`` on the site's 16-day cycle, ``landsat-9`` 8 days after it from 2022, or None."""
    phase = ((day - _L8_EPOCH).days - site_key(site_id) % 16) % 16
    if phase == 0:
        return "landsat-8"
    return "landsat-9" if phase == 8 and day >= _L9_START else None


def is_landsat_year(params: ScenarioParams, year: int) -> bool:
    """Whether ``params`` has calendar year ``year`` imaged by Landsat (``landsat_until``)."""
    return params.landsat_until is not None and year <= params.landsat_until


def scene_platform(params: ScenarioParams, site_id: str, day: date) -> str | None:
    """The platform imaging ``site_id`` on ``day`` in this scenario, or None: Sentinel-2
    (``platform_of``), or Landsat 8/9 in the years up to ``landsat_until``."""
    if is_landsat_year(params, day.year):
        return landsat_platform_of(site_id, day)
    return platform_of(site_id, day)


def baseline_of(day: date) -> str:
    """The processing baseline of a product acquired (and processed) on ``day``."""
    return [b for start, b in _BASELINES if start <= day][-1]


def boa_offset_dn(baseline: str) -> int:
    """DN added to round(reflectance * 10000) under ``baseline``: 1000 from 04.00 on, else 0."""
    parsed = parse_baseline(baseline)
    return -int(S2_BOA_OFFSET_DN) if parsed is not None and parsed >= S2_OFFSET_BASELINE else 0


def acquisition_dates(params: ScenarioParams, site_id: str, year: int) -> list[date]:
    """The scenes of one site and calendar year: a sample of the real revisit days.

    The autumn window (1 Sep - 15 Nov) gets at least ``autumn_min_acquisitions`` (or 40%) of them,
    so that the default analysis season has enough clear views in a typical year (Landsat
    years have fewer passes to pick from). A year in ``missing_years`` has none; with an
    ``acquisition_window``, only the passes inside it are picked from.
    """
    if year in params.missing_years:
        return []
    rng = seeded_rng(params.seed, site_key(site_id), year, 1)
    days = [date(year, 1, 1) + timedelta(d) for d in range(366 if _leap(year) else 365)]
    passes = [d for d in days if scene_platform(params, site_id, d) is not None]
    if params.acquisition_window is not None:
        w0, w1 = (date(year, *b) for b in params.acquisition_window)
        passes = [d for d in passes if w0 <= d <= w1]
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


def acquired_at(site_id: str, day: date) -> datetime:
    """The acquisition time of a scene: about 10:30 local solar time, a few minutes per site."""
    seconds = 2 * 3600 + 15 * 60 + site_key(site_id) % 600  # about 10:30 local solar time
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)
