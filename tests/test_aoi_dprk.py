"""aoi/dprk_sites.geojson, the public site library: it is what aoi/build_dprk_sites.py builds, it
loads, every site carries its sources, no geometry claims more than those sources support
(sizes, precision, published points), contradictions are carried, and every watched site has a
control that keeps clear of all of them."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, Polygon, shape

from pipeline.sites import SITE_KINDS, load_sites

ROOT = Path(__file__).resolve().parents[1]
SITE_FILE = ROOT / "aoi" / "dprk_sites.geojson"
README = ROOT / "aoi" / "README.md"
BUILDER = ROOT / "aoi" / "build_dprk_sites.py"
SHARED_SITES = ROOT.parent / "shared" / "real-data" / "sites"
SHARED_FILES = ("VERIFICATION.md", "nk_sites_candidates.csv", "gcmt_2022_north_korea.csv")

KINDS = ("kwanliso", "kyohwaso", "coal_mine", "coal_port", "control")
CONFIDENCE_LEVELS = ("high", "medium", "low")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_ID_LENGTH = 54  # the pipeline derives "<id>-adjacent" (63 characters at most)
MAX_AREA_KM2 = 1_500.0
CONTROL_MIN_GAP_KM = 3.0
# A prose citation (no URL) must say which shared file cites it.
CITING_FILES = (*SHARED_FILES, "DOMAIN.md")

# Whole-camp boxes: indicative envelopes centred on a point that is not a published centroid.
CAMPS = ("kwanliso-14", "kwanliso-15", "kwanliso-16", "kwanliso-18", "kwanliso-22")
# Boxes built from published dimensions (as an envelope of the same area or a multiple of it).
ENVELOPES = {"kwanliso-14": (14, 21), "kwanliso-15": (22, 20), "kwanliso-16": (30, 35)}

# Every point VERIFICATION.md names for these sites, as it prints them (lat, lon); each must
# lie inside the site's geometry.
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
    "kwanliso-18": [("39.546164", "126.063223")],  # Wikipedia
    "kwanliso-22": [("42.537967", "129.935517")],  # Wikipedia
    "kwanliso-25": [("41.834384", "129.725280")],  # HRNK 2016
    "kyohwaso-1": [("39.6986", "125.9365")],  # derived: 2.6 km east of Kaechon
    "kyohwaso-4": [("39.008838", "126.153277")],  # HRNK
    "kyohwaso-12": [("42.209410", "129.755100")],  # HRNK 2016
    "coal-port-nampo": [("38.7281", "125.4169")],  # AllSource 2018
    "coal-port-chongjin": [("41.7816", "129.8204")],  # GEM
    "coal-port-ryongchon": [("39.922064", "124.316558")],  # GEM
    "coal-port-sunchon": [("39.42", "125.93")],  # GEM
}

# Figures each extent_note must carry, contradictions included (VERIFICATION.md, the CSVs).
EXTENT_FIGURES = {
    "kwanliso-14": ("14 by 21", "155 km2"),
    "kwanliso-15": ("22 km", "20 km", "378 km2"),
    "kwanliso-16": ("539", "548", "549", "115 km", "119 km", "30 x 35"),
    "kwanliso-18": ("73 km2", "78 km2", "Tukchang"),
    "kwanliso-22": ("225 km2",),
    "kwanliso-25": ("1.01 km2", "1,810 x 1,240 m", "500 x 500 m"),
    "kyohwaso-1": ("2.6 km east", "300 x 300 m", "39d30m10sN 125d45m35sE"),
    "kyohwaso-4": ("250 x 200 m", "2 x 1.5 km"),
    "kyohwaso-12": ("188 x 128 m", "350 x 150 m"),
    "kyohwaso-12-walled-prison": ("188 x 128 m", "350 x 150 m"),
    "coal-mine-february-8-jikdong": ("39.051525", "39.4915628", "2024 point"),
    "coal-mine-gaecheon": ("Gaecheon-si", "91.6 km"),
    "coal-mine-ryeongdae": ("Eunsan-gun", "Tanchon"),
    "coal-mine-ryongmun": ("Gujang-gun", "Kujang"),
}

# Points the first site file took from a cited page; the shared files do not print them.
POINTS_FROM_CITED_PAGES = {
    ("kwanliso-16-housing", 41.313945, 129.345299),  # NKEW 2013 imagery update, housing Area 2
}

# Sites without a public coordinate: no polygon, and the README says so.
ABSENT = ("Rajin", "Songnim", "Taean", "Tukjang", "Chungbong")


def _load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dprk_sites", BUILDER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _load_builder()


def _features() -> list[dict[str, Any]]:
    return json.loads(SITE_FILE.read_text(encoding="utf-8"))["features"]


def _by_id() -> dict[str, dict[str, Any]]:
    return {f["properties"]["id"]: f for f in _features()}


IDS = [f["properties"]["id"] for f in _features()]
BOXED = [i for i, f in _by_id().items() if "box" in f["properties"]]
FOCUS = [i for i, f in _by_id().items() if f["properties"]["scope"] == "focus-area"]
CONTROLS = [i for i, f in _by_id().items() if f["properties"]["kind"] == "control"]
WATCHED = [i for i in IDS if i not in CONTROLS]


def _utm(geom: Any, epsg: int | None = None) -> Any:
    if epsg is None:
        c = geom.centroid
        epsg = 32600 + int((c.x + 180.0) // 6.0) + 1
    to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])))


def _utm_epsg(geom: Any) -> int:
    return 32600 + int((geom.centroid.x + 180.0) // 6.0) + 1


def _utm_area_km2(geom: Any) -> float:
    return float(_utm(geom).area) / 1e6


def _point(lat_lon: tuple[str, str]) -> Point:
    return Point(float(lat_lon[1]), float(lat_lon[0]))


def _rounding_bound(geom: Polygon, rounding: float, size_km: list[float]) -> float:
    """Largest relative area error from snapping each edge to the ``rounding`` grid: each side
    can grow or shrink by up to one grid step."""
    lat = geom.centroid.y
    step_ew = rounding * 111.32 * math.cos(math.radians(lat))
    step_ns = rounding * 110.57
    ew, ns = size_km
    return ((ew + step_ew) * (ns + step_ns) - ew * ns) / (ew * ns)


def test_shipped_files_are_what_the_builder_builds() -> None:
    collection = BUILD.build()
    assert SITE_FILE.read_text(encoding="utf-8") == BUILD.geojson_text(collection), (
        "aoi/dprk_sites.geojson differs from the builder's output: edit the table in "
        "aoi/build_dprk_sites.py and run it"
    )
    readme = README.read_text(encoding="utf-8")
    assert BUILD.readme_text(collection, readme) == readme, "regenerate the README tables"


def test_file_loads_with_the_site_loader() -> None:
    # needs the site-library kinds in pipeline.sites.SITE_KINDS
    sites = load_sites(SITE_FILE)
    assert [s.id for s in sites] == [spec["id"] for spec in BUILD.SITES]
    assert {s.kind for s in sites} == set(KINDS)
    assert all(s.kind in SITE_KINDS for s in sites)
    assert all(s.source.strip() for s in sites)
    # extra properties survive the loader
    assert all(s.properties["sources"] and s.properties["location_confidence"] for s in sites)


def test_library_holds_every_documented_site() -> None:
    kinds: dict[str, list[str]] = {}
    for f in _features():
        kinds.setdefault(f["properties"]["kind"], []).append(f["properties"]["id"])
    for camp in (14, 15, 16, 18, 22, 25):
        assert f"kwanliso-{camp}" in kinds["kwanliso"]
    for prison in (1, 4, 12):
        assert f"kyohwaso-{prison}" in kinds["kyohwaso"]
    assert sorted(kinds["coal_port"]) == [
        "coal-port-chongjin",
        "coal-port-nampo",
        "coal-port-ryongchon",
        "coal-port-sunchon",
    ]
    assert len(kinds["coal_mine"]) == 11  # the 10 GEM 2022 rows + Cheongnam from the CSV
    assert len(kinds["control"]) >= 7


@pytest.mark.parametrize("site_id", IDS)
def test_every_site_carries_what_an_analyst_needs(site_id: str) -> None:
    feature = _by_id()[site_id]
    p = feature["properties"]
    geom = shape(feature["geometry"])
    assert ID_PATTERN.match(site_id)
    assert len(site_id) <= MAX_ID_LENGTH
    assert p["kind"] in KINDS
    assert p["name"].strip()
    assert p["source"].strip()
    assert isinstance(p["aliases"], list)
    assert all(isinstance(a, str) and a.strip() for a in p["aliases"])
    assert isinstance(p["sources"], list)
    assert p["sources"], "never a site without a source"
    assert all(isinstance(s, str) and s.strip() for s in p["sources"])
    for src in p["sources"]:
        if " " in src:  # a prose citation says which file cites it and why it has no URL
            assert any(name in src for name in CITING_FILES), src
    status = p["status"]
    assert status["summary"].strip()
    assert isinstance(status["disputed"], bool)
    assert isinstance(status["claims"], list)
    if p["kind"] == "kwanliso":
        assert status["claims"], "a camp's status needs dated, sourced claims"
    for claim in status["claims"]:
        assert claim["date"].strip()
        assert claim["claim"].strip()
        assert claim["source"] in p["sources"], claim
    conf = p["location_confidence"]
    assert conf["level"] in CONFIDENCE_LEVELS
    assert len(conf["reason"]) > 40
    assert len(p["extent_note"]) > 40
    assert len(p["geometry_basis"]) > 20
    assert p["points"], "every geometry is built from at least one published point"
    for pt in p["points"]:
        assert pt["source"] in p["sources"]
        assert pt["meaning"].strip()
        assert geom.contains(Point(pt["lon"], pt["lat"])), pt
    assert p["scope"] in ("whole-site", "focus-area")
    assert ("parent" in p) == (p["scope"] == "focus-area")
    assert ("control_for" in p) == (p["kind"] == "control")
    published = p.get("published_area_km2")
    if published is not None:
        assert published["min"] == min(v["km2"] for v in published["values"])
        assert published["max"] == max(v["km2"] for v in published["values"])
        assert all(v["source"] in p["sources"] for v in published["values"])


@pytest.mark.parametrize("site_id", BOXED)
def test_box_matches_the_size_it_claims(site_id: str) -> None:
    p = _by_id()[site_id]["properties"]
    geom = shape(_by_id()[site_id]["geometry"])
    b = p["box"]
    size = b["size_km"]
    assert b["claimed_area_km2"] == pytest.approx(size[0] * size[1], rel=0.005)
    assert b["built_as"].strip()
    area = _utm_area_km2(geom)
    bound = _rounding_bound(geom, b["corner_rounding_deg"], size)
    assert abs(area - b["claimed_area_km2"]) <= bound * b["claimed_area_km2"], (area, bound)
    assert b["as_shipped"]["area_km2"] == pytest.approx(area, rel=0.005)
    # the box is centred on its first point, to within one corner-grid step
    lon0, lat0, lon1, lat1 = geom.bounds
    first = p["points"][0]
    assert abs((lon0 + lon1) / 2 - first["lon"]) <= b["corner_rounding_deg"]
    assert abs((lat0 + lat1) / 2 - first["lat"]) <= b["corner_rounding_deg"]
    # an envelope must be able to hold its site: never smaller than any published area
    if "published_area_km2" in p:
        assert area >= p["published_area_km2"]["max"], (area, p["published_area_km2"])
    if "published_dims_km" in b and site_id not in ENVELOPES:
        # built from dimensions with unknown orientation: each side holds the longest one
        assert min(b["as_shipped"]["size_km"]) >= max(b["published_dims_km"])


@pytest.mark.parametrize("site_id", IDS)
def test_each_site_stays_under_the_area_limit(site_id: str) -> None:
    area = _utm_area_km2(shape(_by_id()[site_id]["geometry"]))
    assert 0.01 <= area < MAX_AREA_KM2, area


@pytest.mark.parametrize("site_id", CAMPS)
def test_whole_camp_boxes_are_indicative_envelopes(site_id: str) -> None:
    p = _by_id()[site_id]["properties"]
    assert p["scope"] == "whole-site"
    assert p["geometry_basis"].startswith("approximate box from a published")
    assert p["box"]["corner_rounding_deg"] == 0.01
    assert "indicative" in p["extent_note"]
    assert "centred on" in p["extent_note"] or "centred on" in p["box"]["built_as"]
    if site_id in ENVELOPES:
        dims = ENVELOPES[site_id]
        assert p["box"]["published_dims_km"] == list(dims)
        assert p["box"]["claimed_area_km2"] == pytest.approx(dims[0] * dims[1], rel=0.005)


@pytest.mark.parametrize("site_id", sorted(VERIFICATION_POINTS))
def test_box_contains_every_point_verification_names(site_id: str) -> None:
    geom = shape(_by_id()[site_id]["geometry"])
    for lat_lon in VERIFICATION_POINTS[site_id]:
        assert geom.contains(_point(lat_lon)), (site_id, lat_lon)


@pytest.mark.parametrize("site_id", sorted(EXTENT_FIGURES))
def test_extent_note_carries_the_contradictions(site_id: str) -> None:
    note = _by_id()[site_id]["properties"]["extent_note"]
    for figure in EXTENT_FIGURES[site_id]:
        assert figure in note, (site_id, figure)


@pytest.mark.parametrize("site_id", FOCUS)
def test_focus_area_lies_inside_its_parent(site_id: str) -> None:
    sites = _by_id()
    parent_id = sites[site_id]["properties"]["parent"]
    assert parent_id in sites
    assert sites[parent_id]["properties"]["scope"] == "whole-site"
    assert sites[parent_id]["properties"]["kind"] == sites[site_id]["properties"]["kind"]
    child, parent = shape(sites[site_id]["geometry"]), shape(sites[parent_id]["geometry"])
    assert child.intersection(parent).area / child.area >= 0.9


def test_status_disputes_are_carried() -> None:
    sites = _by_id()
    camp15 = sites["kwanliso-15"]["properties"]["status"]
    assert camp15["disputed"] is True
    text = " ".join(c["claim"] for c in camp15["claims"])
    assert "closed" in text
    assert "administrative" in text
    assert {c["date"][:4] for c in camp15["claims"]} >= {"2014", "2017"}
    camp22 = sites["kwanliso-22"]["properties"]["status"]
    assert camp22["disputed"] is True
    text = " ".join(c["claim"] for c in camp22["claims"])
    assert "closed" in text
    assert "harvest" in text
    assert sites["kwanliso-18"]["properties"]["status"]["disputed"] is True


def test_derived_and_conflicting_positions_are_low_confidence() -> None:
    sites = _by_id()
    ky1 = sites["kyohwaso-1"]["properties"]
    assert ky1["location_confidence"]["level"] == "low"
    assert "derived" in ky1["location_confidence"]["reason"]
    assert "derived" in ky1["points"][0]["meaning"]
    jikdong = sites["coal-mine-february-8-jikdong"]["properties"]
    assert jikdong["location_confidence"]["level"] == "low"
    assert jikdong["points"][0]["lat"] == 39.4915628  # the chosen point, said so openly
    assert "because" in jikdong["extent_note"]


def test_coordinates_are_rfc7946_and_no_finer_than_their_source() -> None:
    # parse_float=str keeps each coordinate as written, so its decimals can be counted
    raw = json.loads(SITE_FILE.read_text(encoding="utf-8"), parse_float=str)
    for feature in raw["features"]:
        site_id = feature["properties"]["id"]
        assert feature["geometry"]["type"] == "Polygon"
        rings = feature["geometry"]["coordinates"]
        box = feature["properties"].get("box")
        max_decimals = 6
        if box is not None:
            max_decimals = min(6, round(-math.log10(float(box["corner_rounding_deg"]))))
        for ring in rings:
            assert ring[0] == ring[-1], site_id
            for lon, lat in ring:
                for value in (lon, lat):
                    decimals = len(value.split(".")[1]) if "." in value else 0
                    assert decimals <= max_decimals, (site_id, value)
        polygon = Polygon([(float(x), float(y)) for x, y in rings[0]])
        assert polygon.exterior.is_ccw, site_id
        assert polygon.is_valid, site_id
        for hole in rings[1:]:
            assert not Polygon([(float(x), float(y)) for x, y in hole]).exterior.is_ccw


@pytest.mark.parametrize("control_id", CONTROLS)
def test_control_is_sourced_clear_of_every_site_and_honest_about_stability(
    control_id: str,
) -> None:
    sites = _by_id()
    p = sites[control_id]["properties"]
    assert p["control_for"], "a control names the sites it serves"
    for served in p["control_for"]:
        assert served in sites
        assert sites[served]["properties"]["kind"] != "control"
    control = shape(sites[control_id]["geometry"])
    epsg = _utm_epsg(control)
    control_utm = _utm(control, epsg)
    for site_id in WATCHED:  # compared in UTM (the control's zone)
        site_utm = _utm(shape(sites[site_id]["geometry"]), epsg)
        assert not control_utm.intersects(site_utm), site_id
        assert control_utm.distance(site_utm) / 1000 >= CONTROL_MIN_GAP_KM, site_id
    check = p["control_check"].lower()
    assert "assumption" in check
    assert "false-change rate" in check
    assert "replace" in check
    assert "not checked" in p["extent_note"]
    assert p["location_confidence"]["reason"].startswith("rates the named place's position")
    # the control's point is its source's published coordinate
    (source,) = p["sources"]
    published = BUILD.ADDED_SOURCES[source]["coordinate"]
    assert (p["points"][0]["lat"], p["points"][0]["lon"]) == pytest.approx(published)


def test_every_watched_site_has_a_control() -> None:
    served = {s for c in CONTROLS for s in _by_id()[c]["properties"]["control_for"]}
    assert served == set(WATCHED)


def test_no_polygon_for_sites_without_a_public_coordinate() -> None:
    readme = README.read_text(encoding="utf-8")
    absent_section = readme.split("## Deliberately absent", 1)[1].split("\n## ", 1)[0]
    for f in _features():
        label = (f["properties"]["id"] + " " + f["properties"]["name"]).lower()
        for name in ABSENT:
            assert name.lower() not in label, (name, label)
    for name in ABSENT:
        assert name in absent_section, name
    assert "Synn-Arch" in absent_section
    assert "Synn-Arch" not in " ".join(s for f in _features() for s in f["properties"]["sources"])


def test_readme_lists_every_added_source_and_every_site() -> None:
    readme = README.read_text(encoding="utf-8")
    for url in BUILD.ADDED_SOURCES:
        assert url in readme, url
    for site_id in IDS:
        assert f"`{site_id}`" in readme, site_id


@pytest.mark.realdata
def test_points_and_source_urls_match_the_verification_files() -> None:
    if not SHARED_SITES.is_dir():
        pytest.skip(f"{SHARED_SITES} absent (fresh clone outside the workspace)")
    shared = {name: (SHARED_SITES / name).read_text(encoding="utf-8") for name in SHARED_FILES}
    text = "\n".join(shared.values())
    for points in VERIFICATION_POINTS.values():
        for lat, lon in points:
            assert f"{lat}, {lon}" in shared["VERIFICATION.md"], (lat, lon)
    pairs = {(float(a), float(b)) for a, b in re.findall(r"(\d+\.\d+)\s*,\s*(\d+\.\d+)", text)}
    for f in _features():
        p = f["properties"]
        for src in p["sources"]:
            if " " not in src:  # a URL: exactly as the shared files give it, or an added page
                assert src in text or src in BUILD.ADDED_SOURCES, src
        if p["kind"] == "control":
            continue
        for pt in p["points"]:  # every published point, exactly as a shared file prints it
            if (p["id"], pt["lat"], pt["lon"]) not in POINTS_FROM_CITED_PAGES:
                assert (pt["lat"], pt["lon"]) in pairs, (p["id"], pt)
    # every GEM 2022 row is a site centred on its point, but the Jikdong row, whose conflicting
    # point is carried in that site's extent_note
    centres = {
        (f["properties"]["points"][0]["lat"], f["properties"]["points"][0]["lon"])
        for f in _features()
    }
    with (SHARED_SITES / "gcmt_2022_north_korea.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            lat, lon = float(row["Latitude"]), float(row["Longitude"])
            if row["Mine IDs"] == "M2627":
                note = _by_id()["coal-mine-february-8-jikdong"]["properties"]["extent_note"]
                assert row["Latitude"] in note
            else:
                assert (lat, lon) in centres, row["Mine Name"]
