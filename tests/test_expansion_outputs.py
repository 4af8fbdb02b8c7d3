"""Boundary expansion as analysts get it: `sitewatch expansion` on analyst-drawn perimeters
(the README's example gives the README's numbers, in every file format), sites across a UTM
zone border and touching sites, and `sitewatch run --perimeters` next to the footprints."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import yaml
from pyproj import CRS, Transformer
from shapely.geometry import Polygon, box, mapping, shape

from pipeline.cli import main
from pipeline.sources.synthetic import DEMO_SITES_GEOJSON

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "demo-camp-perimeters.geojson"
README = ROOT / "README.md"


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def expansion(perimeters: Path, out: Path, *extra: str) -> dict[tuple[str, str, str], Any]:
    """Run the CLI; the expansion.csv rows by (site, year_from, year_to)."""
    assert main(["expansion", str(perimeters), "--out", str(out), *extra]) == 0
    return {(r["site_id"], r["year_from"], r["year_to"]): r for r in rows(out / "expansion.csv")}


def test_readme_example_gives_the_readme_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    got = expansion(EXAMPLE, tmp_path / "out", "--sites-file", str(ROOT / "aoi" / "demo.geojson"))
    printed = capsys.readouterr().out
    # 2018 -> 2021: the compound grows 100 m east over its 800 m side: 8 ha.
    first = got[("demo-camp", "2018", "2021")]
    assert float(first["added_ha"]) == pytest.approx(8.0, abs=0.01)
    assert float(first["removed_ha"]) == pytest.approx(0.0, abs=0.01)
    assert float(first["max_outward_m"]) == pytest.approx(100.0, abs=0.2)
    assert first["main_direction"] == "E"
    # 2021 -> 2024: 150 m north over 1,100 m (16.5 ha) and a 1 ha annex 200-300 m west.
    second = got[("demo-camp", "2021", "2024")]
    assert float(second["added_ha"]) == pytest.approx(17.5, abs=0.01)
    assert float(second["max_outward_m"]) == pytest.approx(300.0, abs=0.2)
    assert second["main_direction"] == "N"
    last = got[("demo-camp", "2018", "2024")]
    assert last["pair"] == "first-last"
    assert float(last["area_to_ha"]) - float(last["area_from_ha"]) == pytest.approx(25.5, abs=0.01)
    assert float(last["perimeter_to_m"]) == pytest.approx(2 * (1100 + 950) + 400, abs=0.5)
    # The sectors: east edge moved 100 m, north edge 150 m, south and south-west not at all.
    sectors = {
        r["sector"]: r
        for r in rows(tmp_path / "out" / "expansion_sectors.csv")
        if (r["year_from"], r["year_to"]) == ("2018", "2021")
    }
    assert len(sectors) == 16
    for name in ("ENE", "E", "ESE"):
        assert float(sectors[name]["median_m"]) == pytest.approx(100.0, abs=0.2)
    for name in ("S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW", "N"):
        assert float(sectors[name]["max_m"]) == pytest.approx(0.0, abs=0.2)
    # What the README shows is what the command prints.
    readme = README.read_text()
    for line in printed.splitlines():
        if line.strip().startswith("expansion "):
            assert line.strip() in readme, line
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["sites"]["demo-camp"]["crs"] == "EPSG:32651"
    assert {o["path"] for o in manifest["outputs"]} == {
        "expansion.geojson", "expansion.csv", "expansion_sectors.csv",
    }  # fmt: skip


def test_every_format_gives_the_same_numbers(tmp_path: Path) -> None:
    frame = gpd.read_file(EXAMPLE)
    frame["year"] = [2018, 2021, 2024]
    frame = frame.drop(columns=["date"])
    gpkg = tmp_path / "perimeters.gpkg"
    frame.to_crs("EPSG:32651").to_file(gpkg, layer="perimeters", driver="GPKG")
    kml = tmp_path / "perimeters.kml"
    frame.to_file(kml, driver="KML")
    reference = expansion(EXAMPLE, tmp_path / "geojson")
    for path in (gpkg, kml):
        got = expansion(path, tmp_path / path.suffix[1:])
        assert got.keys() == reference.keys()
        for key, row in got.items():
            for column in ("added_ha", "removed_ha", "max_outward_m", "hausdorff_m"):
                assert float(row[column]) == pytest.approx(float(reference[key][column]), abs=0.02)
            assert row["main_direction"] == reference[key]["main_direction"]


def local_square(
    lon: float, lat: float, west: float, south: float, east: float, north: float
) -> Polygon:
    """A box in metres around (lon, lat) in a local azimuthal equidistant projection, as lon/lat
    at 7 decimals (distances true to ~1 cm, whatever the UTM zone)."""
    aeqd = CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m")
    to_wgs = Transformer.from_crs(aeqd, "EPSG:4326", always_xy=True)
    ring = box(west, south, east, north).segmentize(50).exterior.coords
    return Polygon([tuple(round(v, 7) for v in to_wgs.transform(x, y)) for x, y in ring])


def perimeter_file(path: Path, features: list[tuple[str, int, Polygon]]) -> Path:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"site_id": s, "year": y}, "geometry": mapping(g)}
            for s, y, g in features
        ],
    }
    path.write_text(json.dumps(doc))
    return path


def test_a_site_across_a_utm_zone_border_is_measured_in_one_zone(tmp_path: Path) -> None:
    # Straddles 126 E, the border of UTM zones 51 and 52 (Kwanliso 14's box does too); the
    # centroid lies east of it, so the whole site is measured in zone 52, 3 degrees from its
    # central meridian (scale error ~2e-4, grid north 1.9 degrees off true north).
    lon, lat = 126.003, 39.57
    path = perimeter_file(
        tmp_path / "border.geojson",
        [
            ("kwanliso-x", 2019, local_square(lon, lat, -1000, -1000, 1000, 1000)),
            ("kwanliso-x", 2023, local_square(lon, lat, -1000, -1000, 1100, 1000)),
        ],
    )
    got = expansion(path, tmp_path / "out")[("kwanliso-x", "2019", "2023")]
    assert float(got["added_ha"]) == pytest.approx(100 * 2000 / 1e4, rel=1e-3)
    assert float(got["max_outward_m"]) == pytest.approx(100.0, abs=0.3)
    assert got["main_direction"] == "E"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["sites"]["kwanliso-x"]["crs"] == "EPSG:32652"


def test_touching_sites_are_measured_apart(tmp_path: Path) -> None:
    lon, lat = 129.4, 41.3
    a0 = local_square(lon, lat, -1000, 0, 0, 1000)  # shares its east edge with b
    b = local_square(lon, lat, 0, 0, 1000, 1000)
    a1 = local_square(lon, lat, -1250, 0, 0, 1000)  # grows 250 m west, away from b
    path = perimeter_file(
        tmp_path / "touching.geojson",
        [("camp-a", 2015, a0), ("camp-a", 2020, a1), ("camp-b", 2015, b), ("camp-b", 2020, b)],
    )
    got = expansion(path, tmp_path / "out")
    grown = got[("camp-a", "2015", "2020")]
    assert float(grown["added_ha"]) == pytest.approx(25.0, rel=1e-3)
    assert float(grown["max_outward_m"]) == pytest.approx(250.0, abs=0.3)
    assert grown["main_direction"] == "W"
    still = got[("camp-b", "2015", "2020")]
    assert still["summary"] == "no change"
    assert float(still["hausdorff_m"]) == 0.0


def test_multipolygon_with_a_hole_filling_in(tmp_path: Path) -> None:
    lon, lat = 125.8, 39.5
    outer = local_square(lon, lat, -500, -500, 500, 500)
    hole = local_square(lon, lat, -100, -100, 100, 100)
    annex = local_square(lon, lat, 800, -100, 1000, 100)
    before = Polygon(outer.exterior.coords, [hole.exterior.coords[::-1]]).union(annex)
    after = outer.union(annex)
    path = perimeter_file(
        tmp_path / "holes.geojson", [("mine-1", 2016, before), ("mine-1", 2024, after)]
    )
    got = expansion(path, tmp_path / "out")[("mine-1", "2016", "2024")]
    assert float(got["added_ha"]) == pytest.approx(4.0, rel=1e-3)  # the 200 x 200 m courtyard
    assert float(got["max_outward_m"]) == pytest.approx(0.0, abs=0.01)  # nothing moved out
    assert "inside the old outline" in got["summary"]
    geojson = json.loads((tmp_path / "out" / "expansion.geojson").read_text())
    added = next(f for f in geojson["features"] if f["properties"]["change"] == "added")
    assert shape(added["geometry"]).representative_point().within(shape(mapping(hole)).buffer(1e-6))


@pytest.mark.slow
def test_run_with_perimeters_measures_both(tmp_path: Path) -> None:
    sites = tmp_path / "sites.geojson"
    sites.write_text(json.dumps(DEMO_SITES_GEOJSON))
    control = shape(DEMO_SITES_GEOJSON["features"][2]["geometry"])
    c = control.centroid
    drawn = perimeter_file(
        tmp_path / "drawn.geojson",
        [
            ("demo-control", 2021, local_square(c.x, c.y, -200, -200, 200, 200)),
            ("demo-control", 2022, local_square(c.x, c.y, -200, -260, 200, 200)),
        ],
    )
    config = {
        "name": "perimeters",
        "sites": "sites.geojson",
        "site_ids": ["demo-control"],
        "years": {"start": 2021, "end": 2022},
        "source": {
            "kind": "synthetic",
            "scenario": {
                "seed": 11,
                "start_year": 2021,
                "end_year": 2022,
                "sites": ["demo-control"],
                "acquisitions_per_year": [10, 10],
                "autumn_min_acquisitions": 5,
            },
        },
        "cache_dir": str(tmp_path / "cache"),
        "write_rasters": False,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    assert main(["-q", "run", str(path), "--out", str(out), "--perimeters", str(drawn)]) == 0
    table = rows(out / "expansion.csv")
    assert [(r["source"], r["year_from"], r["year_to"]) for r in table] == [
        ("footprint", "2021", "2022"),
        ("perimeter", "2021", "2022"),
    ]
    drawn_row = table[1]
    assert float(drawn_row["added_ha"]) == pytest.approx(400 * 60 / 1e4, rel=1e-3)
    assert drawn_row["main_direction"] == "S"
    assert float(drawn_row["max_outward_m"]) == pytest.approx(60.0, abs=0.3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["expansion"]["perimeters"]["path"] == str(drawn.resolve())
    assert {"expansion.csv", "expansion_sectors.csv"} <= {o["path"] for o in manifest["outputs"]}


def test_perimeters_of_an_unknown_site_stop_the_run_before_any_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sites = tmp_path / "sites.geojson"
    sites.write_text(json.dumps(DEMO_SITES_GEOJSON))
    drawn = perimeter_file(
        tmp_path / "drawn.geojson",
        [("demo-kamp", 2021, local_square(125.8, 39.5, 0, 0, 100, 100))],
    )
    config = {"name": "p", "sites": "sites.geojson", "years": {"start": 2021, "end": 2022},
              "cache_dir": str(tmp_path / "cache")}  # fmt: skip
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["-q", "run", str(path), "--out", str(tmp_path / "o"), "--perimeters", str(drawn)])
    assert code == 2
    err = capsys.readouterr().err
    assert "drawn.geojson: perimeters of site id(s) ['demo-kamp']" in err
    assert not (tmp_path / "cache").exists()  # nothing was generated or read
