"""Tests for pipeline.expansion: boundary-expansion metrics between two years' outlines."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.affinity import rotate, translate
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiPolygon,
    Point,
    Polygon,
    box,
)

from pipeline.expansion import (
    SECTOR_NAMES_16,
    BoundaryChange,
    SectorShift,
    boundary_change,
    boundary_changes,
    outline,
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
# A realistic UTM origin (zone 52N, near the camps): metres, exactly representable.
X0, Y0 = 500_000.0, 4_400_000.0
EAST_HALF = {"NE", "ENE", "E", "ESE", "SE"}


def square(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    """A box in local metres, placed at the UTM origin."""
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def by_name(change: BoundaryChange) -> dict[str, SectorShift]:
    return {s.sector: s for s in change.sectors}


# ---- known answers -----------------------------------------------------------------------------


def test_square_grows_100_m_east() -> None:
    change = boundary_change(square(0, 0, 1000, 1000), square(0, 0, 1100, 1000), 2019, 2023)
    sectors = by_name(change)
    assert [s.sector for s in change.sectors] == list(SECTOR_NAMES_16)
    assert [s.bearing_deg for s in change.sectors] == [k * 22.5 for k in range(16)]
    for name in ("ENE", "E", "ESE"):
        assert sectors[name].median_m == pytest.approx(100.0, abs=0.01)
        assert sectors[name].max_m == pytest.approx(100.0, abs=0.01)
    for name in ("NE", "SE"):
        assert sectors[name].max_m == pytest.approx(100.0, abs=0.01)
    for name in set(SECTOR_NAMES_16) - EAST_HALF:
        assert (sectors[name].median_m, sectors[name].max_m) == (0.0, 0.0), name
        assert sectors[name].added_ha == 0.0
    assert all(s.max_retreat_m == 0.0 and s.removed_ha == 0.0 for s in change.sectors)
    assert change.added_ha == pytest.approx(10.0, rel=1e-9)
    assert change.removed_ha == 0.0
    assert change.added.equals(square(1000, 0, 1100, 1000))
    assert change.removed.is_empty
    assert change.hausdorff_m == pytest.approx(100.0, abs=0.01)
    assert change.max_outward_m == pytest.approx(100.0, abs=0.01)
    assert change.main_direction == "E"
    assert change.summary == "+10.0 ha, mostly east, up to 100 m"
    assert change.net_ha == pytest.approx(10.0)
    assert change.before.area_ha == pytest.approx(100.0)
    assert change.after.perimeter_m == pytest.approx(4200.0)
    assert (change.year_from, change.year_to) == (2019, 2023)
    assert change.sample_step_m == 0.5


def test_square_growing_east_is_east_although_ene_and_ese_gain_more_area() -> None:
    # Why the main direction is the mean bearing, not the sector with the most added area.
    change = boundary_change(square(0, 0, 1000, 1000), square(0, 0, 1100, 1000), 2019, 2023)
    sectors = by_name(change)
    assert sectors["ENE"].added_ha > sectors["E"].added_ha
    assert sectors["ESE"].added_ha > sectors["E"].added_ha
    assert change.main_direction == "E"


def test_circle_grows_uniformly() -> None:
    centre = Point(X0, Y0)
    change = boundary_change(
        centre.buffer(500, quad_segs=256), centre.buffer(600, quad_segs=256), 2019, 2023
    )
    assert len(change.sectors) == 16
    for s in change.sectors:
        assert s.median_m == pytest.approx(100.0, rel=0.01)
        assert s.max_m == pytest.approx(100.0, rel=0.01)
        assert s.max_retreat_m == 0.0
        assert s.added_ha == pytest.approx(change.added_ha / 16, rel=1e-3)
    assert change.added_ha == pytest.approx(math.pi * (600**2 - 500**2) / 1e4, rel=1e-3)
    assert change.removed_ha == 0.0
    assert change.hausdorff_m == pytest.approx(100.0, rel=0.01)
    assert change.main_direction is None  # all round
    assert change.summary == "+34.6 ha, no main direction, up to 100 m"


def test_square_retreats_100_m_from_the_east() -> None:
    change = boundary_change(square(0, 0, 1000, 1000), square(0, 0, 900, 1000), 2019, 2023)
    sectors = by_name(change)
    for name in ("ENE", "E", "ESE"):
        assert sectors[name].median_m == pytest.approx(-100.0, abs=0.01)
        assert sectors[name].max_m == pytest.approx(-100.0, abs=0.01)
        assert sectors[name].max_retreat_m == pytest.approx(100.0, abs=0.01)
    for name in set(SECTOR_NAMES_16) - EAST_HALF:
        assert sectors[name].max_retreat_m == 0.0
    assert change.removed_ha == pytest.approx(10.0)
    assert change.added_ha == 0.0
    assert change.hausdorff_m == pytest.approx(100.0, abs=0.01)
    assert change.max_outward_m == 0.0
    assert change.main_direction is None
    assert change.summary == "-10.0 ha, retreat up to 100 m, mostly east"


def test_hole_fills_in() -> None:
    before = square(0, 0, 1000, 1000).difference(square(400, 400, 600, 600))
    change = boundary_change(before, square(0, 0, 1000, 1000), 2019, 2023)
    assert change.added_ha == pytest.approx(4.0)
    assert change.added.equals(square(400, 400, 600, 600))
    # The later boundary is the old exterior: nothing moved out ...
    assert all(s.median_m == 0.0 and s.max_m == 0.0 for s in change.sectors)
    assert change.max_outward_m == 0.0
    # ... but the old hole's edge lies 400 m inside the new outline.
    assert change.hausdorff_m == pytest.approx(400.0, abs=0.01)
    assert math.fsum(s.added_ha for s in change.sectors) == pytest.approx(4.0)
    assert change.main_direction is None  # the hole sat on the centroid
    assert change.summary == "+4.0 ha, no main direction, inside the old outline"


def test_off_centre_hole_fills_in_towards_its_side() -> None:
    before = square(0, 0, 1000, 1000).difference(square(700, 700, 900, 900))
    change = boundary_change(before, square(0, 0, 1000, 1000), 2019, 2023)
    assert change.main_direction == "NE"
    assert change.summary == "+4.0 ha, mostly north-east, inside the old outline"


def test_new_hole_is_removal_inside_the_outline() -> None:
    after = square(0, 0, 1000, 1000).difference(square(700, 700, 900, 900))
    change = boundary_change(square(0, 0, 1000, 1000), after, 2019, 2023)
    assert change.removed_ha == pytest.approx(4.0)
    assert all(s.max_retreat_m == 0.0 for s in change.sectors)
    assert change.max_outward_m == 0.0  # the old exterior is still there
    assert change.hausdorff_m == pytest.approx(300.0, abs=0.01)  # the hole's corner at (700, 700)
    assert change.summary == "-4.0 ha, inside the old outline, mostly north-east"


def test_new_detached_patch_300_m_north() -> None:
    camp = square(0, 0, 1000, 1000)
    patch = square(400, 1300, 600, 1400)
    change = boundary_change(camp, MultiPolygon([camp, patch]), 2019, 2023)
    north = by_name(change)["N"]
    # The patch's near edge is 300 m out, its far edge (and corners) 400 m: the max is 400 m.
    assert north.max_m == pytest.approx(400.0, abs=0.01)
    assert north.added_ha == pytest.approx(2.0)
    assert all(s.max_m == 0.0 for s in change.sectors if s.sector != "N")
    assert change.added.equals(patch)
    assert change.hausdorff_m == pytest.approx(400.0, abs=0.01)
    assert change.main_direction == "N"
    assert change.summary == "+2.0 ha, mostly north, up to 400 m"


def test_patch_displacements_between_300_and_400_m() -> None:
    camp = square(0, 0, 1000, 1000)
    patch = square(400, 1300, 600, 1400)
    change = boundary_change(camp, MultiPolygon([camp, patch]), 2019, 2023, sample_step_m=10.0)
    north = by_name(change)["N"]
    assert north.median_m is not None
    assert 0.0 <= north.median_m <= 400.0


def test_shift_east_adds_and_removes() -> None:
    change = boundary_change(square(0, 0, 1000, 1000), square(50, 0, 1200, 1000), 2019, 2023)
    west = by_name(change)["W"]
    assert west.median_m == pytest.approx(-50.0, abs=0.01)
    assert west.max_retreat_m == pytest.approx(50.0, abs=0.01)
    assert west.removed_ha > 0
    assert (
        change.summary == "+15.0 ha net (added 20.0 ha, removed 5.0 ha), mostly east, up to 200 m"
    )


def test_mostly_removed_is_worded_as_retreat() -> None:
    change = boundary_change(square(0, 0, 1000, 1000), square(-50, 0, 800, 1000), 2019, 2023)
    assert change.summary == (
        "-15.0 ha net (added 5.0 ha, removed 20.0 ha), retreat up to 200 m, mostly east"
    )
    assert change.main_direction == "W"  # where the (smaller) added area lies


def test_small_move_is_reported_without_area() -> None:
    change = boundary_change(square(0, 0, 10, 100), square(3, 0, 13, 100), 2019, 2023)
    assert change.added_ha == pytest.approx(0.03)
    assert change.hausdorff_m == pytest.approx(3.0)
    assert change.summary == "+0.0 ha, boundary moved up to 3 m"


def test_empty_before_is_new() -> None:
    after = square(0, 0, 1000, 1000)
    change = boundary_change(Polygon(), after, 2019, 2023)
    assert change.sectors == ()
    assert change.hausdorff_m is None
    assert change.max_outward_m is None
    assert change.main_direction is None
    assert change.added.equals(after)
    assert change.added_ha == pytest.approx(100.0)
    assert change.before.area_ha == 0.0
    assert change.summary == "+100.0 ha, new (no outline in 2019)"


def test_empty_after_is_gone() -> None:
    change = boundary_change(square(0, 0, 1000, 1000), GeometryCollection(), 2019, 2023)
    assert len(change.sectors) == 16
    assert all(s.median_m is None and s.max_m is None for s in change.sectors)
    assert all(s.max_retreat_m is None for s in change.sectors)
    assert math.fsum(s.removed_ha for s in change.sectors) == pytest.approx(100.0)
    assert change.hausdorff_m is None
    assert change.max_outward_m is None
    assert change.main_direction is None
    assert change.removed_ha == pytest.approx(100.0)
    assert change.summary == "-100.0 ha, gone (no outline in 2023)"


def test_both_empty_is_no_change() -> None:
    change = boundary_change(Polygon(), MultiPolygon(), 2019, 2023)
    assert change.summary == "no change"
    assert change.sectors == ()
    assert change.added.is_empty
    assert change.removed.is_empty
    assert change.added_ha == change.removed_ha == 0.0


def test_hausdorff_matches_shapely() -> None:
    before = square(0, 0, 1000, 1000)
    after = Point(X0 + 500, Y0 + 600).buffer(550, quad_segs=8)
    change = boundary_change(before, after, 2019, 2023, sample_step_m=0.5)
    reference = shapely.hausdorff_distance(before.boundary, after.boundary, densify=0.002)
    assert change.hausdorff_m == pytest.approx(reference, abs=1.0)
    # Exact directed distances from the densified boundaries, the slow way.
    dense_b = shapely.points(shapely.get_coordinates(shapely.segmentize(before.boundary, 0.5)))
    dense_a = shapely.points(shapely.get_coordinates(shapely.segmentize(after.boundary, 0.5)))
    slow = max(
        shapely.distance(dense_b, after.boundary).max(),
        shapely.distance(dense_a, before.boundary).max(),
    )
    assert change.hausdorff_m == pytest.approx(slow, abs=1e-6)


def test_other_sector_counts() -> None:
    before, after = square(0, 0, 1000, 1000), square(0, 0, 1100, 1000)
    four = boundary_change(before, after, 2019, 2023, sectors=4)
    assert [s.sector for s in four.sectors] == ["N", "E", "S", "W"]
    assert by_name(four)["E"].added_ha == pytest.approx(10.0)
    assert four.summary == "+10.0 ha, mostly east, up to 100 m"
    eight = boundary_change(before, after, 2019, 2023, sectors=8)
    assert [s.sector for s in eight.sectors] == list(SECTOR_NAMES_16[::2])
    twelve = boundary_change(before, after, 2019, 2023, sectors=12)
    assert [s.sector for s in twelve.sectors][:3] == ["345-015", "015-045", "045-075"]
    assert twelve.main_direction == "075-105"
    assert twelve.summary == "+10.0 ha, mostly bearing 075-105, up to 100 m"
    seven = boundary_change(before, after, 2019, 2023, sectors=7)
    assert seven.sectors[0].sector == "334.3-025.7"
    one = boundary_change(before, after, 2019, 2023, sectors=1)
    assert [s.sector for s in one.sectors] == ["000-360"]
    assert one.sectors[0].added_ha == pytest.approx(10.0)
    assert one.summary == "+10.0 ha, up to 100 m"


def test_outline_area_and_perimeter_with_hole() -> None:
    ring = square(0, 0, 1000, 1000).difference(square(400, 400, 600, 600))
    assert outline(ring).area_ha == pytest.approx(96.0)
    assert outline(ring).perimeter_m == pytest.approx(4800.0)
    assert outline(Polygon()).area_ha == 0.0


def test_invalid_input_is_repaired() -> None:
    overlapping = MultiPolygon([square(0, 0, 1000, 1000), square(500, 0, 1500, 1000)])
    assert not overlapping.is_valid
    assert outline(overlapping).area_ha == pytest.approx(150.0)  # a union, not an XOR
    change = boundary_change(overlapping, square(0, 0, 1500, 1000), 2019, 2023)
    assert change.summary == "no change"
    bowtie = Polygon([(X0, Y0), (X0 + 1000, Y0 + 1000), (X0 + 1000, Y0), (X0, Y0 + 1000)])
    assert outline(bowtie).area_ha == pytest.approx(50.0)
    touching = GeometryCollection([square(0, 0, 500, 1000), square(500, 0, 1000, 1000)])
    change = boundary_change(touching, square(0, 0, 1000, 1000), 2019, 2023)
    assert change.summary == "no change"
    assert change.hausdorff_m == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"before": None}, "before is None"),
        ({"after": LineString([(0, 0), (1, 1)])}, "after must be a Polygon or MultiPolygon"),
        ({"before": "POLYGON EMPTY"}, "got str"),
        ({"after": GeometryCollection([Point(0, 0)])}, "holds a Point"),
        ({"before": shapely.polygons([(0, 0), (1, math.inf), (1, 0), (0, 0)])}, "non-finite"),
        ({"sectors": 0}, "sectors must be between 1 and 360"),
        ({"sectors": True}, "sectors must be an integer"),
        ({"sample_step_m": -1.0}, "sample_step_m must be a positive finite number"),
        ({"sample_step_m": math.inf}, "sample_step_m must be a positive finite number"),
        ({"sample_step_m": 0.0}, "sample_step_m must be a positive finite number"),
        ({"sample_step_m": 1e-6}, "would take"),
    ],
)
def test_bad_input_raises(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"before": square(0, 0, 100, 100), "after": square(0, 0, 200, 100)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        boundary_change(year_from=2019, year_to=2023, **args)


def test_outline_rejects_non_polygonal() -> None:
    with pytest.raises(ValueError, match="geom must be a Polygon"):
        outline(Point(0, 0))


def test_boundary_changes_pairs_years_with_outlines() -> None:
    a = square(0, 0, 1000, 1000)
    b = square(0, 0, 1100, 1000)
    c = square(0, 0, 1200, 1000)
    # Deliberately unordered; 2016 has no data, 2019 has nothing there.
    by_year = {2020: c, 2016: None, 2017: b, 2015: a, 2019: Polygon()}
    pairs = boundary_changes(by_year, sectors=8)
    assert [(kind, ch.year_from, ch.year_to) for kind, ch in pairs] == [
        ("consecutive", 2015, 2017),
        ("consecutive", 2017, 2019),
        ("consecutive", 2019, 2020),
        ("first-last", 2015, 2020),
    ]
    assert [ch.summary for _, ch in pairs] == [
        "+10.0 ha, mostly east, up to 100 m",
        "-110.0 ha, gone (no outline in 2019)",
        "+120.0 ha, new (no outline in 2019)",
        "+20.0 ha, mostly east, up to 200 m",
    ]
    assert all(len(ch.sectors) in (0, 8) for _, ch in pairs)
    two = boundary_changes({2015: a, 2018: None, 2020: c})
    assert [(kind, ch.year_from, ch.year_to) for kind, ch in two] == [("consecutive", 2015, 2020)]
    assert boundary_changes({2015: a}) == []
    assert boundary_changes({2015: a, 2016: None}) == []


def test_boundary_changes_validates() -> None:
    with pytest.raises(ValueError, match="outline of 2016 must be a Polygon"):
        boundary_changes({2015: square(0, 0, 1, 1), 2016: Point(0, 0)})
    with pytest.raises(ValueError, match="sectors"):
        boundary_changes({}, sectors=-4)


def test_deterministic() -> None:
    before = Point(X0, Y0).buffer(700, quad_segs=5).union(square(300, -900, 900, -200))
    after = Point(X0 + 50, Y0 + 20).buffer(760, quad_segs=7)
    first = boundary_change(before, after, 2019, 2023)
    second = boundary_change(before, after, 2019, 2023)
    assert first == second
    assert numbers(first) == numbers(second)


# ---- properties on random outlines --------------------------------------------------------------

coord = st.floats(0.0, 2000.0, allow_nan=False, allow_infinity=False)
size = st.floats(20.0, 800.0, allow_nan=False, allow_infinity=False)


@st.composite
def shapes(draw: st.DrawFn) -> Polygon:
    x, y = draw(coord), draw(coord)
    if draw(st.booleans()):
        rect = box(x, y, x + draw(size), y + draw(size))
        return rotate(rect, draw(st.floats(0.0, 90.0)), origin="centroid")
    result: Polygon = Point(x, y).buffer(draw(size) / 2, quad_segs=draw(st.integers(1, 8)))
    return result


@st.composite
def outline_pairs(draw: st.DrawFn) -> tuple[Polygon | MultiPolygon, Polygon | MultiPolygon]:
    """Two outlines sharing a base, in UTM-sized coordinates: realistic year-to-year change."""
    base = draw(st.lists(shapes(), min_size=1, max_size=3))
    before = shapely.union_all(base + draw(st.lists(shapes(), max_size=2)))
    after = shapely.union_all(base + draw(st.lists(shapes(), max_size=2)))
    for cut in draw(st.lists(shapes(), max_size=1)):
        after = after.difference(cut)
    return translate(before, X0, Y0), translate(after, X0, Y0)


def scrambled(geom: Polygon | MultiPolygon, shift: int) -> Polygon | MultiPolygon:
    """The same outline with every ring started elsewhere, orientation and part order reversed."""

    if geom.is_empty:
        return geom

    def ring(coords: Any) -> list[tuple[float, float]]:
        pts = list(coords)[:-1]
        k = shift % len(pts)
        return list(reversed(pts[k:] + pts[:k]))

    parts = [
        Polygon(ring(p.exterior.coords), [ring(h.coords) for h in p.interiors])
        for p in shapely.get_parts(geom)
    ]
    return MultiPolygon(parts[::-1]) if len(parts) > 1 else parts[0]


def numbers(change: BoundaryChange) -> list[Any]:
    values: list[Any] = [
        change.added_ha,
        change.removed_ha,
        change.hausdorff_m,
        change.max_outward_m,
        change.main_direction,
        change.before.area_ha,
        change.before.perimeter_m,
        change.after.area_ha,
        change.after.perimeter_m,
        change.sample_step_m,
    ]
    for s in change.sectors:
        values += [s.sector, s.bearing_deg, s.median_m, s.max_m, s.max_retreat_m]
        values += [s.added_ha, s.removed_ha]
    return values


def assert_close(left: list[Any], right: list[Any], tol: float = 1e-6) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        if isinstance(a, float) and isinstance(b, float):
            assert a == pytest.approx(b, rel=tol, abs=tol)
        else:
            assert a == b


@SETTINGS
@given(outline_pairs(), st.integers(0, 1000))
def test_identical_outlines_give_no_change(
    pair: tuple[Polygon | MultiPolygon, Polygon | MultiPolygon], shift: int
) -> None:
    geom = pair[0]
    for other in (geom, scrambled(geom, shift)):
        change = boundary_change(geom, other, 2019, 2023)
        assert change.added_ha == change.removed_ha == 0.0
        assert change.hausdorff_m == 0.0
        assert change.max_outward_m == 0.0
        for s in change.sectors:
            assert s.median_m in (0.0, None)
            assert s.max_m in (0.0, None)
            assert s.max_retreat_m in (0.0, None)
        assert change.summary == "no change"


@SETTINGS
@given(outline_pairs())
def test_added_minus_removed_is_the_area_change(
    pair: tuple[Polygon | MultiPolygon, Polygon | MultiPolygon],
) -> None:
    before, after = pair
    change = boundary_change(before, after, 2019, 2023, sample_step_m=5.0)
    expected = (after.area - before.area) / 1e4
    assert change.net_ha == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert change.after.area_ha - change.before.area_ha == pytest.approx(change.net_ha, abs=1e-6)


@SETTINGS
@given(outline_pairs())
def test_sector_areas_add_up(pair: tuple[Polygon | MultiPolygon, Polygon | MultiPolygon]) -> None:
    change = boundary_change(*pair, 2019, 2023, sample_step_m=5.0)
    assert len(change.sectors) == 16
    sector_added = math.fsum(s.added_ha for s in change.sectors)
    sector_removed = math.fsum(s.removed_ha for s in change.sectors)
    assert sector_added == pytest.approx(change.added_ha, rel=1e-6, abs=1e-6)
    assert sector_removed == pytest.approx(change.removed_ha, rel=1e-6, abs=1e-6)
    moved = [s.max_m for s in change.sectors if s.max_m is not None]
    if change.after.area_ha == 0:  # the cut took everything
        assert not moved
        assert change.max_outward_m is None
        assert change.hausdorff_m is None
    else:
        assert change.max_outward_m == max(moved)
        assert change.hausdorff_m is not None
        assert change.hausdorff_m >= max(abs(m) for m in moved)


@SETTINGS
@given(outline_pairs(), st.integers(0, 1000))
def test_vertex_order_and_ring_start_do_not_matter(
    pair: tuple[Polygon | MultiPolygon, Polygon | MultiPolygon], shift: int
) -> None:
    before, after = pair
    plain = boundary_change(before, after, 2019, 2023, sample_step_m=5.0)
    other = boundary_change(
        scrambled(before, shift), scrambled(after, shift + 7), 2019, 2023, sample_step_m=5.0
    )
    assert_close(numbers(plain), numbers(other))
    assert plain.summary == other.summary


@SETTINGS
@given(outline_pairs(), st.integers(-100_000, 20_000), st.integers(-100_000, 100_000))
def test_translation_does_not_matter(
    pair: tuple[Polygon | MultiPolygon, Polygon | MultiPolygon], dx: int, dy: int
) -> None:
    # Whole metres within the same power of two are exact in floating point: nothing may depend
    # on where the site is. (Arbitrary shifts add rounding noise, which can move a sample lying
    # on a sector edge or at the reference point itself into another sector.)
    before, after = pair
    plain = boundary_change(before, after, 2019, 2023, sample_step_m=5.0)
    moved = boundary_change(
        translate(before, dx, dy), translate(after, dx, dy), 2019, 2023, sample_step_m=5.0
    )
    assert_close(numbers(plain), numbers(moved), tol=1e-5)


def test_samples_do_not_depend_on_step_beyond_half_a_step() -> None:
    before = Point(X0, Y0).buffer(500, quad_segs=3)
    after = rotate(square(-450, -450, 550, 550), 20, origin=(X0, Y0))
    fine = boundary_change(before, after, 2019, 2023, sample_step_m=0.5)
    coarse = boundary_change(before, after, 2019, 2023, sample_step_m=20.0)
    assert fine.hausdorff_m is not None
    assert coarse.hausdorff_m is not None
    # Both are within half their step below the true value, which neither exceeds.
    assert coarse.hausdorff_m <= fine.hausdorff_m + 0.25
    assert fine.hausdorff_m - coarse.hausdorff_m <= 10.0
    assert np.isclose(fine.added_ha, coarse.added_ha)
