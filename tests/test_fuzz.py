"""Hypothesis fuzzing of the config loader, the site loader and the geometry helpers: whatever
the input, only the project's own errors (``SitewatchError``) escape, never a KeyError,
TypeError, ValueError or AttributeError traceback. Derandomised so CI is reproducible; each test
runs 100-200 examples."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from pipeline.config import (
    LimitsConfig,
    RunConfig,
    config_from_mapping,
    load_config,
    parse_yaml,
)
from pipeline.errors import SitewatchError
from pipeline.grid import Grid, reproject_geometry, utm_crs_for
from pipeline.sites import Site, check_site_limits, load_sites

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MINIMAL: dict[str, Any] = {
    "name": "t",
    "sites": "sites.geojson",
    "years": {"start": 2020, "end": 2021},
}


def only_own_errors(call: Callable[[], object]) -> None:
    """Run ``call``; a SitewatchError is an accepted outcome, anything else fails the test."""
    message = ""
    try:
        call()
    except SitewatchError as exc:
        message = str(exc)
    assert len(message) < 5_000, "error messages stay short"


# ------------------------------------------------------------------------------------------
# Strategies


def _field_names(model: type[Any], seen: set[str]) -> None:
    for name, info in model.model_fields.items():
        seen.add(name)
        for t in getattr(info.annotation, "__args__", None) or (info.annotation,):
            if isinstance(t, type) and hasattr(t, "model_fields"):
                _field_names(t, seen)


_names: set[str] = set()
_field_names(RunConfig, _names)
KNOWN_KEYS = sorted(_names | {"kind", "synthetic", "stac-api", "stac-static", "folder"})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["09-01", "02-30", "synthetic", "stac-api", "folder", "~", "~nobody/x", "a\x00b", "..",
         "/", "/dev/null", "none", "landsat-oli", "yes", "no", "1e400", "", " ", "x" * 500]
    ),
    st.dates(),
)  # fmt: skip
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=12), st.integers(-3, 3))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=5)
    ),
    max_leaves=25,
)
# Mostly the minimal valid config with random keys replaced or added at any level, so the
# fuzzer gets past the first missing key and into every section.
overrides = st.dictionaries(keys, values, max_size=6)


@st.composite
def configs(draw: st.DrawFn) -> dict[Any, Any]:
    base: dict[Any, Any] = dict(MINIMAL) if draw(st.booleans()) else {}
    base.update(draw(overrides))
    for section in draw(st.lists(st.sampled_from(KNOWN_KEYS), max_size=3)):
        base[section] = draw(st.one_of(values, st.dictionaries(keys, values, max_size=4)))
    return base


coords = st.one_of(
    st.floats(-200, 200),
    st.floats(-90, 90),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.sampled_from([None, "1", [], True]),
)
point = st.lists(coords, min_size=0, max_size=4)
ring = st.lists(point, max_size=6)
geometry = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "LineString", "Nope"]),
            "coordinates": st.one_of(
                st.lists(ring, max_size=2), st.lists(st.lists(ring, max_size=2), max_size=2), values
            ),
        }
    ),
    values,
)
properties = st.one_of(
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.sampled_from(["camp-1", "x", "../a", "A"]), scalars),
            "name": st.one_of(st.just("Camp"), scalars),
            "kind": st.one_of(st.sampled_from(["kwanliso", "coal_mine", "coal_port"]), scalars),
            "source": st.one_of(st.just("test"), scalars),
        },
        optional={"extra": values},
    ),
    values,
)
features = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("Feature"), "properties": properties, "geometry": geometry}
    ),
    values,
)
site_docs = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("FeatureCollection"), "features": st.lists(features, max_size=3)}
    ),
    values,
)

finite = st.floats(-1e7, 1e7)
any_float = st.one_of(finite, st.floats(allow_nan=True, allow_infinity=True))
crs_names = st.sampled_from(
    ["EPSG:4326", "EPSG:32651", "EPSG:32652", "EPSG:32719", "EPSG:3857", "EPSG:99999999",
     "EPSG:abc", "+proj=nonsense", ""]
)  # fmt: skip


@st.composite
def polygons(draw: st.DrawFn) -> Polygon | MultiPolygon:
    lon = draw(st.floats(-185, 185))
    lat = draw(st.floats(-95, 95))
    w = draw(st.floats(1e-9, 400))
    h = draw(st.floats(1e-9, 200))
    first = box(lon, lat, lon + w, lat + h)
    if draw(st.booleans()):
        return first
    return MultiPolygon([first, box(lon - 2 * w, lat, lon - w, lat + h)])


# ------------------------------------------------------------------------------------------
# Config loader


@FUZZ
@given(configs())
def test_config_from_mapping_raises_only_own_errors(tmp_path: Path, raw: dict[Any, Any]) -> None:
    only_own_errors(lambda: config_from_mapping(raw, base_dir=tmp_path))


@FUZZ
@given(configs())
def test_load_config_of_dumped_yaml_raises_only_own_errors(
    tmp_path: Path, raw: dict[Any, Any]
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    only_own_errors(lambda: load_config(path))


yaml_fragments = st.sampled_from(
    ["name: t\n", "name: t\n", "a: &a [1, 2]\n", "b: *a\n", "c: *zz\n", "d: &d {x: *a}\n",
     "<<: *d\n", "e: !!python/name:os.system\n", "f: !!binary aGVsbG8=\n", "g: !!set {a, b}\n",
     "h: [\n", "i: {j: 1, j: 2}\n", "? [k]\n: 1\n", "years: {start: 2020, end: 2021}\n",
     "sites: s.geojson\n", "workers: yes\n", "- item\n", "  indented: 1\n", "\t\n", "%YAML 1.1\n",
     "--- \n", "...\n", "'unterminated\n", "l: 1e400\n", "m: .nan\n", "n: 2020-01-01\n",
     "o: &o [*o]\n", "p: &p\n  q: *p\n", "\x00\n", "\ufeffname: t\n"]
)  # fmt: skip


@FUZZ
@given(st.lists(yaml_fragments, max_size=8), st.text(max_size=40))
def test_load_config_of_yaml_text_raises_only_own_errors(
    tmp_path: Path, fragments: list[str], noise: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("".join(fragments) + noise, encoding="utf-8", errors="surrogatepass")
    only_own_errors(lambda: load_config(path))


@FUZZ
@given(st.binary(max_size=200))
def test_load_config_of_bytes_raises_only_own_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(data)
    only_own_errors(lambda: load_config(path))
    only_own_errors(lambda: parse_yaml(data.decode("utf-8", "replace")))


# ------------------------------------------------------------------------------------------
# Site loader


@FUZZ
@given(site_docs, st.one_of(st.none(), st.lists(st.text(max_size=8), max_size=2)))
def test_load_sites_raises_only_own_errors(
    tmp_path: Path, doc: Any, only: list[str] | None
) -> None:
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps(doc, default=str))
    only_own_errors(lambda: load_sites(path, only=only))


@FUZZ
@given(st.binary(max_size=200))
def test_load_sites_of_bytes_raises_only_own_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "sites.geojson"
    path.write_bytes(data)
    only_own_errors(lambda: load_sites(path))


# ------------------------------------------------------------------------------------------
# Geometry helpers


@FUZZ
@given(
    st.tuples(any_float, any_float, any_float, any_float),
    any_float,
    st.one_of(st.none(), any_float),
    st.tuples(any_float, any_float),
)
def test_grid_from_bounds_raises_only_own_errors(
    bounds: tuple[float, float, float, float],
    resolution: float,
    snap: float | None,
    origin: tuple[float, float],
) -> None:
    def call() -> None:
        grid = Grid.from_bounds("EPSG:32651", bounds, resolution, snap=snap, origin=origin)
        assert grid.width >= 0
        assert grid.height >= 0
        assert all(math.isfinite(v) for v in grid.bounds)

    only_own_errors(call)


@FUZZ
@given(any_float, any_float)
def test_utm_crs_for_raises_only_own_errors(lon: float, lat: float) -> None:
    def call() -> None:
        crs = utm_crs_for(lon, lat)
        assert crs.startswith("EPSG:32")

    only_own_errors(call)


@FUZZ
@given(polygons(), crs_names, crs_names)
def test_reproject_geometry_raises_only_own_errors(
    geom: Polygon | MultiPolygon, src: str, dst: str
) -> None:
    only_own_errors(lambda: reproject_geometry(geom, src, dst))


@FUZZ
@given(
    polygons(),
    st.one_of(st.floats(1, 1000), any_float),
    st.one_of(st.floats(0, 50_000), any_float),
    st.tuples(st.floats(-100, 100), st.floats(-100, 100)),
)
def test_site_grid_and_limits_raise_only_own_errors(
    geom: Polygon | MultiPolygon, resolution: float, buffer: float, origin: tuple[float, float]
) -> None:
    site = Site("fuzz", "Fuzz", "other", geom, "test")

    def call() -> None:
        grid = site.grid(resolution, buffer, origin=origin)
        check_site_limits([site], {site.id: grid}, LimitsConfig())

    only_own_errors(call)
