"""aoi/dprk_sites.geojson: it loads, every site carries its sources, and no geometry claims
more than those sources support (sizes, precision, orientation, published points)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, Polygon, shape

from pipeline.sites import SITE_KINDS, load_sites

ROOT = Path(__file__).resolve().parents[1]
SITE_FILE = ROOT / "aoi" / "dprk_sites.geojson"
SHARED_SITES = ROOT.parent / "shared" / "real-data" / "sites"

CAMPS = ("kwanliso-14", "kwanliso-15", "kwanliso-16")
FOCUS = ("kwanliso-14-hq", "kwanliso-15-housing", "kwanliso-16-housing", "kwanliso-16-new-facility")
CONFIDENCE_LEVELS = ("high", "medium", "low")

# Every point VERIFICATION.md names for these camps, copied as it prints them (lat, lon).
VERIFICATION_POINTS = {
    "kwanliso-14": [
        ("39.571086", "126.055466"),  # Wikipedia
        ("39.574979", "126.047860"),  # HQ, NKEW 2016
        ("39.559300", "126.013005"),  # entrance, NKEW 2016
    ],
    "kwanliso-15": [
        ("39.713", "126.895"),  # freekorea.us
        ("39.699346", "126.849473"),  # housing, NKEW 2017
    ],
    "kwanliso-16": [
        ("41.268505", "129.391211"),  # Wikipedia
        ("41.305616", "129.420913"),  # interior, NKEW 2013
        ("41.317569", "129.336758"),  # interior, NKEW 2013
    ],
}

# Figures each camp's extent_note must carry, contradictions included (VERIFICATION.md).
EXTENT_FIGURES = {
    "kwanliso-14": ("14 by 21", "155 km2"),
    "kwanliso-15": ("22 km", "20 km", "378 km2"),
    "kwanliso-16": ("539", "548", "549", "115 km", "119 km", "30 x 35"),
}

# Whole-camp boxes are built from published dimensions with corners on a 0.01 deg grid: each
# edge moves by up to 0.005 deg (<= 0.56 km N-S, <= 0.43 km E-W at 39-41 N), up to ~12% of the
# area of the smallest (17 km) box. Tolerance: the box's UTM area within +/-10% of the area of
# the published dimensions it claims, and never smaller than the largest published camp area.
CAMP_AREA_TOLERANCE = 0.10
# Focus areas: 2 x 2 km with corners on a 0.001 deg grid (<= ~0.1 km per side): 4 km2 +/- 15%.
FOCUS_AREA_KM2 = 4.0
FOCUS_AREA_TOLERANCE = 0.15
# A focus area must lie inside its parent; "mostly" means at least this share of its area.
FOCUS_INSIDE_SHARE = 0.9


def _features() -> list[dict[str, Any]]:
    return json.loads(SITE_FILE.read_text(encoding="utf-8"))["features"]


def _by_id() -> dict[str, dict[str, Any]]:
    return {f["properties"]["id"]: f for f in _features()}


def _utm_area_km2(geom: Any) -> float:
    c = geom.centroid
    zone = int((c.x + 180.0) // 6.0) + 1
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{32600 + zone}", always_xy=True)
    projected = shapely.transform(
        geom, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1]))
    )
    return float(projected.area) / 1e6


def _point(lat_lon: tuple[str, str]) -> Point:
    return Point(float(lat_lon[1]), float(lat_lon[0]))


def test_file_loads_with_the_site_loader() -> None:
    sites = load_sites(SITE_FILE)
    assert [s.id for s in sites] == [
        "kwanliso-14",
        "kwanliso-14-hq",
        "kwanliso-15",
        "kwanliso-15-housing",
        "kwanliso-16",
        "kwanliso-16-housing",
        "kwanliso-16-new-facility",
    ]
    assert all(s.kind == "camp" and s.kind in SITE_KINDS for s in sites)
    assert all(s.source.strip() for s in sites)
    # extra properties survive the loader
    assert all(s.properties["sources"] and s.properties["location_confidence"] for s in sites)


@pytest.mark.parametrize("site_id", CAMPS + FOCUS)
def test_every_site_carries_what_an_analyst_needs(site_id: str) -> None:
    p = _by_id()[site_id]["properties"]
    geom = shape(_by_id()[site_id]["geometry"])
    assert isinstance(p["aliases"], list)
    assert p["aliases"]
    assert all(isinstance(a, str) and a.strip() for a in p["aliases"])
    assert isinstance(p["sources"], list)
    assert p["sources"], "never a site without a source"
    assert all(isinstance(s, str) and s.strip() for s in p["sources"])
    status = p["status"]
    assert status["summary"].strip()
    assert isinstance(status["disputed"], bool)
    assert status["claims"], "a status needs dated, sourced claims"
    for claim in status["claims"]:
        assert claim["date"].strip()
        assert claim["claim"].strip()
        assert claim["source"].strip()
    conf = p["location_confidence"]
    assert conf["level"] in CONFIDENCE_LEVELS
    assert len(conf["reason"]) > 40
    assert len(p["extent_note"]) > 40
    assert len(p["geometry_basis"]) > 20
    assert p["points"], "every geometry is built from at least one published point"
    for pt in p["points"]:
        assert pt["source"] in p["sources"]
        assert geom.contains(Point(pt["lon"], pt["lat"])), pt
    if site_id in CAMPS:
        assert p["scope"] == "whole-camp"
        assert "parent" not in p
        assert p["geometry_basis"].startswith("approximate box from a published extent")
    else:
        assert p["scope"] == "focus-area"
        assert p["parent"]
        assert p["geometry_basis"].startswith("2 x 2 km box around a published interior point")


@pytest.mark.parametrize("site_id", FOCUS)
def test_focus_area_lies_inside_its_parent(site_id: str) -> None:
    sites = _by_id()
    parent_id = sites[site_id]["properties"]["parent"]
    assert parent_id in sites
    assert sites[parent_id]["properties"]["scope"] == "whole-camp"
    child, parent = shape(sites[site_id]["geometry"]), shape(sites[parent_id]["geometry"])
    assert child.intersection(parent).area / child.area >= FOCUS_INSIDE_SHARE
    area = _utm_area_km2(child)
    assert abs(area - FOCUS_AREA_KM2) <= FOCUS_AREA_TOLERANCE * FOCUS_AREA_KM2, area


@pytest.mark.parametrize("site_id", CAMPS)
def test_camp_box_area_matches_the_published_figures_it_claims(site_id: str) -> None:
    p = _by_id()[site_id]["properties"]
    area = _utm_area_km2(shape(_by_id()[site_id]["geometry"]))
    dims = p["box"]["published_dims_km"]
    claimed = p["box"]["claimed_area_km2"]
    assert claimed == dims[0] * dims[1]
    assert abs(area - claimed) <= CAMP_AREA_TOLERANCE * claimed, (area, claimed)
    published = p["published_area_km2"]
    assert published["min"] == min(v["km2"] for v in published["values"])
    assert published["max"] == max(v["km2"] for v in published["values"])
    # an envelope must be able to hold the camp it stands for
    assert area >= published["max"], (area, published)


@pytest.mark.parametrize("site_id", CAMPS)
def test_camp_box_contains_every_point_verification_names(site_id: str) -> None:
    geom = shape(_by_id()[site_id]["geometry"])
    for lat_lon in VERIFICATION_POINTS[site_id]:
        assert geom.contains(_point(lat_lon)), (site_id, lat_lon)


@pytest.mark.parametrize("site_id", CAMPS)
def test_extent_note_carries_the_contradictions(site_id: str) -> None:
    note = _by_id()[site_id]["properties"]["extent_note"]
    for figure in EXTENT_FIGURES[site_id]:
        assert figure in note, (site_id, figure)
    assert "indicative" in note
    assert "centred on" in note


def test_camp_15_status_carries_the_dispute() -> None:
    status = _by_id()["kwanliso-15"]["properties"]["status"]
    assert status["disputed"] is True
    text = " ".join(c["claim"] for c in status["claims"])
    assert "closed" in text
    assert "administrative" in text
    assert {c["date"][:4] for c in status["claims"]} >= {"2014", "2017"}


def test_coordinates_are_rfc7946_and_no_finer_than_their_source() -> None:
    # parse_float=str keeps each coordinate as written, so its decimals can be counted
    raw = json.loads(SITE_FILE.read_text(encoding="utf-8"), parse_float=str)
    for feature in raw["features"]:
        rounding = float(feature["properties"]["box"]["corner_rounding_deg"])
        max_decimals = round(-np.log10(rounding))
        assert max_decimals <= 6
        rings = feature["geometry"]["coordinates"]
        for ring in rings:
            for lon, lat in ring:
                for value in (lon, lat):
                    decimals = len(value.split(".")[1]) if "." in value else 0
                    assert decimals <= max_decimals, (feature["properties"]["id"], value)
        exterior = Polygon([(float(x), float(y)) for x, y in rings[0]]).exterior
        assert exterior.is_ccw, feature["properties"]["id"]
        for hole in rings[1:]:
            assert not Polygon([(float(x), float(y)) for x, y in hole]).exterior.is_ccw


def test_no_polygon_for_sites_without_a_public_coordinate() -> None:
    text = SITE_FILE.read_text(encoding="utf-8").lower()
    ids = " ".join(_by_id())
    for name in ("rajin", "songnim", "taean", "tukjang", "chungbong"):
        assert name not in ids
    assert '"kind": "control"' not in text, "no control site without a source calling it stable"


@pytest.mark.realdata
def test_points_and_source_urls_match_the_verification_files() -> None:
    if not SHARED_SITES.is_dir():
        pytest.skip(f"{SHARED_SITES} absent (fresh clone outside the workspace)")
    verification = (SHARED_SITES / "VERIFICATION.md").read_text(encoding="utf-8")
    shared = verification + (SHARED_SITES / "nk_sites_candidates.csv").read_text(encoding="utf-8")
    for points in VERIFICATION_POINTS.values():
        for lat, lon in points:
            assert f"{lat}, {lon}" in verification, (lat, lon)
    for feature in _features():
        for src in feature["properties"]["sources"]:
            if " " in src:  # a prose citation: it must say why it carries no URL
                assert "VERIFICATION.md" in src, src
            else:  # a URL: exactly as VERIFICATION.md or the CSV give it
                assert src in shared, src
