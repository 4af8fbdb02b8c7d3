"""Expansion: how a site's outline moved between two years, in the terms analysts use.

Pure stage: shapely outlines and plain parameters in, frozen dataclasses out; no I/O.

Conventions:

- *Outlines* are one Polygon or MultiPolygon per year (holes allowed), all in ONE projected metric
  CRS such as the site's UTM zone. Areas are in hectares, distances in metres. An empty geometry
  is a real "nothing there"; ``None`` is "no data that year": :func:`boundary_changes` skips it,
  :func:`boundary_change` and :func:`outline` refuse it. Invalid input is repaired with
  ``shapely.make_valid`` (structure method: overlapping parts are unioned; polygonal parts kept)
  and every outline is put through ``shapely.normalize``, so ring start, ring orientation and
  part order never matter.
- *Bearings* are taken from the *reference point*, the centroid of the EARLIER outline, as
  ``atan2(dx, dy)``: degrees clockwise from grid north. UTM grid north differs from true north by
  the meridian convergence, under 3 degrees inside a zone: small against 22.5 degree sectors.
- *Sectors*: sector ``k`` of ``n`` spans bearings ``[k*360/n - 180/n, k*360/n + 180/n)``, so
  sector 0 is centred on north; bearings are rounded to 1e-6 degree first, so a sample on a
  sector edge goes to the clockwise sector whatever the floating-point noise (symmetric shapes
  centred on the reference point have many). With 4, 8 or 16 sectors they are named by compass point ("N",
  "NE", "ENE", ...); otherwise by bearing range, "345-015" (sector 0 of 12), "000-360" (of 1).
- *Samples*: a boundary (every ring, exteriors and holes) is cut with ``shapely.segmentize`` to
  ``sample_step_m`` and its vertices are taken without each ring's repeated closing vertex, a set
  that does not depend on vertex order or ring start. The default step is
  ``max(0.5, (perimeter before + perimeter after) / 20000)`` metres, which bounds the work on
  30 km outlines; every original vertex is a sample too, so pixel-stair outlines are sampled at
  least at every corner. A sample's distance to the other boundary is exact (nearest segment from
  an STRtree of that boundary's segments); inside/outside comes from ``shapely.contains_xy``. So
  every maximum below is exact to within half a step (distance is 1-Lipschitz along a boundary).
  Distances under 1 micrometre count as 0 (on the boundary), so identical outlines give exact
  zeros despite floating-point noise.
- *Outward displacement* of a sample of the LATER boundary: its distance to the earlier boundary,
  positive where it lies outside the earlier outline, negative inside, 0 on it. Per sector:
  median and maximum (None in a sector without samples); the maximum can be negative where the
  whole boundary moved inwards. ``max_outward_m``, the largest over all sectors, is the summary's
  "up to".
- *Retreat* of a sample of the EARLIER boundary: its distance to the later boundary where it lies
  outside the later outline, else 0. Per sector: maximum (0 when nothing retreated there; None
  in a sector without earlier-boundary samples, and in every sector when the later outline is
  empty, as there is no boundary to measure to).
- *Hausdorff* distance: the larger of the two directed maxima over the samples, i.e. the symmetric
  Hausdorff distance between the two boundaries, to within half a step.
- *Added / removed* areas are ``after - before`` and ``before - after``. Per sector they are
  intersected with wedge polygons around the reference point that reach beyond the farthest vertex,
  so the sectors' areas add up to the totals.
- *Main direction*: the sector holding the mean bearing of the added area (per-sector added areas
  as vectors towards the sector centres, summed). It is ``None`` when less than 0.05 ha was added
  (the summary's threshold; overlay slivers have no meaningful direction), or when growth has no
  main direction: the vectors' resultant is under a quarter of the added area (growth all round
  the site, or balanced on opposite sides). The sector with the MOST added area
  would be biased: a straight strip added along the east edge fills more of ENE and ESE (wider
  wedges across the strip) than of E.
- *Summary*, one line: hectares with sign and one decimal, metres rounded to whole metres
  (half up), directions in words from compass sector names ("north-east", "east-north-east"),
  "bearing 015-045" for other sector counts, left out with one sector. A change counts from
  0.05 ha.

  - growth: "+12.4 ha, mostly north-east, up to 310 m" (``max_outward_m``);
  - growth and removal: "+12.4 ha net (added 14.0 ha, removed 1.6 ha), mostly north-east, up to
    310 m", worded as a retreat (below) when more was removed than added;
  - removal: "-3.2 ha, retreat up to 120 m, mostly south" (largest retreat, removed area's
    direction);
  - "inside the old outline" instead of "up to ..." when no later-boundary sample lies outside
    the earlier outline (a hole filled in), or for removal when no earlier-boundary sample lies
    outside the later one (a new hole): "+4.0 ha, no main direction, inside the old outline";
  - "no change": added and removed under 0.05 ha and Hausdorff under half a step; with small
    areas but a larger Hausdorff distance, "+0.0 ha, boundary moved up to 3 m";
  - an empty outline: "+X ha, new (no outline in YEAR)", "-X ha, gone (no outline in YEAR)".
- Everything is deterministic: the same input gives the same output, exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import GeometryCollection, MultiPolygon, Polygon

__all__ = [
    "SECTOR_NAMES_16",
    "BoundaryChange",
    "Outline",
    "SectorShift",
    "boundary_change",
    "boundary_changes",
    "outline",
]

SECTOR_NAMES_16: Final = (
    "N",
    "NNE",
    "NE",
    "ENE",
    "E",
    "ESE",
    "SE",
    "SSE",
    "S",
    "SSW",
    "SW",
    "WSW",
    "W",
    "WNW",
    "NW",
    "NNW",
)
_COMPASS: Final = {4: SECTOR_NAMES_16[::4], 8: SECTOR_NAMES_16[::2], 16: SECTOR_NAMES_16}
_WORDS: Final = {"N": "north", "E": "east", "S": "south", "W": "west"}

_M2_PER_HA: Final = 10_000.0
_MIN_STEP_M: Final = 0.5
_STEPS_PER_PERIMETER: Final = 20_000
# A step so small that sampling would exhaust memory is refused rather than attempted.
_MAX_SAMPLES: Final = 20_000_000
_ON_BOUNDARY_M: Final = 1e-6
_NOTABLE_HA: Final = 0.05
_MIN_CONCENTRATION: Final = 0.25
_MAX_SECTORS: Final = 360
_ARC_STEP_DEG: Final = 10.0
_BEARING_DECIMALS: Final = 6

_Polygonal: TypeAlias = Polygon | MultiPolygon
_Coords: TypeAlias = NDArray[np.float64]


@dataclass(frozen=True)
class Outline:
    """Area and perimeter of one year's outline."""

    area_ha: float
    perimeter_m: float  # all rings, holes included


@dataclass(frozen=True)
class SectorShift:
    """How the boundary moved within one sector (see the module docstring)."""

    sector: str
    bearing_deg: float  # centre bearing, clockwise from grid north
    median_m: float | None  # None: no later-boundary sample in this sector
    max_m: float | None
    max_retreat_m: float | None  # None: no earlier-boundary sample (or no later outline)
    added_ha: float
    removed_ha: float


@dataclass(frozen=True)
class BoundaryChange:
    """How one site's outline changed from ``year_from`` to ``year_to``."""

    year_from: int
    year_to: int
    before: Outline
    after: Outline
    added: Polygon | MultiPolygon  # after minus before, in the input CRS
    removed: Polygon | MultiPolygon  # before minus after
    added_ha: float
    removed_ha: float
    hausdorff_m: float | None  # None when either outline is empty
    max_outward_m: float | None  # max over sectors of max_m
    sectors: tuple[SectorShift, ...]  # empty when `before` is empty (no reference point)
    main_direction: str | None
    summary: str
    sample_step_m: float  # the step used: distances are exact to within half of it

    @property
    def net_ha(self) -> float:
        """Added minus removed area."""
        return self.added_ha - self.removed_ha


# ---- input normalisation -------------------------------------------------------------------


def _polygon_parts(geom: shapely.Geometry) -> list[Polygon]:
    parts: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            if not part.is_empty:
                parts.append(part)
        elif isinstance(part, MultiPolygon | GeometryCollection):
            parts.extend(_polygon_parts(part))
    return parts


def _normalised(geom: shapely.Geometry) -> _Polygonal:
    """The polygonal parts of a valid ``geom`` as one normalised Polygon or MultiPolygon."""
    parts = _polygon_parts(geom)
    single: _Polygonal
    if not parts:
        single = Polygon()
    elif len(parts) == 1:
        single = parts[0]
    else:
        single = MultiPolygon(parts)
    result = shapely.normalize(single)
    if not isinstance(result, Polygon | MultiPolygon):  # pragma: no cover - normalize keeps types
        raise TypeError(f"normalize returned a {result.geom_type}")
    return result


def _polygonal(geom: object, name: str) -> _Polygonal:
    if geom is None:
        raise ValueError(
            f"{name} is None (no data): pass an empty Polygon for 'nothing there', "
            "or leave the year out of boundary_changes"
        )
    if not isinstance(geom, shapely.Geometry):
        raise ValueError(
            f"{name} must be a shapely Polygon or MultiPolygon, got {type(geom).__name__}"
        )
    if isinstance(geom, Polygon | MultiPolygon):
        members: list[shapely.Geometry] = [geom]
    elif isinstance(geom, GeometryCollection):
        members = list(shapely.get_parts(geom))
        for member in members:
            if not isinstance(member, Polygon | MultiPolygon):
                raise ValueError(
                    f"{name} must be polygonal, but its GeometryCollection holds a "
                    f"{member.geom_type}"
                )
    else:
        raise ValueError(f"{name} must be a Polygon or MultiPolygon, got a {geom.geom_type}")
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise ValueError(f"{name} has non-finite (NaN or infinite) coordinates")
    fixed = []
    for member in members:
        flat = shapely.force_2d(member)
        if not flat.is_valid:
            flat = shapely.make_valid(flat, method="structure", keep_collapsed=False)
        fixed.append(flat)
    merged = fixed[0] if len(fixed) == 1 else shapely.union_all(fixed)
    return _normalised(merged)


def _check_sectors(sectors: object) -> int:
    if isinstance(sectors, bool) or not isinstance(sectors, int | np.integer):
        raise ValueError(f"sectors must be an integer, got {sectors!r}")
    if not 1 <= sectors <= _MAX_SECTORS:
        raise ValueError(f"sectors must be between 1 and {_MAX_SECTORS}, got {sectors}")
    return int(sectors)


def _check_step(step: object) -> float | None:
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, int | float | np.integer | np.floating):
        raise ValueError(f"sample_step_m must be a number of metres, got {step!r}")
    value = float(step)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"sample_step_m must be a positive finite number of metres, got {step}")
    return value


def outline(geom: Polygon | MultiPolygon) -> Outline:
    """Area (ha) and perimeter (m, holes included) of one outline, after repair."""
    return _outline_of(_polygonal(geom, "geom"))


def _outline_of(geom: _Polygonal) -> Outline:
    return Outline(area_ha=float(geom.area) / _M2_PER_HA, perimeter_m=float(geom.length))


# ---- sampling and distances ----------------------------------------------------------------


def _rings(geom: _Polygonal) -> NDArray[np.object_]:
    return np.asarray(shapely.get_rings(shapely.get_parts(geom)), dtype=object)


def _samples(geom: _Polygonal, step: float) -> _Coords:
    """Vertices of the segmentized rings, without each ring's repeated closing vertex."""
    rings = _rings(shapely.segmentize(geom, step))
    coords, index = shapely.get_coordinates(rings, return_index=True)
    if len(coords) == 0:
        return np.empty((0, 2), dtype=np.float64)
    closing = np.append(index[1:] != index[:-1], True)
    return np.asarray(coords[~closing], dtype=np.float64)


class _Boundary:
    """A prepared outline and an STRtree of its boundary's segments."""

    def __init__(self, geom: _Polygonal) -> None:
        self.geom = geom
        shapely.prepare(geom)
        coords, index = shapely.get_coordinates(_rings(geom), return_index=True)
        same_ring = index[1:] == index[:-1]
        starts = coords[:-1][same_ring]
        ends = coords[1:][same_ring]
        proper = np.any(starts != ends, axis=1)
        segments = shapely.linestrings(np.stack([starts[proper], ends[proper]], axis=1))
        self.tree = shapely.STRtree(segments)

    def distance(self, xy: _Coords) -> _Coords:
        """Distance of each point to the boundary; under 1 micrometre is 0."""
        if len(xy) == 0:
            return np.empty(0, dtype=np.float64)
        index, dist = self.tree.query_nearest(
            shapely.points(xy), return_distance=True, all_matches=False
        )
        out = np.full(len(xy), np.inf)  # stays infinite only against an empty boundary
        out[index[0]] = dist
        out[out < _ON_BOUNDARY_M] = 0.0
        return out

    def inside(self, xy: _Coords, distance: _Coords) -> NDArray[np.bool_]:
        """Whether each point lies inside the outline; points on its boundary (``distance`` 0,
        common where two years' outlines share edges) are not tested."""
        off = distance > 0
        result = np.zeros(len(xy), dtype=bool)
        result[off] = shapely.contains_xy(self.geom, xy[off, 0], xy[off, 1])
        return result


# ---- sectors ---------------------------------------------------------------------------------


def _sector_names(n: int) -> tuple[str, ...]:
    if n in _COMPASS:
        return _COMPASS[n]
    if n == 1:
        return ("000-360",)
    width = 360.0 / n

    def bound(value: float) -> str:
        value %= 360.0
        if abs(value - round(value)) < 1e-9:
            return f"{round(value) % 360:03d}"
        return f"{value:05.1f}"

    return tuple(f"{bound((k - 0.5) * width)}-{bound((k + 0.5) * width)}" for k in range(n))


def _sector_of(xy: _Coords, ref: tuple[float, float], n: int) -> NDArray[np.intp]:
    bearing = np.degrees(np.arctan2(xy[:, 0] - ref[0], xy[:, 1] - ref[1])) % 360.0
    # A vertex on a sector edge (a square or circle centred on the reference point) must not fall
    # on either side by floating-point noise: snap bearings to a micro-degree first.
    bearing = np.round(bearing, _BEARING_DECIMALS)
    width = 360.0 / n
    return np.asarray(np.floor((bearing + width / 2) / width), dtype=np.intp) % n


def _per_sector(sector: NDArray[np.intp], values: _Coords, n: int) -> list[_Coords]:
    order = np.argsort(sector, kind="stable")
    counts = np.bincount(sector, minlength=n)
    return list(np.split(values[order], np.cumsum(counts)[:-1]))


def _wedges(ref: tuple[float, float], radius: float, n: int) -> NDArray[np.object_]:
    """Sector wedges from ``ref`` out to ``radius``; neighbours share their edge exactly."""
    width = 360.0 / n
    edges = (np.arange(n + 1) - 0.5) * width
    steps = max(1, math.ceil(width / _ARC_STEP_DEG))
    # Each chord stays beyond radius * cos(5 deg); the caller's radius is twice the farthest vertex.
    wedges = []
    for k in range(n):
        theta = np.radians(np.linspace(edges[k], edges[k + 1], steps + 1))
        arc = np.column_stack([ref[0] + radius * np.sin(theta), ref[1] + radius * np.cos(theta)])
        wedges.append(shapely.polygons(np.vstack([ref, arc, ref])))
    return np.asarray(wedges, dtype=object)


def _areas_by_sector(geom: _Polygonal, wedges: NDArray[np.object_] | None, n: int) -> list[float]:
    if geom.is_empty:
        return [0.0] * n
    if wedges is None:
        return [float(geom.area) / _M2_PER_HA]
    areas = shapely.area(shapely.intersection(geom, wedges))
    return [float(a) / _M2_PER_HA for a in areas]


def _main_sector(areas: Sequence[float], n: int) -> int | None:
    """The sector of the area-weighted mean bearing; None without a main direction."""
    total = math.fsum(areas)
    if total < _NOTABLE_HA:  # also keeps overlay slivers from having a "direction"
        return None
    centres = np.radians(np.arange(n) * (360.0 / n))
    east = math.fsum(a * math.sin(c) for a, c in zip(areas, centres, strict=True))
    north = math.fsum(a * math.cos(c) for a, c in zip(areas, centres, strict=True))
    if math.hypot(east, north) < _MIN_CONCENTRATION * total:
        return None
    mean = np.array([[east, north]])
    return int(_sector_of(mean, (0.0, 0.0), n)[0])


# ---- the change --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Movement:
    sectors: tuple[SectorShift, ...] = ()
    hausdorff_m: float | None = None
    max_outward_m: float | None = None
    max_retreat_m: float | None = None
    main: int | None = None
    main_removed: int | None = None


def _movement(
    before: _Boundary, after: _Boundary, added: _Polygonal, removed: _Polygonal, n: int, step: float
) -> _Movement:
    """Per-sector displacements and areas; ``before`` is not empty."""
    names = _sector_names(n)
    centroid = before.geom.centroid
    ref = (float(centroid.x), float(centroid.y))

    earlier = _samples(before.geom, step)
    later = _samples(after.geom, step) if not after.geom.is_empty else np.empty((0, 2))
    outward = before.distance(later)
    outward = np.where(before.inside(later, outward), -outward, outward)
    if after.geom.is_empty:
        back = np.empty(0, dtype=np.float64)
        retreat = np.zeros(len(earlier), dtype=np.float64)  # placeholder: reported as None
    else:
        back = after.distance(earlier)
        retreat = np.where(after.inside(earlier, back), 0.0, back)
    later_by_sector = _per_sector(_sector_of(later, ref, n), outward, n)
    earlier_by_sector = _per_sector(_sector_of(earlier, ref, n), retreat, n)

    vertices = np.vstack(
        [shapely.get_coordinates(before.geom), shapely.get_coordinates(after.geom)]
    )
    farthest = float(np.max(np.hypot(vertices[:, 0] - ref[0], vertices[:, 1] - ref[1])))
    wedges = _wedges(ref, 2.0 * farthest + 1.0, n) if n > 1 else None
    added_by_sector = _areas_by_sector(added, wedges, n)
    removed_by_sector = _areas_by_sector(removed, wedges, n)

    shifts = []
    for k in range(n):
        moved = later_by_sector[k]
        retreated = earlier_by_sector[k]
        has_later = len(moved) > 0
        has_retreat = len(retreated) > 0 and not after.geom.is_empty
        shifts.append(
            SectorShift(
                sector=names[k],
                bearing_deg=k * 360.0 / n,
                median_m=float(np.median(moved)) if has_later else None,
                max_m=float(np.max(moved)) if has_later else None,
                max_retreat_m=float(np.max(retreated)) if has_retreat else None,
                added_ha=added_by_sector[k],
                removed_ha=removed_by_sector[k],
            )
        )
    both = not after.geom.is_empty
    return _Movement(
        sectors=tuple(shifts),
        hausdorff_m=float(max(np.max(np.abs(outward)), np.max(back))) if both else None,
        max_outward_m=float(np.max(outward)) if both else None,
        max_retreat_m=float(np.max(retreat)) if both else None,
        main=_main_sector(added_by_sector, n),
        main_removed=_main_sector(removed_by_sector, n),
    )


def _ha(value: float) -> str:
    return f"{round(value, 1) + 0.0:+.1f}"


def _metres(value: float) -> int:
    return math.floor(value + 0.5)


def _direction(sector: int | None, n: int) -> str | None:
    if n == 1:
        return None
    if sector is None:
        return "no main direction"
    name = _sector_names(n)[sector]
    if n in _COMPASS:
        return "mostly " + "-".join(_WORDS[letter] for letter in name)
    return f"mostly bearing {name}"


def _summary(
    change: _Movement,
    before_empty: bool,
    after_empty: bool,
    added_ha: float,
    removed_ha: float,
    years: tuple[int, int],
    n: int,
    step: float,
) -> str:
    net = added_ha - removed_ha
    if before_empty and after_empty:
        return "no change"
    if before_empty:
        return f"{_ha(net)} ha, new (no outline in {years[0]})"
    if after_empty:
        return f"{_ha(net)} ha, gone (no outline in {years[1]})"
    assert change.hausdorff_m is not None
    assert change.max_outward_m is not None
    assert change.max_retreat_m is not None
    grew = added_ha >= _NOTABLE_HA
    shrank = removed_ha >= _NOTABLE_HA
    if not (grew or shrank):
        if change.hausdorff_m < step / 2:
            return "no change"
        return f"{_ha(net)} ha, boundary moved up to {_metres(change.hausdorff_m)} m"
    if grew and shrank:
        head = f"{_ha(net)} ha net (added {added_ha:.1f} ha, removed {removed_ha:.1f} ha)"
    else:
        head = f"{_ha(net)} ha"
    if grew and added_ha >= removed_ha:
        direction = _direction(change.main, n)
        reach = (
            f"up to {_metres(change.max_outward_m)} m"
            if change.max_outward_m > 0
            else "inside the old outline"
        )
        parts = [head, direction, reach]
    else:
        reach = (
            f"retreat up to {_metres(change.max_retreat_m)} m"
            if change.max_retreat_m > 0
            else "inside the old outline"
        )
        parts = [head, reach, _direction(change.main_removed, n)]
    return ", ".join(p for p in parts if p is not None)


def _change(
    before: _Boundary,
    after: _Boundary,
    year_from: int,
    year_to: int,
    n: int,
    step: float | None,
) -> BoundaryChange:
    perimeters = float(before.geom.length) + float(after.geom.length)
    if step is None:
        step = max(_MIN_STEP_M, perimeters / _STEPS_PER_PERIMETER)
    elif perimeters / step > _MAX_SAMPLES:
        raise ValueError(
            f"sample_step_m={step} would take {perimeters / step:.0f} samples on "
            f"{perimeters:.0f} m of boundary; use at least {perimeters / _MAX_SAMPLES:.3g} m"
        )
    added = _normalised(shapely.difference(after.geom, before.geom))
    removed = _normalised(shapely.difference(before.geom, after.geom))
    added_ha = float(added.area) / _M2_PER_HA
    removed_ha = float(removed.area) / _M2_PER_HA
    if before.geom.is_empty:
        movement = _Movement()
    else:
        movement = _movement(before, after, added, removed, n, step)
    before_outline = _outline_of(before.geom)
    after_outline = _outline_of(after.geom)
    names = _sector_names(n)
    return BoundaryChange(
        year_from=year_from,
        year_to=year_to,
        before=before_outline,
        after=after_outline,
        added=added,
        removed=removed,
        added_ha=added_ha,
        removed_ha=removed_ha,
        hausdorff_m=movement.hausdorff_m,
        max_outward_m=movement.max_outward_m,
        sectors=movement.sectors,
        main_direction=names[movement.main] if movement.main is not None else None,
        summary=_summary(
            movement,
            before.geom.is_empty,
            after.geom.is_empty,
            added_ha,
            removed_ha,
            (year_from, year_to),
            n,
            step,
        ),
        sample_step_m=step,
    )


def boundary_change(
    before: Polygon | MultiPolygon,
    after: Polygon | MultiPolygon,
    year_from: int,
    year_to: int,
    *,
    sectors: int = 16,
    sample_step_m: float | None = None,
) -> BoundaryChange:
    """How the outline moved from ``before`` (``year_from``) to ``after`` (``year_to``).

    Both outlines must be in one projected metric CRS. ``sectors`` (1 to 360) splits bearings
    from the earlier outline's centroid; ``sample_step_m`` (default: see the module docstring)
    sets the boundary sampling, hence the accuracy of displacements (half a step).
    Raises ValueError for non-polygonal input (``None`` included), bad ``sectors`` or step.
    """
    n = _check_sectors(sectors)
    step = _check_step(sample_step_m)
    earlier = _Boundary(_polygonal(before, "before"))
    later = _Boundary(_polygonal(after, "after"))
    return _change(earlier, later, year_from, year_to, n, step)


def boundary_changes(
    by_year: Mapping[int, Polygon | MultiPolygon | None],
    *,
    sectors: int = 16,
    sample_step_m: float | None = None,
) -> list[tuple[str, BoundaryChange]]:
    """Changes between each year with an outline and the previous such year ("consecutive"),
    then between the first and last such years ("first-last") when there are more than two.

    ``None`` means no data that year: the year is skipped. An empty geometry is an outline of
    nothing. Years come in ascending order whatever the mapping's order.
    """
    n = _check_sectors(sectors)
    step = _check_step(sample_step_m)
    years = sorted(year for year, geom in by_year.items() if geom is not None)
    outlines = {year: _Boundary(_polygonal(by_year[year], f"outline of {year}")) for year in years}
    pairs = [("consecutive", a, b) for a, b in itertools.pairwise(years)]
    if len(years) > 2:
        pairs.append(("first-last", years[0], years[-1]))
    return [(kind, _change(outlines[a], outlines[b], a, b, n, step)) for kind, a, b in pairs]
