"""The truth layout: which surface lies where at each demo site, per year-state (pure shapely).

Coordinates are metres east/north of the site centre in its UTM zone. The layouts are the design
of the scenario: the camp grows in 2018, 2020, 2021, 2023 and 2025, the port's coal falls after
2017 and grows from 2019, the control site changes only with the seasons.

The hard cases of ``ScenarioParams`` (all off by default) add, at the camp and the control only:
a new asphalt road (``road_year``, footprint) and a compound cleared mid-season
(``construction_date``, footprint from that day) at the camp; and ``Feature``s outside the
surface classes, which are never footprint nor coal: a shadowed rocky slope (``terrain_shadow``),
the mud of a shrinking reservoir (``water_level``) and a burn scar (``burn_date``). The features
are rendered over the surfaces (``render``), so the surface classes and the demo's pixels are
untouched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from enum import IntEnum
from typing import Any, NamedTuple

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon, box
from shapely.geometry.polygon import orient

from pipeline.errors import SiteError, SourceError
from pipeline.grid import reproject_geometry
from pipeline.sources.synthetic.params import DEMO_SITE_IDS, ScenarioParams


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
PORT_BERTHS = (_rect(-330, -434, -150, -404), _rect(354, -390, 384, -210))

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


# ---- Hard cases (``ScenarioParams``; off by default)
# A new road from the 2018 annex north into the hills: 12 m wide, ~0.9 ha, one pixel thin.
_CAMP_ROAD = shapely.LineString([(-150, 300), (-150, 750), (-400, 950)]).buffer(
    6.0, cap_style="flat", join_style="mitre"
)
# A compound cleared in the forest north of the camp (``construction_date``).
_CAMP_COMPOUND: tuple[LayoutItem, ...] = (
    (Surface.YARD, _rect(100, 450, 400, 700)),
    (Surface.BUILT, _rect(130, 600, 370, 660)),
    (Surface.BUILT, _rect(130, 490, 250, 540)),
)
# The reservoirs that replace the ponds when ``water_level`` is set: full extent, and the point
# toward which the water withdraws (its deep end).
_RESERVOIRS: Mapping[str, tuple[Polygon, tuple[float, float]]] = {
    "demo-camp": (_pile(150, -420, 6.0, aspect=1.6), (60.0, -440.0)),
    "demo-control": (_pile(-250, 250, 6.0, aspect=1.4), (-320.0, 270.0)),
}
_PONDS: Mapping[str, Polygon] = {
    "demo-camp": _CAMP_LANDSCAPE[3][1],
    "demo-control": _CONTROL_LAYOUT[2][1],
}
# North-facing rocky slopes (``terrain_shadow``), in forest away from every other feature.
_ROCK_SLOPES: Mapping[str, Polygon] = {
    "demo-camp": Polygon([(480, 560), (900, 600), (900, 730), (470, 690)]),
    "demo-control": Polygon([(220, -260), (560, -230), (560, -90), (230, -120)]),
}
# Burn scars (``burn_date``): irregular, ~4.5 ha, in forest.
_BURN_SCARS: Mapping[str, Any] = {
    "demo-camp": shapely.union_all(
        [Point(-700, 650).buffer(95.0), Point(-610, 700).buffer(70.0),
         Point(-780, 580).buffer(60.0)]
    ),
    "demo-control": shapely.union_all(
        [Point(-330, -60).buffer(90.0), Point(-250, -20).buffer(65.0),
         Point(-400, -120).buffer(55.0)]
    ),
}  # fmt: skip
FEATURE_KINDS = ("rock_slope", "mud", "burn")


class Feature(NamedTuple):
    """A hard-case ground feature outside the surface classes (never footprint nor coal):
    ``kind`` one of ``FEATURE_KINDS``, in local metres like the layout."""

    kind: str
    geometry: Polygon | MultiPolygon


def _reservoir_water(site_id: str, params: ScenarioParams, year: int) -> Polygon:
    """The reservoir's water in year-state ``year``: the full extent shrunk toward its deep end
    to the listed share of its area (convex: the water stays inside the full extent)."""
    full, deep = _RESERVOIRS[site_id]
    share = dict(params.water_level).get(year, 1.0)
    if share >= 1.0:
        return full
    k = math.sqrt(share)
    water: Polygon = affinity.scale(full, k, k, origin=deep)
    return water


def site_layout(
    site_id: str,
    year: int,
    params: ScenarioParams | None = None,
    *,
    pre_construction: bool = False,
) -> tuple[LayoutItem, ...]:
    """The surfaces of ``site_id`` in the year-state ``year``, in paint order (later on top).

    Coordinates are metres east/north of the site centre in its UTM zone; everything not covered
    is forest. A year-state holds from 1 April of ``year`` to 31 March of the next year.
    ``params`` brings the hard cases that change surfaces (road, mid-season compound, reservoir);
    ``pre_construction``: the days of the compound's year before it was cleared (``layout_key``).
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
            *_with_reservoir(site_id, _CAMP_LANDSCAPE, params, year),
            *((Surface.YARD, p) for p in yards),
            *((Surface.BUILT, p) for p in built),
            *((Surface.ASPHALT, p) for p in _CAMP_ASPHALT),
            *_camp_additions(params, year, pre_construction),
            (Surface.SPOIL, spoil),
            *((Surface.COAL, p) for p in piles),
        )
    if site_id == "demo-port":
        piles = _piles(_PORT_PILE_SLOTS, _step(_PORT_COAL_HA, year), aspect=1.4)
        return (*_PORT_LANDSCAPE, *_PORT_FIXED, *((Surface.COAL, p) for p in piles))
    if site_id == "demo-control":
        return _with_reservoir(site_id, _CONTROL_LAYOUT, params, year)
    raise SiteError(f"site {site_id!r} has no synthetic layout; known: {list(DEMO_SITE_IDS)}")


def _with_reservoir(
    site_id: str,
    items: tuple[LayoutItem, ...],
    params: ScenarioParams | None,
    year: int,
) -> tuple[LayoutItem, ...]:
    """``items`` with the site's pond replaced by this year's reservoir water when
    ``water_level`` is set."""
    if params is None or not params.water_level:
        return items
    water = _reservoir_water(site_id, params, year)
    pond = _PONDS[site_id]
    return tuple((s, water) if g is pond else (s, g) for s, g in items)


def _camp_additions(
    params: ScenarioParams | None, year: int, pre_construction: bool
) -> tuple[LayoutItem, ...]:
    if params is None:
        return ()
    out: list[LayoutItem] = []
    if params.road_year is not None and year >= params.road_year:
        out.append((Surface.ASPHALT, _CAMP_ROAD))
    built_on = params.construction_date
    if built_on is not None and (
        year > built_on.year or (year == built_on.year and not pre_construction)
    ):
        out.extend(_CAMP_COMPOUND)
    return tuple(out)


def layout_key(params: ScenarioParams, day: date) -> tuple[int, bool]:
    """Which layout holds on ``day``: (year-state, before the mid-season construction)."""
    year = state_year(day)
    built_on = params.construction_date
    return year, built_on is not None and built_on.year == year and day < built_on


def site_features(site_id: str, year: int, params: ScenarioParams | None) -> tuple[Feature, ...]:
    """The hard-case features of ``site_id`` in year-state ``year`` (none at the port, none
    when every hard case is off). A burn scar is listed every year: ``render`` shows it from
    ``burn_date`` on, as its regrowth allows."""
    if params is None or site_id not in _ROCK_SLOPES:
        return ()
    out: list[Feature] = []
    if params.terrain_shadow:
        out.append(Feature("rock_slope", _ROCK_SLOPES[site_id]))
    if params.water_level:
        full, _ = _RESERVOIRS[site_id]
        mud = full.difference(_reservoir_water(site_id, params, year))
        if mud.area > 1.0:
            out.append(Feature("mud", as_multipolygon(mud)))
    if params.burn_date is not None:
        out.append(Feature("burn", as_multipolygon(_BURN_SCARS[site_id])))
    return tuple(out)


def dated_change(site_id: str, params: ScenarioParams) -> tuple[int, MultiPolygon] | None:
    """The footprint a hard case adds at a known date, as (year-state, local geometry): the
    road or the mid-season compound at the camp; None for other sites and cases."""
    if site_id != "demo-camp":
        return None
    if params.construction_date is not None:
        parts = [g for _, g in _CAMP_COMPOUND]
        return params.construction_date.year, as_multipolygon(shapely.union_all(parts))
    if params.road_year is not None:
        return params.road_year, as_multipolygon(_CAMP_ROAD)
    return None


def _piles(
    slots: Sequence[tuple[float, float]], areas: Sequence[float], aspect: float = 1.3
) -> list[Polygon]:
    return [_pile(x, y, a, aspect) for (x, y), a in zip(slots, areas, strict=True) if a > 0]


def truth_geometries(
    site_id: str, year: int, params: ScenarioParams | None = None
) -> tuple[MultiPolygon, MultiPolygon]:
    """(footprint, coal) of a year-state in local metres: the union of the footprint surfaces.

    The state is the one the season window sees: a compound cleared mid-season is in its year.
    """
    layout = site_layout(site_id, year, params)
    footprint = shapely.union_all([g for s, g in layout if s in FOOTPRINT_SURFACES])
    coal = shapely.union_all([g for s, g in layout if s is Surface.COAL])
    return as_multipolygon(footprint), as_multipolygon(coal)


def as_multipolygon(geom: Any) -> MultiPolygon:
    """``geom`` (empty, Polygon or MultiPolygon) as a MultiPolygon."""
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


def lonlat_polygon(geom_utm: Any, crs: str) -> Polygon | MultiPolygon:
    """A UTM (Multi)Polygon in EPSG:4326 as RFC 7946 wants it: 6 decimals, exteriors CCW."""
    geom = reproject_geometry(geom_utm, crs, "EPSG:4326")
    rounded = shapely.transform(geom, lambda xy: np.round(xy, 6))
    if isinstance(rounded, Polygon):
        return orient(rounded, 1.0)
    if isinstance(rounded, MultiPolygon):
        return MultiPolygon([orient(p, 1.0) for p in rounded.geoms])
    raise SourceError(f"expected a polygon, got {rounded.geom_type}")
