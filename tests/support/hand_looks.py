"""Seasons of looks built by hand, for tests of the cross-year rules: one look every ten days
from 1 June to 15 November, forest everywhere but the pieces of ground a test lays out, each
site-year made by the recipe (``recipe.site_year``) and the years analysed together
(``analysis.analyse_site``) with the tests' settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np

from pipeline.analysis import analyse_site
from pipeline.recipe import Look, RecipeParams, look_record, site_year
from pipeline.results import SiteAnalysis, SiteYear
from pipeline.sites import Site

# (blue, green, red, nir, swir16, swir22)
FOREST = [0.025, 0.050, 0.028, 0.340, 0.170, 0.080]

Region = tuple[slice, slice]
#: What lies on each piece of ground on a day: (region, spectrum) pairs, laid in order.
Ground = Callable[[date], Sequence[tuple[Region, Sequence[float]]]]
#: The pieces of ground under cloud on a day.
Clouds = Callable[[date], Sequence[Region]]


def season_days(year: int) -> list[date]:
    """Every tenth day from 1 June to 15 November of ``year``."""
    days, day = [], date(year, 6, 1)
    while day <= date(year, 11, 15):
        days.append(day)
        day += timedelta(days=10)
    return days


def hand_looks(
    year: int,
    shape: tuple[int, int],
    ground: Ground,
    clouds: Clouds = lambda day: (),
    noise: float = 0.0,
) -> list[Look]:
    """The looks of ``year`` on a grid of ``shape``: forest with ``ground`` laid on it, clear
    but where ``clouds`` are, with Gaussian ``noise`` (reflectance; seeded by the year)."""
    rng = np.random.default_rng(year)
    out = []
    for day in season_days(year):
        img = np.empty((6, *shape), np.float32)
        img[:] = np.array(FOREST, np.float32)[:, None, None]
        for (rows, cols), spectrum in ground(day):
            img[:, rows, cols] = np.array(spectrum, np.float32)[:, None, None]
        if noise:
            img += rng.normal(0.0, noise, img.shape).astype(np.float32)
        clear = np.ones(shape, bool)
        for rows, cols in clouds(day):
            clear[rows, cols] = False
        record = look_record(f"S{day:%Y%m%d}", f"{day.isoformat()}T02:00:00+00:00")
        out.append(Look(day, img, clear, record))
    return out


def hand_site_years(
    site: Site,
    years: Sequence[int],
    looks: Callable[[int, tuple[int, int]], list[Look]],
    min_side_px: int,
) -> list[SiteYear]:
    """Each of ``years`` of ``site`` on its 10 m grid (at least ``min_side_px`` a side), from
    ``looks(year, shape)``, every pixel analysed."""
    grid = site.grid(10.0, 0.0)
    assert min(grid.shape) >= min_side_px
    area = np.ones(grid.shape, bool)  # every pixel analysed (the site is a lon/lat box)
    return [
        site_year(site.id, y, looks(y, grid.shape), [], area, grid.pixel_area_ha, RecipeParams())
        for y in years
    ]


def analysed(site: Site, years: Sequence[SiteYear], **settings: Any) -> SiteAnalysis:
    """``years`` of ``site`` analysed together with the tests' settings (no buffer, a 0.25 ha
    minimum mapping unit, a one-pixel opening of changes) and any other ``settings``."""
    return analyse_site(
        site,
        site.grid(10.0, 0.0),
        years,
        buffer_m=0.0,
        min_mapping_unit_ha=0.25,
        change_opening_px=1,
        **settings,
    )
