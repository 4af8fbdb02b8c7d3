from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from pipeline.cli import main
from pipeline.errors import ConfigError, SiteError
from pipeline.grid import Grid, reproject_geometry, utm_crs_for
from pipeline.sites import adjacent_zones, load_sites, validate_site_files

ROOT = Path(__file__).resolve().parents[1]


def feature(**props: Any) -> dict[str, Any]:
    base = {"id": "camp-1", "name": "Camp", "kind": "kwanliso", "source": "test"}
    coords = [[125.0, 39.0], [125.01, 39.0], [125.01, 39.01], [125.0, 39.01], [125.0, 39.0]]
    geom = props.pop("geometry", {"type": "Polygon", "coordinates": [coords]})
    return {"type": "Feature", "properties": {**base, **props}, "geometry": geom}


def write(tmp_path: Path, *features: dict[str, Any]) -> Path:
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return path


def test_loads_valid_site_and_grid(tmp_path: Path) -> None:
    (site,) = load_sites(write(tmp_path, feature()))
    assert site.id == "camp-1"
    assert site.utm_crs == "EPSG:32651"
    grid = site.grid(10, 200)
    left, _bottom, right, top = grid.bounds
    assert left % 60 == 0
    assert top % 60 == 0
    # ~860 m wide site plus 2 x 200 m buffer
    assert 1200 <= right - left <= 1400
    assert grid.resolution == 10


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"id": "../etc"}, "not safe as a file name"),
        ({"id": "Camp 1"}, "not safe as a file name"),
        ({"kind": "prison"}, "kind: 'prison' is not one of"),
        ({"source": ""}, "no source; give .sources."),
        ({"geometry": {"type": "Point", "coordinates": [125, 39]}}, "Point not allowed"),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[39, 125], [39.1, 125], [39.1, 125.1], [39, 125]]],
                }
            },
            "outside WGS84",
        ),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[125, 39], [125.1, 39.1], [125.1, 39], [125, 39.1], [125, 39]]
                    ],
                }
            },
            "invalid polygon",
        ),
    ],
)
def test_bad_features_named(tmp_path: Path, props: dict[str, Any], message: str) -> None:
    with pytest.raises(SiteError, match=message) as err:
        load_sites(write(tmp_path, feature(**props)))
    assert "sites.geojson: features[0]" in str(err.value)


def test_duplicate_ids_and_subset(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="repeats features"):
        load_sites(write(tmp_path, feature(), feature()))
    path = write(tmp_path, feature(), feature(id="port-2", kind="coal_port"))
    assert [s.id for s in load_sites(path, only=["port-2"])] == ["port-2"]
    with pytest.raises(SiteError, match="not found; available"):
        load_sites(path, only=["nope"])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="not found"):
        load_sites(tmp_path / "none.geojson")


@pytest.mark.parametrize(
    ("lon", "lat", "crs"),
    [(125.8, 39.5, "EPSG:32651"), (126.3, 39.1, "EPSG:32652"), (-70.0, -33.0, "EPSG:32719")],
)
def test_utm_zone(lon: float, lat: float, crs: str) -> None:
    assert utm_crs_for(lon, lat) == crs


@settings(max_examples=50, derandomize=True, database=None)
@given(
    st.floats(0, 1e6),
    st.floats(0, 1e6),
    st.floats(1, 5000),
    st.floats(1, 5000),
    st.sampled_from([10.0, 20.0, 30.0]),
)
def test_grid_covers_bounds(x: float, y: float, w: float, h: float, res: float) -> None:
    grid = Grid.from_bounds("EPSG:32651", (x, y, x + w, y + h), res, snap=60)
    left, bottom, right, top = grid.bounds
    assert left <= x
    assert bottom <= y
    assert right >= x + w
    assert top >= y + h
    assert grid.width > 0
    assert grid.height > 0


# -- the site library's rules (`sitewatch sites validate`) ----------------------------------

SQUARE = [[125.0, 39.0], [125.01, 39.0], [125.01, 39.01], [125.0, 39.01], [125.0, 39.0]]


def library_feature(**props: Any) -> dict[str, Any]:
    """A site with every property the library asks for; ``props`` override them."""
    base: dict[str, Any] = {
        "id": "kwanliso-1",
        "name": "Camp",
        "kind": "kwanliso",
        "aliases": ["Camp 1"],
        "scope": "whole-site",
        "sources": ["https://example.org/report"],
        "status": {"summary": "operating", "disputed": False, "claims": []},
        "location_confidence": {"level": "medium", "reason": "one source"},
        "extent_note": "published 1 x 1 km",
        "geometry_basis": "approximate box from a published extent",
    }
    geom = props.pop("geometry", {"type": "Polygon", "coordinates": [SQUARE]})
    merged = {k: v for k, v in {**base, **props}.items() if v is not None}
    return {"type": "Feature", "properties": merged, "geometry": geom}


def problems(tmp_path: Path, *features: dict[str, Any]) -> list[str]:
    (check,) = validate_site_files([write(tmp_path, *features)])
    return list(check.problems)


def test_a_complete_library_file_passes(tmp_path: Path) -> None:
    control = library_feature(
        id="control-1",
        kind="control",
        control_for=["kwanliso-1"],
        geometry={"type": "Polygon", "coordinates": [[[x + 0.1, y] for x, y in SQUARE]]},
    )
    focus = library_feature(
        id="kwanliso-1-hq",
        scope="focus-area",
        parent="kwanliso-1",
        geometry={
            "type": "Polygon",
            "coordinates": [[[125.002, 39.002], [125.004, 39.002], [125.004, 39.004],
                             [125.002, 39.004], [125.002, 39.002]]],
        },
    )  # fmt: skip
    assert problems(tmp_path, library_feature(), focus, control) == []


def test_shipped_library_validates() -> None:
    checks = validate_site_files(sorted((ROOT / "aoi").glob("*.geojson")))
    assert [p for c in checks for p in c.problems] == []
    assert sum(len(c.sites) for c in checks) >= 3


CW_SQUARE = SQUARE[::-1]
HOLED = [
    [[125.0, 39.0], [125.02, 39.0], [125.02, 39.02], [125.0, 39.02], [125.0, 39.0]],
    [[125.005, 39.005], [125.01, 39.005], [125.01, 39.01], [125.005, 39.01], [125.005, 39.005]],
]  # the hole wound counter-clockwise, like its exterior: wrong under RFC 7946


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ({"sources": None}, ["properties: no source; give 'sources'", "sources=None"]),
        ({"sources": []}, ["properties: no source", "sources=[]"]),
        ({"sources": ["  "]}, ["properties: no source", "sources=['  ']"]),
        (
            {"source": "a report", "sources": None},
            ["properties.sources: None", "never ship a site without a source"],
        ),
        ({"aliases": "Camp 1"}, ["properties.aliases: 'Camp 1'", "a list of names"]),
        ({"status": "open"}, ["properties.status: 'open'", "'disputed' (true/false)"]),
        (
            {"status": {"summary": "x", "disputed": False, "claims": [{"date": "2016"}]}},
            ["status.claims[0]", "'date', 'claim' and 'source'"],
        ),
        (
            {"location_confidence": {"level": "certain", "reason": "x"}},
            ["location_confidence", "'certain'", "high, medium, low"],
        ),
        ({"location_confidence": {"level": "high"}}, ["location_confidence", "reason: why"]),
        ({"extent_note": ""}, ["properties.extent_note: ''", "required text"]),
        ({"geometry_basis": None}, ["properties.geometry_basis: None", "digitised"]),
        ({"scope": "camp"}, ["properties.scope: 'camp'", "whole-site, focus-area"]),
        ({"scope": "focus-area"}, ["properties.parent: a focus area names its parent"]),
        ({"parent": "kwanliso-9"}, ["properties.parent: 'kwanliso-9' is not another site"]),
        ({"parent": "kwanliso-1"}, ["properties.parent: 'kwanliso-1' is not another site"]),
        ({"kind": "control"}, ["properties.control_for: None", "non-empty list"]),
        (
            {"kind": "control", "control_for": ["kwanliso-7"]},
            ["control_for: 'kwanliso-7' is not a watched site"],
        ),
        (
            {"geometry": {"type": "Polygon", "coordinates": [CW_SQUARE]}},
            ["polygon 0 exterior: wound clockwise", "wants counter-clockwise", "Force Right-Hand"],
        ),
        (
            {"geometry": {"type": "Polygon", "coordinates": HOLED}},
            ["polygon 0 hole 1: wound counter-clockwise", "wants clockwise"],
        ),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[125.0, 39.0], [125.01, 39.0], [125.01, 39.01], [125.0, 39.01]]
                    ],
                }
            },
            ["not closed", "[125.0, 39.0] != last [125.0, 39.01]"],
        ),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [125.0, 39.0],
                            [125.0100001, 39.0],
                            [125.01, 39.01],
                            [125.0, 39.01],
                            [125.0, 39.0],
                        ]
                    ],
                }
            },
            ["coordinate 125.0100001 has more than 6 decimals"],
        ),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [125.0, 39.0],
                            [125.0005, 39.0],
                            [125.0005, 39.0005],
                            [125.0, 39.0005],
                            [125.0, 39.0],
                        ]
                    ],
                }
            },
            ["area 0.24 ha is under 1 ha", "too small to measure"],
        ),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[125.0, 39.0], [125.5, 39.0], [125.5, 39.4], [125.0, 39.4], [125.0, 39.0]]
                    ],
                }
            },
            ["area 1,918 km2 is over 1,500 km2", "split the site"],
        ),
        ({"kind": "camp"}, ["kind: 'camp' is not one of", "'camp' is now 'kwanliso'"]),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[39.0, 125.0], [39.1, 125.0], [39.1, 125.1], [39.0, 125.0]]],
                }
            },
            ["outside WGS84", "longitude, latitude"],
        ),
    ],
)
def test_each_library_problem_is_named(
    tmp_path: Path, props: dict[str, Any], expected: list[str]
) -> None:
    found = problems(tmp_path, library_feature(**props))
    assert len(found) == 1, found
    assert "sites.geojson: features[0]" in found[0]
    for text in expected:
        assert text in found[0]


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        library_feature(source="a report", sources=None),
        library_feature(id="kwanliso-2", kind="prison"),
        library_feature(id="kwanliso-1", extent_note=""),
    )
    assert len(found) == 4, found
    assert any("features[0] (kwanliso-1).properties.sources" in p for p in found)
    assert any("features[1].properties.kind: 'prison'" in p for p in found)
    assert any("features[2].properties.id: 'kwanliso-1' repeats" in p for p in found)
    assert any("features[2] (kwanliso-1).properties.extent_note" in p for p in found)


def test_ids_are_unique_and_references_resolve_across_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write(tmp_path / "a", library_feature())
    b = write(
        tmp_path / "b",
        library_feature(id="kwanliso-1-hq", scope="focus-area", parent="kwanliso-1"),
        library_feature(),
    )
    ok_a, bad_b = validate_site_files([a, b])
    assert ok_a.problems == ()
    assert len(bad_b.problems) == 1
    assert "features[1].properties.id: 'kwanliso-1' repeats" in bad_b.problems[0]
    assert f"{a}: features[0]" in bad_b.problems[0]


def test_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [')
    (check,) = validate_site_files([path])
    assert len(check.problems) == 1
    assert "broken.geojson: not readable as GeoJSON" in check.problems[0]


def test_source_or_sources_is_required_to_load(tmp_path: Path) -> None:
    no_source = feature()
    del no_source["properties"]["source"]
    with pytest.raises(SiteError, match="no source; give 'sources'"):
        load_sites(write(tmp_path, no_source))
    (site,) = load_sites(write(tmp_path, feature(source=None, sources=["https://a", "b"])))
    assert site.sources == ("https://a", "b")
    assert site.source == "https://a; b"


# -- adjacent zones ---------------------------------------------------------------------------


def utm_box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    """A GeoJSON box given in UTM 51N metres, at 6 decimals, counter-clockwise."""
    to_wgs = Transformer.from_crs("EPSG:32651", "EPSG:4326", always_xy=True)
    ring = [to_wgs.transform(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def test_adjacent_zone_is_a_ring_without_the_camps(tmp_path: Path) -> None:
    x, y = 400_000.0, 4_380_000.0
    camp = library_feature(geometry=utm_box(x, y, x + 4000, y + 3000))
    neighbour = library_feature(id="kwanliso-2", geometry=utm_box(x + 4500, y, x + 7500, y + 3000))
    focus = library_feature(
        id="kwanliso-1-hq", scope="focus-area", parent="kwanliso-1",
        geometry=utm_box(x + 1000, y + 1000, x + 2000, y + 2000),
    )  # fmt: skip
    mine = library_feature(
        id="coal-mine-1", kind="coal_mine", geometry=utm_box(x, y - 9000, x + 1000, y - 8000)
    )
    sites = load_sites(write(tmp_path, camp, neighbour, focus, mine))
    zones = adjacent_zones(sites, 1000.0)
    assert [z.id for z in zones] == ["kwanliso-1-adjacent", "kwanliso-2-adjacent"]
    zone = zones[0]
    assert zone.kind == "adjacent_zone"
    assert zone.parent == "kwanliso-1"
    assert zone.sources == sites[0].sources
    ring = reproject_geometry(zone.geometry, "EPSG:4326", "EPSG:32651")
    camp_utm = shapely.box(x, y, x + 4000, y + 3000)
    # Overlap only from rounding to 6 decimals: <= 0.11 m along each edge.
    assert ring.intersection(camp_utm).area < 0.11 * camp_utm.length
    # The ring stops at the neighbour: 500 m between the camps, the rest of the neighbour cut.
    neighbour_utm = shapely.box(x + 4500, y, x + 7500, y + 3000)
    assert ring.intersection(neighbour_utm).area < 0.11 * neighbour_utm.length
    # Area of a 1 km ring around 4 x 3 km, rounded corners, minus the neighbour's overlap
    # (500 m x 3000 m strip is free, 500 m of the buffer lies on the neighbour over 3 km + corners).
    full = camp_utm.buffer(1000.0, quad_segs=8).difference(camp_utm).area
    assert full - 1_700_000 < ring.area < full - 1_400_000
    assert shapely.get_coordinates(zone.geometry).round(6).tolist() == (
        shapely.get_coordinates(zone.geometry).tolist()
    )
    # RFC 7946 winding, as the site library wants it
    assert all(p.exterior.is_ccw for p in getattr(zone.geometry, "geoms", [zone.geometry]))


def test_adjacent_zone_of_a_site_surrounded_by_camps_is_left_out(tmp_path: Path) -> None:
    x, y = 400_000.0, 4_380_000.0
    inner = library_feature(geometry=utm_box(x + 1000, y + 1000, x + 2000, y + 2000))
    outer = library_feature(id="kwanliso-2", geometry=utm_box(x, y, x + 3000, y + 3000))
    zones = adjacent_zones(load_sites(write(tmp_path, inner, outer)), 500.0)
    assert [z.id for z in zones] == ["kwanliso-2-adjacent"]


def test_adjacent_zone_width_must_be_positive(tmp_path: Path) -> None:
    sites = load_sites(write(tmp_path, library_feature()))
    with pytest.raises(ConfigError, match="adjacent zone width 0"):
        adjacent_zones(sites, 0.0)


# -- the command line -------------------------------------------------------------------------


def test_cli_lists_shows_and_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, library_feature(), library_feature(id="coal-port-1", kind="coal_port"))
    assert main(["sites", "list", str(path), "--kind", "coal_port"]) == 0
    out = capsys.readouterr().out
    assert "coal-port-1" in out
    assert "kwanliso-1 " not in out
    assert "source: https://example.org/report" in out
    assert main(["sites", "list", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["confidence"]) for r in rows] == [
        ("kwanliso-1", "medium"),
        ("coal-port-1", "medium"),
    ]
    assert main(["sites", "show", "coal-port-1", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["utm_crs"] == "EPSG:32651"
    assert shown["extent_note"] == "published 1 x 1 km"
    assert main(["sites", "show", "nope", str(path)]) == 2
    assert "site id 'nope' not found; available: coal-port-1, kwanliso-1" in capsys.readouterr().err
    assert main(["sites", "validate", str(tmp_path)]) == 0
    assert f"ok {path}: 2 sites" in capsys.readouterr().out
    bad = write(tmp_path, library_feature(sources=[]))
    assert main(["sites", "validate", str(bad)]) == 2
    assert "FAILED" in capsys.readouterr().out
