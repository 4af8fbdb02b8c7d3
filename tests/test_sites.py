from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import SiteError
from pipeline.grid import Grid, utm_crs_for
from pipeline.sites import load_sites


def feature(**props: Any) -> dict[str, Any]:
    base = {"id": "camp-1", "name": "Camp", "kind": "camp", "source": "test"}
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
        ({"source": ""}, "source: required non-empty string"),
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
    path = write(tmp_path, feature(), feature(id="port-2", kind="port"))
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
